"""Each forward pass owns its mix: threads sharing one model, calls nested inside a call, and a call that failed
half-way all leave every other call's result exactly as if it had run alone."""

from pathlib import Path

import pytest
import torch

from bermo_hf import BermoConfig, BermoForSequenceClassification, BermoForTokenClassification, BermoLayerMix

from .concurrency_check import batches, largest_difference_from_serial
from .conftest import result_of_fresh_process, tiny_config_kwargs


def tiny_model(model_class=BermoForSequenceClassification, **overrides):
    torch.manual_seed(0)
    model = model_class(BermoConfig(**tiny_config_kwargs(num_hidden_layers=4, num_labels=3, **overrides)))
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.tensor([0.5, -1.0, 0.25, 1.5, -0.5]))
        model.bert.layer_mix.gamma.fill_(1.3)
    return model.eval()


@pytest.mark.parametrize("grad_mode", [torch.no_grad, torch.inference_mode], ids=["no_grad", "inference_mode"])
@pytest.mark.parametrize("model_class", [BermoForSequenceClassification, BermoForTokenClassification])
def test_threads_sharing_a_model_get_the_serial_results(model_class, grad_mode):
    assert largest_difference_from_serial(tiny_model(model_class), grad_mode) <= 1e-6


def test_threads_sharing_a_remote_code_model_get_the_serial_results(tmp_path):
    tiny_model().save_pretrained(tmp_path / "saved")
    script = Path(__file__).with_name("concurrency_check.py")
    measured = result_of_fresh_process([str(script), str(tmp_path / "saved")], tmp_path)
    assert measured["module"].startswith("transformers_modules.")
    assert measured["no_grad"] <= 1e-6 and measured["inference_mode"] <= 1e-6


@pytest.mark.parametrize("grad_enabled", [False, True])
def test_a_call_nested_in_a_forward_hook_and_its_caller_both_get_their_own_results(grad_enabled):
    model = tiny_model()
    outer_batch, inner_batch = batches(2, seed=3)
    with torch.no_grad():
        outer_alone = model(**outer_batch).logits
        inner_alone = model(**inner_batch).logits
    inner_results = []

    def call_again(module, args, output):
        if not inner_results:  # the nested call runs the same hooks: only the outermost one calls again
            inner_results.append(None)
            inner_results[0] = model(**inner_batch).logits

    handle = model.bert.encoder.layer[1].register_forward_hook(call_again)
    with torch.set_grad_enabled(grad_enabled):
        outer = model(**outer_batch).logits
    handle.remove()
    torch.testing.assert_close(outer.detach(), outer_alone, rtol=0, atol=1e-6)
    torch.testing.assert_close(inner_results[0].detach(), inner_alone, rtol=0, atol=1e-6)


@pytest.mark.parametrize("grad_enabled", [False, True])
def test_a_call_that_failed_half_way_leaves_the_model_usable(grad_enabled):
    model = tiny_model()
    (batch,) = batches(1)
    with torch.no_grad():
        expected = model(**batch).logits

    def fail(module, args):
        raise RuntimeError("out of memory, say")

    handle = model.bert.encoder.layer[2].register_forward_pre_hook(fail)
    with torch.set_grad_enabled(grad_enabled), pytest.raises(RuntimeError, match="out of memory, say"):
        model(**batch)
    handle.remove()
    with torch.set_grad_enabled(grad_enabled):
        logits = model(**batch).logits
    torch.testing.assert_close(logits.detach(), expected, rtol=0, atol=1e-6)


def test_a_pass_whose_encoder_output_never_reaches_the_mix_fails_loudly():
    model = tiny_model()
    model.bert.encoder._forward_hooks.clear()  # as if the encoder had been swapped for a module without the hook
    with pytest.raises(RuntimeError, match="layer mix was not applied"):
        model(**batches(1)[0])


class DeviceMoves(torch.overrides.TorchFunctionMode):
    """Records the device of every tensor that `Tensor.to` is asked to move somewhere."""

    def __init__(self):
        super().__init__()
        self.moves = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        result = func(*args, **kwargs)
        if func is torch.Tensor.to and isinstance(result, torch.Tensor):
            self.moves.append((args[0], result.device))
        return result


def test_each_depth_joins_the_sum_on_the_mix_device_and_the_result_returns_to_the_last_depth_device():
    """On a CPU-only machine every device is the CPU: check that each move is asked for, and the arithmetic is
    unchanged by it. (The real split over several GPUs runs wherever they are at hand.)"""
    mix = BermoLayerMix(3)
    with torch.no_grad():
        mix.weights.copy_(torch.tensor([0.3, -1.0, 2.0]))
        mix.gamma.fill_(1.7)
    states = [torch.randn(2, 5, 32, dtype=torch.bfloat16) for _ in range(3)]
    with DeviceMoves() as recorder:
        mixed = mix(states)
    moved = [tensor for tensor, device in recorder.moves if device == mix.weights.device]
    assert all(any(tensor is state for tensor in moved) for state in states)  # each depth, sent to the mix
    # The result, sent back to the last depth's device: the last move is of the tensor returned (on one device `to`
    # returns its input), not of gamma or a depth.
    assert recorder.moves[-1][0] is mixed and recorder.moves[-1][1] == states[-1].device
    assert mixed.dtype == torch.bfloat16
    expected = 1.7 * sum(s * h.float() for s, h in zip(torch.softmax(mix.weights, 0), states, strict=True))
    torch.testing.assert_close(mixed.float(), expected, rtol=2e-2, atol=2e-2)


def test_a_device_map_that_offloads_the_mix_and_a_layer_gives_the_same_logits(tmp_path):
    """accelerate keeps offloaded parameters on the meta device and loads them only around their module's call: the
    mix's weights must be read through that call. (CPU and disk here; several GPUs wherever they are at hand.)"""
    model = tiny_model()
    model.save_pretrained(tmp_path / "saved")
    (batch,) = batches(1)
    with torch.no_grad():
        expected = model(**batch).logits
    device_map = {
        "bert.embeddings": "cpu",
        "bert.encoder.layer.0": "cpu",
        "bert.encoder.layer.1": "disk",
        "bert.encoder.layer.2": "cpu",
        "bert.encoder.layer.3": "cpu",
        "bert.pooler": "cpu",
        "bert.layer_mix": "disk",
        "dropout": "cpu",
        "classifier": "cpu",
    }
    offloaded = BermoForSequenceClassification.from_pretrained(
        tmp_path / "saved", device_map=device_map, offload_folder=str(tmp_path / "offload")
    ).eval()
    assert offloaded.bert.layer_mix.weights.device.type == "meta"  # loaded only while the mix is called
    with torch.no_grad():
        torch.testing.assert_close(offloaded(**batch).logits, expected, rtol=0, atol=1e-6)
