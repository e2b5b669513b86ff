"""ONNX export of BERMo models of every family (and plain ones) through `torch.onnx.export(..., dynamo=True)`,
checked against PyTorch with onnxruntime.

The graph takes `input_ids`, `attention_mask` (and `token_type_ids` when the tokenizer makes them) with dynamic batch
and sequence axes, and returns the model's outputs by name (`logits`; `start_logits`/`end_logits`;
`last_hidden_state`, and `pooler_output` where the family has a pooler). Needs the `onnx` extra:
`pip install 'bermo-hf[onnx]'`.
"""

from pathlib import Path

import torch
from torch import nn

from .errors import BermoError
from .modeling_bermo import task_of

# Outputs of each exportable task, in the order its models return them (the base model's pooler output is added
# where the family has a pooler).
OUTPUT_NAMES = {
    "sequence-classification": ["logits"],
    "token-classification": ["logits"],
    "question-answering": ["start_logits", "end_logits"],
    "feature-extraction": ["last_hidden_state"],
}
# A batch that differs in size and length from the one traced, so that the check exercises the dynamic axes.
CHECK_TEXTS = [
    "a gripping , beautifully acted film .",
    "the plot is thin , the dialogue is worse , and the jokes fall flat long before the end .",
    "fine .",
]
TRACE_TEXTS = ["an honest , moving story .", "not worth the price of the ticket ."]


def output_names(model: nn.Module) -> list[str]:
    """The names the exported graph gives `model`'s outputs, or a `BermoError` for a head that cannot be exported."""
    class_name = type(model).__name__
    task = task_of(class_name).name
    if task not in OUTPUT_NAMES or not class_name.endswith(task_of(class_name).class_suffix):
        exportable = ", ".join(OUTPUT_NAMES)
        raise BermoError(f"{class_name} cannot be exported to ONNX here; exportable tasks: {exportable}.")
    if task == "feature-extraction" and getattr(model, "pooler", None) is not None:
        return OUTPUT_NAMES[task] + ["pooler_output"]
    return OUTPUT_NAMES[task]


def _model_inputs(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    return {name: encoded[name] for name in ("input_ids", "attention_mask", "token_type_ids") if name in encoded}


class _NamedOutputs(nn.Module):
    """Returns the model's outputs as a tuple in `names` order: ONNX graphs have positional outputs."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        # Only the inputs the tokenizer makes: some families (DistilBERT, ModernBERT) take no token_type_ids.
        token_types = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, return_dict=True, **token_types)
        return tuple(outputs[name] for name in self.names)


def export_onnx(model: nn.Module, tokenizer, path: str | Path) -> Path:
    """Writes `model` (in eval mode) as an ONNX graph at `path`, with dynamic batch and sequence axes."""
    try:
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError:
        raise BermoError("ONNX export needs onnx and onnxscript: pip install 'bermo-hf[onnx]'.") from None
    names = output_names(model)
    inputs = _model_inputs(tokenizer, TRACE_TEXTS)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence")
    wrapped = _NamedOutputs(model, names).eval()
    with torch.no_grad():
        program = torch.onnx.export(
            wrapped,
            (),
            kwargs=inputs,
            dynamo=True,
            input_names=list(inputs),
            output_names=names,
            dynamic_shapes={name: {0: batch, 1: sequence} for name in inputs},
            verbose=False,
        )
    program.save(str(path))
    return Path(path)


def largest_onnx_difference(model: nn.Module, tokenizer, path: str | Path, texts: list[str] | None = None) -> float:
    """Runs the ONNX graph at `path` with onnxruntime and `model` with PyTorch on `texts` (padded together), and
    returns the largest absolute difference over all outputs."""
    try:
        import onnxruntime
    except ImportError:
        raise BermoError("checking the ONNX graph needs onnxruntime: pip install 'bermo-hf[onnx]'.") from None
    names = output_names(model)
    inputs = _model_inputs(tokenizer, texts or CHECK_TEXTS)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    session_inputs = {node.name for node in session.get_inputs()}
    feed = {name: tensor.numpy() for name, tensor in inputs.items() if name in session_inputs}
    onnx_outputs = session.run(names, feed)
    with torch.no_grad():
        torch_outputs = _NamedOutputs(model, names).eval()(**inputs)
    return max(
        float((torch.from_numpy(onnx_output) - torch_output.float()).abs().max())
        for onnx_output, torch_output in zip(onnx_outputs, torch_outputs, strict=True)
    )
