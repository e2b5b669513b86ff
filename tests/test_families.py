"""Every family x head: the family's own head reads the mix, checked against the plain family model.

For each BERMo class, on a tiny random configuration with a non-uniform mix and a padded batch:
- logits equal the plain family head applied to `gamma * sum_j softmax(w)_j D_j`, with the depths `D_j` taken from a
  plain copy of the model and the reference mix put by hand where the family's head reads the last layer;
- `hidden_states` equal the plain model's, entry for entry (never the mix);
- with the whole mix on the last depth, every output equals the plain model's;
- the mix gets gradients.
These tests run under every transformers release of the matrix (`test_transformers_releases.py`)."""

import pytest
import torch
from transformers import AutoConfig

import bermo_hf
from bermo_hf.modeling_bermo import family_model_class

from .families import TINY_FAMILIES

MIX_WEIGHTS = [0.3, -0.8, 1.1, 0.4]
GAMMA = 1.7
CASES = [
    pytest.param(family, model_class, id=f"{family.id}-{bermo_hf.task_of(model_class.__name__).name}")
    for family in TINY_FAMILIES
    for model_class in bermo_hf.family_of(family.model_type).models
]


def tiny_config(family, model_class, plain: bool = False, **overrides):
    """The family's tiny configuration for `model_class`: BERMo's, or with `plain` the family's own."""
    num_labels = 2 if model_class.__name__.endswith("ForQuestionAnswering") else 3  # QA: span start and end
    settings = dict(family.settings, attn_implementation="eager", num_labels=num_labels, **overrides)
    model_type = bermo_hf.family_of(family.model_type).model_type if plain else family.model_type
    return AutoConfig.for_model(model_type, **settings)


def padded_batch(family, multiple_choice: bool, seed: int = 3) -> dict:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 100, (3, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 5:] = 0
    input_ids[1, 5:] = 0 if family.settings.get("pad_token_id", 0) == 0 else family.settings["pad_token_id"]
    batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if family.token_types:
        batch["token_type_ids"] = torch.zeros_like(input_ids)
    return {name: tensor.unsqueeze(0) for name, tensor in batch.items()} if multiple_choice else batch


def is_multiple_choice(model_class) -> bool:
    return model_class.__name__.endswith("ForMultipleChoice")


def bermo_and_plain(family, model_class, weights=MIX_WEIGHTS, gamma=GAMMA):
    torch.manual_seed(0)
    bermo = model_class(tiny_config(family, model_class)).eval()
    with torch.no_grad():
        bermo.base_model.layer_mix.weights.copy_(torch.tensor(weights))
        bermo.base_model.layer_mix.gamma.fill_(gamma)
    plain = family_model_class(model_class)(bermo.config).eval()
    result = plain.load_state_dict(bermo.state_dict(), strict=False)
    assert not result.missing_keys
    assert sorted(key.rpartition("layer_mix.")[2] for key in result.unexpected_keys) == ["gamma", "weights"]
    return bermo, plain


def fails_as_the_plain_model_does(bermo, plain, batch) -> bool:
    """Whether the plain model itself fails on `batch` under this transformers release (XLM-R and CamemBERT multiple
    choice before 5.13 build no pooler and crash upstream); then BERMo must fail the same way, never answer."""
    try:
        with torch.no_grad():
            plain(**batch)
    except Exception as error:  # noqa: BLE001 - whatever the upstream failure is, BERMo must raise it too
        with pytest.raises(type(error)), torch.no_grad():
            bermo(**batch)
        return True
    return False


def output_fields(outputs) -> dict:
    return {name: value for name, value in outputs.items() if isinstance(value, torch.Tensor)}


def reference_mix(plain, batch: dict, family) -> torch.Tensor:
    """`gamma * sum_j softmax(w)_j D_j` from the plain model's own depths (for a pre-norm family, the raw last layer
    that enters its final norm, not the normalized one)."""
    base = plain.base_model
    inputs = {name: tensor.flatten(0, 1) if tensor.dim() == 3 else tensor for name, tensor in batch.items()}
    raw_last = []
    handle = None
    if family.mix_enters_input:
        handle = base.get_submodule(family.mix_point).register_forward_pre_hook(
            lambda module, args: raw_last.append(args[0])
        )
    with torch.no_grad():
        depths = list(base(**inputs, output_hidden_states=True).hidden_states)
    if handle is not None:
        handle.remove()
        depths[-1] = raw_last[0]
    shares = torch.softmax(torch.tensor(MIX_WEIGHTS), dim=0)
    assert len(depths) == len(shares)
    return GAMMA * sum(share * depth for share, depth in zip(shares, depths, strict=True))


def run_plain_on_mix(plain, batch: dict, family, mixed: torch.Tensor):
    """The plain model, with `mixed` put by hand where the family's head reads the last layer's sequence."""
    point = plain.base_model.get_submodule(family.mix_point)
    if family.mix_enters_input:
        handle = point.register_forward_pre_hook(lambda module, args: (mixed, *args[1:]))
    else:

        def substitute(module, args, output):
            if isinstance(output, tuple):
                rest = list(output[1:])
                if family.reads_hidden_states:
                    rest[0] = tuple(rest[0][:-1]) + (mixed,)
                return (mixed, *rest)
            output.last_hidden_state = mixed
            if family.reads_hidden_states:
                output.hidden_states = tuple(output.hidden_states[:-1]) + (mixed,)
            return output

        handle = point.register_forward_hook(substitute)
    try:
        with torch.no_grad():
            return plain(**batch)
    finally:
        handle.remove()


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_the_family_head_reads_the_reference_mix(family, model_class):
    bermo, plain = bermo_and_plain(family, model_class)
    batch = padded_batch(family, is_multiple_choice(model_class))
    if fails_as_the_plain_model_does(bermo, plain, batch):
        return
    expected = run_plain_on_mix(plain, batch, family, reference_mix(plain, batch, family))
    with torch.no_grad():
        actual = bermo(**batch)
    expected_fields = output_fields(expected)
    assert set(output_fields(actual)) == set(expected_fields)
    for name, value in expected_fields.items():
        torch.testing.assert_close(output_fields(actual)[name], value, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_hidden_states_are_the_plain_models(family, model_class):
    bermo, plain = bermo_and_plain(family, model_class)
    batch = padded_batch(family, is_multiple_choice(model_class))
    if fails_as_the_plain_model_does(bermo, plain, batch):
        return
    with torch.no_grad():
        expected = plain(**batch, output_hidden_states=True)
        actual = bermo(**batch, output_hidden_states=True)
    assert len(actual.hidden_states) == len(expected.hidden_states) == bermo.config.num_hidden_layers + 1
    for depth, (ours, theirs) in enumerate(zip(actual.hidden_states, expected.hidden_states, strict=True)):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6, msg=f"hidden_states[{depth}]")


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_the_mix_on_the_last_depth_is_the_plain_model(family, model_class):
    bermo, plain = bermo_and_plain(family, model_class, weights=[-1e4, -1e4, -1e4, 0.0], gamma=1.0)
    batch = padded_batch(family, is_multiple_choice(model_class))
    if fails_as_the_plain_model_does(bermo, plain, batch):
        return
    with torch.no_grad():
        expected = output_fields(plain(**batch, output_hidden_states=True))
        actual = output_fields(bermo(**batch, output_hidden_states=True))
    assert set(actual) == set(expected)
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_the_mix_gets_gradients(family, model_class):
    bermo, plain = bermo_and_plain(family, model_class)
    batch = padded_batch(family, is_multiple_choice(model_class))
    if fails_as_the_plain_model_does(bermo, plain, batch):
        return
    outputs = bermo.train()(**batch)
    first = next(value for value in output_fields(outputs).values())
    first.float().pow(2).mean().backward()
    mix = bermo.base_model.layer_mix
    assert mix.weights.grad is not None and mix.weights.grad.abs().min() > 0
    assert mix.gamma.grad is not None and mix.gamma.grad.abs() > 0


@pytest.mark.parametrize(("family", "model_class"), CASES)
def test_checkpoints_go_both_ways(family, model_class, tmp_path):
    """A BERMo checkpoint reloads to identical outputs, and loads into the plain family class with the mix reported
    unexpected and nothing missing; the plain model then reads the last layer."""
    bermo, plain = bermo_and_plain(family, model_class)
    batch = padded_batch(family, is_multiple_choice(model_class))
    if fails_as_the_plain_model_does(bermo, plain, batch):
        return
    bermo.save_pretrained(tmp_path)
    reloaded = model_class.from_pretrained(tmp_path, attn_implementation="eager").eval()
    as_plain, info = family_model_class(model_class).from_pretrained(
        tmp_path, attn_implementation="eager", output_loading_info=True
    )
    is_base_model = bermo_hf.task_of(model_class.__name__).name == "feature-extraction"
    prefix = "" if is_base_model else f"{model_class.base_model_prefix}."
    expected_unexpected = {f"{prefix}layer_mix.weights", f"{prefix}layer_mix.gamma"}
    assert set(info["unexpected_keys"]) == expected_unexpected and not info["missing_keys"], info
    with torch.no_grad():
        expected, actual = output_fields(bermo(**batch)), output_fields(reloaded(**batch))
        plain_expected, plain_actual = output_fields(plain(**batch)), output_fields(as_plain.eval()(**batch))
    for name, value in expected.items():
        torch.testing.assert_close(actual[name], value, rtol=0, atol=1e-6, msg=name)
    for name, value in plain_expected.items():
        torch.testing.assert_close(plain_actual[name], value, rtol=0, atol=1e-6, msg=name)


def test_an_unsupported_model_type_gets_one_line_naming_the_supported_families(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=32, n_head=4, vocab_size=100).save_pretrained(tmp_path)
    with pytest.raises(ValueError) as error:
        bermo_hf.AutoBermoModelForSequenceClassification.from_pretrained(tmp_path)
    message = str(error.value)
    assert "\n" not in message and "model type 'gpt2' is not supported by BERMo" in message
    assert all(family.name in message for family in bermo_hf.BERMO_FAMILIES)


@pytest.mark.parametrize("family", TINY_FAMILIES, ids=lambda family: family.id)
def test_the_auto_entry_points_build_the_familys_bermo_classes(family, tmp_path):
    plain_config = tiny_config(family, bermo_hf.BermoModel, plain=True)
    family_model_class(bermo_hf.family_of(family.model_type).models[0])(plain_config).save_pretrained(tmp_path)
    for auto in (bermo_hf.AutoBermoModel, bermo_hf.AutoBermoModelForSequenceClassification):
        model = auto.from_pretrained(tmp_path, layer_mix_init="last")
        assert type(model) is bermo_hf.family_of(family.model_type).model_class(auto.task)
        assert model.config.layer_mix_init == "last" and model.config.model_type == family.model_type
        fresh = auto.from_config(plain_config, include_embeddings=False)
        assert type(fresh) is type(model) and fresh.base_model.layer_mix.num_depths == 3
