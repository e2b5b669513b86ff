"""Fine-tuning BERMo (or the plain family model, for comparison) on a labelled text file with the standard `Trainer`.

The pieces, usable one by one:

- `data`: `DataArguments`, `load_raw_datasets`, `tokenize_datasets`: the flags `bermo train` adds to
  `TrainingArguments` (`HfArgumentParser`), and checked, tokenized data.
- `labels`: `LabelSpace.from_datasets` -> `name_classes`: classes that keep the checkpoint's names when they fit.
- `metrics`: `build_compute_metrics` for the `Trainer`, `eval_scores` / `last_eval_metrics` to read scores back.
- `model`: `ModelArguments`, `load_model`: the BERMo classifier of the checkpoint's family, or the family's own with
  `baseline=True`.
- `optimization`: `mix_parameter_groups` (optimizer groups with the layer mix apart, for a custom loop) and
  `ParameterGroupsTrainer` (a `Trainer` whose one hook, `separate_parameter_groups`, adds groups of their own).
- `callbacks`: `LayerWeightsCallback` logs the layer weights at each evaluation.
- `trainer`: `BermoTrainer` (the mix's optimizer group and the BERMo model card), `build_trainer` (all of the above)
  and `train_and_evaluate` (train, evaluate, save with the model card, write `metrics.json`).
"""

from .callbacks import LayerWeightsCallback
from .data import (
    DATA_FILE_FORMATS,
    DataArguments,
    describe_training_data,
    load_raw_datasets,
    take_label_names_as_class_names,
    tokenize_datasets,
)
from .labels import LabelSpace, name_classes
from .metrics import build_compute_metrics, eval_scores, last_eval_metrics
from .model import ModelArguments, load_model
from .optimization import MIX_GROUP_NAME, ParameterGroupsTrainer, layer_mix_group, mix_parameter_groups
from .trainer import METRICS_FILENAME, BermoTrainer, build_trainer, train_and_evaluate

__all__ = [
    "DATA_FILE_FORMATS",
    "METRICS_FILENAME",
    "MIX_GROUP_NAME",
    "BermoTrainer",
    "DataArguments",
    "LabelSpace",
    "LayerWeightsCallback",
    "ModelArguments",
    "ParameterGroupsTrainer",
    "build_compute_metrics",
    "build_trainer",
    "describe_training_data",
    "eval_scores",
    "last_eval_metrics",
    "layer_mix_group",
    "load_model",
    "load_raw_datasets",
    "mix_parameter_groups",
    "name_classes",
    "take_label_names_as_class_names",
    "tokenize_datasets",
    "train_and_evaluate",
]
