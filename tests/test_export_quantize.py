"""int8 ONNX graphs: `quantize_onnx` (onnxruntime's dynamic quantization) writes a graph with int8 weights that
onnxruntime runs, `compare_on_sample` measures accuracy, agreement with PyTorch and speed, and `bermo export --onnx
--quantize int8` writes both graphs, prints the check and fails in one line, writing nothing, when the check fails."""

import numpy as np
import onnx
import pytest
import torch
from transformers import AutoTokenizer

from bermo_hf import BermoForQuestionAnswering, BermoForSequenceClassification
from bermo_hf.cli import main as bermo
from bermo_hf.errors import BermoUsageError
from bermo_hf.onnx_export import CHECK_TEXTS, export_onnx
from bermo_hf.onnx_quantization import (
    PYTORCH,
    QUANTIZED_ONNX_FILENAME,
    LabelledSample,
    built_in_sample,
    class_ids,
    compare_on_sample,
    onnx_session,
    quantize_onnx,
)

from .test_export import tiny_model

TEXTS = ["a gripping , beautifully acted film .", "fine .", "not worth the price of the ticket .", "a mess ."]
LABELS = [1, 1, 1, 0]


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


def classifier(tokenizer, predicted: int, model_class=BermoForSequenceClassification):
    """A tiny random classifier whose head's bias makes it predict class `predicted` for every text, far from a tie
    (so that int8 rounding cannot flip a label)."""
    model = tiny_model(model_class, vocab_size=tokenizer.vocab_size, max_position_embeddings=128)
    if model_class is BermoForSequenceClassification:
        with torch.no_grad():
            model.classifier.bias.copy_(torch.tensor([1.0, 0.0] if predicted == 0 else [0.0, 1.0]))
    return model


@pytest.fixture(scope="module")
def graphs(tokenizer, tmp_path_factory):
    """The model predicting class 1, its float and int8 graphs, and the float graph of a model predicting class 0."""
    folder = tmp_path_factory.mktemp("graphs")
    model = classifier(tokenizer, 1)
    float_path = export_onnx(model, tokenizer, folder / "model.onnx")
    int8_path = quantize_onnx(float_path, folder / QUANTIZED_ONNX_FILENAME)
    other_path = export_onnx(classifier(tokenizer, 0), tokenizer, folder / "other.onnx")
    return model, float_path, int8_path, other_path


@pytest.fixture
def graphs_reused(graphs, monkeypatch):
    """`bermo export` takes its float graph from `graphs` (the same tiny models, seeded alike) instead of exporting
    again: the export itself is tested in tests/test_export.py and tests/test_cli_families.py."""
    import shutil

    import bermo_hf.commands.export as export_command

    def reuse(model, tokenizer, path):
        predicted = int(model.classifier.bias.argmax())
        shutil.copyfile(graphs[1] if predicted == 1 else graphs[3], path)
        return path

    monkeypatch.setattr(export_command, "export_onnx", reuse)


def test_the_int8_graph_has_int8_weights_and_onnxruntime_runs_it_near_pytorch(graphs, tokenizer):
    model, float_path, int8_path, _ = graphs
    graph = onnx.load(str(int8_path))
    assert "MatMulInteger" in {node.op_type for node in graph.graph.node}
    assert any(tensor.data_type == onnx.TensorProto.INT8 for tensor in graph.graph.initializer)
    assert int8_path.stat().st_size < float_path.stat().st_size / 2

    session = onnx_session(int8_path, threads=1)
    encoded = tokenizer(CHECK_TEXTS, padding=True, return_tensors="np")
    inputs = {node.name for node in session.get_inputs()}
    (logits,) = session.run(["logits"], {name: value for name, value in encoded.items() if name in inputs})
    assert logits.shape == (len(CHECK_TEXTS), 2) and logits.dtype == np.float32
    with torch.no_grad():
        expected = model(**tokenizer(CHECK_TEXTS, padding=True, return_tensors="pt")).logits.numpy()
    assert 0 < np.abs(logits - expected).max() < 0.05  # quantized: close to PyTorch, not equal


def test_compare_on_sample_measures_accuracy_agreement_and_speed_of_each_engine(graphs, tokenizer):
    model, float_path, int8_path, other_path = graphs
    sample = LabelledSample(TEXTS, LABELS, "four texts")
    threads = torch.get_num_threads()
    results = compare_on_sample(
        model, tokenizer, {"float": float_path, "int8": int8_path, "other": other_path}, sample, batch_size=3
    )
    assert torch.get_num_threads() == threads  # restored after the one-thread measurement
    assert list(results) == [PYTORCH, "float", "int8", "other"]
    for name in (PYTORCH, "float", "int8"):
        assert results[name].accuracy == 0.75 and results[name].agreement == 1.0
        assert results[name].predictions.tolist() == [1, 1, 1, 1]
    assert results["other"].accuracy == 0.25 and results["other"].agreement == 0.0
    for result in results.values():
        assert result.num_texts == 4 and result.sentences_per_s > 0 and result.cpu_sentences_per_s > 0

    unlabelled = compare_on_sample(model, tokenizer, {"other": other_path}, LabelledSample(TEXTS, None, "texts"))
    assert unlabelled["other"].accuracy is None and unlabelled["other"].agreement == 0.0


def test_class_ids_take_the_models_class_names_then_class_ids_and_refuse_other_labels(tokenizer):
    config = classifier(tokenizer, 1).config
    config.id2label, config.label2id = {0: "negative", 1: "positive"}, {"negative": 0, "positive": 1}
    assert class_ids(["positive", "negative", 1, "0"], config, "f.tsv") == [1, 0, 1, 0]
    with pytest.raises(BermoUsageError, match=r"f.tsv: label 'maybe' is neither a class of the model \(negative"):
        class_ids(["positive", "maybe"], config, "f.tsv")
    with pytest.raises(BermoUsageError, match="label 2 is neither"):
        class_ids([2], config, "f.tsv")


def test_the_built_in_check_texts_are_the_shipped_sentences_without_labels():
    sample = built_in_sample()
    assert len(sample) == 296 and sample.labels is None and all(sample.texts)


def test_the_verdict_says_how_far_the_int8_accuracy_is_from_pytorchs_either_way():
    from bermo_hf.commands.export import FLOAT, INT8, check_int8
    from bermo_hf.onnx_quantization import EngineResult

    def results(*accuracies):
        return {
            name: EngineResult(name, np.zeros(4), accuracy, 1.0, 1.0, 1.0, 1000)
            for name, accuracy in zip((PYTORCH, FLOAT, INT8), accuracies, strict=True)
        }

    sample = LabelledSample(["a"] * 1000, [0] * 1000, "dev.tsv")
    verdict = check_int8(results(0.8, 0.8, 0.805), sample, 1.0)
    assert verdict == "its accuracy is 0.50 points above PyTorch's (--max_accuracy_drop 1)."
    assert check_int8(results(0.8, 0.8, 0.791), sample, 1.0).startswith("its accuracy is 0.90 points below")
    with pytest.raises(BermoUsageError, match=r"is 78.90 % against PyTorch's 80.00 %, a drop of 1.10 points, more"):
        check_int8(results(0.8, 0.8, 0.789), sample, 1.0)


def _checkpoint(model, tokenizer, tmp_path):
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    return str(tmp_path / "ckpt")


def _check_file(tmp_path, labels=LABELS, name="check.tsv"):
    rows = ["sentence\tlabel", *(f"{text}\t{label}" for text, label in zip(TEXTS, labels, strict=True))]
    (tmp_path / name).write_text("\n".join(rows) + "\n")
    return str(tmp_path / name)


def test_bermo_export_quantize_writes_both_graphs_and_prints_accuracy_and_speed(
    graphs_reused, tokenizer, tmp_path, capsys
):
    checkpoint = _checkpoint(classifier(tokenizer, 1), tokenizer, tmp_path)
    out = tmp_path / "out"
    argv = ["export", checkpoint, str(out), "--onnx", "--quantize", "int8", "--check_data", _check_file(tmp_path)]
    assert bermo(argv) == 0
    printed = capsys.readouterr().out.splitlines()
    assert {"model.onnx", QUANTIZED_ONNX_FILENAME, "config.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    assert not (out / ".bermo-partial").exists()
    assert printed[1].startswith(f"check on {tmp_path / 'check.tsv'} (4 labelled texts; 1 thread(s), batches of 32")
    rows = {line[:12].strip(): line[12:].split() for line in printed[3:6]}
    assert list(rows) == ["PyTorch", "ONNX float", "ONNX int8"]
    assert rows["PyTorch"][:3] == ["75.00", "%", "-"] and float(rows["PyTorch"][3]) > 0
    for name in ("ONNX float", "ONNX int8"):
        accuracy, _, agreement, _, speed, size = rows[name]
        assert (accuracy, agreement) == ("75.00", "100.00") and float(speed) > 0 and float(size) > 0
    assert float(rows["ONNX int8"][5]) < float(rows["ONNX float"][5]) / 2
    assert printed[6] == (
        f"int8 graph written to {out / QUANTIZED_ONNX_FILENAME}; its accuracy is 0.00 points below PyTorch's "
        "(--max_accuracy_drop 1)."
    )

    session = onnx_session(out / QUANTIZED_ONNX_FILENAME)
    encoded = tokenizer(TEXTS, padding=True, return_tensors="np")
    inputs = {node.name for node in session.get_inputs()}
    (logits,) = session.run(["logits"], {name: value for name, value in encoded.items() if name in inputs})
    assert logits.shape == (4, 2) and logits.argmax(axis=-1).tolist() == [1, 1, 1, 1]


def test_bermo_export_quantize_without_check_data_compares_labels_only_and_says_so(
    graphs_reused, tokenizer, tmp_path, capsys
):
    checkpoint = _checkpoint(classifier(tokenizer, 0), tokenizer, tmp_path)
    assert bermo(["export", checkpoint, str(tmp_path / "out"), "--onnx", "--quantize", "int8"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].startswith("check on the built-in check texts (296 texts without labels;")
    assert printed[3].split()[:2] == ["PyTorch", "-"] and printed[5].split()[:5] == ["ONNX", "int8", "-", "100.00", "%"]
    assert printed[6].endswith(
        "its labels differ from PyTorch's on 0 of 296 texts (0.00 %, --max_accuracy_drop 1); no accuracy was "
        "measured: pass --check_data FILE (labelled texts) to measure it."
    )
    assert (tmp_path / "out" / QUANTIZED_ONNX_FILENAME).is_file()


def _error_line(stderr: str) -> str:
    """The one error line of a failed command; what else is on stderr are transformers' progress bars (loading)."""
    lines = [line for line in stderr.strip().splitlines() if line.startswith("bermo export: ")]
    assert len(lines) == 1 and stderr.strip().endswith(lines[0]), stderr
    return lines[0]


def _user_folder(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return out


def test_an_accuracy_drop_above_the_limit_fails_in_one_line_and_writes_nothing(
    graphs_reused, tokenizer, tmp_path, capsys
):
    checkpoint = _checkpoint(classifier(tokenizer, 1), tokenizer, tmp_path)
    out = _user_folder(tmp_path)
    check = _check_file(tmp_path)
    argv = ["export", checkpoint, str(out), "--onnx", "--quantize", "int8", "--overwrite_output_dir"]
    assert bermo([*argv, "--check_data", check, "--max_accuracy_drop", "-0.5"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and _error_line(captured.err) == (
        f"bermo export: error: the int8 graph's accuracy on {check} is 75.00 % against PyTorch's 75.00 %, a drop of "
        "0.00 points, more than --max_accuracy_drop -0.5; nothing was written."
    )
    assert [path.name for path in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--check_data", "{tmp}/missing.tsv"], "{tmp}/missing.tsv: no such file."),
        (["--check_data", "{tmp}/check.txt"], "{tmp}/check.txt: unsupported extension '.txt'"),
        (["--check_data", "{tmp}/labels.tsv"], "{tmp}/labels.tsv: label 'maybe' is neither a class of the model"),
        (["--check_data", "{tmp}/check.tsv", "--text_column", "review"], "has no column 'review' (--text_column)"),
        (["--text_column", "review"], "--text_column applies to --check_data FILE only; add --check_data FILE."),
        (["--threads", "0"], "--threads and --max_check_samples must be positive."),
    ],
    ids=["missing-file", "extension", "unknown-label", "missing-column", "column-without-file", "threads"],
)
def test_bad_check_input_fails_in_one_line_before_the_export_and_leaves_out_untouched(
    extra, message, tokenizer, tmp_path, capsys, monkeypatch
):
    import bermo_hf.commands.export as export_command

    monkeypatch.setattr(export_command, "export_onnx", lambda *args: pytest.fail("exported despite bad input"))
    checkpoint = _checkpoint(classifier(tokenizer, 1), tokenizer, tmp_path)
    _check_file(tmp_path)
    _check_file(tmp_path, labels=[1, "maybe", 0, 0], name="labels.tsv")
    (tmp_path / "check.txt").write_text("sentence\tlabel\nfine .\t1\n")
    out = _user_folder(tmp_path)
    argv = ["export", checkpoint, str(out), "--onnx", "--quantize", "int8", "--overwrite_output_dir"]
    assert bermo([*argv, *(item.format(tmp=tmp_path) for item in extra)]) == 1
    assert message.format(tmp=tmp_path) in _error_line(capsys.readouterr().err)
    assert [path.name for path in out.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--quantize", "int8"], "--quantize int8 quantizes the ONNX graph: add --onnx."),
        (
            ["--onnx", "--check_data", "f.tsv", "--max_accuracy_drop", "2"],
            "--check_data, --max_accuracy_drop apply to --quantize int8 only; add --quantize int8.",
        ),
    ],
    ids=["quantize-without-onnx", "check-without-quantize"],
)
def test_options_that_do_not_go_together_fail_in_one_line(argv, message, tmp_path, capsys):
    assert bermo(["export", str(tmp_path / "ckpt"), str(tmp_path / "out"), *argv]) == 1
    assert capsys.readouterr().err.strip() == f"bermo export: error: {message}"
    assert not (tmp_path / "out").exists()


def test_quantize_refuses_a_head_other_than_a_sequence_classifier_in_one_line(tokenizer, tmp_path, capsys):
    checkpoint = _checkpoint(classifier(tokenizer, 1, BermoForQuestionAnswering), tokenizer, tmp_path)
    assert bermo(["export", checkpoint, str(tmp_path / "out"), "--onnx", "--quantize", "int8"]) == 1
    assert _error_line(capsys.readouterr().err) == (
        "bermo export: error: --quantize needs a sequence classifier (its int8 graph is checked on predicted labels); "
        "this checkpoint is a BermoForQuestionAnswering."
    )
    assert not (tmp_path / "out").exists()
