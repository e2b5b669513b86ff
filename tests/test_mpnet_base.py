"""The real 12-layer MPNet-base (`all-mpnet-base-v2`) converts to BERMo, trains, saves, reloads through its remote code
in a process without `bermo_hf`, and predicts through `pipeline`."""

import json
import textwrap

import torch
from transformers import AutoTokenizer

from bermo_hf import AutoBermoModelForSequenceClassification, BermoMPNetForSequenceClassification

from .conftest import result_of_fresh_process

TEXTS = ["a gripping , beautifully acted film .", "the plot is thin and the jokes fall flat .", "fine .", "dull ."]
LABELS = torch.tensor([1, 0, 1, 0])
ID2LABEL = {0: "negative", 1: "positive"}

REMOTE_PREDICT = textwrap.dedent(
    """
    import json, sys
    sys.modules["bermo_hf"] = None  # only the folder's own code may run
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    folder, texts = sys.argv[1], json.loads(sys.argv[2])
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    inputs = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    classifier = pipeline("text-classification", model=folder, trust_remote_code=True)
    print("RESULT", json.dumps({
        "class": type(model).__name__, "module": type(model).__module__, "logits": logits.tolist(),
        "labels": [prediction["label"] for prediction in classifier(texts)],
    }))
    """
)


def test_mpnet_base_converts_trains_saves_and_predicts_through_remote_code(mpnet_path, tmp_path):
    torch.manual_seed(0)
    model, info = AutoBermoModelForSequenceClassification.from_pretrained(
        mpnet_path, id2label=ID2LABEL, label2id={v: k for k, v in ID2LABEL.items()}, output_loading_info=True
    )
    assert type(model) is BermoMPNetForSequenceClassification and model.base_model.layer_mix.num_depths == 13
    new = {key.split(".", 1)[1] if key.startswith("mpnet.") else key for key in info["missing_keys"]}
    head = {
        "classifier.dense.weight",
        "classifier.dense.bias",
        "classifier.out_proj.weight",
        "classifier.out_proj.bias",
    }
    assert new == {"layer_mix.weights", "layer_mix.gamma", *head}  # every MPNet weight is reused
    tokenizer = AutoTokenizer.from_pretrained(mpnet_path)
    inputs = tokenizer(TEXTS, padding=True, return_tensors="pt")
    start = model.base_model.layer_mix.weights.detach().clone()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(3):
        optimizer.zero_grad()
        model(**inputs, labels=LABELS).loss.backward()
        optimizer.step()
    assert not torch.equal(model.base_model.layer_mix.weights.detach(), start)
    model.eval().save_pretrained(tmp_path / "saved")
    tokenizer.save_pretrained(tmp_path / "saved")
    with torch.no_grad():
        logits = model(**inputs).logits
    loaded = result_of_fresh_process(["-c", REMOTE_PREDICT, str(tmp_path / "saved"), json.dumps(TEXTS)], tmp_path)
    assert loaded["class"] == "BermoMPNetForSequenceClassification"
    assert loaded["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(loaded["logits"]), logits, rtol=1e-4, atol=1e-4)
    assert loaded["labels"] == [ID2LABEL[index] for index in logits.argmax(-1).tolist()]
