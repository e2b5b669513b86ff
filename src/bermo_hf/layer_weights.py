"""A BERMo mix as numbers: which depths a task head reads, as a table, a text chart and a PNG chart.

Works on any model holding a BERMo layer mix (wrapped in DDP or PEFT, or loaded with `trust_remote_code=True`)."""

import dataclasses
from pathlib import Path

from torch import nn

from .modeling_bermo import learned_layer_weights

CHART_FILENAME = "layer_weights.png"
# Width, in characters, of the heaviest depth's bar in `format_layer_weights`.
BAR_WIDTH = 40


def find_layer_mix(model: nn.Module) -> nn.Module | None:
    """The layer mix a forward pass of `model` uses, or None for a model without one (plain BERT).

    Works on wrapped models too (DDP, PEFT): under PEFT's `modules_to_save` the trained copy is returned, not the
    frozen original. Matched by class name, so a class loaded with `trust_remote_code=True` is found as well."""
    for name, module in model.named_modules():
        if type(module).__name__ == "BermoLayerMix" and "original_module" not in name.split("."):
            return module
    return None


@dataclasses.dataclass
class LayerWeights:
    """A BERMo mix as numbers: `weights[j]` is softmax(w)_j for depth `depth_numbers[j]` (0 = the embedding output,
    j = encoder layer j), `gamma` the scale."""

    weights: list[float]
    gamma: float
    include_embeddings: bool = True

    @classmethod
    def from_model(cls, model: nn.Module) -> "LayerWeights | None":
        """The current weights of `model`'s mix (None when it has none)."""
        mix = find_layer_mix(model)
        if mix is None:
            return None
        include_embeddings = getattr(model.config, "include_embeddings", True)
        return cls(**learned_layer_weights(mix), include_embeddings=include_embeddings)

    @property
    def depth_numbers(self) -> list[int]:
        first = 0 if self.include_embeddings else 1
        return list(range(first, first + len(self.weights)))

    @property
    def depth_names(self) -> list[str]:
        return ["embeddings" if number == 0 else f"layer {number}" for number in self.depth_numbers]

    @property
    def expected_layer(self) -> float:
        """The mix's center of gravity, sum_j j * s_j (Tenney et al., 2019): which depth the task reads on average."""
        return sum(number * weight for number, weight in zip(self.depth_numbers, self.weights, strict=True))

    def to_dict(self) -> dict:
        return {
            "depths": self.depth_names,
            "weights": self.weights,
            "gamma": self.gamma,
            "expected_layer": self.expected_layer,
        }

    def markdown_table(self) -> str:
        rows = ["| depth | weight |", "|---|---:|"]
        rows += [f"| {name} | {weight:.4f} |" for name, weight in zip(self.depth_names, self.weights, strict=True)]
        return "\n".join(rows)


def save_layer_weights_chart(layer_weights: LayerWeights, path: str | Path, title: str | None = None) -> bool:
    """Draws the per-depth weights as a bar chart PNG at `path`. Returns False (writing nothing) when matplotlib, an
    optional extra (`pip install bermo-hf[plot]`), is not installed."""
    try:
        # A bare Figure draws without pyplot, so saving a model never switches the caller's matplotlib backend.
        from matplotlib.figure import Figure
    except ImportError:
        return False
    figure = Figure(figsize=(max(4.0, 0.6 * len(layer_weights.weights) + 1.5), 3.2))
    axes = figure.subplots()
    axes.bar(layer_weights.depth_names, layer_weights.weights, color="tab:blue")
    axes.axhline(1 / len(layer_weights.weights), color="gray", linestyle="--", linewidth=1, label="uniform")
    axes.set_ylabel("softmax weight")
    summary = f"gamma={layer_weights.gamma:.3f}, expected layer={layer_weights.expected_layer:.2f}"
    axes.set_title(title or f"BERMo layer weights ({summary})", fontsize=9)
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return True


def format_layer_weights(layer_weights: LayerWeights) -> str:
    """A text table: one row per depth with its weight and a bar, then gamma and the expected layer."""
    width = max(map(len, layer_weights.depth_names))
    heaviest = max(layer_weights.weights)
    rows = [
        f"{name:<{width}}  {weight:.4f}  {'#' * round(BAR_WIDTH * weight / heaviest)}"
        for name, weight in zip(layer_weights.depth_names, layer_weights.weights, strict=True)
    ]
    rows.append(f"gamma = {layer_weights.gamma:.4f}")
    uniform_center = sum(layer_weights.depth_numbers) / len(layer_weights.depth_numbers)
    rows.append(
        f"expected layer sum_j j * s_j = {layer_weights.expected_layer:.2f} (uniform mix: {uniform_center:.2f})"
    )
    return "\n".join(rows)
