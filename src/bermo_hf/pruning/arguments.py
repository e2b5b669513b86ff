"""What to prune, how and on which schedule: `PruningArguments` and Zhu & Gupta's cubic sparsity schedule."""

import math
from dataclasses import dataclass, field

from ..errors import PruningArgumentError

METHODS = ("magnitude", "movement", "soft-movement")
PENALTY_NORMALIZATIONS = ("per-matrix", "global")


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
            self._check_soft_movement()
        else:
            self._check_sparsity_targets()
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

    def _check_soft_movement(self) -> None:
        """soft-movement's flags: a penalty, a normalization and a threshold, no sparsity target."""
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
            raise PruningArgumentError(f"--penalty={self.penalty!r} is out of range: it must be a finite number >= 0.")
        if self.penalty_normalization not in PENALTY_NORMALIZATIONS:
            raise PruningArgumentError(
                f"--penalty_normalization {self.penalty_normalization!r} is not supported: use one of "
                f"{', '.join(PENALTY_NORMALIZATIONS)}."
            )
        if not 0.0 < self.score_threshold < 1.0:
            raise PruningArgumentError(
                f"--score_threshold={self.score_threshold!r} is out of range: it must lie in (0, 1)."
            )

    def _check_sparsity_targets(self) -> None:
        """magnitude's and movement's flags: a sparsity target above the initial one, no soft-movement flag."""
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
