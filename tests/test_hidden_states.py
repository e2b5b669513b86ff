"""`hidden_states` are BERT's own per-depth outputs in every head, whatever the transformers release: the mix only
changes `last_hidden_state` and what the heads read from it.

transformers 5.0-5.17 tie the last entry of `hidden_states` to `last_hidden_state` (the mix, here); these tests fail
if that leaks. They run in the release matrix too (`test_transformers_releases.py`)."""

import pytest
import torch
from transformers import (
    BertForMultipleChoice,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
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

PAIRS = [
    (BertModel, BermoModel),
    (BertForSequenceClassification, BermoForSequenceClassification),
    (BertForTokenClassification, BermoForTokenClassification),
    (BertForQuestionAnswering, BermoForQuestionAnswering),
    (BertForMultipleChoice, BermoForMultipleChoice),
]
MIX_WEIGHTS = [0.3, -0.8, 1.1]
GAMMA = 1.7


def padded_batch(multiple_choice: bool) -> dict:
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(1, 100, (3, 7), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 4:] = 0
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    return {name: tensor.unsqueeze(0) for name, tensor in batch.items()} if multiple_choice else batch


def bermo_and_plain(bermo_class, bert_class):
    torch.manual_seed(0)
    bermo = bermo_class(BermoConfig(**tiny_config_kwargs(attn_implementation="eager"))).eval()
    with torch.no_grad():
        bermo.base_model.layer_mix.weights.copy_(torch.tensor(MIX_WEIGHTS))
        bermo.base_model.layer_mix.gamma.fill_(GAMMA)
    bert = bert_class(bermo.config).eval()
    unexpected = bert.load_state_dict(bermo.state_dict(), strict=False).unexpected_keys
    assert {key.rpartition("layer_mix.")[2] for key in unexpected} == {"weights", "gamma"}
    return bermo, bert


@pytest.mark.parametrize(("bert_class", "bermo_class"), PAIRS, ids=[pair[1].__name__ for pair in PAIRS])
def test_hidden_states_are_the_plain_models_in_every_head(bert_class, bermo_class):
    bermo, bert = bermo_and_plain(bermo_class, bert_class)
    batch = padded_batch(bermo_class is BermoForMultipleChoice)
    with torch.no_grad():
        expected = bert(**batch, output_hidden_states=True, output_attentions=True)
        actual = bermo(**batch, output_hidden_states=True, output_attentions=True)
    assert len(actual.hidden_states) == len(expected.hidden_states) == 3
    for depth, (ours, theirs) in enumerate(zip(actual.hidden_states, expected.hidden_states, strict=True)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=f"hidden_states[{depth}] differs")
    for ours, theirs in zip(actual.attentions, expected.attentions, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)


@pytest.mark.parametrize("return_dict", [True, False])
def test_last_hidden_state_is_the_mix_and_hidden_states_stay_berts(return_dict):
    bermo, bert = bermo_and_plain(BermoModel, BertModel)
    batch = padded_batch(multiple_choice=False)
    with torch.no_grad():
        depths = bert(**batch, output_hidden_states=True).hidden_states
        actual = bermo(**batch, output_hidden_states=True, return_dict=return_dict)
    # As a tuple: (last_hidden_state, pooler_output, hidden_states).
    last_hidden_state, hidden_states = (
        (actual[0], actual[2]) if not return_dict else (actual.last_hidden_state, actual.hidden_states)
    )
    shares = torch.softmax(torch.tensor(MIX_WEIGHTS), dim=0)
    reference = GAMMA * sum(share * depth for share, depth in zip(shares, depths, strict=True))
    torch.testing.assert_close(last_hidden_state, reference, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(hidden_states[-1], depths[-1], rtol=0, atol=1e-6)
    assert not torch.allclose(hidden_states[-1], last_hidden_state, atol=1e-3)
