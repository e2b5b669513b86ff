"""Unstructured pruning of BERMo and plain encoders of every family: magnitude, movement and soft-movement pruning
during fine-tuning.

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

The package, a module per job: `arguments` (`PruningArguments`, the cubic schedule), `targets` (which weights, by
family-neutral role), `masks` (the parametrizations), `pruner` (`Pruner`), `trainer` (`PruningCallback`,
`PruningTrainer`, `bermo prune`'s run: `build_pruning_trainer`, `prune_and_evaluate`) and `report`
(`sparsity_report`, `format_sparsity_report`).

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

from .arguments import METHODS, PENALTY_NORMALIZATIONS, PruningArguments, cubic_sparsity, schedule_progress
from .masks import SigmoidThresholdMask, TopKScoreMask, WeightMask
from .pruner import Pruner
from .report import format_sparsity_report, sparsity_report
from .targets import ENCODER_MATRICES, ROLES, encoder_layers, layer_matrices, linear_role, prunable_weights
from .trainer import (
    PRUNING_STATE_FILE,
    REPORT_FILENAME,
    SCORES_GROUP_NAME,
    PruningBermoTrainer,
    PruningCallback,
    PruningTrainer,
    build_pruning_trainer,
    prune_and_evaluate,
    pruning_report,
)

__all__ = [
    "ENCODER_MATRICES",
    "METHODS",
    "PENALTY_NORMALIZATIONS",
    "PRUNING_STATE_FILE",
    "Pruner",
    "PruningArguments",
    "PruningBermoTrainer",
    "PruningCallback",
    "PruningTrainer",
    "REPORT_FILENAME",
    "ROLES",
    "SCORES_GROUP_NAME",
    "SigmoidThresholdMask",
    "TopKScoreMask",
    "WeightMask",
    "build_pruning_trainer",
    "cubic_sparsity",
    "encoder_layers",
    "format_sparsity_report",
    "layer_matrices",
    "linear_role",
    "prunable_weights",
    "prune_and_evaluate",
    "pruning_report",
    "schedule_progress",
    "sparsity_report",
]
