"""The labelled texts of a fine-tuning run: where they come from (`DataArguments`), reading and checking them, and
tokenizing them for the `Trainer`."""

import dataclasses
from pathlib import Path

from transformers import PreTrainedTokenizerBase, TrainingArguments

from ..errors import BermoUsageError
from .labels import LabelSpace

DATA_FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json"}
DEFAULT_TEXT_COLUMNS = ("text", "sentence")


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


def take_label_names_as_class_names(data_args: DataArguments, training_args: TrainingArguments) -> None:
    """`bermo train --label_names neg,pos` (or `neg pos`) names the classes: the flag is `TrainingArguments`', whose
    own meaning (the input keys holding the labels) is moot here, where the key is always `labels`. Moves its values
    to `data_args.class_names` and resets it."""
    if training_args.label_names:
        if data_args.class_names is not None:
            raise BermoUsageError("give the class names once: --label_names or --class_names, not both.")
        data_args.class_names = ",".join(training_args.label_names)
        training_args.label_names = None


def describe_training_data(data_args: DataArguments) -> str:
    if data_args.dataset_name:
        return f"`{data_args.dataset_name}`" + (
            f" (`{data_args.dataset_config_name}`)" if data_args.dataset_config_name else ""
        )
    files = [Path(path).name for path in (data_args.train_file, data_args.validation_file) if path]
    return "Fine-tuned on " + " with validation on ".join(f"`{name}`" for name in files) + "."
