"""The parametrizations that mask a pruned weight (one per method), and the top-k selection that sets their masks."""

import torch
from torch import nn


class _StraightThrough(torch.autograd.Function):
    """Returns the binary mask in the forward pass and hands the incoming gradient to the scores unchanged."""

    @staticmethod
    def forward(ctx, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return mask.to(scores.dtype)

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        return grad_output, None


class WeightMask(nn.Module):
    """Parametrization `W -> W * mask` with a boolean `mask` buffer (magnitude pruning)."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", torch.ones_like(weight, dtype=torch.bool))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


class TopKScoreMask(WeightMask):
    """Parametrization of movement pruning: `W -> W * mask`, where `mask` is the top-k of the learned `scores` (set by
    `Pruner`); the straight-through estimator gives `scores` the gradient `dL/dW' * W`."""

    def __init__(self, weight: torch.Tensor):
        super().__init__(weight)
        self.scores = nn.Parameter(torch.zeros_like(weight, dtype=torch.float32))

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * _StraightThrough.apply(self.scores, self.mask).to(weight.dtype)


class SigmoidThresholdMask(nn.Module):
    """Parametrization of soft-movement pruning: `W -> W * (sigmoid(scores) > threshold)`, with a straight-through
    estimator to `scores`. `threshold` is moved along the schedule by `Pruner`."""

    def __init__(self, weight: torch.Tensor):
        super().__init__()
        self.scores = nn.Parameter(torch.zeros_like(weight, dtype=torch.float32))
        self.threshold = 0.0

    @property
    def mask(self) -> torch.Tensor:
        """The current boolean mask."""
        return torch.sigmoid(self.scores.detach()) > self.threshold

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * _StraightThrough.apply(self.scores, self.mask).to(weight.dtype)


MASK_CLASSES = {"magnitude": WeightMask, "movement": TopKScoreMask, "soft-movement": SigmoidThresholdMask}


def top_k_masks(
    scores: list[torch.Tensor],
    sparsity: float,
    global_ranking: bool,
    tie_breakers: list[torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Boolean masks keeping exactly `n - round(sparsity * n)` of the highest scores, over all tensors together
    (`global_ranking`) or in each tensor on its own. Among equal scores at the cut, the highest `tie_breakers` (same
    shapes) are kept; without them, whichever `torch.topk` returns."""
    breakers = tie_breakers or [None] * len(scores)
    if global_ranking:
        flat = torch.cat([score.reshape(-1) for score in scores])
        flat_breaker = torch.cat([b.reshape(-1) for b in breakers]) if tie_breakers else None
        keep = _top_k_flat(flat, flat.numel() - round(sparsity * flat.numel()), flat_breaker)
        return [
            part.view_as(score) for part, score in zip(keep.split([s.numel() for s in scores]), scores, strict=True)
        ]
    return [
        _top_k_flat(
            score.reshape(-1), score.numel() - round(sparsity * score.numel()), None if b is None else b.reshape(-1)
        ).view_as(score)
        for score, b in zip(scores, breakers, strict=True)
    ]


def _top_k_flat(values: torch.Tensor, keep: int, tie_breaker: torch.Tensor | None = None) -> torch.Tensor:
    mask = torch.zeros(values.shape, dtype=torch.bool, device=values.device)
    if keep <= 0:
        return mask
    values = values.float()
    top = torch.topk(values, keep, sorted=False)
    if tie_breaker is None:
        mask[top.indices] = True
        return mask
    cut = top.values.min()
    mask |= values > cut
    tied = (values == cut).nonzero().squeeze(1)
    missing = keep - int(mask.sum())
    chosen = torch.topk(tie_breaker[tied].float(), missing, sorted=False).indices
    mask[tied[chosen]] = True
    return mask
