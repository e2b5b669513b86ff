"""Pruning inside a `Trainer`: `PruningCallback` (any `Trainer`), `PruningTrainer` (scores in their own optimizer
group, the soft-movement penalty, the pruning state beside every checkpoint) and `bermo prune`'s whole run."""

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from transformers import TrainerCallback

from ..errors import PruningArgumentError
from ..training import (
    BermoTrainer,
    DataArguments,
    ModelArguments,
    ParameterGroupsTrainer,
    build_trainer,
    eval_scores,
    train_and_evaluate,
)
from .arguments import PruningArguments
from .pruner import Pruner, holds_legacy_pruning_state
from .report import sparsity_report

# Name of the optimizer parameter group that holds the importance scores.
SCORES_GROUP_NAME = "pruning_scores"
# The file beside a checkpoint's `model.safetensors` that holds what resuming a pruning run needs.
PRUNING_STATE_FILE = "pruning_state.safetensors"


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


class PruningTrainer(ParameterGroupsTrainer):
    """A `Trainer` that prunes while it fine-tunes: adds a [`PruningCallback`], puts the importance scores in an
    optimizer group of their own (learning rate `scores_learning_rate`, no weight decay), and adds the soft-movement
    penalty to the training loss.

    Combines with other `Trainer` subclasses: `class MyPruningTrainer(PruningTrainer, MyTrainer)`; the scores' group
    comes through the one optimizer hook, `ParameterGroupsTrainer.separate_parameter_groups`.

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

    def separate_parameter_groups(self, model) -> list[dict]:
        """The importance scores' group (`scores_learning_rate`, no weight decay), after those of the parent classes."""
        groups = super().separate_parameter_groups(model)
        scores = self.pruner.score_parameters()
        if scores:
            groups.append(
                {
                    "params": scores,
                    "lr": self.pruner.args.scores_learning_rate,
                    "weight_decay": 0.0,
                    "name": SCORES_GROUP_NAME,
                }
            )
        return groups

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
        elif not holds_legacy_pruning_state(Path(resume_from_checkpoint)):
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


# The report `prune_and_evaluate` writes beside the pruned model.
REPORT_FILENAME = "pruning_report.json"


class PruningBermoTrainer(PruningTrainer, BermoTrainer):
    """`bermo train`'s `BermoTrainer` (layer mix in its own optimizer group, BERMo model card) that also prunes."""


def build_pruning_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    pruning_args: PruningArguments,
    training_args,
) -> PruningBermoTrainer:
    """Everything `bermo prune` does before training: `bermo train`'s data, model, metrics and callbacks (see
    `training.build_trainer`), in a `PruningBermoTrainer` that attaches the pruning masks to the model.

    `trainer.label_space` holds the `LabelSpace`, `trainer.pruner` the `Pruner`."""
    return build_trainer(
        model_args, data_args, training_args, trainer_class=PruningBermoTrainer, pruning_args=pruning_args
    )


def pruning_report(trainer: PruningTrainer, metrics: dict) -> dict:
    """What a pruning run reports: the settings, `sparsity_report` of the (unwrapped) model and the dev scores."""
    return {
        "method": trainer.pruner.args.method,
        "settings": dict(vars(trainer.pruner.args)),
        "max_steps": trainer.state.max_steps,
        "model_type": metrics.get("model_type"),
        "sparsity": sparsity_report(trainer.accelerator.unwrap_model(trainer.model)),
        "eval_metrics": eval_scores(metrics),
    }


def prune_and_evaluate(trainer: PruningTrainer, resume_from_checkpoint: str | None = None) -> dict:
    """Trains while pruning, evaluates the pruned model, and saves it with `metrics.json` and `pruning_report.json`
    (`REPORT_FILENAME`) into `trainer.args.output_dir`, all staged together (see `training.train_and_evaluate`).

    `resume_from_checkpoint`: a checkpoint saved during pruning, whose masks, scores and schedule position it
    continues from. Returns the report (`pruning_report`)."""
    reports = []

    def write_report(folder: Path, metrics: dict) -> None:
        reports.append(pruning_report(trainer, metrics))
        Path(folder, REPORT_FILENAME).write_text(json.dumps(reports[0], indent=2) + "\n")

    metrics = train_and_evaluate(trainer, resume_from_checkpoint=resume_from_checkpoint, write_more_files=write_report)
    return reports[0] if reports else pruning_report(trainer, metrics)
