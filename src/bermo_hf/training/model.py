"""Which model a run fine-tunes (`ModelArguments`) and loading it: BERMo of the checkpoint's family, or the plain
family model for a baseline."""

import dataclasses

from transformers import PreTrainedModel

from ..checkpoints import config_as, load_checkpoint_config
from ..configuration_bermo import LAYER_MIX_INITS
from ..errors import BermoUsageError
from ..modeling_bermo import family_model_class, family_of
from .labels import LabelSpace


@dataclasses.dataclass
class ModelArguments:
    """Which model `bermo train` fine-tunes, and how its layer mix learns."""

    model_name_or_path: str = dataclasses.field(
        metadata={"help": "BERT or BERMo checkpoint to start from: a local folder or a Hub id."}
    )
    baseline: bool = dataclasses.field(
        default=False,
        metadata={
            "help": "Train the family's plain classifier (BertForSequenceClassification, ...) instead of BERMo, "
            "everything else identical."
        },
    )
    mix_learning_rate: float | None = dataclasses.field(
        default=None,
        metadata={"help": "Learning rate of the layer mix (weights and gamma); defaults to --learning_rate."},
    )
    layer_mix_init: str | None = dataclasses.field(
        default=None,
        metadata={"help": "Start of the mix of a BERT checkpoint: uniform or last.", "choices": list(LAYER_MIX_INITS)},
    )
    layer_mix_dropout: float | None = dataclasses.field(
        default=None, metadata={"help": "Layer dropout of the mix in [0, 1) (a BERT checkpoint's default: 0)."}
    )


def load_model(model_args: ModelArguments, label_space: LabelSpace, checkpoint_config=None) -> PreTrainedModel:
    """The model to fine-tune: the BERMo sequence classifier of the checkpoint's family
    (`BermoForSequenceClassification` for BERT, `BermoRobertaForSequenceClassification`, ...) from a plain or BERMo
    checkpoint, or, with `model_args.baseline`, the family's own classifier (`BertForSequenceClassification`, ...)
    from the same one.

    `checkpoint_config`: the checkpoint's configuration when the caller has read it already (read here otherwise);
    the model's configuration is built from it, not read again."""
    if checkpoint_config is None:
        checkpoint_config = load_checkpoint_config(model_args.model_name_or_path)
    try:
        bermo_class = family_of(checkpoint_config.model_type).model_class("sequence-classification")
    except ValueError as error:
        raise BermoUsageError(f"{model_args.model_name_or_path}: {error}") from None
    settings = {
        "num_labels": label_space.num_labels,
        "id2label": label_space.id2label,
        "label2id": label_space.label2id,
        "problem_type": "regression" if label_space.is_regression else "single_label_classification",
    }
    if model_args.baseline:
        model_class = family_model_class(bermo_class)
    else:
        model_class = bermo_class
        for name in ("layer_mix_init", "layer_mix_dropout"):
            if getattr(model_args, name) is not None:
                settings[name] = getattr(model_args, name)
    config = config_as(model_class, checkpoint_config, **settings)
    # A head trained for other labels is re-initialized rather than refused.
    return model_class.from_pretrained(model_args.model_name_or_path, config=config, ignore_mismatched_sizes=True)
