"""Dynamic int8 quantization of an exported ONNX graph with onnxruntime's own tool, and its check against PyTorch on
labelled texts.

An int8 graph cannot match PyTorch's logits to 1e-4, so it is judged by what a classifier is for: its predicted
labels. `compare_on_sample` runs PyTorch and any number of ONNX graphs on the same batches (tokenized once, each
engine on the same number of threads, runs interleaved batch by batch so that drifts in machine load hit every
engine alike) and returns, per engine, the accuracy on the sample's labels, the share of predicted labels equal to
PyTorch's, and sentences per second (wall clock and CPU time, tokenization excluded).

- `quantize_onnx`: `onnxruntime.quantization.quantize_dynamic` with int8 (QInt8) weights; activations are quantized
  on the fly at run time. Needs only the `onnx` extra (`pip install 'bermo-hf[onnx]'`).
- `read_labelled_sample`: a labelled csv/tsv/json(l) file, read as `bermo train` reads its data, with its labels
  turned into the model's class ids.
- `built_in_sample`: the sentences of the shipped sentiment sample without their labels, for a check of the label
  agreement alone when no labelled file is given.
"""

import csv
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import BermoError, BermoUsageError
from .modeling_bermo import task_of
from .training import DataArguments, load_raw_datasets

# The quantized graph's file name beside `model.onnx`: optimum's `ORTQuantizer` and transformers.js use it too.
QUANTIZED_ONNX_FILENAME = "model_quantized.onnx"
QUANTIZATION_TYPES = ("int8",)
PYTORCH = "PyTorch"
# The shipped sentiment sample (`bermo demo`'s data): its sentences are the check texts when no labelled file is given.
BUILT_IN_FILES = ("sentiment_dev.tsv", "sentiment_train.tsv")


@dataclasses.dataclass
class LabelledSample:
    """Texts (and second texts of pairs) to check a classifier on; `labels` are the model's class ids, or `None`
    for texts without labels (then only the agreement with PyTorch is measured)."""

    texts: list[str]
    labels: list[int] | None
    source: str
    text_pairs: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)


@dataclasses.dataclass
class EngineResult:
    """One engine (PyTorch or an ONNX graph) on a `LabelledSample`."""

    name: str
    predictions: np.ndarray
    # Share of correct predictions; `None` for a sample without labels.
    accuracy: float | None
    # Share of predictions equal to PyTorch's (1.0 for PyTorch itself).
    agreement: float
    wall_seconds: float
    cpu_seconds: float
    num_texts: int

    @property
    def sentences_per_s(self) -> float:
        """Sentences per second of wall clock."""
        return self.num_texts / self.wall_seconds

    @property
    def cpu_sentences_per_s(self) -> float:
        """Sentences per second of this process's CPU time (which waiting for a core does not inflate)."""
        return self.num_texts / self.cpu_seconds


def check_quantizable(model: nn.Module) -> None:
    """Raises `BermoUsageError` unless `model` is a sequence classifier with two classes or more: the quantized
    graph is checked on its predicted labels."""
    class_name = type(model).__name__
    if task_of(class_name).name != "sequence-classification":
        raise BermoUsageError(
            f"--quantize needs a sequence classifier (its int8 graph is checked on predicted labels); this checkpoint "
            f"is a {class_name}."
        )
    if model.config.num_labels < 2:
        raise BermoUsageError(
            "--quantize needs a classifier with two classes or more (its int8 graph is checked on predicted labels); "
            "this checkpoint is a regression (num_labels 1)."
        )


class _NoPreprocessingAdvice(logging.Filter):
    """Drops `quantize_dynamic`'s advice to run its shape-inference pre-processing (a root-logger warning on every
    call): the graph from `torch.onnx.export(..., dynamo=True)` has its shapes already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


def quantize_onnx(float_path: str | Path, quantized_path: str | Path) -> Path:
    """Writes the dynamically quantized graph of the ONNX graph at `float_path` to `quantized_path`, with
    `onnxruntime.quantization.quantize_dynamic`: weights of MatMul and Gather (the embeddings) as int8 (QInt8),
    activations quantized at run time. Returns `quantized_path`."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise BermoError("int8 quantization needs onnxruntime: pip install 'bermo-hf[onnx]'.") from None
    advice = _NoPreprocessingAdvice()
    logging.getLogger().addFilter(advice)
    try:
        quantize_dynamic(Path(float_path), Path(quantized_path), weight_type=QuantType.QInt8)
    finally:
        logging.getLogger().removeFilter(advice)
    return Path(quantized_path)


def onnx_session(path: str | Path, threads: int | None = 1):
    """An onnxruntime CPU session of the graph at `path`, on `threads` intra-op threads (`None`: onnxruntime's
    choice) and one inter-op thread."""
    try:
        import onnxruntime
    except ImportError:
        raise BermoError("running the ONNX graph needs onnxruntime: pip install 'bermo-hf[onnx]'.") from None
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def class_ids(values: list, config, source: str) -> list[int]:
    """The model's class ids of the label `values` of a data file: a value that names a class of `config`
    (`label2id`, e.g. `positive`) is that class; otherwise an integer 0 .. num_labels - 1 is the class of that id.
    Raises `BermoUsageError` (naming the first value that is neither) otherwise."""
    label2id = {str(name): int(class_id) for name, class_id in (config.label2id or {}).items()}
    ids = []
    for value in values:
        text = str(value).strip()
        if text in label2id:
            ids.append(label2id[text])
        elif text.lstrip("-").isdigit() and 0 <= int(text) < config.num_labels:
            ids.append(int(text))
        else:
            names = ", ".join(str(config.id2label[i]) for i in range(config.num_labels))
            raise BermoUsageError(
                f"{source}: label {value!r} is neither a class of the model ({names}) nor a class id 0 .. "
                f"{config.num_labels - 1}."
            )
    return ids


def read_labelled_sample(
    path: str | Path,
    config,
    text_column: str | None = None,
    text_pair_column: str | None = None,
    label_column: str = "label",
    max_samples: int | None = None,
) -> LabelledSample:
    """The texts and labels (as the model's class ids, see `class_ids`) of a csv, tsv, json or jsonl file, read as
    `bermo train` reads its data (`text_column` defaults to `text` or `sentence`); the first `max_samples` rows
    when given. Raises `BermoUsageError` for a missing, empty or unreadable file, a missing column or a label the
    model lacks."""
    try:
        import datasets  # noqa: F401  (bermo train's data reading)
    except ImportError:
        raise BermoError("reading --check_data needs datasets: pip install 'bermo-hf[train]'.") from None
    data_args = DataArguments(
        train_file=str(path),
        text_column=text_column,
        text_pair_column=text_pair_column,
        label_column=label_column,
        max_train_samples=max_samples,
    )
    rows = load_raw_datasets(data_args)["train"]
    pairs = [str(text) for text in rows[text_pair_column]] if text_pair_column else None
    return LabelledSample(
        texts=[str(text) for text in rows[data_args.text_column]],
        labels=class_ids(list(rows[label_column]), config, str(path)),
        source=str(path),
        text_pairs=pairs,
    )


def built_in_sample() -> LabelledSample:
    """The sentences of the shipped sentiment sample (296 short English review sentences), without labels: texts
    on which an int8 graph's predicted labels are compared with PyTorch's when no labelled file is given."""
    texts = []
    for name in BUILT_IN_FILES:
        with (resources.files("bermo_hf") / "data" / name).open(newline="") as file:
            texts += [row["sentence"] for row in csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)]
    return LabelledSample(texts=texts, labels=None, source="the built-in check texts")


@contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _batches(tokenizer, sample: LabelledSample, batch_size: int, max_length: int) -> list[dict[str, torch.Tensor]]:
    batches = []
    for start in range(0, len(sample), batch_size):
        texts = sample.texts[start : start + batch_size]
        pairs = sample.text_pairs[start : start + batch_size] if sample.text_pairs else None
        encoded = tokenizer(texts, pairs, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        batches.append(
            {name: encoded[name] for name in ("input_ids", "attention_mask", "token_type_ids") if name in encoded}
        )
    return batches


def _engines(model: nn.Module, graphs: dict[str, str | Path], threads: int | None) -> dict[str, Callable]:
    """name -> function from a batch of tensors to logits (numpy): PyTorch first, then each graph."""

    def run_torch(batch):
        with torch.inference_mode():
            return model(**batch, return_dict=True).logits.float().numpy()

    engines = {PYTORCH: run_torch}
    for name, path in graphs.items():
        session = onnx_session(path, threads)
        inputs = {node.name for node in session.get_inputs()}

        def run_onnx(batch, session=session, inputs=inputs):
            (logits,) = session.run(["logits"], {key: value.numpy() for key, value in batch.items() if key in inputs})
            return logits

        engines[name] = run_onnx
    return engines


def compare_on_sample(
    model: nn.Module,
    tokenizer,
    graphs: dict[str, str | Path],
    sample: LabelledSample,
    threads: int | None = 1,
    batch_size: int = 32,
    max_length: int = 128,
) -> dict[str, EngineResult]:
    """Runs the sequence classifier `model` (PyTorch, in eval mode) and each ONNX graph of `graphs` (name -> path,
    onnxruntime) on `sample`, in batches of `batch_size` (padded per batch, truncated to `max_length` tokens),
    tokenized once for all engines. Every engine runs on `threads` threads (torch's count is restored afterwards;
    `None`: each library's default). After one untimed warm-up batch per engine, the batches are run interleaved,
    the engines' order rotating from batch to batch. Returns an `EngineResult` per engine, `PyTorch` first."""
    check_quantizable(model)
    if len(sample) == 0:
        raise BermoUsageError(f"{sample.source} holds no texts to check on.")
    model.eval()
    batches = _batches(tokenizer, sample, batch_size, max_length)
    with _torch_threads(threads):
        engines = _engines(model, graphs, threads)
        names = list(engines)
        for name in names:
            engines[name](batches[0])
        logits = {name: [] for name in names}
        wall = dict.fromkeys(names, 0.0)
        cpu = dict.fromkeys(names, 0.0)
        for index, batch in enumerate(batches):
            shift = index % len(names)
            for name in names[shift:] + names[:shift]:
                wall_start, cpu_start = time.perf_counter(), time.process_time()
                logits[name].append(engines[name](batch))
                wall[name] += time.perf_counter() - wall_start
                cpu[name] += time.process_time() - cpu_start
    predictions = {name: np.concatenate(logits[name]).argmax(axis=-1) for name in names}
    labels = None if sample.labels is None else np.asarray(sample.labels)
    return {
        name: EngineResult(
            name=name,
            predictions=predictions[name],
            accuracy=None if labels is None else float((predictions[name] == labels).mean()),
            agreement=float((predictions[name] == predictions[PYTORCH]).mean()),
            wall_seconds=wall[name],
            cpu_seconds=cpu[name],
            num_texts=len(sample),
        )
        for name in names
    }


def file_size_mb(path: str | Path) -> float:
    """Size of a file in MB (10^6 bytes)."""
    return Path(path).stat().st_size / 1e6
