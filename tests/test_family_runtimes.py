"""What holds for BERT holds for every family: threads sharing a model and calls nested in a call each get their own
result, gradient checkpointing gives the gradients of a plain pass (where the family supports it), bf16 stays close to
float32. On each family's sequence classifier (first-token mix) and token classifier (whole-sequence mix).

These tests run under every transformers release of the matrix (`test_transformers_releases.py`)."""

import pytest
import torch

import bermo_hf
from bermo_hf.modeling_bermo import family_model_class

from .concurrency_check import largest_difference_from_serial
from .families import TINY_FAMILIES
from .test_families import padded_batch, tiny_config

TASKS = ("sequence-classification", "token-classification")
CASES = [
    pytest.param(family, task, id=f"{family.id}-{task}")
    for family in TINY_FAMILIES
    if not family.id.endswith(("-mean", "-conv"))  # variants of a family, covered by test_families.py
    for task in TASKS
]
# Gradient checkpointing where the family supports it (transformers' own limit: ALBERT and MPNet do not, nor
# XLM-R-XL under 4.57).
CHECKPOINTING_CASES = [
    case
    for case in CASES
    if bermo_hf.family_of(case.values[0].model_type).model_class(case.values[1]).supports_gradient_checkpointing
]
NO_DROPOUT = {
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "classifier_dropout": 0.0,
    "seq_classif_dropout": 0.0,
    "embedding_dropout": 0.0,
    "mlp_dropout": 0.0,
}


def tiny_model(family, task, **overrides):
    model_class = bermo_hf.family_of(family.model_type).model_class(task)
    torch.manual_seed(0)
    model = model_class(tiny_config(family, model_class, **overrides))
    with torch.no_grad():
        model.base_model.layer_mix.weights.copy_(torch.tensor([0.3, -0.8, 1.1, 0.4]))
        model.base_model.layer_mix.gamma.fill_(1.7)
    return model


def labels_for(task: str) -> torch.Tensor:
    return torch.tensor([0, 2, 1]) if task == "sequence-classification" else torch.ones(3, 9, dtype=torch.long)


@pytest.mark.parametrize(("family", "task"), CASES)
def test_threads_sharing_a_model_get_the_serial_results(family, task):
    model = tiny_model(family, task).eval()
    assert largest_difference_from_serial(model, torch.no_grad, threads=4, calls=6) <= 1e-6


@pytest.mark.parametrize(("family", "task"), CASES)
def test_a_call_nested_in_a_layer_hook_and_its_caller_both_get_their_own_results(family, task):
    model = tiny_model(family, task).eval()
    outer, inner = padded_batch(family, False, seed=1), padded_batch(family, False, seed=2)
    with torch.no_grad():
        expected_outer, expected_inner = model(**outer).logits, model(**inner).logits
    nested = []

    def call_the_model_again(module, args, output):
        if not nested:
            nested.append(None)
            nested[0] = model(**inner).logits

    layer = model.base_model._depth_sources()[2]
    handle = layer.register_forward_hook(call_the_model_again)
    try:
        with torch.no_grad():
            actual_outer = model(**outer).logits
    finally:
        handle.remove()
    torch.testing.assert_close(actual_outer, expected_outer, rtol=0, atol=1e-6)
    torch.testing.assert_close(nested[0], expected_inner, rtol=0, atol=1e-6)


@pytest.mark.parametrize("use_reentrant", [False, True], ids=["non-reentrant", "reentrant"])
@pytest.mark.parametrize(("family", "task"), CHECKPOINTING_CASES)
def test_gradient_checkpointing_gives_the_gradients_of_a_plain_pass(family, task, use_reentrant):
    settings = NO_DROPOUT

    def gradients(checkpointing: bool) -> dict:
        model = tiny_model(family, task, **settings).train()
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
        model(**padded_batch(family, False), labels=labels_for(task)).loss.backward()
        return {name: parameter.grad for name, parameter in model.named_parameters() if parameter.grad is not None}

    plain = gradients(False)
    try:
        checkpointed = gradients(True)
    except Exception as error:  # noqa: BLE001 - an upstream failure must be the plain family's too
        plain_class = family_model_class(type(tiny_model(family, task)))
        plain_model = plain_class(tiny_config(family, plain_class, plain=True, **settings)).train()
        plain_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": use_reentrant})
        with pytest.raises(type(error)):
            plain_model(**padded_batch(family, False), labels=labels_for(task)).loss.backward()
        return
    mix_gradient = next(gradient for name, gradient in plain.items() if name.endswith("layer_mix.weights"))
    assert mix_gradient.abs().min() > 0  # every depth receives a gradient
    assert checkpointed.keys() == plain.keys()
    for name, gradient in plain.items():
        torch.testing.assert_close(checkpointed[name], gradient, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize(("family", "task"), CASES)
def test_bf16_weights_stay_close_to_float32(family, task):
    model = tiny_model(family, task).eval()
    batch = padded_batch(family, False)
    bf16 = tiny_model(family, task).to(torch.bfloat16).eval()
    with torch.no_grad():
        reference, logits = model(**batch).logits, bf16(**batch).logits
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, rtol=0.05, atol=0.05)


@pytest.mark.parametrize(("family", "task"), CASES[::2], ids=lambda value: getattr(value, "id", value))
def test_a_device_map_that_offloads_the_mix_gives_the_same_logits(family, task, tmp_path):
    """accelerate keeps offloaded parameters on the meta device and loads them only around their module's call: the
    mix's weights must be read through that call, in every family."""
    model = tiny_model(family, task).eval()
    model.save_pretrained(tmp_path / "saved")
    batch = padded_batch(family, False)
    with torch.no_grad():
        expected = model(**batch).logits
    prefix = model.base_model_prefix
    device_map = {name: "cpu" for name, _ in model.named_children() if name != prefix}
    for name, _ in model.base_model.named_children():
        device_map[f"{prefix}.{name}"] = "disk" if name == "layer_mix" else "cpu"
    offloaded = (
        type(model)
        .from_pretrained(
            tmp_path / "saved",
            device_map=device_map,
            offload_folder=str(tmp_path / "offload"),
            attn_implementation="eager",
        )
        .eval()
    )
    assert offloaded.base_model.layer_mix.weights.device.type == "meta"  # loaded only while the mix is called
    with torch.no_grad():
        torch.testing.assert_close(offloaded(**batch).logits, expected, rtol=0, atol=1e-6)
