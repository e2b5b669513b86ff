"""The classifiers trained on frozen per-depth features.

`fit_depth_probe` is a scikit-learn logistic regression on one depth (BERT's figure is the last depth's);
`fit_mix_probe` is BERMo's head on the frozen checkpoint: a linear probe on a learned `BermoLayerMix` of every depth,
minimized with L-BFGS to the same objective. Both select the inverse regularization strength `C` on `va` and return a
`ProbeResult`.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..modeling_bermo import BermoLayerMix


@dataclass
class ProbeResult:
    """A probe's accuracies (%) on `va` (used to select `c`) and `te`; `weights`: a mix probe's softmax per depth."""

    val_accuracy: float
    test_accuracy: float
    c: float
    weights: list[float] | None = None


def fit_depth_probe(
    features: dict[str, np.ndarray], labels: dict[str, Sequence[int]], c_values: Sequence[float], max_iter: int, seed
) -> ProbeResult:
    """A scikit-learn logistic regression on standardized features of one depth (`features[split]`: `(n, hidden)`),
    its inverse regularization strength selected on `va` among `c_values`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best, best_probe = None, None
    for c in c_values:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
        probe.fit(features["tr"], labels["tr"])
        val_accuracy = 100 * probe.score(features["va"], labels["va"])
        if best is None or val_accuracy > best.val_accuracy:
            best, best_probe = ProbeResult(val_accuracy, math.nan, c), probe
    best.test_accuracy = 100 * best_probe.score(features["te"], labels["te"])
    return best


def fit_mix_probe(
    features: dict[str, torch.Tensor],
    labels: dict[str, Sequence[int]],
    num_labels: int,
    c_values: Sequence[float],
    max_iter: int,
    seed: int,
    device: str | torch.device | None = None,
) -> ProbeResult:
    """BERMo's head on a frozen checkpoint: a linear probe on `BermoLayerMix` of every depth (`features[split]`:
    `(n, depths, hidden)`), each depth standardized with `tr` statistics as `fit_depth_probe` does.

    Objective of scikit-learn's logistic regression (mean cross-entropy + `||W||^2 / (2 C n)`), minimized with
    L-BFGS over the linear layer and the mix weights, to scikit-learn's default gradient tolerance (1e-4); `gamma`
    stays 1 since it only rescales `W`, which the penalty would then mean nothing for. With one depth this is
    `fit_depth_probe`. `C` is selected on `va`. Runs on `device` (default: the GPU when there is one)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    inputs = {split: x.unbind(dim=1) for split, x in _standardized(features, device).items()}
    targets = {split: torch.as_tensor(y, device=device) for split, y in labels.items()}
    num_depths, hidden_size = features["tr"].shape[1:]

    best = None
    for c in c_values:
        torch.manual_seed(seed)
        mix = BermoLayerMix(num_depths).to(device)
        linear = nn.Linear(hidden_size, num_labels, device=device)
        _minimize_probe_objective(mix, linear, inputs["tr"], targets["tr"], c, max_iter)
        with torch.no_grad():
            accuracy = {
                split: 100 * (linear(mix(inputs[split])).argmax(-1) == targets[split]).float().mean().item()
                for split in ("va", "te")
            }
        if best is None or accuracy["va"] > best.val_accuracy:
            weights = [float(w) for w in mix.normalized_weights().detach()]
            best = ProbeResult(accuracy["va"], accuracy["te"], c, weights)
    return best


def _minimize_probe_objective(
    mix: BermoLayerMix, linear: nn.Linear, inputs: Sequence[torch.Tensor], targets: torch.Tensor, c: float, max_iter
) -> None:
    """scikit-learn's logistic-regression objective over the mix weights and `linear` (from zero), with L-BFGS."""
    mix.gamma.requires_grad_(False)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(
        [mix.weights, linear.weight, linear.bias],
        max_iter=max_iter,
        history_size=20,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-4,
    )
    penalty = 1.0 / (2 * c * len(targets))

    def closure():
        optimizer.zero_grad()
        logits = linear(mix(inputs))
        loss = nn.functional.cross_entropy(logits, targets) + penalty * linear.weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)


def _standardized(features: dict[str, torch.Tensor], device) -> dict[str, torch.Tensor]:
    """Every split's features on `device`, each feature standardized with the `tr` split's mean and deviation."""
    features = {split: x.to(device) for split, x in features.items()}
    mean = features["tr"].mean(dim=0)
    std = features["tr"].std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return {split: (x - mean) / std for split, x in features.items()}
