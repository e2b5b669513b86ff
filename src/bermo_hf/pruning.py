"""Unstructured pruning of BERT and BERMo: magnitude, movement and soft-movement pruning during fine-tuning.

The masks live with the model: every pruned weight gets a `torch.nn.utils.parametrize` parametrization that multiplies
it by a mask (a buffer), and for the movement methods holds the learned importance scores (a parameter). `Pruner`
attaches them and moves them along the schedule; `PruningCallback` steps the `Pruner` inside any `Trainer`;
`PruningTrainer` is a `Trainer` that also gives the scores their own optimizer group and adds the soft-movement
penalty to the loss. `Pruner.apply()` multiplies the masks into the weights and removes the parametrizations, after
which `save_pretrained` writes an ordinary checkpoint whose weights are zero exactly where they were pruned.

Methods:

- `magnitude` (Zhu & Gupta 2017): keep the largest `|W|`; the sparsity follows the cubic schedule `cubic_sparsity`.
  A weight once pruned stays pruned (it ranks by its masked magnitude, zero).
- `movement` (Sanh et al. 2020): keep the weights with the largest learned scores `S`; the mask is a top-k of `S`
  with a straight-through estimator (`dL/dS = dL/dW' * W`), on the same cubic schedule.
- `soft-movement` (Sanh et al. 2020): keep the weights with `sigmoid(S) > tau`, and add
  `lambda * R` to the loss, where by default (`penalty_normalization="per-matrix"`, as Sanh et al.'s code)
  `R = (1/M) * sum_m mean(sigmoid(S_m))` over the M pruned matrices: each matrix counts the same whatever its size,
  so their published lambda values carry over. `penalty_normalization="global"` uses the mean of `sigmoid(S)` over
  all pruned weights together instead, which weighs each matrix by its size (an intermediate matrix of BERT counts
  four times a query matrix) and needs other lambda values. The threshold ramps from 0 to `score_threshold` and the
  penalty from 0 to `penalty` along the cubic schedule's progress, as Sanh et al.'s `sigmoied_threshold` with L1
  regularization; the final sparsity emerges from lambda and is measured, not set.

A model with attached masks saves (`save_pretrained`, the `Trainer`'s `checkpoint-*` folders) an ordinary checkpoint:
each pruned matrix as it acts, mask applied, under its ordinary name and nothing else, so `model.safetensors` loads as
BERMo or BERT with the logits the model had and a clean load report. What the pruning needs to continue (each pruned
matrix unmasked, its mask and its scores: `Pruner.state_dict()`) goes into a file of its own, `PRUNING_STATE_FILE`,
which `PruningTrainer` writes beside every checkpoint; `Trainer.train(resume_from_checkpoint=...)` with a
`PruningTrainer` (or `bermo prune --resume_from_checkpoint`) restores it and continues the schedule exactly.

Example:

```python
>>> pruning_args = PruningArguments(method="magnitude", final_sparsity=0.9, warmup_steps_pruning=100)
>>> pruner = Pruner(model, pruning_args)
>>> trainer = PruningTrainer(pruner=pruner, model=model, args=training_args, train_dataset=train_dataset)
>>> trainer.train()  # masks follow the schedule and are applied at the end
>>> print(format_sparsity_report(sparsity_report(model)))
>>> model.save_pretrained("pruned")  # an ordinary checkpoint with zeros where pruned
```
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.utils import parametrize
from transformers import Trainer, TrainerCallback

from .errors import PruningArgumentError
from .training import parent_create_optimizer

METHODS = ("magnitude", "movement", "soft-movement")
# The linear layers pruned in every encoder layer: short name -> path inside `encoder.layer[i]`.
ENCODER_MATRICES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
}
# Name of the optimizer parameter group that holds the importance scores.
SCORES_GROUP_NAME = "pruning_scores"
PENALTY_NORMALIZATIONS = ("per-matrix", "global")
# The file beside a checkpoint's `model.safetensors` that holds what resuming a pruning run needs.
PRUNING_STATE_FILE = "pruning_state.safetensors"
# A pruned module's tensors in the state dict of its parametrization (torch.nn.utils.parametrize's names) -> their
# names in `PRUNING_STATE_FILE`, after the module's path.
_STATE_NAMES = {"original": "weight_original", "0.mask": "weight_mask", "0.scores": "weight_scores"}
# Where checkpoints of bermo-hf 0.1 kept the same tensors: in `model.safetensors`, beside the masked weight.
_LEGACY_CHECKPOINT_KEYS = {
    "original": "pruning.weight_original",
    "0.mask": "pruning.weight_mask",
    "0.scores": "pruning.weight_scores",
}


@dataclass
class PruningArguments:
    """What to prune, how, and on which schedule; the flags of `bermo prune` beside the data and `TrainingArguments`.

    Checked on creation: a `PruningArgumentError` (a `ValueError`) names the flag, its value and what is allowed.
    `check_schedule(max_steps)` checks the schedule against the length of training once that is known."""

    method: str = field(default="magnitude", metadata={"help": f"Pruning method: one of {', '.join(METHODS)}."})
    initial_sparsity: float = field(
        default=0.0, metadata={"help": "Sparsity in [0, 1) until --warmup_steps_pruning (magnitude, movement)."}
    )
    final_sparsity: float | None = field(
        default=None,
        metadata={
            "help": "Sparsity in [0, 1) reached --cooldown_steps_pruning steps before the end (magnitude, movement: "
            "required). Not for soft-movement, whose sparsity emerges from --penalty."
        },
    )
    warmup_steps_pruning: int = field(
        default=0, metadata={"help": "Optimizer steps at --initial_sparsity before the cubic schedule starts."}
    )
    cooldown_steps_pruning: int = field(
        default=0, metadata={"help": "Last optimizer steps at --final_sparsity, after the cubic schedule ends."}
    )
    pruning_frequency: int = field(
        default=1,
        metadata={"help": "Steps between two sparsity updates of the cubic schedule (Zhu & Gupta's Delta t)."},
    )
    global_pruning: bool = field(
        default=False,
        metadata={"help": "Rank all pruned weights together (global top-k) instead of each matrix on its own."},
    )
    penalty: float | None = field(
        default=None,
        metadata={"help": "soft-movement only (required): lambda, the strength of the L1 penalty on sigmoid(scores)."},
    )
    penalty_normalization: str = field(
        default="per-matrix",
        metadata={
            "help": "soft-movement: how the penalty averages sigmoid(scores): per-matrix (each matrix's mean, averaged "
            "over the matrices, as Sanh et al. 2020: their lambda values apply) or global (one mean over all pruned "
            "weights: larger matrices weigh more).",
            "choices": list(PENALTY_NORMALIZATIONS),
        },
    )
    score_threshold: float = field(
        default=0.1, metadata={"help": "soft-movement: final threshold tau in (0, 1) on sigmoid(scores)."}
    )
    scores_learning_rate: float = field(
        default=1e-2, metadata={"help": "Learning rate of the importance scores (movement, soft-movement)."}
    )
    prune_embeddings: bool = field(default=False, metadata={"help": "Also prune the word/position/type embeddings."})
    prune_pooler: bool = field(default=False, metadata={"help": "Also prune the pooler's dense layer."})
    prune_classifier: bool = field(default=False, metadata={"help": "Also prune the task head's linear layer."})

    def __post_init__(self):
        if self.method not in METHODS:
            raise PruningArgumentError(f"--method {self.method!r} is not supported: use one of {', '.join(METHODS)}.")
        _check_fraction("--initial_sparsity", self.initial_sparsity)
        if self.method == "soft-movement":
            if self.final_sparsity is not None:
                raise PruningArgumentError(
                    f"--final_sparsity={self.final_sparsity} does not apply to --method soft-movement: its sparsity "
                    "emerges from --penalty. Leave --final_sparsity out, or use --method magnitude or movement."
                )
            if self.initial_sparsity != 0:
                raise PruningArgumentError(
                    f"--initial_sparsity={self.initial_sparsity} does not apply to --method soft-movement: it starts "
                    "dense. Leave it out."
                )
            if self.penalty is None:
                raise PruningArgumentError("--method soft-movement needs --penalty (lambda, a number >= 0).")
            if not (isinstance(self.penalty, (int, float)) and math.isfinite(self.penalty) and self.penalty >= 0):
                raise PruningArgumentError(
                    f"--penalty={self.penalty!r} is out of range: it must be a finite number >= 0."
                )
            if self.penalty_normalization not in PENALTY_NORMALIZATIONS:
                raise PruningArgumentError(
                    f"--penalty_normalization {self.penalty_normalization!r} is not supported: use one of "
                    f"{', '.join(PENALTY_NORMALIZATIONS)}."
                )
            if not 0.0 < self.score_threshold < 1.0:
                raise PruningArgumentError(
                    f"--score_threshold={self.score_threshold!r} is out of range: it must lie in (0, 1)."
                )
        else:
            if self.final_sparsity is None:
                raise PruningArgumentError(f"--method {self.method} needs --final_sparsity (a number in [0, 1)).")
            _check_fraction("--final_sparsity", self.final_sparsity)
            if self.final_sparsity < self.initial_sparsity:
                raise PruningArgumentError(
                    f"--final_sparsity={self.final_sparsity} is below --initial_sparsity={self.initial_sparsity}: "
                    "the schedule only prunes more, so --final_sparsity must be >= --initial_sparsity."
                )
            if self.penalty is not None:
                raise PruningArgumentError(
                    f"--penalty={self.penalty} applies to --method soft-movement only, not to --method {self.method}."
                )
            if self.penalty_normalization != "per-matrix":
                raise PruningArgumentError(
                    f"--penalty_normalization={self.penalty_normalization} applies to --method soft-movement only, "
                    f"not to --method {self.method}."
                )
        for name in ("warmup_steps_pruning", "cooldown_steps_pruning"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise PruningArgumentError(f"--{name}={value!r} is out of range: it must be an integer >= 0.")
        if isinstance(self.pruning_frequency, bool) or not isinstance(self.pruning_frequency, int):
            raise PruningArgumentError(f"--pruning_frequency={self.pruning_frequency!r} must be an integer >= 1.")
        if self.pruning_frequency < 1:
            raise PruningArgumentError(
                f"--pruning_frequency={self.pruning_frequency} is out of range: it must be >= 1."
            )
        if not self.scores_learning_rate > 0:
            raise PruningArgumentError(f"--scores_learning_rate={self.scores_learning_rate!r} must be > 0.")

    @property
    def uses_scores(self) -> bool:
        """Whether the method learns importance scores (movement and soft-movement)."""
        return self.method != "magnitude"

    def check_schedule(self, max_steps: int) -> None:
        """Raises `PruningArgumentError` when warm-up and cool-down do not fit in `max_steps` optimizer steps."""
        if self.warmup_steps_pruning >= max_steps:
            raise PruningArgumentError(
                f"--warmup_steps_pruning={self.warmup_steps_pruning} is past the end of training ({max_steps} "
                f"optimizer steps): it must be below {max_steps}."
            )
        if self.warmup_steps_pruning + self.cooldown_steps_pruning > max_steps:
            raise PruningArgumentError(
                f"--warmup_steps_pruning={self.warmup_steps_pruning} plus --cooldown_steps_pruning="
                f"{self.cooldown_steps_pruning} is past the end of training ({max_steps} optimizer steps): together "
                f"they must be at most {max_steps}."
            )

    def sparsity_at(self, step: int, max_steps: int) -> float:
        """The schedule's target sparsity before optimizer step `step` (magnitude and movement)."""
        return cubic_sparsity(
            step,
            max_steps,
            initial=self.initial_sparsity,
            final=self.final_sparsity,
            warmup_steps=self.warmup_steps_pruning,
            cooldown_steps=self.cooldown_steps_pruning,
            frequency=self.pruning_frequency,
        )


def _check_fraction(flag: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise PruningArgumentError(f"{flag}={value!r} is out of range: a sparsity must lie in [0, 1).")


def cubic_sparsity(
    step: int,
    max_steps: int,
    initial: float,
    final: float,
    warmup_steps: int = 0,
    cooldown_steps: int = 0,
    frequency: int = 1,
) -> float:
    r"""Zhu & Gupta's (2017) gradual pruning schedule: the sparsity before optimizer step `step`.

        s_t = s_f + (s_i - s_f) * (1 - (t - t_0) / (n * dt)) ** 3,   t in {t_0, t_0 + dt, ..., t_0 + n * dt}

    with `t_0 = warmup_steps`, `t_0 + n * dt = max_steps - cooldown_steps` and `dt = frequency`: `initial` before
    `t_0`, `final` from `max_steps - cooldown_steps` on, and between them the value of the last update step
    `t_0 + k * dt` at or before `step`."""
    start, end = warmup_steps, max_steps - cooldown_steps
    if step < start:
        return initial
    if step >= end:
        return final
    update_step = start + (step - start) // frequency * frequency
    remaining = 1.0 - (update_step - start) / (end - start)
    return initial + (final - initial) * (1.0 - remaining**3)  # = s_f + (s_i - s_f) * remaining ** 3


def schedule_progress(step: int, max_steps: int, args: PruningArguments) -> float:
    """The cubic schedule's progress in [0, 1] before `step`: 0 until warm-up ends, 1 from the cool-down on."""
    return cubic_sparsity(
        step,
        max_steps,
        initial=0.0,
        final=1.0,
        warmup_steps=args.warmup_steps_pruning,
        cooldown_steps=args.cooldown_steps_pruning,
        frequency=args.pruning_frequency,
    )


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


_MASK_CLASSES = {"magnitude": WeightMask, "movement": TopKScoreMask, "soft-movement": SigmoidThresholdMask}


# Where each encoder family keeps its layers, inside its base model: BERT and most families, DistilBERT, ModernBERT,
# ALBERT (its shared layer groups, each pruned once however often it runs).
_LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "encoder.albert_layer_groups")
# The family-neutral role of a linear layer inside an encoder layer, from the last part of its name there.
ROLES = ("attention_in", "attention_out", "feed_forward_in", "feed_forward_out")
_ATTENTION_IN_NAMES = {
    "query", "key", "value", "q_lin", "k_lin", "v_lin", "q", "k", "v", "Wqkv",
    "query_proj", "key_proj", "value_proj", "pos_key_proj", "pos_query_proj", "in_proj",
}  # fmt: skip
_ATTENTION_OUT_NAMES = {"dense", "out_lin", "o", "Wo", "out_proj"}
_FEED_FORWARD_IN_NAMES = {"lin1", "Wi", "ffn"}


def _base_model(model: nn.Module) -> nn.Module:
    base = getattr(model, "base_model", model)
    encoder_layers(base)  # raises for a model without encoder layers
    return base


def encoder_layers(base: nn.Module) -> list[nn.Module]:
    """The encoder layers of a base model of any supported family (`encoder.layer`, `transformer.layer`, `layers`, or
    ALBERT's shared `encoder.albert_layer_groups`)."""
    for path in _LAYER_LISTS:
        try:
            return list(base.get_submodule(path))
        except AttributeError:
            continue
    places = ", ".join(f"`{path}`" for path in _LAYER_LISTS)
    raise ValueError(f"{type(base).__name__} has no encoder layers to prune (looked for {places}).")


def linear_role(path: str) -> str:
    """The role (one of `ROLES`) of the linear layer at `path` inside an encoder layer: `attention.self.query` and
    `attn.Wqkv` are `attention_in`, `attention.output.dense` and `attn.Wo` `attention_out`, `intermediate.dense`,
    `ffn.lin1` and `mlp.Wi` `feed_forward_in`, `output.dense`, `ffn.lin2` and `mlp.Wo` `feed_forward_out`."""
    parts = path.split(".")
    in_attention = any(part.startswith(("attention", "attn")) for part in parts[:-1])
    if parts[-1] in _ATTENTION_IN_NAMES:
        return "attention_in"
    if in_attention and parts[-1] in _ATTENTION_OUT_NAMES:
        return "attention_out"
    if parts[-1] in _FEED_FORWARD_IN_NAMES or "intermediate" in parts:
        return "feed_forward_in"
    return "feed_forward_out"


def _pooler_linear(pooler: nn.Module) -> nn.Module:
    """The linear layer of a family's pooler (`pooler.dense` for BERT, the pooler itself for ALBERT)."""
    return pooler if isinstance(pooler, nn.Linear) else pooler.dense


def layer_matrices(layer: nn.Module) -> dict[str, str]:
    """The prunable linear layers of one encoder layer: name -> path inside it. BERT's layout gets its short names
    (`ENCODER_MATRICES`); other families' linear layers are named by their path."""
    try:
        for path in ENCODER_MATRICES.values():
            layer.get_submodule(path)
        return dict(ENCODER_MATRICES)
    except AttributeError:
        return {name: name for name, module in layer.named_modules() if isinstance(module, nn.Linear)}


def prunable_weights(
    model: nn.Module, embeddings: bool = False, pooler: bool = False, classifier: bool = False
) -> dict[str, nn.Module]:
    """The modules whose `weight` is pruned, by parameter-path prefix (`"bert.encoder.layer.0.attention.self.query"`).

    The six linear layers of every encoder layer; optionally the word/position/token-type embeddings, the pooler's
    dense layer and the task head's linear layer(s) (`classifier` or `qa_outputs`)."""
    base = _base_model(model)
    wanted = []
    for layer in encoder_layers(base):
        wanted += [layer.get_submodule(path) for path in layer_matrices(layer).values()]
    if embeddings:
        emb = base.embeddings
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            if getattr(emb, name, None) is not None:
                wanted.append(getattr(emb, name))
    if pooler and getattr(base, "pooler", None) is not None:
        wanted.append(_pooler_linear(base.pooler))
    if classifier:
        for name in ("classifier", "qa_outputs"):
            head = getattr(model, name, None)
            if isinstance(head, nn.Linear):
                wanted.append(head)
            elif isinstance(head, nn.Module):  # e.g. BertForPreTraining-style heads: every linear inside
                wanted += [module for module in head.modules() if isinstance(module, nn.Linear)]
    names = {id(module): name for name, module in model.named_modules()}
    return {names[id(module)]: module for module in wanted}


def _top_k_masks(
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


class Pruner:
    """Attaches pruning masks (and importance scores) to a BERT or BERMo model and moves them along the schedule.

    Args:
        model: a BERT-like model (`BermoForSequenceClassification`, `BertForSequenceClassification`, ...). Its pruned
            weights get a `torch.nn.utils.parametrize` parametrization at once, so build the optimizer afterwards.
        args ([`PruningArguments`]): the method and schedule.

    Call `step(step, max_steps)` before every optimizer step (`PruningCallback` does), add `penalty()` to the loss
    (`PruningTrainer` does), and `apply()` at the end."""

    def __init__(self, model: nn.Module, args: PruningArguments):
        self.model = model
        self.args = args
        self.targets = prunable_weights(model, args.prune_embeddings, args.prune_pooler, args.prune_classifier)
        self.max_steps = None
        self.sparsity = 0.0  # of the magnitude and movement masks, all ones when attached
        self.applied = False
        self._penalty_scale = 0.0
        self._hooks = []
        mask_class = _MASK_CLASSES[args.method]
        for module in self.targets.values():
            if parametrize.is_parametrized(module, "weight"):
                raise ValueError(f"{type(module).__name__} already has a parametrized weight: is it pruned twice?")
            parametrize.register_parametrization(module, "weight", mask_class(module.weight), unsafe=True)
            self._hooks += _register_checkpoint_hooks(module)
        if args.method != "soft-movement" and args.initial_sparsity > 0:
            self._update_masks(args.initial_sparsity)

    def _masks(self) -> list[nn.Module]:
        return [module.parametrizations.weight[0] for module in self.targets.values()]

    def score_parameters(self) -> list[nn.Parameter]:
        """The learned importance scores (empty for magnitude pruning)."""
        if self.applied or not self.args.uses_scores:
            return []
        return [mask.scores for mask in self._masks()]

    @torch.no_grad()
    def _update_masks(self, sparsity: float) -> None:
        masks = self._masks()
        tie_breakers = None
        if self.args.method == "magnitude":
            # Ranked by the masked magnitude, so a pruned weight (zero) stays pruned.
            importance = [module.weight.abs() for module in self.targets.values()]
        else:
            importance = [mask.scores for mask in masks]
            # Fresh scores are all equal: among equal scores the larger weights stay, rather than the first positions
            # (which would prune whole rows).
            tie_breakers = [module.parametrizations.weight.original.abs() for module in self.targets.values()]
        if sparsity == 0:
            new_masks = [torch.ones_like(mask.mask) for mask in masks]
        else:
            new_masks = _top_k_masks(importance, sparsity, self.args.global_pruning, tie_breakers)
        for mask, new in zip(masks, new_masks, strict=True):
            mask.mask.copy_(new)
        self.sparsity = sparsity

    def step(self, step: int, max_steps: int) -> None:
        """Brings the masks to the schedule's state before optimizer step `step` of `max_steps`."""
        if self.applied:
            return
        if self.max_steps is None:
            self.args.check_schedule(max_steps)
        self.max_steps = max_steps
        if self.args.method == "soft-movement":
            progress = schedule_progress(step, max_steps, self.args)
            for mask in self._masks():
                mask.threshold = self.args.score_threshold * progress
            self._penalty_scale = self.args.penalty * progress
            return
        target = self.args.sparsity_at(step, max_steps)
        # Magnitude masks change only when the target does (Zhu & Gupta); movement masks follow the scores each step.
        if self.args.method == "movement" or target != self.sparsity:
            self._update_masks(target)

    def penalty(self) -> torch.Tensor | float:
        """Soft-movement's `lambda_t * R` (0 for the other methods): with `penalty_normalization="per-matrix"` (the
        default, Sanh et al.'s), `R = (1/M) * sum_m mean(sigmoid(S_m))` over the M pruned matrices; with `"global"`,
        `R = sum_m sum(sigmoid(S_m)) / sum_m numel(S_m)`."""
        if self.applied or self.args.method != "soft-movement" or self._penalty_scale == 0:
            return 0.0
        scores = [mask.scores for mask in self._masks()]
        if self.args.penalty_normalization == "global":
            total = sum(score.numel() for score in scores)
            return self._penalty_scale * sum(torch.sigmoid(score).sum() for score in scores) / total
        return self._penalty_scale * sum(torch.sigmoid(score).mean() for score in scores) / len(scores)

    def resume_at(self, step: int, max_steps: int) -> None:
        """Sets the schedule position of a model whose masks and scores were just loaded from a checkpoint saved
        after `step` optimizer steps, so that the next `step(...)` does what it would have done without the break."""
        self.max_steps = max_steps
        if self.args.method != "soft-movement" and step > 0:
            self.sparsity = self.args.sparsity_at(step - 1, max_steps)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What resuming needs beyond an ordinary checkpoint: for each pruned module (by its path in the model),
        `<path>.weight_original` (the unmasked weight), `.weight_mask` and, for the movement methods,
        `.weight_scores`. `PruningTrainer` saves it as `PRUNING_STATE_FILE` beside every checkpoint."""
        state = {}
        for name, module in self.targets.items():
            for key, tensor in module.parametrizations.weight.state_dict().items():
                state[f"{name}.{_STATE_NAMES[key]}"] = tensor.detach().contiguous()
        return state

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restores what `state_dict()` returned into the attached masks; every tensor must be there."""
        for name, module in self.targets.items():
            for key, tensor in module.parametrizations.weight.state_dict(keep_vars=True).items():
                saved = state.get(f"{name}.{_STATE_NAMES[key]}")
                if saved is None or saved.shape != tensor.shape:
                    raise PruningArgumentError(
                        f"the pruning state has no {name}.{_STATE_NAMES[key]} of shape {tuple(tensor.shape)}: it was "
                        f"saved for another model or --method than this run's ({self.args.method})."
                    )
                tensor.copy_(saved)

    def current_sparsity(self) -> float:
        """The share of the pruned weights that the masks now zero out (their final state once applied)."""
        if self.applied:
            return _sum_counts(_count(module.weight) for module in self.targets.values())["sparsity"]
        with torch.no_grad():
            masks = [mask.mask for mask in self._masks()]
            return 1.0 - sum(int(mask.sum()) for mask in masks) / sum(mask.numel() for mask in masks)

    def apply(self) -> dict:
        """Multiplies the masks into the weights (at the final sparsity for magnitude and movement, the final
        threshold for soft-movement) and removes the parametrizations and scores; returns `sparsity_report`.

        Afterwards the model is an ordinary one: `save_pretrained` writes no mask or score, and every pruned weight is
        exactly zero. Calling it again does nothing."""
        if not self.applied:
            if self.max_steps is not None:
                self.step(self.max_steps, self.max_steps)
            elif self.args.method == "soft-movement":
                for mask in self._masks():
                    mask.threshold = self.args.score_threshold
            else:
                self._update_masks(self.args.final_sparsity)
            for hook in self._hooks:
                hook.remove()
            for module in self.targets.values():
                parametrize.remove_parametrizations(module, "weight", leave_parametrized=True)
            self.applied = True
        return sparsity_report(self.model)


def _register_checkpoint_hooks(module: nn.Module) -> list:
    """Makes the state dict of a module with attached masks an ordinary one, and back (see the module docstring):
    `weight` is saved masked and alone; a loaded `weight` becomes the unmasked weight, and the mask and scores stay as
    they are until `Pruner.load_state_dict` sets them."""
    parametrized = "parametrizations.weight."

    def save(module, state_dict, prefix, local_metadata):
        for key in [key for key in state_dict if key.startswith(prefix + parametrized)]:
            del state_dict[key]
        with torch.no_grad():
            state_dict[prefix + "weight"] = module.weight.detach().clone()

    def load(module, state_dict, prefix, *args):
        if prefix + _LEGACY_CHECKPOINT_KEYS["original"] in state_dict:  # saved by bermo-hf 0.1: all parts inside
            state_dict.pop(prefix + "weight", None)
            for key, legacy_key in _LEGACY_CHECKPOINT_KEYS.items():
                if prefix + legacy_key in state_dict:
                    state_dict[prefix + parametrized + key] = state_dict.pop(prefix + legacy_key)
            return
        if prefix + "weight" in state_dict:
            state_dict[prefix + parametrized + "original"] = state_dict.pop(prefix + "weight")
        for key, tensor in module.parametrizations.weight.state_dict().items():
            state_dict.setdefault(prefix + parametrized + key, tensor)

    if hasattr(module, "register_state_dict_post_hook"):  # torch >= 2.5
        return [module.register_state_dict_post_hook(save), module.register_load_state_dict_pre_hook(load)]
    return [  # older torch: the same hooks under their private names
        module._register_state_dict_hook(save),
        module._register_load_state_dict_pre_hook(load, with_module=True),
    ]


def _holds_legacy_pruning_state(checkpoint: Path) -> bool:
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        return False
    with safe_open(str(weights), framework="pt") as handle:
        return any(key.endswith(_LEGACY_CHECKPOINT_KEYS["original"]) for key in handle.keys())


class PruningCallback(TrainerCallback):
    """Steps a [`Pruner`] inside any `Trainer`: masks before every optimizer step, `apply()` when training ends.

    With a plain `Trainer` this covers magnitude pruning. The movement methods also need their scores in an optimizer
    group of their own and (soft-movement) the penalty in the loss: use [`PruningTrainer`], which adds this callback
    itself.

    Args:
        pruner ([`Pruner`]): the pruner attached to the trained model.
        apply_at_end (`bool`, defaults to `True`): whether to apply the masks when training ends, so that the model
            is saved as an ordinary checkpoint.
    """

    def __init__(self, pruner: Pruner, apply_at_end: bool = True):
        self.pruner = pruner
        self.apply_at_end = apply_at_end

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        self.pruner.args.check_schedule(state.max_steps)
        if state.global_step > 0:  # resumed: the masks and scores came with the checkpoint
            self.pruner.resume_at(state.global_step, state.max_steps)
        if self.pruner.score_parameters() and optimizer is not None:
            groups = [group for group in optimizer.param_groups if group.get("name") == SCORES_GROUP_NAME]
            if not groups:
                raise PruningArgumentError(
                    f"--method {self.pruner.args.method} learns importance scores, which need an optimizer group of "
                    f"their own (named {SCORES_GROUP_NAME!r}): train with bermo_hf.pruning.PruningTrainer."
                )
        self.pruner.step(state.global_step, state.max_steps)

    def on_step_begin(self, args, state, control, **kwargs):
        self.pruner.step(state.global_step, state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is not None and not self.pruner.applied and "loss" in logs:
            logs["pruning_sparsity"] = round(self.pruner.current_sparsity(), 4)

    def on_train_end(self, args, state, control, **kwargs):
        if self.apply_at_end:
            self.pruner.apply()


class PruningTrainer(Trainer):
    """A `Trainer` that prunes while it fine-tunes: adds a [`PruningCallback`], puts the importance scores in an
    optimizer group of their own (learning rate `scores_learning_rate`, no weight decay), and adds the soft-movement
    penalty to the training loss.

    Combines with other `Trainer` subclasses: `class MyPruningTrainer(PruningTrainer, MyTrainer)`.

    Args:
        pruning_args ([`PruningArguments`]): attach a new [`Pruner`] to `model` with these settings; or
        pruner ([`Pruner`]): one already attached to `model`.
        *args, **kwargs: those of the parent `Trainer` class.
    """

    def __init__(self, *args, pruning_args: PruningArguments | None = None, pruner: Pruner | None = None, **kwargs):
        if (pruning_args is None) == (pruner is None):
            raise TypeError("PruningTrainer takes either pruning_args or pruner.")
        super().__init__(*args, **kwargs)
        self.pruner = pruner if pruner is not None else Pruner(self.model, pruning_args)
        self.add_callback(PruningCallback(self.pruner))

    def create_optimizer(self, model=None):
        """The `Trainer`'s optimizer for every other parameter, plus a group for the scores."""
        if self.optimizer is not None:
            return self.optimizer
        scores = self.pruner.score_parameters()
        for score in scores:
            score.requires_grad_(False)
        try:
            optimizer = parent_create_optimizer(PruningTrainer, self, model)
        finally:
            for score in scores:
                score.requires_grad_(True)
        if scores:
            optimizer.add_param_group(
                {
                    "params": scores,
                    "lr": self.pruner.args.scores_learning_rate,
                    "weight_decay": 0.0,
                    "name": SCORES_GROUP_NAME,
                }
            )
        return optimizer

    def _save(self, output_dir: str | None = None, state_dict=None):
        """Saves the model as the `Trainer` does (an ordinary checkpoint) and, while the masks are attached, the
        pruning state beside it."""
        super()._save(output_dir, state_dict=state_dict)
        if not self.pruner.applied:
            save_file(self.pruner.state_dict(), str(Path(output_dir or self.args.output_dir) / PRUNING_STATE_FILE))

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        """Loads the checkpoint's model as the `Trainer` does, then the pruning state saved beside it."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        if self.pruner.applied:
            return
        state_file = Path(resume_from_checkpoint) / PRUNING_STATE_FILE
        if state_file.is_file():
            self.pruner.load_state_dict(load_file(str(state_file)))
        elif not _holds_legacy_pruning_state(Path(resume_from_checkpoint)):
            raise PruningArgumentError(
                f"{resume_from_checkpoint} has no {PRUNING_STATE_FILE}: it was not saved by a pruning run, so the "
                "masks and scores to continue from are unknown."
            )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's loss, plus the soft-movement penalty while training."""
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if model.training:
            loss = loss + self.pruner.penalty()
        return (loss, outputs) if return_outputs else loss


def sparsity_report(model: nn.Module) -> dict:
    """Zeros in a model's prunable weights, pruned or not, masks attached or applied.

    Returns a dict: `layers` (one entry per encoder layer: `matrices` by name - BERT's short names query, key, value,
    attention_output, intermediate, output, or the path inside the layer for other families - each
    `{"zeros", "total", "sparsity", "role"}`, and the layer's totals), `encoder` (all encoder matrices together),
    `roles` (the encoder's matrices by family-neutral role, `ROLES`), `others` (embeddings, pooler, classifier
    weights), `parameters` (all the model's parameters, masks applied: `total`, `zeros`, `remaining`)."""
    base = _base_model(model)
    with torch.no_grad():
        layers = []
        for index, layer in enumerate(encoder_layers(base)):
            matrices = {
                name: {**_count(layer.get_submodule(path).weight), "role": linear_role(path)}
                for name, path in layer_matrices(layer).items()
            }
            layers.append({"layer": index, "matrices": matrices, **_sum_counts(matrices.values())})
        encoder = _sum_counts(layers)
        roles = {
            role: _sum_counts(m for layer in layers for m in layer["matrices"].values() if m["role"] == role)
            for role in ROLES
        }
        others = {}
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            module = getattr(base.embeddings, name, None)
            if module is not None:
                others[f"embeddings.{name}"] = _count(module.weight)
        if getattr(base, "pooler", None) is not None:
            others["pooler"] = _count(_pooler_linear(base.pooler).weight)
        for name in ("classifier", "qa_outputs"):
            head = getattr(model, name, None)
            if isinstance(head, nn.Linear):
                others[name] = _count(head.weight)
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


def _count(weight: torch.Tensor) -> dict:
    zeros, total = int((weight == 0).sum()), weight.numel()
    return {"zeros": zeros, "total": total, "sparsity": zeros / total}


def _sum_counts(counts) -> dict:
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
