"""A saved BERMo folder loads with `trust_remote_code=True` where `bermo_hf` cannot be imported."""

import json
import sys
import textwrap

import pytest
import torch
from transformers import AutoTokenizer

from bermo_hf import BermoForSequenceClassification

from .conftest import result_of_fresh_process

TEXTS = ["a gripping , beautifully acted film .", "the plot is thin and the jokes fall flat"]

REMOTE_LOADER = textwrap.dedent(
    """
    import json, sys
    sys.modules["bermo_hf"] = None  # the package is not available: only the folder's own code may run
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    folder, texts = sys.argv[1], json.loads(sys.argv[2])
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt")).logits
    classifier = pipeline("text-classification", model=folder, trust_remote_code=True)
    print("RESULT", json.dumps({
        "module": type(model).__module__,
        "logits": logits.tolist(),
        "predictions": classifier(texts),
    }))
    """
)


def run_without_bermo_hf(folder, tmp_path) -> dict:
    return result_of_fresh_process(["-c", REMOTE_LOADER, str(folder), json.dumps(TEXTS)], tmp_path)


def test_remote_code_gives_identical_logits_and_configured_labels(minilm_path, tmp_path):
    id2label = {0: "negative", 1: "neutral", 2: "positive"}
    model = BermoForSequenceClassification.from_pretrained(
        minilm_path, num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()}
    ).eval()
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.linspace(-1.0, 1.0, 7))
        model.bert.layer_mix.gamma.fill_(1.3)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    folder = tmp_path / "bermo-sst"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    with torch.no_grad():
        expected = model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits

    loaded = run_without_bermo_hf(folder, tmp_path)

    assert loaded["module"].startswith("transformers_modules.") and loaded["module"].endswith("modeling_bermo")
    assert torch.equal(torch.tensor(loaded["logits"]), expected)
    assert [p["label"] for p in loaded["predictions"]] == [id2label[i] for i in expected.argmax(-1).tolist()]


def test_shipped_files_import_only_the_standard_library_torch_transformers_and_each_other():
    import ast
    from pathlib import Path

    import bermo_hf

    package = Path(bermo_hf.__file__).parent
    for name in ("configuration_bermo.py", "modeling_bermo.py"):
        tree = ast.parse((package / name).read_text())
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add("." if node.level else node.module.split(".")[0])
        third_party = imported - set(sys.stdlib_module_names)
        assert third_party <= {"torch", "transformers", "."}, (name, imported)


@pytest.mark.parametrize("name", ["configuration_bermo.py", "modeling_bermo.py"])
def test_saved_code_files_are_the_package_files(tmp_path, tiny_config, name):
    from pathlib import Path

    import bermo_hf

    BermoForSequenceClassification(tiny_config).save_pretrained(tmp_path)
    assert (tmp_path / name).read_text() == (Path(bermo_hf.__file__).parent / name).read_text()
