"""Compiled and exported graphs give the eager model's numbers: `torch.compile(fullgraph=True)`, `torch.export`,
ONNX through onnxruntime (package classes, remote code, and the `bermo export` command)."""

import textwrap

import pytest
import torch
from transformers import AutoTokenizer

from bermo_hf import BermoConfig, BermoForQuestionAnswering, BermoForSequenceClassification, BermoModel
from bermo_hf.cli import main as bermo
from bermo_hf.onnx_export import export_onnx, largest_onnx_difference

from .conftest import result_of_fresh_process, tiny_config_kwargs


def tiny_model(model_class=BermoForSequenceClassification, **overrides):
    torch.manual_seed(0)
    # Two labels: what the question-answering head needs (start and end), and a binary classifier.
    model = model_class(BermoConfig(**tiny_config_kwargs(num_labels=2, **overrides)))
    with torch.no_grad():
        model.base_model.layer_mix.weights.copy_(torch.tensor([0.2, -0.4, 0.7]))
        model.base_model.layer_mix.gamma.fill_(1.2)
    return model.eval()


def padded_batch(size=4, length=9, seed=1):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, 100, (size, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, length - 3 :] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def test_compile_with_fullgraph_has_no_graph_break_and_equal_logits():
    model = tiny_model()
    compiled = torch.compile(model, fullgraph=True)  # a graph break would raise
    with torch.no_grad():
        for batch in (padded_batch(), padded_batch(size=2, length=6, seed=2)):
            torch.testing.assert_close(compiled(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("model_class", [BermoForSequenceClassification, BermoForQuestionAnswering, BermoModel])
def test_torch_export_gives_the_eager_outputs(model_class):
    model = tiny_model(model_class)
    program = torch.export.export(model, (), padded_batch())
    with torch.no_grad():
        expected = model(**padded_batch())
    exported = program.module()(**padded_batch())
    for name, value in expected.items():
        torch.testing.assert_close(exported[name], value, rtol=1e-6, atol=1e-6, msg=name)


@pytest.fixture(scope="module")
def minilm_tokenizer(minilm_path):
    return AutoTokenizer.from_pretrained(minilm_path)


@pytest.fixture
def vocab_sized_model(minilm_tokenizer):
    """A tiny random model whose vocabulary fits the real tokenizer's ids."""
    return tiny_model(vocab_size=minilm_tokenizer.vocab_size, max_position_embeddings=128)


@pytest.mark.parametrize("model_class", [BermoForSequenceClassification, BermoForQuestionAnswering])
def test_onnx_graph_matches_pytorch_on_a_padded_batch_of_another_shape(model_class, minilm_tokenizer, tmp_path):
    model = tiny_model(model_class, vocab_size=minilm_tokenizer.vocab_size, max_position_embeddings=128)
    path = export_onnx(model, minilm_tokenizer, tmp_path / "model.onnx")
    # The check batch differs in size and length from the traced one: the axes are dynamic.
    assert largest_onnx_difference(model, minilm_tokenizer, path) <= 1e-4


REMOTE_ONNX = textwrap.dedent(
    """
    import json, sys
    sys.modules["bermo_hf"] = None  # only the folder's own code may run
    import numpy, onnxruntime, torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    folder, onnx_path = sys.argv[1], sys.argv[2]
    model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    traced = dict(tokenizer(["an honest , moving story .", "not worth it ."], padding=True, return_tensors="pt"))
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    torch.onnx.export(
        model, (), onnx_path, kwargs=traced, dynamo=True, input_names=list(traced), output_names=["logits"],
        dynamic_shapes={name: {0: batch, 1: sequence} for name in traced},
    )
    texts = ["a gripping , beautifully acted film .", "the plot is thin and the jokes fall flat .", "fine ."]
    checked = dict(tokenizer(texts, padding=True, return_tensors="pt"))
    (onnx_logits,) = onnxruntime.InferenceSession(onnx_path).run(None, {k: v.numpy() for k, v in checked.items()})
    with torch.no_grad():
        logits = model(**checked).logits
    print("RESULT", json.dumps({
        "module": type(model).__module__,
        "difference": float(numpy.abs(onnx_logits - logits.numpy()).max()),
    }))
    """
)


def test_a_remote_code_model_exports_to_onnx_matching_pytorch(vocab_sized_model, minilm_tokenizer, tmp_path):
    vocab_sized_model.save_pretrained(tmp_path / "saved")
    minilm_tokenizer.save_pretrained(tmp_path / "saved")
    argv = ["-c", REMOTE_ONNX, str(tmp_path / "saved"), str(tmp_path / "model.onnx")]
    measured = result_of_fresh_process(argv, tmp_path)
    assert measured["module"].startswith("transformers_modules.")
    assert measured["difference"] <= 1e-4


def test_bermo_export_writes_onnx_beside_config_and_tokenizer_and_prints_the_difference(
    vocab_sized_model, minilm_tokenizer, tmp_path, capsys
):
    vocab_sized_model.save_pretrained(tmp_path / "ckpt")
    minilm_tokenizer.save_pretrained(tmp_path / "ckpt")
    assert bermo(["export", str(tmp_path / "ckpt"), str(tmp_path / "out"), "--onnx"]) == 0
    printed = capsys.readouterr().out
    assert "largest difference from PyTorch" in printed
    difference = float(printed.split("check batch: ")[1].split()[0])
    assert 0 <= difference <= 1e-4
    assert {"model.onnx", "config.json", "tokenizer.json"} <= {path.name for path in (tmp_path / "out").iterdir()}
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".out.")]  # no staging folder left


def _checkpoint_and_a_user_folder(model, tokenizer, tmp_path):
    """Saves `model` and `tokenizer` to tmp_path/ckpt; returns tmp_path/out, holding only the user's notes.txt."""
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    return out


def test_bermo_export_refuses_a_non_empty_folder_and_with_the_flag_keeps_other_files(
    vocab_sized_model, minilm_tokenizer, tmp_path, capsys
):
    out = _checkpoint_and_a_user_folder(vocab_sized_model, minilm_tokenizer, tmp_path)
    capsys.readouterr()
    assert bermo(["export", str(tmp_path / "ckpt"), str(out), "--onnx"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and str(out) in error and "--overwrite_output_dir" in error
    assert [path.name for path in out.iterdir()] == ["notes.txt"]
    assert bermo(["export", str(tmp_path / "ckpt"), str(out), "--onnx", "--overwrite_output_dir"]) == 0
    assert (out / "notes.txt").read_text() == "mine" and (out / "model.onnx").is_file()


def test_bermo_export_refuses_a_plain_bert_checkpoint_in_one_line(minilm_path, tmp_path, capsys):
    assert bermo(["export", minilm_path, str(tmp_path / "out"), "--onnx"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "'bert' checkpoint" in error
    assert not (tmp_path / "out").exists()


def test_a_failed_export_leaves_the_folder_as_it_was(
    vocab_sized_model, minilm_tokenizer, tmp_path, monkeypatch, capsys
):
    """The check fails after the graph was written to the staging folder: nothing reaches OUT, the user's files stay,
    and an OUT the command created is removed again."""
    import bermo_hf.commands.export as export_command

    monkeypatch.setattr(export_command, "largest_onnx_difference", lambda *args, **kwargs: 1.0)
    out = _checkpoint_and_a_user_folder(vocab_sized_model, minilm_tokenizer, tmp_path)
    capsys.readouterr()
    assert bermo(["export", str(tmp_path / "ckpt"), str(out), "--onnx", "--overwrite_output_dir"]) == 1
    assert "differs from PyTorch by 1" in capsys.readouterr().err
    assert [path.name for path in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    assert bermo(["export", str(tmp_path / "ckpt"), str(tmp_path / "new"), "--onnx"]) == 1
    assert not (tmp_path / "new").exists()
