"""Compiled and exported graphs of every family give the eager model's numbers: `torch.compile(fullgraph=True)` (no
graph break) and ONNX through onnxruntime within 1e-4, on each family's sequence classifier and base model."""

import pytest
import torch

import bermo_hf
from bermo_hf.onnx_export import export_onnx, largest_onnx_difference

from .families import TINY_FAMILIES, tiny_tokenizer
from .test_families import padded_batch, tiny_config

FAMILIES = [family for family in TINY_FAMILIES if not family.id.endswith(("-mean", "-conv"))]
# The sequence classifier (the first-token mix) of the families whose `bermo export` tests/test_cli_families.py does
# not run, and the whole-sequence mix of the families whose mix point is special: a final norm's input (XLM-R-XL,
# ModernBERT), the encoder's hidden states (DeBERTa).
EXPORTED_BY_THE_CLI_TESTS = ("roberta", "deberta-v3", "modernbert", "electra", "distilbert", "albert", "mpnet")
ONNX_CASES = [
    pytest.param(family, "sequence-classification", id=family.id)
    for family in FAMILIES
    if family.id not in EXPORTED_BY_THE_CLI_TESTS
] + [
    pytest.param(family, "feature-extraction", id=f"{family.id}-feature-extraction")
    for family in FAMILIES
    if family.mix_enters_input or family.reads_hidden_states
]


def tiny_model(family, task):
    model_class = bermo_hf.family_of(family.model_type).model_class(task)
    torch.manual_seed(0)
    model = model_class(tiny_config(family, model_class))
    with torch.no_grad():
        model.base_model.layer_mix.weights.copy_(torch.tensor([0.3, -0.8, 1.1, 0.4]))
        model.base_model.layer_mix.gamma.fill_(1.7)
    return model.eval()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda family: family.id)
def test_compile_with_fullgraph_has_no_graph_break_and_equal_logits(family):
    model = tiny_model(family, "sequence-classification")
    torch._dynamo.reset()  # each family recompiles the shared hooks: start each test below dynamo's recompile limit
    compiled = torch.compile(model, fullgraph=True, backend="eager")  # a graph break would raise
    with torch.no_grad():
        for seed in (1, 2):
            batch = padded_batch(family, False, seed=seed)
            torch.testing.assert_close(compiled(**batch).logits, model(**batch).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("family", "task"), ONNX_CASES)
def test_onnx_graph_matches_pytorch_on_a_batch_of_another_shape(family, task, tmp_path):
    model = tiny_model(family, task)
    tokenizer = tiny_tokenizer(family, tmp_path / "tokenizer")
    path = export_onnx(model, tokenizer, tmp_path / "model.onnx")
    assert largest_onnx_difference(model, tokenizer, path) <= 1e-4
