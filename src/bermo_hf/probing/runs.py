"""The probing runs that compare BERT and BERMo from one checkpoint, task by task; `run_probing` is the entry point.

Two settings, chosen by `ProbingArguments.mode` (and `bermo probe --mode`):

- ``finetune`` (the paper's, `run_finetune`): BERT and BERMo are fine-tuned from the same checkpoint on each task's
  ``tr`` split with identical hyper-parameters and seeds, the epoch is selected on ``va`` and ``te`` accuracy is
  reported.
- ``frozen`` (`run_frozen`): every depth's features are extracted once per checkpoint and task and cached
  (`features`); a logistic regression is trained per depth and a linear probe on the learned mix of every depth
  (`probes`).

Both return one result entry per task, which `report.summarize` turns into the report. `run_probing` writes the
report after every task, so an interrupted run leaves the tasks it finished, and `--resume` (`resume`) runs only the
others.
"""

import tempfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

import torch
from tqdm.auto import tqdm

from ..errors import ProbingError
from ..layer_weights import LayerWeights
from ..modeling_bermo import family_of
from ..output_folders import check_output_dir
from .data import TaskData, load_senteval, senteval_task
from .features import cached_depth_features, checkpoint_fingerprint
from .probes import ProbeResult, fit_depth_probe, fit_mix_probe
from .report import HEATMAP_PNG, RESULTS_JSON, RESULTS_MARKDOWN, summarize, write_outputs
from .resume import RecordedRun, recorded_run, run_inputs

# --------------------------------------------------------------------------------------------------- arguments


@dataclass
class ProbingArguments:
    """Everything `run_probing` needs; `bermo probe` parses its flags into this with `HfArgumentParser`."""

    model_name_or_path: str = field(metadata={"help": "BERT (or BERMo) checkpoint folder with its tokenizer."})
    data_dir: str = field(metadata={"help": "Folder holding SentEval probing files (past_present.txt, ...)."})
    output_dir: str | None = field(
        default=None,
        metadata={
            "help": f"Where {RESULTS_MARKDOWN}, {RESULTS_JSON} and {HEATMAP_PNG} go, rewritten after every task "
            "(until the last task the report is marked partial and names the tasks still to run)."
        },
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Write into a non-empty --output_dir (e.g. a rerun that reuses its feature cache): only the files "
            "written are replaced, nothing else is removed."
        },
    )
    resume: bool = field(
        default=False,
        metadata={
            "help": f"Continue a run in --output_dir: the tasks its {RESULTS_JSON} holds are kept, the others run. "
            "Refused when that report was written with other settings (the tasks and output flags may differ)."
        },
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
        if self.resume and not self.output_dir:
            raise ProbingError("--resume continues the run in --output_dir: name that folder.")


# --------------------------------------------------------------------------------------------------- frozen mode


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


def run_frozen(args: ProbingArguments, tasks: list[TaskData], on_task=None, checkpoint_config=None) -> dict[str, dict]:
    """Frozen mode over `tasks`: per task, the per-depth probe accuracies, BERT's (last depth) and BERMo's (mix).
    `on_task(name, entry)`, when given, is called as each task finishes. `checkpoint_config`: the checkpoint's
    configuration when the caller has read it already."""
    from transformers import AutoModel, AutoTokenizer

    @cache
    def load_model():
        config = checkpoint_config or load_checkpoint_config(args.model_name_or_path)
        with _reported_as_probing_error(args.model_name_or_path):
            model = AutoModel.from_pretrained(args.model_name_or_path, config=config)
            tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, config=config)
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
        if on_task:
            on_task(data.task.name, results[data.task.name])
    return results


# ------------------------------------------------------------------------------------------------- finetune mode


def _finetune_training_arguments(args: ProbingArguments, work_dir: str):
    """`finetune_task`'s settings: evaluation every epoch on `va`, the best epoch kept, no other checkpoint."""
    from transformers import TrainingArguments

    return TrainingArguments(
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


def finetune_task(
    data: TaskData, args: ProbingArguments, baseline: bool, tokenizer, work_dir: str, checkpoint_config=None
) -> tuple[float, float, LayerWeights | None]:
    """Fine-tunes BERMo (plain BERT with `baseline`) from `args.model_name_or_path` on `tr` with `bermo train`'s
    `BermoTrainer`, keeps the epoch best on `va`. Returns the accuracies (%) on `va` (that epoch) and `te`, and the
    learned layer weights (None for BERT). `checkpoint_config`: the checkpoint's configuration when the caller has
    read it already (read here otherwise)."""
    from datasets import Dataset
    from transformers import set_seed

    from ..training import BermoTrainer, LabelSpace, ModelArguments, build_compute_metrics, load_model

    def dataset(split):
        return Dataset.from_dict({"sentence": data.sentences[split], "labels": data.labels[split]}).map(
            lambda batch: tokenizer(batch["sentence"], truncation=True, max_length=args.max_seq_length),
            batched=True,
            remove_columns=["sentence"],
        )

    label_space = LabelSpace(list(data.label_names), False, {i: i for i in range(data.num_labels)})
    set_seed(args.seed)
    with _reported_as_probing_error(args.model_name_or_path):
        model = load_model(ModelArguments(args.model_name_or_path, baseline=baseline), label_space, checkpoint_config)
    training_args = _finetune_training_arguments(args, work_dir)
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


def run_finetune(
    args: ProbingArguments, tasks: list[TaskData], on_task=None, checkpoint_config=None
) -> dict[str, dict]:
    """Finetune mode over `tasks`: BERT and BERMo from the same checkpoint, same hyper-parameters and seed (set
    anew for each model, so a task's result does not depend on the tasks run before it). `on_task(name, entry)`,
    when given, is called as each task finishes. `checkpoint_config`: the checkpoint's configuration when the caller
    has read it already."""
    from transformers import AutoTokenizer

    checkpoint_config = checkpoint_config or load_checkpoint_config(args.model_name_or_path)
    with _reported_as_probing_error(args.model_name_or_path):
        tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path, config=checkpoint_config)
    results = {}
    for data in tqdm(tasks, desc="tasks", unit="task"):
        entry = _task_entry(data)
        for key, baseline in (("bert", True), ("bermo", False)):
            with tempfile.TemporaryDirectory(prefix=f"bermo-probe-{data.task.name}-{key}-") as work_dir:
                entry[f"{key}_val"], entry[key], layer_weights = finetune_task(
                    data, args, baseline, tokenizer, work_dir, checkpoint_config
                )
            if key == "bermo":
                entry["layer_weights"] = layer_weights.to_dict()
        results[data.task.name] = entry
        if on_task:
            on_task(data.task.name, entry)
    return results


# ---------------------------------------------------------------------------------------------------------- helpers


def _task_entry(data: TaskData) -> dict:
    return {
        "task": data.task.short_name,
        "group": data.task.group,
        "file": str(data.path),
        "num_labels": data.num_labels,
        "num_examples": {split: len(sentences) for split, sentences in data.sentences.items()},
    }


def load_checkpoint_config(model_name_or_path: str):
    """The checkpoint's configuration, refused with a one-line `ProbingError` when it cannot be read or no BERMo
    family has its model type."""
    from transformers import AutoConfig

    with _reported_as_probing_error(model_name_or_path):
        config = AutoConfig.from_pretrained(model_name_or_path)
        family_of(config.model_type)
    return config


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


class ProbingInterrupted(KeyboardInterrupt):
    """`run_probing` stopped by Ctrl-C. `report`: the output folder's report when it holds finished tasks of this run
    (or of the run it resumed), None when there is none; `finished` and `pending`: the tasks done and not done."""

    def __init__(self, report: Path | None, finished: list[str], pending: list[str]):
        super().__init__(report, finished, pending)
        self.report, self.finished, self.pending = report, finished, pending


def run_probing(args: ProbingArguments) -> dict:
    """Reads the SentEval files, probes every task in `args.mode`, writes the outputs to `args.output_dir` (when
    set) after every task and returns the report (see `summarize`). Every file is read and checked, and a non-empty
    `args.output_dir` refused unless `args.overwrite_output_dir` or `args.resume`, before any model runs. With
    `args.resume` the tasks already in the folder's report (`recorded_run`) are kept and not run again. Ctrl-C
    raises `ProbingInterrupted`."""
    if args.output_dir:
        check_output_dir(args.output_dir, args.overwrite_output_dir, resuming=args.resume)
    tasks = load_senteval(args.data_dir, args.tasks, args.max_train_samples, args.max_eval_samples, args.seed)
    checkpoint_config = load_checkpoint_config(args.model_name_or_path)
    plain_model = family_of(checkpoint_config.model_type).name  # what the report calls the model without the mix
    inputs = run_inputs(args, tasks) if args.output_dir else {}
    recorded = recorded_run(args, inputs) if args.resume else RecordedRun()
    task_results = dict(recorded.tasks)
    to_run = [data for data in tasks if data.task.name not in task_results]
    to_finish = list(dict.fromkeys([*recorded.pending, *(data.task.name for data in to_run)]))
    if inputs:
        inputs["data"] = recorded.inputs.get("data", {}) | inputs["data"]
    settings = asdict(args)

    def pending() -> list[str]:
        return [name for name in to_finish if name not in task_results]

    def report() -> dict:
        summary = summarize(task_results, args.mode, settings, pending(), plain_model)
        return summary | ({"inputs": inputs} if inputs else {})

    def record(name: str, entry: dict) -> None:
        task_results[name] = entry
        write_outputs(report(), args.output_dir)

    try:
        if to_run:
            run = run_frozen if args.mode == "frozen" else run_finetune
            on_task = record if args.output_dir else None
            task_results.update(run(args, to_run, on_task=on_task, checkpoint_config=checkpoint_config))
    except KeyboardInterrupt as interruption:
        written = Path(args.output_dir, RESULTS_JSON) if args.output_dir and task_results else None
        raise ProbingInterrupted(written, list(task_results), pending()) from interruption
    final = report()
    if args.output_dir and not to_run:  # otherwise the last task's `record` wrote this report
        write_outputs(final, args.output_dir)
    return final
