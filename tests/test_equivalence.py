"""With the mix set to the last depth (weights [-1e4, ..., -1e4, 0], gamma 1), BERMo is BERT.

Checked on the real pretrained checkpoint against transformers' own BERT classes, for every head BERT also has."""

import pytest
import torch
from transformers import (
    AutoTokenizer,
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

from bermo_hf import (
    BermoForMultipleChoice,
    BermoForQuestionAnswering,
    BermoForSequenceClassification,
    BermoForTokenClassification,
    BermoModel,
)

SENTENCES = ["a gripping , beautifully acted film .", "the plot is thin and the jokes fall flat", "fine ."]

PAIRS = [
    (BertModel, BermoModel, ("last_hidden_state", "pooler_output")),
    (BertForSequenceClassification, BermoForSequenceClassification, ("logits",)),
    (BertForTokenClassification, BermoForTokenClassification, ("logits",)),
    (BertForQuestionAnswering, BermoForQuestionAnswering, ("start_logits", "end_logits")),
    (BertForMultipleChoice, BermoForMultipleChoice, ("logits",)),
]


def set_mix_to_last_depth(model) -> None:
    mix = model.base_model.layer_mix
    with torch.no_grad():
        mix.weights.fill_(-1e4)
        mix.weights[-1] = 0.0
        mix.gamma.fill_(1.0)


@pytest.fixture(scope="module")
def inputs(minilm_path):
    tokenizer = AutoTokenizer.from_pretrained(minilm_path)
    return dict(tokenizer(SENTENCES, padding=True, return_tensors="pt"))


@pytest.mark.parametrize(("bert_class", "bermo_class", "fields"), PAIRS, ids=[p[1].__name__ for p in PAIRS])
def test_last_depth_mix_equals_bert(minilm_path, inputs, bert_class, bermo_class, fields):
    torch.manual_seed(0)
    num_labels = 2 if bert_class is BertForQuestionAnswering else 3  # span start and end
    bert = bert_class.from_pretrained(minilm_path, num_labels=num_labels).eval()
    bermo = bermo_class.from_pretrained(minilm_path, num_labels=num_labels).eval()
    missing = bermo.load_state_dict(bert.state_dict(), strict=False).missing_keys
    assert {key.removeprefix("bert.") for key in missing} == {"layer_mix.gamma", "layer_mix.weights"}
    set_mix_to_last_depth(bermo)
    if bermo_class is BermoForMultipleChoice:
        batch = {name: tensor.unsqueeze(0) for name, tensor in inputs.items()}  # one question, three choices
    else:
        batch = inputs
    with torch.no_grad():
        expected, actual = bert(**batch), bermo(**batch)
    for field in fields:
        torch.testing.assert_close(getattr(actual, field), getattr(expected, field), rtol=0, atol=1e-5)


def test_hidden_states_and_attentions_are_berts(minilm_path, inputs):
    bert = BertModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    bermo = BermoModel.from_pretrained(minilm_path, attn_implementation="eager").eval()
    with torch.no_grad():
        expected = bert(**inputs, output_hidden_states=True, output_attentions=True)
        actual = bermo(**inputs, output_hidden_states=True, output_attentions=True)
    assert len(actual.hidden_states) == 7 and len(actual.attentions) == 6
    for ours, theirs in zip(
        actual.hidden_states + actual.attentions, expected.hidden_states + expected.attentions, strict=True
    ):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


def test_uniform_mix_is_the_mean_of_berts_depths(minilm_path, inputs):
    bert = BertModel.from_pretrained(minilm_path).eval()
    bermo = BermoModel.from_pretrained(minilm_path).eval()
    with torch.no_grad():
        depths = bert(**inputs, output_hidden_states=True).hidden_states
        mixed = bermo(**inputs)
        first_token = bermo(**inputs, mix_first_token_only=True)
    expected = torch.stack(depths).mean(0)
    torch.testing.assert_close(mixed.last_hidden_state, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(mixed.pooler_output, bert.pooler(expected), rtol=1e-5, atol=1e-5)
    assert first_token.last_hidden_state.shape[1] == 1
    torch.testing.assert_close(first_token.last_hidden_state[:, 0], expected[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(first_token.pooler_output, mixed.pooler_output, rtol=1e-5, atol=1e-5)
