"""BermoConfig: defaults, validation, and loading from BERT configurations."""

import json
import logging

import pytest
from transformers import AutoConfig, BertConfig

from bermo_hf import BermoConfig


def test_defaults_follow_the_paper():
    config = BermoConfig(num_hidden_layers=6)
    assert config.model_type == "bermo"
    assert config.include_embeddings is True
    assert config.layer_mix_init == "uniform"
    assert config.layer_mix_dropout == 0.0
    assert config.layer_mix_layer_norm is False
    assert config.num_mix_depths == 7
    assert BermoConfig(num_hidden_layers=6, include_embeddings=False).num_mix_depths == 6


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("include_embeddings", "yes", "bool"),
        ("layer_mix_layer_norm", 1, "bool"),
        ("layer_mix_init", "first", "'uniform', 'last'"),
        ("layer_mix_dropout", 1.0, "[0, 1)"),
        ("layer_mix_dropout", -0.1, "[0, 1)"),
        ("layer_mix_dropout", "0.1", "[0, 1)"),
    ],
)
def test_invalid_mix_settings_name_field_value_and_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError) as error:
        BermoConfig(**{field: value})
    message = str(error.value)
    assert field in message and repr(value) in message and allowed in message


def test_round_trip_through_json(tmp_path):
    config = BermoConfig(num_hidden_layers=3, include_embeddings=False, layer_mix_init="last", layer_mix_dropout=0.2)
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, BermoConfig)
    for field in ("num_hidden_layers", "include_embeddings", "layer_mix_init", "layer_mix_dropout"):
        assert getattr(loaded, field) == getattr(config, field)


def test_plain_bert_config_loads_without_model_type_warning(tmp_path, caplog):
    BertConfig(num_hidden_layers=3, hidden_size=48, num_attention_heads=4).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "bert"
    with caplog.at_level(logging.WARNING):
        config = BermoConfig.from_pretrained(tmp_path, layer_mix_init="last")
    assert not [record for record in caplog.records if "model of type" in record.getMessage()]
    assert (config.num_hidden_layers, config.hidden_size, config.layer_mix_init) == (3, 48, "last")
    assert config.num_mix_depths == 4


def test_from_bert_config_keeps_every_bert_setting():
    bert = BertConfig(num_hidden_layers=4, hidden_size=64, num_attention_heads=8, hidden_dropout_prob=0.3, num_labels=5)
    config = BermoConfig.from_bert_config(bert, include_embeddings=False, layer_mix_dropout=0.1)
    assert config.model_type == "bermo"
    for field in ("num_hidden_layers", "hidden_size", "num_attention_heads", "hidden_dropout_prob", "num_labels"):
        assert getattr(config, field) == getattr(bert, field)
    assert (config.include_embeddings, config.layer_mix_dropout) == (False, 0.1)
    with pytest.raises(ValueError, match="layer_mix_init"):
        BermoConfig.from_bert_config(bert, layer_mix_init="middle")
