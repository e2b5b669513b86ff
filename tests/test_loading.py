"""Checkpoints: BERT into BERMo, BERMo into BERT, the mix's start after loading, size mismatches, Auto classes."""

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForMultipleChoice,
    AutoModelForQuestionAnswering,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    BertConfig,
    BertForSequenceClassification,
)

from bermo_hf import (
    BermoConfig,
    BermoForMultipleChoice,
    BermoForQuestionAnswering,
    BermoForSequenceClassification,
    BermoForTokenClassification,
    BermoModel,
)

from .conftest import tiny_config_kwargs

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


@pytest.fixture
def bert_checkpoint(tmp_path):
    """A tiny random plain BERT sequence classifier saved as a checkpoint (model_type "bert")."""
    torch.manual_seed(0)
    path = tmp_path / "bert"
    BertForSequenceClassification(BertConfig(**tiny_config_kwargs())).save_pretrained(path)
    return path


@pytest.fixture
def bermo_checkpoint(tmp_path):
    """A tiny BERMo sequence classifier with a non-default mix, saved."""
    torch.manual_seed(0)
    model = BermoForSequenceClassification(BermoConfig(**tiny_config_kwargs(), num_labels=3))
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.tensor([0.5, -0.25, 1.5]))
        model.bert.layer_mix.gamma.fill_(0.75)
    path = tmp_path / "bermo"
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("init", ["uniform", "last"])
def test_mix_starts_as_documented_after_loading_bert(bert_checkpoint, dtype, init):
    model = BermoForSequenceClassification.from_pretrained(bert_checkpoint, dtype=dtype, layer_mix_init=init)
    mix = model.bert.layer_mix
    assert mix.weights.dtype == dtype
    torch.testing.assert_close(mix.weights.float(), mix.initial_weights().to(dtype).float(), rtol=0, atol=0)
    assert mix.gamma.item() == 1.0


def test_every_bert_weight_loads_and_only_mix_and_head_are_new(bert_checkpoint):
    bert = BertForSequenceClassification.from_pretrained(bert_checkpoint)
    bermo, info = BermoForSequenceClassification.from_pretrained(bert_checkpoint, output_loading_info=True)
    assert set(info["missing_keys"]) == {"bert.layer_mix.weights", "bert.layer_mix.gamma"}
    bermo_state = bermo.state_dict()
    for name, tensor in bert.state_dict().items():
        assert torch.equal(bermo_state[name], tensor), name  # pooler and classifier included


def test_bermo_checkpoint_is_bert_plus_two_tensors(bert_checkpoint, bermo_checkpoint):
    with safe_open(bermo_checkpoint / "model.safetensors", "pt") as bermo_file:
        bermo_keys = set(bermo_file.keys())
    with safe_open(bert_checkpoint / "model.safetensors", "pt") as bert_file:
        bert_keys = set(bert_file.keys())
    assert bermo_keys - bert_keys == {"bert.layer_mix.weights", "bert.layer_mix.gamma"}
    assert bert_keys <= bermo_keys


def test_saved_mix_survives_reloading(bermo_checkpoint):
    model = BermoForSequenceClassification.from_pretrained(bermo_checkpoint)
    torch.testing.assert_close(model.bert.layer_mix.weights, torch.tensor([0.5, -0.25, 1.5]))
    assert model.bert.layer_mix.gamma.item() == 0.75
    assert model.layer_weights()["gamma"] == 0.75
    assert sum(model.layer_weights()["weights"]) == pytest.approx(1.0)


def test_bermo_checkpoint_loads_into_plain_bert_ignoring_the_mix(bermo_checkpoint):
    bert, info = BertForSequenceClassification.from_pretrained(bermo_checkpoint, output_loading_info=True)
    assert set(info["unexpected_keys"]) == {"bert.layer_mix.weights", "bert.layer_mix.gamma"}
    assert not info["missing_keys"]
    bermo = BermoForSequenceClassification.from_pretrained(bermo_checkpoint).eval()
    with torch.no_grad():
        bermo.bert.layer_mix.weights.copy_(torch.tensor([-1e4, -1e4, 0.0]))
        bermo.bert.layer_mix.gamma.fill_(1.0)
    input_ids = torch.randint(0, 100, (2, 6))
    torch.testing.assert_close(bert.eval()(input_ids).logits, bermo(input_ids).logits, rtol=0, atol=1e-6)


def test_mix_size_mismatch_names_both_sizes_instead_of_reinitializing(bermo_checkpoint):
    with pytest.raises(ValueError, match=r"has 3 depths, but the configuration asks for 2") as error:
        BermoForSequenceClassification.from_pretrained(bermo_checkpoint, include_embeddings=False)
    assert "include_embeddings=False" in str(error.value)
    config = BermoConfig.from_pretrained(bermo_checkpoint, num_hidden_layers=1)
    with pytest.raises(ValueError, match=r"has 3 depths, but the configuration asks for 2"):
        BermoForSequenceClassification.from_pretrained(bermo_checkpoint, config=config, ignore_mismatched_sizes=True)


def test_loading_reads_the_configuration_as_often_as_the_family_class_does(bermo_checkpoint, config_reads):
    BertForSequenceClassification.from_pretrained(bermo_checkpoint)
    plain_reads = len(config_reads)
    config_reads.clear()
    BermoForSequenceClassification.from_pretrained(bermo_checkpoint)
    assert plain_reads == len(config_reads) == 1
    config_reads.clear()
    BermoForSequenceClassification.from_pretrained(
        bermo_checkpoint, config=BermoConfig.from_pretrained(bermo_checkpoint)
    )
    assert len(config_reads) == 1


def test_saved_folder_is_hub_ready(bermo_checkpoint):
    config = json.loads((bermo_checkpoint / "config.json").read_text())
    assert config["model_type"] == "bermo"
    assert config["auto_map"] == {
        "AutoConfig": "configuration_bermo.BermoConfig",
        "AutoModel": "modeling_bermo.BermoModel",
        "AutoModelForSequenceClassification": "modeling_bermo.BermoForSequenceClassification",
        "AutoModelForMultipleChoice": "modeling_bermo.BermoForMultipleChoice",
        "AutoModelForTokenClassification": "modeling_bermo.BermoForTokenClassification",
        "AutoModelForQuestionAnswering": "modeling_bermo.BermoForQuestionAnswering",
    }
    assert (bermo_checkpoint / "configuration_bermo.py").is_file()
    assert (bermo_checkpoint / "modeling_bermo.py").is_file()


@pytest.mark.parametrize(
    ("auto_class", "bermo_class"),
    [
        (AutoModel, BermoModel),
        (AutoModelForSequenceClassification, BermoForSequenceClassification),
        (AutoModelForTokenClassification, BermoForTokenClassification),
        (AutoModelForQuestionAnswering, BermoForQuestionAnswering),
        (AutoModelForMultipleChoice, BermoForMultipleChoice),
    ],
)
def test_auto_classes_build_bermo_models(tmp_path, auto_class, bermo_class):
    BermoModel(BermoConfig(**tiny_config_kwargs())).save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), BermoConfig)
    assert type(auto_class.from_pretrained(tmp_path)) is bermo_class
    assert type(auto_class.from_config(BermoConfig(**tiny_config_kwargs()))) is bermo_class


FIXTURE_0_1 = Path(__file__).with_name("fixtures") / "bermo-0.1"


@pytest.mark.parametrize(
    ("task", "auto_class"),
    [
        ("sequence-classification", AutoModelForSequenceClassification),
        ("token-classification", AutoModelForTokenClassification),
    ],
)
def test_a_folder_saved_by_bermo_0_1_loads_to_identical_outputs(task, auto_class):
    """Folders saved by bermo-hf 0.1 (committed in tests/fixtures, with the outputs 0.1 gave) load through the package
    into today's classes, with every output as it was."""
    expected = json.loads((FIXTURE_0_1 / "expected.json").read_text())
    model, info = auto_class.from_pretrained(FIXTURE_0_1 / task, output_loading_info=True)
    assert not any(info.values()), info
    assert type(model).__module__ == "bermo_hf.modeling_bermo"
    inputs = {name: torch.tensor(expected[name]) for name in ("input_ids", "attention_mask")}
    with torch.no_grad():
        outputs = model.eval()(**inputs, output_hidden_states=True)
    torch.testing.assert_close(outputs.logits, torch.tensor(expected["outputs"][task]["logits"]), rtol=0, atol=1e-6)
    for ours, theirs in zip(outputs.hidden_states, expected["outputs"][task]["hidden_states"], strict=True):
        torch.testing.assert_close(ours, torch.tensor(theirs), rtol=0, atol=1e-6)


def test_joining_mpnet_parts_writes_only_its_folder_and_keeps_the_users_files(tmp_path, monkeypatch):
    """`mpnet_base_path` joins the parts in a staging folder and moves only its own folder into the cache: a user's
    file there stays, no joined zip is left behind, and a second call reads the cache."""
    import io
    import zipfile

    from bermo_hf import pretrained

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("all-mpnet-base-v2/config.json", "{}")
        zipped.writestr("all-mpnet-base-v2/model.safetensors", "weights")
    data, parts = archive.getvalue(), []
    for index in range(5):
        part = tmp_path / "parts" / f"part{index}"
        part.parent.mkdir(exist_ok=True)
        part.write_bytes(data[index * len(data) // 5 : (index + 1) * len(data) // 5])
        parts.append(part)
    monkeypatch.setattr(pretrained, "_mpnet_part", lambda package, index: parts[index - 1])
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("mine")
    folder = pretrained.mpnet_base_path(cache)
    assert folder == cache / "all-mpnet-base-v2" and (folder / "model.safetensors").read_text() == "weights"
    assert sorted(path.name for path in cache.iterdir()) == ["all-mpnet-base-v2", "notes.txt"]
    assert (cache / "notes.txt").read_text() == "mine"
    monkeypatch.setattr(pretrained, "_mpnet_part", lambda package, index: pytest.fail("the cache was not used"))
    assert pretrained.mpnet_base_path(cache) == folder
