"""Optimizer parameter groups: the model's own (weight decay or not, as the `Trainer` decides) and groups trained
apart from them (the layer mix with its own learning rate, pruning's importance scores), for a custom loop
(`mix_parameter_groups`) or a `Trainer` (`ParameterGroupsTrainer`'s one hook, `separate_parameter_groups`)."""

from torch import nn
from transformers import Trainer
from transformers.trainer_pt_utils import get_parameter_names

from ..errors import BermoUsageError
from ..layer_weights import find_layer_mix

# The name of the optimizer parameter group that holds the layer mix.
MIX_GROUP_NAME = "layer_mix"


def layer_mix_group(model: nn.Module, learning_rate: float) -> dict | None:
    """The layer mix's own parameter group (`weights`, `gamma`): `learning_rate`, never weight decay, since decay would
    pull the mix towards uniform and gamma towards 0. None for a model without a mix."""
    mix = find_layer_mix(model)
    if mix is None:
        return None
    return {"params": list(mix.parameters()), "lr": learning_rate, "weight_decay": 0.0, "name": MIX_GROUP_NAME}


def parameter_groups(
    model: nn.Module,
    weight_decay: float,
    learning_rate: float,
    decay_parameter_names: list[str],
    separate_groups: list[dict] = (),
) -> list[dict]:
    """The trainable parameters of `model` in optimizer groups: those in `decay_parameter_names` with `weight_decay`,
    the others without, both at `learning_rate`; then each of `separate_groups` (a dict with `params` and its own
    settings), whose parameters the first two leave out. The model's groups come first so that the learning rate a
    `Trainer` logs (its first group's) is the model's. Empty groups and frozen parameters are left out."""
    separate = {id(parameter) for group in separate_groups for parameter in group["params"]}
    decay_names = set(decay_parameter_names)
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and id(parameter) not in separate:
            (decay if name in decay_names else no_decay).append(parameter)
    groups = [
        {"params": decay, "weight_decay": weight_decay, "lr": learning_rate},
        {"params": no_decay, "weight_decay": 0.0, "lr": learning_rate},
    ]
    for group in separate_groups:
        groups.append({**group, "params": [parameter for parameter in group["params"] if parameter.requires_grad]})
    return [group for group in groups if group["params"]]


# The `Trainer`'s rule for parameters without weight decay (`Trainer.get_decay_parameter_names`, 4.57 and every 5.x).
_NO_DECAY_NAME_PATTERNS = [r"bias", r"layernorm", r"rmsnorm", r"(?:^|\.)norm(?:$|\.)", r"_norm(?:$|\.)"]


def default_decay_parameter_names(model: nn.Module) -> list[str]:
    """The parameters a `Trainer` decays, for use without one: all but biases and normalization weights."""
    return get_parameter_names(model, [nn.LayerNorm], _NO_DECAY_NAME_PATTERNS)


def mix_parameter_groups(
    model: nn.Module,
    weight_decay: float,
    learning_rate: float,
    mix_learning_rate: float | None = None,
    decay_parameter_names: list[str] | None = None,
) -> list[dict]:
    """Optimizer parameter groups for a BERMo (or any) model, for a plain `Trainer` (`optimizers=`) or a custom loop.

    Three groups of trainable parameters, in this order: everything with `weight_decay`, and biases and LayerNorm
    weights without decay, as the standard `Trainer` does; then the layer mix (`weights`, `gamma`) with
    `mix_learning_rate` (defaults to `learning_rate`) and no weight decay (`layer_mix_group`). Empty groups are left
    out. `decay_parameter_names` defaults to `default_decay_parameter_names(model)`; inside a `Trainer`, pass its
    `get_decay_parameter_names(model)`.

    Example:

    ```python
    >>> optimizer = torch.optim.AdamW(mix_parameter_groups(model, 0.01, 2e-5, mix_learning_rate=1e-3))
    ```
    """
    mix_group = layer_mix_group(model, learning_rate if mix_learning_rate is None else mix_learning_rate)
    if decay_parameter_names is None:
        decay_parameter_names = default_decay_parameter_names(model)
    return parameter_groups(model, weight_decay, learning_rate, decay_parameter_names, [mix_group] if mix_group else [])


class ParameterGroupsTrainer(Trainer):
    """A `Trainer` whose optimizer trains some parameters in groups of their own: `separate_parameter_groups(model)`
    is the one hook, which subclasses extend (`return super().separate_parameter_groups(model) + [...]`); every other
    trainable parameter gets the `Trainer`'s learning rate and weight decay rule (`parameter_groups`)."""

    def separate_parameter_groups(self, model: nn.Module) -> list[dict]:
        """Groups (`params` and their own settings: `lr`, `weight_decay`, a `name`) trained apart from the model's
        other parameters; none here."""
        return []

    def create_optimizer(self, model=None):
        """The `Trainer`'s optimizer class and settings over `parameter_groups(...)` with the separate groups."""
        optimizer_model = self.model if model is None else model
        if self.optimizer is None:
            optimizer_class, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, optimizer_model)
            separate_groups = [group for group in self.separate_parameter_groups(optimizer_model) if group["params"]]
            if {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
                if separate_groups:  # GaLore, LOMO, layer-wise ...: they build their own groups
                    names = ", ".join(group.get("name", "?") for group in separate_groups)
                    raise BermoUsageError(
                        f"--optim {self.args.optim} builds its own parameter groups, but {names} need groups of "
                        "their own (own learning rate, no weight decay): choose another --optim."
                    )
            else:
                decay_names = self.get_decay_parameter_names(optimizer_model)
                groups = parameter_groups(
                    optimizer_model, self.args.weight_decay, self.args.learning_rate, decay_names, separate_groups
                )
                self.optimizer = optimizer_class(groups, **optimizer_kwargs)
        # 4.57's `create_optimizer` takes no `model`.
        return super().create_optimizer() if model is None else super().create_optimizer(model)
