"""BermoLayerMix on its own: the formula, initialization, layer dropout, layer norm, dtypes."""

import math

import pytest
import torch

from bermo_hf import BermoConfig, BermoLayerMix
from bermo_hf.modeling_bermo import LAST_DEPTH_INITIAL_SHARE

from .conftest import tiny_config_kwargs


def make_mix(**overrides) -> BermoLayerMix:
    return BermoLayerMix.from_config(BermoConfig(**tiny_config_kwargs(**overrides)))


def test_parameters_are_one_weight_per_depth_and_a_scalar_gamma():
    mix = make_mix(num_hidden_layers=3)
    assert dict(mix.named_parameters()).keys() == {"weights", "gamma"}
    assert mix.weights.shape == (4,) and mix.gamma.shape == ()
    assert make_mix(num_hidden_layers=3, include_embeddings=False).weights.shape == (3,)


def test_mix_is_gamma_times_softmax_weighted_sum():
    mix = make_mix(num_hidden_layers=2)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.3, -1.0, 2.0]))
        mix.gamma.fill_(1.7)
    states = [torch.randn(2, 5, 32) for _ in range(3)]
    expected = 1.7 * sum(s * h for s, h in zip(torch.softmax(mix.weights, 0), states, strict=True))
    torch.testing.assert_close(mix(states), expected)


def test_uniform_and_last_initializations():
    assert torch.equal(make_mix().weights, torch.zeros(3))
    last = make_mix(layer_mix_init="last", num_hidden_layers=4)
    shares = torch.softmax(last.weights, 0)
    assert math.isclose(shares[-1].item(), LAST_DEPTH_INITIAL_SHARE, rel_tol=1e-6)
    torch.testing.assert_close(shares[:-1], torch.full((4,), (1 - LAST_DEPTH_INITIAL_SHARE) / 4))
    assert last.gamma.item() == 1.0


def test_wrong_number_of_depths_is_an_error_naming_both_counts():
    mix = make_mix()
    with pytest.raises(ValueError, match="3 depths but received 2"):
        mix([torch.randn(1, 2, 32)] * 2)
    with pytest.raises(ValueError, match="3 depths and received one more"):
        mix([torch.randn(1, 2, 32)] * 4)


def test_softmax_is_float32_for_half_precision_parameters():
    mix = make_mix().to(torch.bfloat16)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.1, 0.2, 0.3]))
    assert mix.normalized_weights().dtype == torch.float32
    states = [torch.randn(2, 3, 32, dtype=torch.bfloat16) for _ in range(3)]
    assert mix(states).dtype == torch.bfloat16


def test_layer_dropout_drops_depths_in_training_but_never_all_and_not_in_eval():
    torch.manual_seed(0)
    mix = make_mix(num_hidden_layers=2, layer_mix_dropout=0.9).train()
    kept_counts = set()
    for _ in range(300):
        weights = mix.normalized_weights()
        assert torch.isclose(weights.sum(), torch.tensor(1.0))
        kept_counts.add(int((weights > 0).sum()))
    assert 1 in kept_counts and 0 not in kept_counts
    mix.eval()
    torch.testing.assert_close(mix.normalized_weights(), torch.full((3,), 1 / 3))


def test_layer_norm_normalizes_each_sequence_over_its_real_tokens():
    mix = make_mix(layer_mix_layer_norm=True)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    states = [torch.randn(2, 4, 32) * 5 + 3 for _ in range(3)]
    states[0][0, 3] = 1e6  # a padding position must not change the statistics
    mixed = mix(states, attention_mask=mask)
    padded_free = mix([s[:1, :3] for s in states], attention_mask=mask[:1, :3])
    torch.testing.assert_close(mixed[0, :3], padded_free[0])
    single = mix([s[1:] for s in states], attention_mask=mask[1:])
    torch.testing.assert_close(mixed[1], single[0])


def test_layer_norm_rejects_a_four_dimensional_mask():
    mix = make_mix(layer_mix_layer_norm=True)
    with pytest.raises(ValueError, match=r"\(batch, seq\) attention_mask"):
        mix([torch.randn(1, 2, 32)] * 3, attention_mask=torch.ones(1, 1, 2, 2))
