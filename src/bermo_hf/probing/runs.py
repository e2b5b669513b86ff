"""SentEval probing of BERT and BERMo (Conneau et al. 2018): which linguistic properties each one captures.

Two settings, run by `run_probing` (and `bermo probe`):

- ``finetune`` (the paper's): BERT and BERMo are fine-tuned from the same checkpoint on each task's ``tr`` split with
  identical hyper-parameters and seeds, the epoch is selected on ``va`` and ``te`` accuracy is reported.
- ``frozen`` (the layer-wise picture of Tenney et al. 2019): every depth's sentence vector (first token, or mean over
  real tokens) is extracted once per checkpoint and task and cached; a scikit-learn logistic regression is trained per
  depth. BERT's figure is the last depth's probe; BERMo's is a linear probe on a learned scalar mix of every depth
  (the checkpoint stays frozen, only the mix and the linear layer are learned).

Each SentEval file holds one ``split<TAB>label<TAB>sentence`` line per example, ``split`` being ``tr``, ``va`` or
``te``. Results are grouped as surface, syntactic and semantic tasks, with group averages; accuracies are percentages.
"""

import hashlib
import json
import math
import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .configuration_bermo import BermoConfig
from .errors import ProbingError
from .layer_weights import LayerWeights
from .modeling_bermo import BermoLayerMix

GROUPS = ("surface", "syntactic", "semantic")
SPLITS = ("tr", "va", "te")
RESULTS_JSON = "probe_results.json"
RESULTS_MARKDOWN = "probe_results.md"
HEATMAP_PNG = "probe_heatmap.png"


@dataclass(frozen=True)
class SentEvalTask:
    """One SentEval probing task: `name` is its file's stem, `senteval_name` SentEval's name for it and
    `short_name` the one of Conneau et al.'s paper (the tables' names)."""

    name: str
    senteval_name: str
    short_name: str
    group: str

    @property
    def file_name(self) -> str:
        return f"{self.name}.txt"


SENTEVAL_TASKS = (
    SentEvalTask("sentence_length", "Length", "SentLen", "surface"),
    SentEvalTask("word_content", "WordContent", "WC", "surface"),
    SentEvalTask("tree_depth", "Depth", "TreeDepth", "syntactic"),
    SentEvalTask("top_constituents", "TopConstituents", "TopConst", "syntactic"),
    SentEvalTask("bigram_shift", "BigramShift", "BShift", "syntactic"),
    SentEvalTask("past_present", "Tense", "Tense", "semantic"),
    SentEvalTask("subj_number", "SubjNumber", "SubjNum", "semantic"),
    SentEvalTask("obj_number", "ObjNumber", "ObjNum", "semantic"),
    SentEvalTask("odd_man_out", "OddManOut", "SOMO", "semantic"),
    SentEvalTask("coordination_inversion", "CoordinationInversion", "CoordInv", "semantic"),
)


def senteval_task(name: str) -> SentEvalTask:
    """The task called `name`: its file (`bigram_shift.txt`), file stem, SentEval name (`BigramShift`) or paper
    name (`BShift`), in any case."""
    for task in SENTEVAL_TASKS:
        if name.lower() in (task.name, task.file_name, task.senteval_name.lower(), task.short_name.lower()):
            return task
    known = ", ".join(task.name for task in SENTEVAL_TASKS)
    raise ProbingError(f"unknown SentEval task {name!r}; choose among: {known}.")


# ----------------------------------------------------------------------------------------------------------- data


@dataclass
class TaskData:
    """One task's examples: `sentences[split]` and `labels[split]` (class ids into `label_names`)."""

    task: SentEvalTask
    path: Path
    label_names: list[str]
    sentences: dict[str, list[str]]
    labels: dict[str, list[int]]

    @property
    def num_labels(self) -> int:
        return len(self.label_names)


def read_senteval_file(path: str | os.PathLike) -> dict[str, list[tuple[str, str]]]:
    """Reads a SentEval probing file into `{split: [(label, sentence), ...]}` for the splits `tr`, `va`, `te`.

    A line holds at least three tab-separated fields, as SentEval reads them: the split, the label, ..., and the
    sentence last. Blank lines are skipped. Raises `ProbingError` naming the file and line for a missing file, a line
    with fewer fields (or not UTF-8), an unknown split, an empty label or sentence, and a split without any line."""
    path = Path(path)
    examples = {split: [] for split in SPLITS}
    try:
        with path.open("rb") as file:
            for line_number, raw in enumerate(file, start=1):
                where = f"{path}, line {line_number}"
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as error:
                    raise ProbingError(f"{where}: not valid UTF-8 ({error.reason}).") from None
                if not line.strip():
                    continue
                fields = line.split("\t")
                if len(fields) < 3:
                    raise ProbingError(
                        f"{where}: expected split<TAB>label<TAB>sentence, found {len(fields)} tab-separated field(s)."
                    )
                split, label, sentence = fields[0].strip(), fields[1].strip(), fields[-1].strip()
                if split not in examples:
                    raise ProbingError(f"{where}: unknown split {split!r}; expected tr, va or te.")
                if not label or not sentence:
                    raise ProbingError(f"{where}: empty {'label' if not label else 'sentence'}.")
                examples[split].append((label, sentence))
    except FileNotFoundError:
        raise ProbingError(f"{path}: no such file.") from None
    except IsADirectoryError:
        raise ProbingError(f"{path}: is a folder, not a SentEval file.") from None
    for split, rows in examples.items():
        if not rows:
            raise ProbingError(f"{path}: no {split!r} line; a SentEval file holds tr, va and te lines.")
    return examples


def load_task(
    path: str | os.PathLike,
    task: SentEvalTask,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> TaskData:
    """Reads one task's file; `tr` is randomly subsampled to `max_train_samples`, `va` and `te` each to
    `max_eval_samples` (seeded, original order kept). Class ids index the labels found in the whole file. Raises
    `ProbingError` as `read_senteval_file` does, and when `tr` holds a single label."""
    examples = read_senteval_file(path)
    label_names = sorted({label for rows in examples.values() for label, _ in rows}, key=_label_sort_key)
    label_ids = {name: index for index, name in enumerate(label_names)}
    rng = np.random.default_rng(seed)
    sentences, labels = {}, {}
    for split, rows in examples.items():
        limit = max_train_samples if split == "tr" else max_eval_samples
        if limit is not None and limit < len(rows):
            rows = [rows[i] for i in sorted(rng.choice(len(rows), size=limit, replace=False))]
        sentences[split] = [sentence for _, sentence in rows]
        labels[split] = [label_ids[label] for label, _ in rows]
    if len(set(labels["tr"])) < 2:
        raise ProbingError(f"{path}: the tr split holds a single label (after subsampling); nothing to learn.")
    return TaskData(task, Path(path), label_names, sentences, labels)


def load_senteval(
    data_dir: str | os.PathLike,
    tasks: Sequence[str] | None = None,
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
    seed: int = 42,
) -> list[TaskData]:
    """Reads the SentEval files in `data_dir`: the `tasks` named (each file must exist), or every task whose file is
    there. Tasks come back in SentEval's order (surface, syntactic, semantic)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise ProbingError(
            f"{data_dir}: no such folder (--data_dir must hold SentEval files such as past_present.txt)."
        )
    if tasks:
        wanted = {senteval_task(name) for name in tasks}
        chosen = [task for task in SENTEVAL_TASKS if task in wanted]
    else:
        chosen = [task for task in SENTEVAL_TASKS if (data_dir / task.file_name).is_file()]
        if not chosen:
            expected = ", ".join(task.file_name for task in SENTEVAL_TASKS)
            raise ProbingError(f"{data_dir}: holds no SentEval probing file; expected any of {expected}.")
    return [load_task(data_dir / task.file_name, task, max_train_samples, max_eval_samples, seed) for task in chosen]


def _label_sort_key(label: str):
    return (0, int(label), label) if label.lstrip("-").isdigit() else (1, 0, label)


# --------------------------------------------------------------------------------------------------- arguments


@dataclass
class ProbingArguments:
    """Everything `run_probing` needs; `bermo probe` parses its flags into this with `HfArgumentParser`."""

    model_name_or_path: str = field(metadata={"help": "BERT (or BERMo) checkpoint folder with its tokenizer."})
    data_dir: str = field(metadata={"help": "Folder holding SentEval probing files (past_present.txt, ...)."})
    output_dir: str | None = field(
        default=None, metadata={"help": f"Where {RESULTS_MARKDOWN}, {RESULTS_JSON} and {HEATMAP_PNG} go."}
    )
    mode: Literal["finetune", "frozen"] = field(
        default="finetune",
        metadata={"help": "finetune: BERT vs BERMo fine-tuned per task (the paper). frozen: a probe per depth."},
    )
    tasks: list[str] | None = field(
        default=None,
        metadata={"help": "Tasks to run (file stems, SentEval or paper names); default: every file in --data_dir."},
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Subsample each task's tr split."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Subsample each task's va and te splits."})
    seed: int = field(default=42, metadata={"help": "Seed of subsampling, initialization and training."})
    max_seq_length: int = field(default=128, metadata={"help": "Tokens per sentence, longer ones are truncated."})
    batch_size: int = field(default=32, metadata={"help": "Sentences per batch (training and evaluation)."})
    learning_rate: float = field(default=2e-5, metadata={"help": "finetune: peak learning rate of AdamW."})
    mix_learning_rate: float = field(
        default=1e-3, metadata={"help": "finetune: learning rate of BERMo's mix weights and gamma (no weight decay)."}
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "finetune: epochs per task and model."})
    weight_decay: float = field(default=0.01, metadata={"help": "finetune: AdamW weight decay (not on the mix)."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "finetune: linear warm-up steps, or a share of all steps when below 1."}
    )
    pooling: Literal["first", "mean"] = field(
        default="first", metadata={"help": "frozen: first token, or mean over the real tokens, of every depth."}
    )
    probe_c: list[float] = field(
        default_factory=lambda: [0.1, 1.0, 10.0],
        metadata={"help": "frozen: inverse L2 strengths C tried for each probe, selected on va."},
    )
    probe_max_iter: int = field(default=1000, metadata={"help": "frozen: L-BFGS iterations per probe."})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "frozen: feature cache folder; None: OUTPUT_DIR/feature_cache, or ./feature_cache."},
    )

    def __post_init__(self):
        if self.mode not in ("finetune", "frozen"):
            raise ProbingError(f"mode={self.mode!r}: use 'finetune' or 'frozen'.")
        if self.pooling not in ("first", "mean"):
            raise ProbingError(f"pooling={self.pooling!r}: use 'first' or 'mean'.")
        for name in ("max_train_samples", "max_eval_samples", "max_seq_length", "batch_size", "probe_max_iter"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ProbingError(f"{name}={value} must be a positive integer.")
        for name in ("learning_rate", "mix_learning_rate", "num_train_epochs"):
            if not getattr(self, name) > 0:
                raise ProbingError(f"{name}={getattr(self, name)} must be positive.")
        if self.warmup_steps < 0 or (self.warmup_steps > 1 and self.warmup_steps != int(self.warmup_steps)):
            raise ProbingError(f"warmup_steps={self.warmup_steps} must be a share in [0, 1) or a number of steps.")
        if not self.probe_c or min(self.probe_c) <= 0:
            raise ProbingError(f"probe_c={self.probe_c} must be one or more positive numbers.")
        if self.tasks:
            for name in self.tasks:
                senteval_task(name)


# --------------------------------------------------------------------------------------------------- frozen mode


def extract_depth_features(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[str],
    pooling: str = "first",
    batch_size: int = 32,
    max_length: int = 128,
    description: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Every depth's sentence vector in one pass: `(num_sentences, num_hidden_layers + 1, hidden_size)` on the CPU,
    in `dtype`.

    `model` is a `BertModel` or `BermoModel`; depth 0 is the embedding output. `pooling` is `"first"` (the first
    token) or `"mean"` (the mean over real tokens). Sentences are batched by length, results come back in order."""
    device = next(model.parameters()).device
    depths = model.config.num_hidden_layers + 1
    features = torch.empty(len(sentences), depths, model.config.hidden_size, dtype=dtype)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    model.eval()
    for start in tqdm(range(0, len(order), batch_size), desc=description, unit="batch", leave=False):
        indices = order[start : start + batch_size]
        batch = tokenizer(
            [sentences[i] for i in indices], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        with torch.inference_mode():
            states = torch.stack(model(**batch, output_hidden_states=True).hidden_states, dim=1)
        if pooling == "first":
            pooled = states[:, :, 0]
        else:
            mask = batch["attention_mask"][:, None, :, None].to(states.dtype)
            pooled = (states * mask).sum(dim=2) / mask.sum(dim=2)
        features[indices] = pooled.to("cpu", dtype)
    return features


def checkpoint_fingerprint(model_name_or_path: str) -> str:
    """What identifies a checkpoint in the feature cache: its folder, configuration and weight files' sizes and
    modification times (or the Hub id as given)."""
    folder = Path(model_name_or_path)
    if not folder.is_dir():
        return model_name_or_path
    parts = [str(folder.resolve())]
    for file in sorted(folder.iterdir()):
        if file.name == "config.json" or file.suffix in (".safetensors", ".bin"):
            stat = file.stat()
            parts.append(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}")
    return "\n".join(parts)


def cached_depth_features(
    data: TaskData,
    model_loader: Callable[[], tuple[nn.Module, object]],
    fingerprint: str,
    cache_dir: str | os.PathLike,
    pooling: str = "first",
    batch_size: int = 32,
    max_length: int = 128,
) -> dict[str, torch.Tensor]:
    """`extract_depth_features` for each split of `data`, read from `cache_dir` when a previous run stored them.

    The cache key covers the checkpoint's `fingerprint`, the pooling, `max_length` and the exact sentences (hence the
    subsampling). Features are stored (and always returned) rounded to float16, so cached and fresh runs agree;
    `model_loader()` -> `(model, tokenizer)` is only called on a cache miss."""
    key_source = {"checkpoint": fingerprint, "pooling": pooling, "max_length": max_length}
    key_source["sentences"] = {
        split: hashlib.sha256("\n".join(sentences).encode()).hexdigest() for split, sentences in data.sentences.items()
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]
    cache_file = Path(cache_dir) / f"{data.task.name}-{pooling}-{key}.pt"
    if cache_file.is_file():
        stored = torch.load(cache_file, weights_only=True)
    else:
        model, tokenizer = model_loader()
        stored = {
            split: extract_depth_features(
                model,
                tokenizer,
                sentences,
                pooling,
                batch_size,
                max_length,
                dtype=torch.float16,
                description=f"{data.task.short_name} {split}",
            )
            for split, sentences in data.sentences.items()
        }
        _atomic_write(cache_file, lambda path: torch.save(stored, path))
    return {split: features.float() for split, features in stored.items()}


@dataclass
class ProbeResult:
    """A probe's accuracies (%) on `va` (used to select `c`) and `te`; `weights`: a mix probe's softmax per depth."""

    val_accuracy: float
    test_accuracy: float
    c: float
    weights: list[float] | None = None


def fit_depth_probe(
    features: dict[str, np.ndarray], labels: dict[str, Sequence[int]], c_values: Sequence[float], max_iter: int, seed
) -> ProbeResult:
    """A scikit-learn logistic regression on standardized features of one depth (`features[split]`: `(n, hidden)`),
    its inverse regularization strength selected on `va` among `c_values`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best, best_probe = None, None
    for c in c_values:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=max_iter, random_state=seed))
        probe.fit(features["tr"], labels["tr"])
        val_accuracy = 100 * probe.score(features["va"], labels["va"])
        if best is None or val_accuracy > best.val_accuracy:
            best, best_probe = ProbeResult(val_accuracy, math.nan, c), probe
    best.test_accuracy = 100 * best_probe.score(features["te"], labels["te"])
    return best


def fit_mix_probe(
    features: dict[str, torch.Tensor],
    labels: dict[str, Sequence[int]],
    num_labels: int,
    c_values: Sequence[float],
    max_iter: int,
    seed: int,
    device: str | torch.device | None = None,
) -> ProbeResult:
    """BERMo's head on a frozen checkpoint: a linear probe on `BermoLayerMix` of every depth (`features[split]`:
    `(n, depths, hidden)`), each depth standardized with `tr` statistics as `fit_depth_probe` does.

    Objective of scikit-learn's logistic regression (mean cross-entropy + `||W||^2 / (2 C n)`), minimized with
    L-BFGS over the linear layer and the mix weights, to scikit-learn's default gradient tolerance (1e-4); `gamma`
    stays 1 since it only rescales `W`, which the penalty would then mean nothing for. With one depth this is
    `fit_depth_probe`. `C` is selected on `va`. Runs on `device` (default: the GPU when there is one)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    features = {split: x.to(device) for split, x in features.items()}
    mean = features["tr"].mean(dim=0)
    std = features["tr"].std(dim=0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    inputs = {split: ((x - mean) / std).unbind(dim=1) for split, x in features.items()}
    targets = {split: torch.as_tensor(y, device=device) for split, y in labels.items()}
    num_depths, hidden_size = features["tr"].shape[1:]

    best = None
    for c in c_values:
        torch.manual_seed(seed)
        mix = BermoLayerMix(BermoConfig(num_hidden_layers=num_depths - 1, include_embeddings=True)).to(device)
        mix.gamma.requires_grad_(False)
        linear = nn.Linear(hidden_size, num_labels, device=device)
        nn.init.zeros_(linear.weight)
        nn.init.zeros_(linear.bias)
        parameters = [mix.weights, linear.weight, linear.bias]
        optimizer = torch.optim.LBFGS(
            parameters, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe", tolerance_grad=1e-4
        )
        penalty = 1.0 / (2 * c * len(targets["tr"]))

        def closure(mix=mix, linear=linear, optimizer=optimizer, penalty=penalty):
            optimizer.zero_grad()
            logits = linear(mix(inputs["tr"]))
            loss = nn.functional.cross_entropy(logits, targets["tr"]) + penalty * linear.weight.square().sum()
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            accuracy = {
                split: 100 * (linear(mix(inputs[split])).argmax(-1) == targets[split]).float().mean().item()
                for split in ("va", "te")
            }
        if best is None or accuracy["va"] > best.val_accuracy:
            weights = [float(w) for w in mix.normalized_weights().detach()]
            best = ProbeResult(accuracy["va"], accuracy["te"], c, weights)
    return best


def probe_frozen_task(
    data: TaskData, features: dict[str, torch.Tensor], args: ProbingArguments
) -> tuple[list[ProbeResult], ProbeResult]:
    """Per-depth logistic-regression probes, and the mix probe, for one task's features."""
    num_depths = features["tr"].shape[1]
    depth_results = [
        fit_depth_probe(
            {split: x[:, depth].numpy() for split, x in features.items()},
            data.labels,
            args.probe_c,
            args.probe_max_iter,
            args.seed,
        )
        for depth in tqdm(range(num_depths), desc=f"{data.task.short_name} probes", unit="depth", leave=False)
    ]
    mix_result = fit_mix_probe(features, data.labels, data.num_labels, args.probe_c, args.probe_max_iter, args.seed)
    return depth_results, mix_result


def run_frozen(args: ProbingArguments, tasks: list[TaskData]) -> dict[str, dict]:
    """Frozen mode over `tasks`: per task, the per-depth probe accuracies, BERT's (last depth) and BERMo's (mix)."""
    from transformers import AutoModel, AutoTokenizer

    @cache
    def load_model():
        with _reported_as_probing_error(args.model_name_or_path):
            model = AutoModel.from_pretrained(args.model_name_or_path)
            tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
        return model.to("cuda" if torch.cuda.is_available() else "cpu"), tokenizer

    cache_dir = args.cache_dir or Path(args.output_dir or ".") / "feature_cache"
    fingerprint = checkpoint_fingerprint(args.model_name_or_path)
    results = {}
    for data in tqdm(tasks, desc="tasks", unit="task"):
        features = cached_depth_features(
            data, load_model, fingerprint, cache_dir, args.pooling, args.batch_size, args.max_seq_length
        )
        depth_results, mix_result = probe_frozen_task(data, features, args)
        results[data.task.name] = {
            **_task_entry(data),
            "bert": depth_results[-1].test_accuracy,
            "bermo": mix_result.test_accuracy,
            "bert_val": depth_results[-1].val_accuracy,
            "bermo_val": mix_result.val_accuracy,
            "depth_accuracy": [result.test_accuracy for result in depth_results],
            "depth_val_accuracy": [result.val_accuracy for result in depth_results],
            "depth_c": [result.c for result in depth_results],
            "bermo_c": mix_result.c,
            "layer_weights": LayerWeights(mix_result.weights, gamma=1.0).to_dict(),
        }
    return results


# ------------------------------------------------------------------------------------------------- finetune mode


def finetune_task(
    data: TaskData, args: ProbingArguments, baseline: bool, tokenizer, work_dir: str
) -> tuple[float, float, LayerWeights | None]:
    """Fine-tunes BERMo (plain BERT with `baseline`) from `args.model_name_or_path` on `tr` with `bermo train`'s
    `BermoTrainer`, keeps the epoch best on `va`. Returns the accuracies (%) on `va` (that epoch) and `te`, and the
    learned layer weights (None for BERT)."""
    from datasets import Dataset
    from transformers import TrainingArguments, set_seed

    from .training import BermoTrainer, LabelSpace, ModelArguments, build_compute_metrics, load_model

    def dataset(split):
        return Dataset.from_dict({"sentence": data.sentences[split], "labels": data.labels[split]}).map(
            lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=args.max_seq_length),
            batched=True,
            remove_columns=["sentence"],
        )

    label_space = LabelSpace(list(data.label_names), False, {i: i for i in range(data.num_labels)})
    set_seed(args.seed)
    with _reported_as_probing_error(args.model_name_or_path):
        model = load_model(ModelArguments(args.model_name_or_path, baseline=baseline), label_space)
    training_args = TrainingArguments(
        output_dir=work_dir,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        save_only_model=True,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        learning_rate=args.learning_rate,
        num_train_epochs=args.num_train_epochs,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        warmup_steps=args.warmup_steps if args.warmup_steps < 1 else int(args.warmup_steps),
        seed=args.seed,
        data_seed=args.seed,
        logging_strategy="epoch",
        report_to="none",
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    trainer = BermoTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset("tr"),
        eval_dataset=dataset("va"),
        processing_class=tokenizer,
        compute_metrics=build_compute_metrics(label_space),
        mix_learning_rate=args.mix_learning_rate,
    )
    trainer.train()
    test_accuracy = trainer.evaluate(dataset("te"), metric_key_prefix="test")["test_accuracy"]
    layer_weights = LayerWeights.from_model(trainer.accelerator.unwrap_model(trainer.model))
    return 100 * trainer.state.best_metric, 100 * test_accuracy, layer_weights


def run_finetune(args: ProbingArguments, tasks: list[TaskData]) -> dict[str, dict]:
    """Finetune mode over `tasks`: BERT and BERMo from the same checkpoint, same hyper-parameters and seed."""
    from transformers import AutoTokenizer

    with _reported_as_probing_error(args.model_name_or_path):
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    results = {}
    for data in tqdm(tasks, desc="tasks", unit="task"):
        entry = _task_entry(data)
        for key, baseline in (("bert", True), ("bermo", False)):
            with tempfile.TemporaryDirectory(prefix=f"bermo-probe-{data.task.name}-{key}-") as work_dir:
                entry[f"{key}_val"], entry[key], layer_weights = finetune_task(
                    data, args, baseline, tokenizer, work_dir
                )
            if key == "bermo":
                entry["layer_weights"] = layer_weights.to_dict()
        results[data.task.name] = entry
    return results


# ------------------------------------------------------------------------------------------------------ reporting


def _task_entry(data: TaskData) -> dict:
    return {
        "task": data.task.short_name,
        "group": data.task.group,
        "file": str(data.path),
        "num_labels": data.num_labels,
        "num_examples": {split: len(sentences) for split, sentences in data.sentences.items()},
    }


def summarize(task_results: dict[str, dict], mode: str, settings: dict | None = None) -> dict:
    """The report: `task_results` (keyed by task name, each with `bert` and `bermo` accuracies in %, optionally
    `layer_weights` as `LayerWeights.to_dict()`) in SentEval's task order with the difference BERMo - BERT, plus
    per-group (surface, syntactic, semantic) and overall averages."""
    tasks = {}
    for task in SENTEVAL_TASKS:
        if task.name not in task_results:
            continue
        entry = dict(task_results[task.name])
        entry.setdefault("group", task.group)
        entry.setdefault("task", task.short_name)
        entry["difference"] = entry["bermo"] - entry["bert"]
        tasks[task.name] = entry
    groups = {}
    for group in GROUPS:
        members = [name for name, entry in tasks.items() if entry["group"] == group]
        if members:
            groups[group] = _average([tasks[name] for name in members]) | {"tasks": members}
    overall = _average(list(tasks.values())) if tasks else {}
    return {"mode": mode, "settings": settings or {}, "tasks": tasks, "groups": groups, "overall": overall}


def _average(entries: list[dict]) -> dict:
    bert = statistics.fmean(entry["bert"] for entry in entries)
    bermo = statistics.fmean(entry["bermo"] for entry in entries)
    return {"bert": bert, "bermo": bermo, "difference": bermo - bert}


def format_markdown(report: dict) -> str:
    """The report as markdown: BERT vs BERMo per task and group, BERMo's layer weights, per-depth probe accuracy."""
    settings = report.get("settings", {})
    title = "frozen checkpoint, linear probes" if report["mode"] == "frozen" else "fine-tuned"
    lines = [f"## SentEval probing ({title}): `{settings.get('model_name_or_path', '?')}`", ""]
    if report["mode"] == "frozen":
        lines.append(
            "Test accuracy (%). BERT: logistic regression on the last layer; BERMo: linear probe on the learned mix "
            f"of every depth; `{settings.get('pooling', 'first')}` pooling."
        )
    else:
        lines.append("Test accuracy (%), epoch selected on va; BERT and BERMo share every hyper-parameter and seed.")
    lines += ["", "| Group | Task | BERT | BERMo | Δ | Expected layer |", "|---|---|---:|---:|---:|---:|"]
    for group, summary in report["groups"].items():
        for name in summary["tasks"]:
            entry = report["tasks"][name]
            layer = f"{entry['layer_weights']['expected_layer']:.2f}" if entry.get("layer_weights") else ""
            lines.append(
                f"| {group} | {entry['task']} | {entry['bert']:.2f} | {entry['bermo']:.2f} "
                f"| {_signed(entry['difference'])} | {layer} |"
            )
        lines.append(_average_row(f"{group} average", summary))
    if report["overall"]:
        lines.append(_average_row("all tasks", report["overall"]))

    weighted = [entry for entry in report["tasks"].values() if entry.get("layer_weights")]
    if weighted:
        depths = weighted[0]["layer_weights"]["depths"]
        lines += ["", "BERMo's learned layer weights softmax(w) per depth, gamma, and expected layer sum_j j*s_j.", ""]
        lines.append("| Task | " + " | ".join(depths) + " | gamma | Expected layer |")
        lines.append("|---|" + "---:|" * (len(depths) + 2))
        for entry in weighted:
            mix = entry["layer_weights"]
            cells = " | ".join(f"{w:.3f}" for w in mix["weights"])
            lines.append(f"| {entry['task']} | {cells} | {mix['gamma']:.3f} | {mix['expected_layer']:.2f} |")

    probed = [entry for entry in report["tasks"].values() if entry.get("depth_accuracy")]
    if probed:
        depths = _depth_names(len(probed[0]["depth_accuracy"]))
        lines += ["", "Test accuracy (%) of the logistic-regression probe on each depth.", ""]
        lines.append("| Task | " + " | ".join(depths) + " |")
        lines.append("|---|" + "---:|" * len(depths))
        for entry in probed:
            lines.append(f"| {entry['task']} | " + " | ".join(f"{a:.2f}" for a in entry["depth_accuracy"]) + " |")
    return "\n".join(lines) + "\n"


def _average_row(label: str, summary: dict) -> str:
    return (
        f"| **{label}** | | **{summary['bert']:.2f}** | **{summary['bermo']:.2f}** "
        f"| **{_signed(summary['difference'])}** | |"
    )


def _signed(points: float) -> str:
    return f"{round(points, 2) + 0.0:+.2f}"  # + 0.0: no "-0.00"


def plot_heatmap(report: dict, path: str | os.PathLike) -> None:
    """A task x depth heat-map PNG: BERMo's layer weights, and in frozen mode each depth's probe accuracy."""
    from matplotlib.figure import Figure

    panels = []  # (title, number format, task entries, task x depth matrix, depth names)
    weighted = [entry for entry in report["tasks"].values() if entry.get("layer_weights")]
    if weighted:
        matrix = np.array([entry["layer_weights"]["weights"] for entry in weighted])
        names = weighted[0]["layer_weights"]["depths"]
        panels.append(("BERMo layer weights softmax(w)", "{:.2f}", weighted, matrix, names))
    probed = [entry for entry in report["tasks"].values() if entry.get("depth_accuracy")]
    if probed:
        matrix = np.array([entry["depth_accuracy"] for entry in probed])
        names = _depth_names(matrix.shape[1])
        panels.append(("probe accuracy per depth (%)", "{:.1f}", probed, matrix, names))
    if not panels:
        return
    num_depths = max(matrix.shape[1] for *_, matrix, _ in panels)
    num_tasks = max(matrix.shape[0] for *_, matrix, _ in panels)
    figure = Figure(figsize=(len(panels) * (3.0 + 0.7 * num_depths), 1.6 + 0.45 * num_tasks), layout="constrained")
    for axes, (title, fmt, entries, matrix, names) in zip(
        figure.subplots(1, len(panels), squeeze=False)[0], panels, strict=True
    ):
        image = axes.imshow(matrix, aspect="auto", cmap="viridis")
        figure.colorbar(image, ax=axes)
        axes.set_title(title)
        axes.set_xlabel("depth")
        axes.set_xticks(range(matrix.shape[1]), names, rotation=45, ha="right")
        axes.set_yticks(range(len(entries)), [f"{entry['task']} ({entry['group']})" for entry in entries])
        threshold = (matrix.max() + matrix.min()) / 2
        for (row, column), value in np.ndenumerate(matrix):
            color = "black" if value > threshold else "white"
            axes.text(column, row, fmt.format(value), ha="center", va="center", fontsize=7, color=color)
    figure.savefig(path, dpi=120, format="png")


def _depth_names(num_depths: int) -> list[str]:
    return LayerWeights([0.0] * num_depths, gamma=1.0).depth_names


def write_outputs(report: dict, output_dir: str | os.PathLike) -> dict[str, Path]:
    """Writes the JSON, markdown and heat-map of `report` into `output_dir`; each file appears whole or not at all."""
    output_dir = Path(output_dir)
    writers = {
        RESULTS_JSON: lambda path: Path(path).write_text(json.dumps(report, indent=2) + "\n"),
        RESULTS_MARKDOWN: lambda path: Path(path).write_text(format_markdown(report)),
        HEATMAP_PNG: lambda path: plot_heatmap(report, path),
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".probe-") as staging:
        for name, write in writers.items():
            write(Path(staging) / name)
        for name in writers:
            if (Path(staging) / name).is_file():
                written[name] = output_dir / name
                os.replace(Path(staging) / name, written[name])
    return written


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(descriptor)
    try:
        write(Path(staging))
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


@contextmanager
def _reported_as_probing_error(model_name_or_path: str):
    """Turns a checkpoint that cannot be loaded (missing files, a mix of another size) into a one-line
    `ProbingError`."""
    try:
        yield
    except (OSError, ValueError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ProbingError(f"{model_name_or_path}: cannot be loaded: {reason}") from error


# ------------------------------------------------------------------------------------------------------ entry point


def run_probing(args: ProbingArguments) -> dict:
    """Reads the SentEval files, probes every task in `args.mode`, writes the outputs to `args.output_dir` (when
    set) and returns the report (see `summarize`). Every file is read and checked before any model runs."""
    tasks = load_senteval(args.data_dir, args.tasks, args.max_train_samples, args.max_eval_samples, args.seed)
    task_results = run_frozen(args, tasks) if args.mode == "frozen" else run_finetune(args, tasks)
    report = summarize(task_results, args.mode, asdict(args))
    if args.output_dir:
        write_outputs(report, args.output_dir)
    return report
