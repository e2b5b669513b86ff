"""The sparsity report: zeros in a model's prunable weights, per layer, matrix and role, and as a text table."""

import torch
from torch import nn

from .targets import ROLES, base_model_of, encoder_layers, layer_matrices, linear_role, pooler_linear


def sparsity_report(model: nn.Module) -> dict:
    """Zeros in a model's prunable weights, pruned or not, masks attached or applied.

    Returns a dict: `layers` (one entry per encoder layer: `matrices` by name - BERT's short names query, key, value,
    attention_output, intermediate, output, or the path inside the layer for other families - each
    `{"zeros", "total", "sparsity", "role"}`, and the layer's totals), `encoder` (all encoder matrices together),
    `roles` (the encoder's matrices by family-neutral role, `ROLES`), `others` (embeddings, pooler, classifier
    weights), `parameters` (all the model's parameters, masks applied: `total`, `zeros`, `remaining`)."""
    base = base_model_of(model)
    with torch.no_grad():
        layers = []
        for index, layer in enumerate(encoder_layers(base)):
            matrices = {
                name: {**count_zeros(layer.get_submodule(path).weight), "role": linear_role(path)}
                for name, path in layer_matrices(layer).items()
            }
            layers.append({"layer": index, "matrices": matrices, **sum_counts(matrices.values())})
        encoder = sum_counts(layers)
        roles = {
            role: sum_counts(m for layer in layers for m in layer["matrices"].values() if m["role"] == role)
            for role in ROLES
        }
        others = {}
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            module = getattr(base.embeddings, name, None)
            if module is not None:
                others[f"embeddings.{name}"] = count_zeros(module.weight)
        if getattr(base, "pooler", None) is not None:
            others["pooler"] = count_zeros(pooler_linear(base.pooler).weight)
        for name in ("classifier", "qa_outputs"):
            head = getattr(model, name, None)
            if isinstance(head, nn.Linear):
                others[name] = count_zeros(head.weight)
        total = zeros = 0
        for name, param in model.named_parameters():
            if name.endswith(".scores") and ".parametrizations." in name:
                continue
            value = _effective_parameter(model, name, param)
            total += value.numel()
            zeros += int((value == 0).sum())
    return {
        "layers": layers,
        "encoder": encoder,
        "roles": roles,
        "others": others,
        "parameters": {"total": total, "zeros": zeros, "remaining": total - zeros},
    }


def _effective_parameter(model: nn.Module, name: str, param: torch.Tensor) -> torch.Tensor:
    """A parameter as the model uses it: a parametrized weight's `original` is read through its masks."""
    marker = ".parametrizations."
    if marker in name and name.endswith(".original"):
        owner, _, rest = name.partition(marker)
        return getattr(model.get_submodule(owner), rest.split(".")[0])
    return param


def count_zeros(weight: torch.Tensor) -> dict:
    zeros, total = int((weight == 0).sum()), weight.numel()
    return {"zeros": zeros, "total": total, "sparsity": zeros / total}


def sum_counts(counts) -> dict:
    counts = list(counts)
    zeros, total = sum(c["zeros"] for c in counts), sum(c["total"] for c in counts)
    return {"zeros": zeros, "total": total, "sparsity": zeros / total if total else 0.0}


def format_sparsity_report(report: dict) -> str:
    """`sparsity_report` as a text table: sparsity (%) per layer and matrix, then encoder and parameter totals."""
    names = list(report["layers"][0]["matrices"])
    widths = [max(len(name), 6) for name in names]
    header = "layer  " + "  ".join(f"{name:>{w}}" for name, w in zip(names, widths, strict=True)) + "     all"
    lines = [header]
    for layer in report["layers"]:
        cells = "  ".join(
            f"{100 * layer['matrices'][n]['sparsity']:>{w - 1}.1f}%" for n, w in zip(names, widths, strict=True)
        )
        lines.append(f"{layer['layer']:>5}  {cells}  {100 * layer['sparsity']:>5.1f}%")
    encoder, params = report["encoder"], report["parameters"]
    lines.append(
        f"encoder sparsity: {100 * encoder['sparsity']:.2f}% ({encoder['zeros']:,} of {encoder['total']:,} weights "
        f"are zero; {encoder['total'] - encoder['zeros']:,} remain)"
    )
    roles = report.get("roles", {})
    if roles:
        by_role = ", ".join(
            f"{role.replace('_', ' ')} {100 * counts['sparsity']:.1f}%"
            for role, counts in roles.items()
            if counts["total"]
        )
        lines.append(f"by role: {by_role}")
    pruned_others = [
        f"{name} {100 * c['sparsity']:.1f}%" for name, c in report["others"].items() if round(100 * c["sparsity"], 1)
    ]
    if pruned_others:
        lines.append("other zeros: " + ", ".join(pruned_others))
    lines.append(f"remaining parameters: {params['remaining']:,} of {params['total']:,} (non-zero)")
    return "\n".join(lines)
