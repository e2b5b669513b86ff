"""`Pruner`: attaches the masks to a model, moves them along the schedule, saves and restores them, applies them."""

from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn
from torch.nn.utils import parametrize

from ..errors import PruningArgumentError
from .arguments import PruningArguments, schedule_progress
from .masks import MASK_CLASSES, top_k_masks
from .report import count_zeros, sparsity_report, sum_counts
from .targets import prunable_weights

# A pruned module's tensors in the state dict of its parametrization (torch.nn.utils.parametrize's names) -> their
# names in the pruning state file (`PRUNING_STATE_FILE`), after the module's path.
_STATE_NAMES = {"original": "weight_original", "0.mask": "weight_mask", "0.scores": "weight_scores"}
# Where checkpoints of bermo-hf 0.1 kept the same tensors: in `model.safetensors`, beside the masked weight.
_LEGACY_CHECKPOINT_KEYS = {
    "original": "pruning.weight_original",
    "0.mask": "pruning.weight_mask",
    "0.scores": "pruning.weight_scores",
}


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
        mask_class = MASK_CLASSES[args.method]
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
            new_masks = top_k_masks(importance, sparsity, self.args.global_pruning, tie_breakers)
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
            return sum_counts(count_zeros(module.weight) for module in self.targets.values())["sparsity"]
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


def holds_legacy_pruning_state(checkpoint: Path) -> bool:
    weights = checkpoint / "model.safetensors"
    if not weights.is_file():
        return False
    with safe_open(str(weights), framework="pt") as handle:
        return any(key.endswith(_LEGACY_CHECKPOINT_KEYS["original"]) for key in handle.keys())
