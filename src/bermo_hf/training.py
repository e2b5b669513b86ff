"""Fine-tuning BERMo (or plain BERT, for comparison) on a labelled text file with the standard `Trainer`.

The pieces, usable one by one:

- `ModelArguments`, `DataArguments`: the flags `bermo train` adds to `TrainingArguments` (`HfArgumentParser`).
- `load_raw_datasets` -> `LabelSpace.from_datasets` -> `name_classes` -> `tokenize_datasets`: checked, tokenized
  data whose classes keep the checkpoint's names when they fit.
- `load_model`: the BERMo classifier of the checkpoint's family, or the family's own with `baseline=True`.
- `mix_parameter_groups`: optimizer groups with the layer mix apart (own learning rate, never decayed).
- `LayerWeightsCallback`: logs the layer weights at each evaluation.
- `BermoTrainer`: `Trainer` with the mix's optimizer group and the BERMo model card.
- `build_trainer` (all of the above) and `train_and_evaluate` (train, evaluate, save with the model card, write
  `metrics.json`).
"""

import dataclasses
import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from huggingface_hub import ModelCard
from torch import nn
from transformers import (
    AutoTokenizer,
    DataCollatorWithPadding,
    EvalPrediction,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from .auto import checkpoint_family
from .checkpoints import load_checkpoint_config
from .configuration_bermo import LAYER_MIX_INITS
from .errors import BermoUsageError
from .hub import (
    CARD_FILENAME,
    is_hub_id,
    load_hub_model_card,
    merge_model_card,
    model_card_info,
    set_model_card_info,
    write_model_card,
)
from .layer_weights import LayerWeights, find_layer_mix
from .modeling_bermo import family_model_class
from .output_folders import final_files_written_atomically

logger = logging.getLogger(__name__)

METRICS_FILENAME = "metrics.json"
DATA_FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}
DEFAULT_TEXT_COLUMNS = ("text", "sentence")


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


@dataclasses.dataclass
class DataArguments:
    """Where the labelled texts come from and how they are read."""

    train_file: str | None = dataclasses.field(default=None, metadata={"help": "csv, tsv, json or jsonl file."})
    validation_file: str | None = dataclasses.field(default=None, metadata={"help": "csv, tsv, json or jsonl file."})
    dataset_name: str | None = dataclasses.field(
        default=None, metadata={"help": "A `datasets` dataset instead of files, e.g. glue (needs the network)."}
    )
    dataset_config_name: str | None = dataclasses.field(default=None, metadata={"help": "e.g. sst2 for glue."})
    text_column: str | None = dataclasses.field(
        default=None, metadata={"help": "Column of the texts; defaults to `text` or `sentence`, whichever exists."}
    )
    text_pair_column: str | None = dataclasses.field(
        default=None, metadata={"help": "Column of the second texts, for sentence-pair tasks."}
    )
    label_column: str = dataclasses.field(default="label", metadata={"help": "Column of the labels."})
    class_names: str | None = dataclasses.field(
        default=None,
        metadata={
            "help": "Comma-separated class names (bermo train also takes them as --label_names): of the labels 0, "
            "1, ... when the data numbers its classes, or the data's own labels in the order of their class ids. "
            "Default: the checkpoint's names when they fit the data (e.g. after bermo convert --labels), else the "
            "data's labels."
        },
    )
    max_seq_length: int = dataclasses.field(default=128, metadata={"help": "Longer inputs are truncated."})
    max_train_samples: int | None = dataclasses.field(default=None, metadata={"help": "Use only the first N."})
    max_eval_samples: int | None = dataclasses.field(default=None, metadata={"help": "Use only the first N."})

    def __post_init__(self):
        if self.dataset_name is None and self.train_file is None:
            raise BermoUsageError("give --train_file (csv, tsv, json or jsonl) or --dataset_name.")


def load_raw_datasets(data_args: DataArguments) -> "datasets.DatasetDict":  # noqa: F821
    """Reads the train and (when given) validation data into a `DatasetDict` with splits `train` and `validation`.

    Sets `data_args.text_column` when it was left to its default (`text` or `sentence`, whichever is present).
    Raises `BermoUsageError` for a missing or empty file, an unknown extension, or a missing text or label column."""
    import datasets

    if data_args.dataset_name is not None:
        try:
            raw = datasets.load_dataset(data_args.dataset_name, data_args.dataset_config_name)
        except (ConnectionError, FileNotFoundError, ValueError) as error:
            raise BermoUsageError(f"cannot load dataset {data_args.dataset_name!r}: {error}") from None
        raw = datasets.DatasetDict({split: raw[split] for split in ("train", "validation") if split in raw})
    else:
        files = {"train": data_args.train_file}
        if data_args.validation_file is not None:
            files["validation"] = data_args.validation_file
        raw = datasets.DatasetDict({split: _read_data_file(path) for split, path in files.items()})
    for split, limit in (("train", data_args.max_train_samples), ("validation", data_args.max_eval_samples)):
        if split in raw and limit is not None:
            raw[split] = raw[split].select(range(min(limit, len(raw[split]))))
    for split, dataset in raw.items():
        _check_columns(dataset, data_args, _describe_split(data_args, split))
    return raw


def _describe_split(data_args: DataArguments, split: str) -> str:
    path = data_args.train_file if split == "train" else data_args.validation_file
    return path or f"{data_args.dataset_name} ({split})"


def _read_data_file(path: str) -> "datasets.Dataset":  # noqa: F821
    import datasets

    file = Path(path)
    data_format = DATA_FILE_FORMATS.get(file.suffix.lower())
    if data_format is None:
        raise BermoUsageError(
            f"{path}: unsupported extension {file.suffix!r}; use one of {', '.join(DATA_FILE_FORMATS)}."
        )
    if not file.is_file():
        raise BermoUsageError(f"{path}: no such file.")
    if file.stat().st_size == 0:
        raise BermoUsageError(f"{path} is empty.")
    options = {}
    if file.suffix.lower() == ".tsv":
        # GLUE's tsv files are unquoted: a quote character is part of the text.
        options = {"delimiter": "\t", "quoting": 3}
    if data_format == "csv":
        options["na_filter"] = False  # an empty text stays "", a text reading "NA" stays "NA"
    try:
        dataset = datasets.load_dataset(data_format, data_files=str(file), split="train", **options)
    except (datasets.exceptions.DatasetGenerationError, ValueError) as error:
        if "corresponds to no data" in str(error):  # datasets' way of saying: a header and nothing else
            raise BermoUsageError(f"{path} has no rows.") from None
        cause = error.__cause__ or error
        raise BermoUsageError(f"{path}: cannot be read as {file.suffix[1:]}: {cause}".splitlines()[0]) from None
    if len(dataset) == 0:
        raise BermoUsageError(f"{path} has no rows.")
    return dataset


def _check_columns(dataset: "datasets.Dataset", data_args: DataArguments, source: str) -> None:  # noqa: F821
    present = dataset.column_names
    if data_args.text_column is None:
        data_args.text_column = next((name for name in DEFAULT_TEXT_COLUMNS if name in present), None)
        if data_args.text_column is None:
            raise BermoUsageError(
                f"{source} has no text column (looked for {' or '.join(DEFAULT_TEXT_COLUMNS)}); "
                f"name it with --text_column; columns present: {', '.join(present)}."
            )
    for flag, column in (
        ("--text_column", data_args.text_column),
        ("--text_pair_column", data_args.text_pair_column),
        ("--label_column", data_args.label_column),
    ):
        if column is not None and column not in present:
            raise BermoUsageError(f"{source} has no column {column!r} ({flag}); columns present: {', '.join(present)}.")


@dataclasses.dataclass
class LabelSpace:
    """The labels of a task, as found in the train split: `labels[i]` is the name of class id `i`.

    A float label column makes a regression task (`num_labels == 1`)."""

    labels: list[str]
    is_regression: bool
    # raw value in the data -> class id
    value_to_id: dict

    @classmethod
    def from_datasets(cls, raw: "datasets.DatasetDict", label_column: str) -> "LabelSpace":  # noqa: F821
        """Builds the label list from `raw["train"]` and checks that `raw["validation"]` (if any) has no other label.

        Raises `BermoUsageError` when it has."""
        import datasets

        feature = raw["train"].features[label_column]
        if isinstance(feature, datasets.ClassLabel):
            space = cls(list(feature.names), False, {i: i for i in range(feature.num_classes)})
        elif isinstance(feature, datasets.Value) and feature.dtype.startswith("float"):
            space = cls(["score"], True, {})
        else:
            values = sorted(set(raw["train"][label_column]), key=lambda value: (str(type(value)), value))
            space = cls([str(value) for value in values], False, {value: i for i, value in enumerate(values)})
        if "validation" in raw and not space.is_regression:
            unknown = sorted({str(v) for v in raw["validation"][label_column] if v not in space.value_to_id})
            if unknown:
                raise BermoUsageError(
                    f"the validation data has labels absent from the train data: {', '.join(unknown[:10])}"
                    f"{' ...' if len(unknown) > 10 else ''} (train labels: {', '.join(space.labels)})."
                )
        return space

    @property
    def num_labels(self) -> int:
        return 1 if self.is_regression else len(self.labels)

    @property
    def id2label(self) -> dict[int, str]:
        return {i: label for i, label in enumerate(self.labels)}

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def is_numbered(self) -> bool:
        """Whether the data's labels are the integers 0 .. n-1 (class names then have to come from elsewhere)."""
        return not self.is_regression and self.labels == [str(i) for i in range(len(self.labels))]

    def renamed(self, names: list[str]) -> "LabelSpace":
        """The same classes under `names`: for numbered labels, `names[i]` names label `i`; otherwise `names` must
        be the data's labels, in the order of the class ids they are to get."""
        if self.is_numbered:
            return LabelSpace(list(names), False, dict(self.value_to_id))
        new_ids = {name: index for index, name in enumerate(names)}
        value_to_id = {value: new_ids[self.labels[class_id]] for value, class_id in self.value_to_id.items()}
        return LabelSpace(list(names), False, value_to_id)

    def encode(self, values: list) -> list:
        """Raw label values -> model targets (class ids, or floats for regression)."""
        if self.is_regression:
            return [float(value) for value in values]
        return [self.value_to_id[value] for value in values]


def name_classes(label_space: LabelSpace, checkpoint_config, label_names: str | None = None) -> LabelSpace:
    """The class names a fine-tuned model gets, as transformers' `run_glue.py` chooses them:

    - `label_names` (`--label_names a,b,...`, `DataArguments.class_names`) when given: names of the labels
      0 .. n-1 when the data numbers its classes, or else the data's own labels in the order of their class ids;
    - otherwise the checkpoint's names (`id2label` of `checkpoint_config`, unless transformers' default `LABEL_i`)
      when they fit: the same number of classes for numbered data labels, the same set of names (kept with the
      checkpoint's class ids) for named ones; a checkpoint whose names do not fit is reported in one warning line and
      the data's labels are used;
    - otherwise the data's labels.

    Raises `BermoUsageError` when `label_names` does not fit the data."""
    if label_names is not None:
        names = [name.strip() for name in label_names.split(",")]
        if label_space.is_regression:
            raise BermoUsageError("--label_names does not apply to a regression (float labels).")
        if len(names) != label_space.num_labels or len(set(names)) != len(names) or "" in names:
            raise BermoUsageError(
                f"--label_names {label_names!r} must name each of the train data's {label_space.num_labels} classes "
                f"({', '.join(label_space.labels)}) once, comma-separated."
            )
        if not label_space.is_numbered and set(names) != set(label_space.labels):
            raise BermoUsageError(
                f"--label_names {label_names!r} does not match the train data's labels ({', '.join(label_space.labels)}"
                "): name the labels 0, 1, ... of numbered data, or list the data's own labels in the order of their "
                "class ids."
            )
        return label_space.renamed(names)
    id2label = getattr(checkpoint_config, "id2label", None) or {}
    names = [id2label.get(i, id2label.get(str(i))) for i in range(len(id2label))]
    if label_space.is_regression or not names or names == [f"LABEL_{i}" for i in range(len(names))]:
        return label_space
    if label_space.is_numbered and len(names) == label_space.num_labels:
        return label_space.renamed(names)
    if not label_space.is_numbered and set(names) == set(label_space.labels):
        return label_space.renamed(names)
    logger.warning(
        f"the checkpoint was trained with the classes {', '.join(map(str, names))}, but the train data's labels are "
        f"{', '.join(label_space.labels)}: ignoring the checkpoint's class names (give --label_names to name them)."
    )
    return label_space


def tokenize_datasets(
    raw: "datasets.DatasetDict",  # noqa: F821
    tokenizer: PreTrainedTokenizerBase,
    data_args: DataArguments,
    label_space: LabelSpace,
) -> "datasets.DatasetDict":  # noqa: F821
    """Tokenizes (truncating to `max_seq_length`, no padding: the collator pads each batch) and encodes the labels
    as `labels`; the raw columns are dropped."""

    def encode(batch):
        pairs = batch[data_args.text_pair_column] if data_args.text_pair_column else None
        encoded = tokenizer(batch[data_args.text_column], pairs, truncation=True, max_length=data_args.max_seq_length)
        encoded["labels"] = label_space.encode(batch[data_args.label_column])
        return encoded

    return raw.map(encode, batched=True, remove_columns=raw["train"].column_names, desc="Tokenizing")


def build_compute_metrics(label_space: LabelSpace) -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` for the `Trainer`: accuracy, F1 (binary, or macro for several classes) and Matthews
    correlation for classification; Pearson, Spearman and MSE for regression."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, mean_squared_error

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        labels = prediction.label_ids
        if label_space.is_regression:
            scores = np.squeeze(logits, axis=-1)
            return {
                "pearson": float(pearsonr(scores, labels)[0]),
                "spearmanr": float(spearmanr(scores, labels)[0]),
                "mse": float(mean_squared_error(labels, scores)),
            }
        predicted = np.argmax(logits, axis=-1)
        average = "binary" if label_space.num_labels == 2 else "macro"
        return {
            "accuracy": float(accuracy_score(labels, predicted)),
            "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
            "matthews_correlation": float(matthews_corrcoef(labels, predicted)),
        }

    return compute_metrics


def load_model(model_args: ModelArguments, label_space: LabelSpace) -> PreTrainedModel:
    """The model to fine-tune: the BERMo sequence classifier of the checkpoint's family
    (`BermoForSequenceClassification` for BERT, `BermoRobertaForSequenceClassification`, ...) from a plain or BERMo
    checkpoint, or, with
    `model_args.baseline`, the family's own classifier (`BertForSequenceClassification`, ...) from the same one."""
    labels = {
        # A head trained for other labels is re-initialized rather than refused.
        "ignore_mismatched_sizes": True,
        "num_labels": label_space.num_labels,
        "id2label": label_space.id2label,
        "label2id": label_space.label2id,
        "problem_type": "regression" if label_space.is_regression else "single_label_classification",
    }
    try:
        bermo_class = checkpoint_family(model_args.model_name_or_path).model_class("sequence-classification")
    except ValueError as error:
        raise BermoUsageError(f"{model_args.model_name_or_path}: {error}") from None
    if model_args.baseline:
        return family_model_class(bermo_class).from_pretrained(model_args.model_name_or_path, **labels)
    mix_settings = {
        name: value
        for name, value in (
            ("layer_mix_init", model_args.layer_mix_init),
            ("layer_mix_dropout", model_args.layer_mix_dropout),
        )
        if value is not None
    }
    return bermo_class.from_pretrained(model_args.model_name_or_path, **labels, **mix_settings)


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
    `mix_learning_rate` (defaults to `learning_rate`) and no weight decay, since decay would pull the mix towards
    uniform and gamma towards 0. The mix comes last so that the `learning_rate` a `Trainer` logs (its first group's) is
    the model's. Empty groups are left out. `decay_parameter_names` defaults to
    `Trainer.get_decay_parameter_names(model)`.

    Example:

    ```python
    >>> optimizer = torch.optim.AdamW(mix_parameter_groups(model, 0.01, 2e-5, mix_learning_rate=1e-3))
    ```
    """
    mix = find_layer_mix(model)
    mix_parameters = {id(parameter) for parameter in mix.parameters()} if mix is not None else set()
    if decay_parameter_names is None:
        # The Trainer's own rule (its method reads only `model`, on 4.57 and every 5.x), for use without a Trainer.
        decay_parameter_names = Trainer.get_decay_parameter_names(None, model)
    decay_names = set(decay_parameter_names)
    groups = {"decay": [], "no_decay": [], "mix": []}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if id(parameter) in mix_parameters:
            groups["mix"].append(parameter)
        else:
            groups["decay" if name in decay_names else "no_decay"].append(parameter)
    settings = {
        "decay": {"weight_decay": weight_decay, "lr": learning_rate},
        "no_decay": {"weight_decay": 0.0, "lr": learning_rate},
        "mix": {"weight_decay": 0.0, "lr": learning_rate if mix_learning_rate is None else mix_learning_rate},
    }
    return [{"params": params, **settings[name]} for name, params in groups.items() if params]


class LayerWeightsCallback(TrainerCallback):
    """Logs a BERMo model's layer weights after each evaluation.

    Each record (`{"step", "epoch", "weights", "gamma", "expected_layer"}`) is appended to `history` and to the
    trainer state's `log_history` (so it lands in `trainer_state.json`), and logged as one line by the
    `bermo_hf.training` logger on the main process. Does nothing for a model without a mix.

    Example:

    ```python
    >>> trainer = Trainer(model=model, args=args, ..., callbacks=[LayerWeightsCallback()])
    ```
    """

    def __init__(self):
        self.history: list[dict] = []

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        layer_weights = LayerWeights.from_model(model) if model is not None else None
        if layer_weights is None:
            return
        record = {
            "step": state.global_step,
            "epoch": state.epoch,
            "weights": layer_weights.weights,
            "gamma": layer_weights.gamma,
            "expected_layer": layer_weights.expected_layer,
        }
        self.history.append(record)
        state.log_history.append(
            {"layer_weights": record["weights"], "layer_mix_gamma": record["gamma"], "step": record["step"]}
        )
        if state.is_world_process_zero:
            shares = " ".join(
                f"{name.replace('layer ', 'L')}={weight:.3f}"
                for name, weight in zip(layer_weights.depth_names, layer_weights.weights, strict=True)
            )
            logger.info(
                f"layer weights at step {state.global_step}: {shares} gamma={layer_weights.gamma:.3f} "
                f"expected layer={layer_weights.expected_layer:.2f}"
            )


class BermoTrainer(Trainer):
    """The standard `Trainer`, plus:

    - the loss is taken as the model computes it (a batch mean), also with several processes;
    - the layer mix in an optimizer group of its own (`mix_learning_rate`, never weight decay), see
      `mix_parameter_groups`;
    - for a BERMo model, `create_model_card` (run by `push_to_hub`) writes the BERMo model card, with the base
      model, data and last evaluation scores, instead of the generic Trainer card, merged into the card the Hub
      repository already has.
    """

    def __init__(self, *args, mix_learning_rate: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.mix_learning_rate = mix_learning_rate
        # The BERT and BERMo heads average their loss over the batch themselves and ignore `num_items_in_batch`;
        # taking their `**kwargs` for loss arguments, the Trainer would multiply the loss by the number of processes.
        self.model_accepts_loss_kwargs = False

    def create_optimizer(self, model=None):
        optimizer_model = self.model if model is None else model
        if self.optimizer is None:
            optimizer_class, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, optimizer_model)
            # Optimizers that build their own groups (GaLore, LOMO, layer-wise...) keep the Trainer's way.
            if not {"params", "model", "optimizer_dict"} & set(optimizer_kwargs):
                groups = mix_parameter_groups(
                    optimizer_model,
                    self.args.weight_decay,
                    self.args.learning_rate,
                    self.mix_learning_rate,
                    self.get_decay_parameter_names(optimizer_model),
                )
                self.optimizer = optimizer_class(groups, **optimizer_kwargs)
        return parent_create_optimizer(BermoTrainer, self, model)

    def create_model_card(
        self,
        *args,
        dataset: str | list[str] | None = None,
        finetuned_from: str | None = None,
        tags: str | list[str] | None = None,
        language: str | None = None,
        license: str | None = None,
        **kwargs,
    ):
        """For a BERMo model (run by `push_to_hub`): BERMo's card in `args.output_dir/README.md`, with the base model,
        data and last evaluation scores, merged into the card the Hub repository already has (its metadata and prose
        kept, `tags` added); without a Hub card, into the folder's own. Other models get the `Trainer`'s card."""
        model = self.accelerator.unwrap_model(self.model)
        if find_layer_mix(model) is None or not isinstance(model, PreTrainedModel):
            return super().create_model_card(
                *args,
                dataset=dataset,
                finetuned_from=finetuned_from,
                tags=tags,
                language=language,
                license=license,
                **kwargs,
            )
        if not self.is_world_process_zero():
            return None
        info = model_card_info(model)
        repo_id = getattr(self, "hub_model_id", None) or self.args.hub_model_id
        updates = {
            "repo_id": repo_id or info.repo_id,
            "metrics": last_eval_metrics(self.state.log_history) or info.metrics,
        }
        if finetuned_from:
            updates["base_model"] = finetuned_from
        if dataset:
            updates["datasets"] = [dataset] if isinstance(dataset, str) else list(dataset)
        set_model_card_info(model, **updates)
        write_model_card(model, self.args.output_dir)  # merged into the folder's card
        card_path = Path(self.args.output_dir, CARD_FILENAME)
        hub_card = load_hub_model_card(repo_id, token=self.args.hub_token) if repo_id else None
        local_card = ModelCard(card_path.read_text(encoding="utf-8"), ignore_metadata_errors=True)
        card = merge_model_card(hub_card, local_card, tags=[tags] if isinstance(tags, str) else tags)
        for key, value in (("language", language), ("license", license)):
            if value is not None:
                card.data[key] = value
        card.save(card_path)
        return None


def parent_create_optimizer(trainer_class: type, trainer: Trainer, model=None):
    """`super(trainer_class, trainer).create_optimizer(model)` on every transformers release the package accepts:
    4.57's `create_optimizer` takes no `model`."""
    parent = super(trainer_class, trainer)
    return parent.create_optimizer() if model is None else parent.create_optimizer(model)


def eval_scores(metrics: dict) -> dict[str, float]:
    """The `eval_*` scores of a metrics record (a `Trainer` log entry or `evaluate()`'s result), without its timings
    (`eval_runtime`, `eval_*_per_second`)."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key.startswith("eval_") and not key.endswith(("_runtime", "_per_second")) and isinstance(value, (int, float))
    }


def last_eval_metrics(log_history: list[dict]) -> dict[str, float]:
    """The scores of the last evaluation in a `Trainer`'s log history, without the `eval_` prefix and timings."""
    for record in reversed(log_history):
        if any(key.startswith("eval_") for key in record):
            return {key.removeprefix("eval_"): value for key, value in eval_scores(record).items()}
    return {}


def take_label_names_as_class_names(data_args: DataArguments, training_args: TrainingArguments) -> None:
    """`bermo train --label_names neg,pos` (or `neg pos`) names the classes: the flag is `TrainingArguments`', whose
    own meaning (the input keys holding the labels) is moot here, where the key is always `labels`. Moves its values
    to `data_args.class_names` and resets it."""
    if training_args.label_names:
        if data_args.class_names is not None:
            raise BermoUsageError("give the class names once: --label_names or --class_names, not both.")
        data_args.class_names = ",".join(training_args.label_names)
        training_args.label_names = None


def build_trainer(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
    trainer_class: type[BermoTrainer] | None = None,
    **trainer_kwargs,
) -> BermoTrainer:
    """Everything `bermo train` does before training: reads and checks the data, builds the label space, loads the
    tokenizer and the model (BERMo, or BERT with `model_args.baseline`; seeded with `training_args.seed`), tokenizes,
    and returns a `BermoTrainer` with dynamic padding, the task's metrics and a `LayerWeightsCallback`.

    `trainer_class` (a `BermoTrainer` subclass) and `trainer_kwargs` (its extra arguments) let other commands reuse
    all of this. `trainer.label_space` holds the `LabelSpace`. Raises `BermoUsageError` on bad data (see
    `load_raw_datasets`)."""
    raw = load_raw_datasets(data_args)
    label_space = LabelSpace.from_datasets(raw, data_args.label_column)
    checkpoint_config = load_checkpoint_config(model_args.model_name_or_path)
    label_space = name_classes(label_space, checkpoint_config, data_args.class_names)
    tokenizer = AutoTokenizer.from_pretrained(model_args.model_name_or_path)
    set_seed(training_args.seed)
    model = load_model(model_args, label_space)
    with training_args.main_process_first(desc="tokenizing"):
        tokenized = tokenize_datasets(raw, tokenizer, data_args, label_space)
    if find_layer_mix(model) is not None:
        base_model = model_args.model_name_or_path if is_hub_id(model_args.model_name_or_path) else None
        set_model_card_info(
            model,
            base_model=base_model or model_card_info(model).base_model,
            datasets=[data_args.dataset_name] if data_args.dataset_name else [],
            training_data=_describe_training_data(data_args),
            repo_id=training_args.hub_model_id,
        )
    trainer = (trainer_class or BermoTrainer)(
        model=model,
        args=training_args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized.get("validation"),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=build_compute_metrics(label_space),
        callbacks=[LayerWeightsCallback(), *(callbacks or [])],
        mix_learning_rate=model_args.mix_learning_rate,
        **trainer_kwargs,
    )
    trainer.label_space = label_space
    return trainer


def _describe_training_data(data_args: DataArguments) -> str:
    if data_args.dataset_name:
        return f"`{data_args.dataset_name}`" + (
            f" (`{data_args.dataset_config_name}`)" if data_args.dataset_config_name else ""
        )
    files = [Path(path).name for path in (data_args.train_file, data_args.validation_file) if path]
    return "Fine-tuned on " + " with validation on ".join(f"`{name}`" for name in files) + "."


def train_and_evaluate(
    trainer: Trainer, resume_from_checkpoint: str | None = None, output_dir: str | Path | None = None
) -> dict:
    """Trains, evaluates on the validation split (if any), saves the final (or best, with `load_best_model_at_end`)
    model Hub-ready into `output_dir` (defaults to `trainer.args.output_dir`), and writes `metrics.json` there.

    The final files are saved beside and renamed into place one by one (see
    `output_folders.final_files_written_atomically`): each is complete or absent, and nothing else in the folder is
    touched. A BERMo model gets its model card and chart (`hub.write_model_card`, merged into a card already in the
    folder). Checkpoints are the `Trainer`'s own, in `trainer.args.output_dir` as it saves them (no card, as for any
    transformers model).

    Returns the metrics: the train and eval scores, plus `layer_weights` (see `LayerWeights.to_dict`; None for
    plain BERT) and, when several processes trained, `layer_weights_by_rank` (each rank's mix weights)."""
    from accelerate.utils import gather_object

    train_output = trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    metrics = dict(train_output.metrics)
    if trainer.eval_dataset is not None:
        metrics.update(trainer.evaluate())
    model = trainer.accelerator.unwrap_model(trainer.model)
    layer_weights = LayerWeights.from_model(model)
    metrics["model_type"] = model.config.model_type if layer_weights is None else "bermo"
    metrics["layer_weights"] = None if layer_weights is None else layer_weights.to_dict()
    if trainer.args.world_size > 1 and layer_weights is not None:
        metrics["layer_weights_by_rank"] = gather_object([layer_weights.weights + [layer_weights.gamma]])
    if layer_weights is not None:
        set_model_card_info(model, metrics=last_eval_metrics(trainer.state.log_history))
    with final_files_written_atomically(output_dir or trainer.args.output_dir) as staging:
        # `_internal_call`: with `push_to_hub` set, a public `save_model` would also upload, before the files are in
        # place; the caller pushes once they are.
        trainer.save_model(str(staging), _internal_call=True)
        if trainer.is_world_process_zero():
            if layer_weights is not None:
                write_model_card(model, staging)  # merged into the card already in the output folder
            Path(staging, METRICS_FILENAME).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
