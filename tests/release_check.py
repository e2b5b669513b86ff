"""Runs BERMo under the transformers release of the interpreter that runs it; `test_transformers_releases.py` starts it
once per release environment, in a fresh process.

    python release_check.py remote FOLDER INPUTS_JSON
        Loads FOLDER through its own code files (`trust_remote_code=True`, `bermo_hf` not importable), prints the
        logits and hidden states for INPUTS_JSON's token ids and the `pipeline("text-classification")` labels of its
        texts.
    python release_check.py package OUT
        Through the package: a few `BermoTrainer` steps on a tiny random model, `save_pretrained` into OUT, reload,
        and prints the logits and hidden states before saving and after reloading, and whether every mix parameter
        moved.

Each prints one line `RESULT {json}`.
"""

import json
import sys
from pathlib import Path


def load_remote(folder: str, inputs: dict) -> dict:
    sys.modules["bermo_hf"] = None  # only the folder's own code may run
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, pipeline

    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        batch = {name: torch.tensor(inputs[name]) for name in ("input_ids", "attention_mask")}
        output = model(**batch, output_hidden_states=True)
    classifier = pipeline("text-classification", model=folder, trust_remote_code=True)
    return {
        "transformers": transformers.__version__,
        "module": type(model).__module__,
        "logits": output.logits.tolist(),
        "hidden_states": [state.tolist() for state in output.hidden_states],
        "labels": [prediction["label"] for prediction in classifier(inputs["texts"])],
    }


def train_save_reload(out: str) -> dict:
    import torch
    import transformers
    from transformers import TrainingArguments

    from bermo_hf import BermoConfig, BermoForSequenceClassification
    from bermo_hf.training import BermoTrainer

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import tiny_config_kwargs

    torch.manual_seed(0)
    config = BermoConfig(**tiny_config_kwargs(num_labels=2))
    model = BermoForSequenceClassification(config)
    start = {name: parameter.detach().clone() for name, parameter in model.bert.layer_mix.named_parameters()}
    input_ids = torch.randint(1, 100, (32, 8), generator=torch.Generator().manual_seed(0))
    labels = (input_ids[:, 0] > 50).long()
    data = [{"input_ids": ids, "labels": label} for ids, label in zip(input_ids, labels, strict=True)]
    args = TrainingArguments(
        output_dir=f"{out}/run",
        max_steps=6,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        seed=0,
    )
    BermoTrainer(model=model, args=args, train_dataset=data, mix_learning_rate=5e-2).train()
    moved = all(
        bool((parameter.detach() != start[name]).all()) for name, parameter in model.bert.layer_mix.named_parameters()
    )
    model.save_pretrained(f"{out}/saved")
    reloaded = BermoForSequenceClassification.from_pretrained(f"{out}/saved").eval()
    probe = {"input_ids": input_ids[:4], "attention_mask": torch.ones_like(input_ids[:4])}
    with torch.no_grad():
        before = model.eval()(**probe, output_hidden_states=True)
        after = reloaded(**probe, output_hidden_states=True)
    return {
        "transformers": transformers.__version__,
        "mix_moved": moved,
        "input_ids": probe["input_ids"].tolist(),
        "logits_before_saving": before.logits.tolist(),
        "logits_after_reloading": after.logits.tolist(),
        "hidden_states_before_saving": [state.tolist() for state in before.hidden_states],
        "hidden_states_after_reloading": [state.tolist() for state in after.hidden_states],
    }


if __name__ == "__main__":
    if sys.argv[1] == "remote":
        result = load_remote(sys.argv[2], json.loads(sys.argv[3]))
    else:
        result = train_save_reload(sys.argv[2])
    print("RESULT", json.dumps(result))
