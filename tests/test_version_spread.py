"""A BERMo saved with the installed transformers 5.x loads with `trust_remote_code=True` under transformers 4.57.x.

The 4.57 stack (transformers 4.57.x, huggingface_hub 0.36.x, tokenizers 0.22.x, requests) is installed into a
separate folder named by $BERMO_TF457_PATH and put first on PYTHONPATH of a fresh process. Without that variable the
test skips, except under CI (`CI=true`), where it fails."""

import os
from pathlib import Path

import pytest
import torch
import transformers

from bermo_hf import BermoConfig, BermoForSequenceClassification

from .conftest import tiny_config_kwargs
from .test_hub import logits_in_fresh_process, reference_logits


@pytest.fixture(scope="module")
def tf457_path() -> str:
    path = os.environ.get("BERMO_TF457_PATH")
    if not path:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("BERMO_TF457_PATH (a folder holding transformers 4.57.x) is required under CI")
        pytest.skip("BERMO_TF457_PATH is not set")
    assert (Path(path) / "transformers").is_dir(), f"BERMO_TF457_PATH={path} holds no transformers package"
    return path


def test_saved_with_5x_loads_under_4_57_to_equal_logits(tf457_path, tmp_path):
    assert transformers.__version__.startswith("5.")
    torch.manual_seed(0)
    config = BermoConfig(**tiny_config_kwargs(num_labels=3, layer_mix_layer_norm=True, layer_mix_dropout=0.1))
    model = BermoForSequenceClassification(config)
    with torch.no_grad():
        model.bert.layer_mix.weights.normal_()
        model.bert.layer_mix.gamma.fill_(1.3)
    model.save_pretrained(tmp_path / "saved")

    pythonpath = os.pathsep.join(filter(None, [tf457_path, os.environ.get("PYTHONPATH")]))
    result = logits_in_fresh_process(tmp_path / "saved", tmp_path / "modules", {"PYTHONPATH": pythonpath})
    assert result["transformers"].startswith("4.57.")
    assert result["class"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(result["logits"]), reference_logits(model), rtol=0, atol=1e-5)
