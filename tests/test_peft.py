"""LoRA on BERMo through PEFT: the mix and the classifier are trained in full (`modules_to_save`), saved in the
adapter, and a reload onto the base model gives the same logits."""

import pytest
import torch
from safetensors import safe_open

from bermo_hf import BermoForSequenceClassification
from bermo_hf.layer_weights import LayerWeights
from bermo_hf.training import mix_parameter_groups

peft = pytest.importorskip("peft")


def test_lora_adapter_with_the_mix_in_modules_to_save_reloads_to_the_same_logits(tiny_config, tmp_path):
    torch.manual_seed(0)
    BermoForSequenceClassification(tiny_config).save_pretrained(tmp_path / "base")
    base = BermoForSequenceClassification.from_pretrained(tmp_path / "base")
    lora = peft.LoraConfig(
        task_type="SEQ_CLS", r=4, target_modules=["query", "value"], modules_to_save=["layer_mix", "classifier"]
    )
    model = peft.get_peft_model(base, lora)
    groups = mix_parameter_groups(model, weight_decay=0.01, learning_rate=1e-3, mix_learning_rate=0.1)
    assert len(groups[-1]["params"]) == 2  # the trainable copy of the mix, not the frozen original
    optimizer = torch.optim.AdamW(groups)
    input_ids = torch.randint(5, 100, (8, 12))
    labels = torch.tensor([0, 1] * 4)
    model.train()
    for _ in range(5):
        model(input_ids=input_ids, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    trained_mix = LayerWeights.from_model(model)
    assert trained_mix.gamma != 1.0 and max(trained_mix.weights) > 0.34
    with torch.no_grad():
        expected = model(input_ids=input_ids).logits

    model.save_pretrained(tmp_path / "adapter")
    with safe_open(tmp_path / "adapter" / "adapter_model.safetensors", "pt") as adapter:
        saved = set(adapter.keys())
    assert any(key.endswith("layer_mix.weights") for key in saved) and any(
        key.endswith("layer_mix.gamma") for key in saved
    )
    assert any("lora_A" in key for key in saved) and any("classifier" in key for key in saved)

    fresh_base = BermoForSequenceClassification.from_pretrained(tmp_path / "base")
    reloaded = peft.PeftModel.from_pretrained(fresh_base, tmp_path / "adapter").eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=input_ids).logits, expected, rtol=0, atol=1e-6)
    assert LayerWeights.from_model(reloaded).weights == pytest.approx(trained_mix.weights)
