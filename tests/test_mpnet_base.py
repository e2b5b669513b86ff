"""The real 12-layer MPNet-base (`all-mpnet-base-v2`) loads into BERMo reusing every weight, and runs end to end through
the `bermo` commands: convert, train, predict (also through `pipeline` and the folder's remote code in a process
without `bermo_hf`), inspect and export to ONNX."""

import json
from pathlib import Path

import pytest

from bermo_hf import AutoBermoModelForSequenceClassification, BermoMPNetForSequenceClassification
from bermo_hf.cli import main as bermo
from bermo_hf.demo import predict_in_fresh_process

TEXTS = ["a gripping , beautifully acted film .", "the plot is thin and the jokes fall flat .", "fine .", "dull ."]
LABELS = [1, 0, 1, 0]


def test_mpnet_base_loads_into_bermo_reusing_every_weight(mpnet_path):
    model, info = AutoBermoModelForSequenceClassification.from_pretrained(mpnet_path, output_loading_info=True)
    assert type(model) is BermoMPNetForSequenceClassification and model.base_model.layer_mix.num_depths == 13
    new = {key.split(".", 1)[1] if key.startswith("mpnet.") else key for key in info["missing_keys"]}
    head = {
        "classifier.dense.weight",
        "classifier.dense.bias",
        "classifier.out_proj.weight",
        "classifier.out_proj.bias",
    }
    assert new == {"layer_mix.weights", "layer_mix.gamma", *head}  # every MPNet weight is reused


def run_bermo(capsys, *argv) -> tuple[int, str]:
    status = bermo([str(arg) for arg in argv])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    return status, captured.out


def test_mpnet_base_runs_end_to_end_through_the_commands(mpnet_path, tmp_path, capsys):
    converted, trained = tmp_path / "converted", tmp_path / "trained"
    run_bermo(capsys, "convert", mpnet_path, converted, "--labels", "negative,positive")
    assert json.loads((converted / "config.json").read_text())["model_type"] == "bermo-mpnet"
    data = Path(tmp_path / "train.tsv")
    data.write_text(
        "sentence\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in zip(TEXTS, LABELS, strict=True))
    )
    train = ["train", "--model_name_or_path", converted, "--train_file", data, "--validation_file", data]
    train += ["--output_dir", trained, "--max_steps", "2", "--per_device_train_batch_size", "4"]
    train += ["--max_seq_length", "32", "--report_to", "none", "--save_strategy", "no", "--eval_strategy", "no"]
    run_bermo(capsys, *train)
    assert json.loads((trained / "metrics.json").read_text())["eval_accuracy"] >= 0
    _, stdout = run_bermo(capsys, "predict", trained, *TEXTS, "--json")
    predictions = [json.loads(line) for line in stdout.splitlines()]
    reloaded = predict_in_fresh_process(trained, TEXTS)["predictions"]
    assert [p["label"] for p in reloaded] == [p["label"] for p in predictions] and len(predictions) == len(TEXTS)
    assert [p["score"] for p in reloaded] == pytest.approx([p["score"] for p in predictions], abs=1e-5)
    _, stdout = run_bermo(capsys, "inspect", trained, "--json")
    assert len(json.loads(stdout)["weights"]) == 13
    _, stdout = run_bermo(capsys, "export", trained, tmp_path / "onnx", "--onnx")
    assert (tmp_path / "onnx" / "model.onnx").is_file() and "largest difference from PyTorch" in stdout
