"""Fine-tuning stability on small data, and the layer mix's settings: BERT against BERMo variants, many seeds.

A grid of runs over task x model variant x seed. Every run fine-tunes from the same pretrained checkpoint with
`bermo_hf.training.BermoTrainer` (the standard `Trainer`, the layer mix in an optimizer group of its own), on data
read and tokenized by `bermo train`'s own code. Per seed, BERT and every BERMo variant start from identical weights
(BERT's fresh pooler and classifier are copied into BERMo, so only the layer mix differs) and see the same data order
and dropout stream. Dev accuracy is evaluated at step 0 and `--evals_per_epoch` times per epoch.

Tasks (`--tasks`), each with the settings commonly used for it (batch 16, 10 % linear warm-up, weight decay 0.01):

- `rte`: GLUE RTE sentence pairs, the full 1,244 train pairs, 139 dev pairs, max length 128, lr 3e-5, 3 epochs;
- `sst2-500`, `sst2-2000`: a fixed random subset (data seed 0) of SST-2's train sentences, the full 872-sentence
  dev set, max length 64, lr 5e-5, 3 epochs.

Variants (`--variants`): `bert`, and BERMo with `layer_mix_init` `uniform` (the paper) or `last`, the mix at the
model's learning rate (`uniform`, `last`) or at its own (`uniform-mix1e-2`, `last-mix1e-3`, ...).

A run has failed when its final dev accuracy is at or below the dev set's majority-class share + 2 points.

Every finished run is written to `bench/results/NAME.json` at once; rerunning the same command skips the runs
already recorded there (a run is keyed by its task, training settings, variant and seed), so a long grid can be spread
over several sittings. The order is seed-major (all variants of seed 0 on every task, then seed 1, ...), so that
whatever finishes is a balanced comparison. `--time_budget_min` stops starting new runs after that many minutes. At
the end (or with `--report_only`) the summary of the recorded runs of this grid goes to `NAME.md`, the strip plot to
`bench/figures/NAME.png`.

    python bench/stability.py                               # the whole grid (CUDA with bf16 when present)
    python bench/stability.py --threads 1 --time_budget_min 90   # what fits in 90 minutes; rerun to continue
    python bench/stability.py --report_only                 # tables and figure from the runs recorded so far
"""

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import bench_common
import convergence
import recipe

SHARED_DATA = bench_common.REPO_ROOT.parent / "shared" / "data"
FAILURE_MARGIN = 0.02
# "Steps to BERT's best": the first evaluated step at or above this share of BERT's mean best dev accuracy (as in
# bench/convergence.py; the mean of the per-seed bests itself is above most single curves).
TARGET_FRACTION = 0.99

# Per task: where the data is, how it is read, and the training settings used for it.
TASKS = {
    "rte": {
        "data": "rte",
        "text_column": "sentence1",
        "text_pair_column": "sentence2",
        "train_subset": None,
        "max_length": 128,
        "learning_rate": 3e-5,
        "epochs": 3,
    },
    "sst2-500": {
        "data": "sst2",
        "text_column": "sentence",
        "text_pair_column": None,
        "train_subset": 500,
        "max_length": 64,
        "learning_rate": 5e-5,
        "epochs": 3,
    },
    "sst2-2000": {
        "data": "sst2",
        "text_column": "sentence",
        "text_pair_column": None,
        "train_subset": 2000,
        "max_length": 64,
        "learning_rate": 5e-5,
        "epochs": 3,
    },
}
# Settings shared by every task.
COMMON = {"batch_size": 16, "warmup_ratio": 0.1, "weight_decay": 0.01}

# name -> (kind, layer_mix_init, mix learning rate or None for the model's), in order of priority.
VARIANTS = {
    "bert": ("bert", None, None),
    "uniform": ("bermo", "uniform", None),
    "last": ("bermo", "last", None),
    "uniform-mix1e-2": ("bermo", "uniform", 1e-2),
    "last-mix1e-2": ("bermo", "last", 1e-2),
    "uniform-mix1e-3": ("bermo", "uniform", 1e-3),
    "last-mix1e-3": ("bermo", "last", 1e-3),
}
PAPER_VARIANT = "uniform"


def variant_label(name: str, family: str = "BERT") -> str:
    """The plain model by its family's name (variant `bert`: `BERT`, `MPNet`, ...), or `BERMo init=..., mix lr=...`,
    as in the tables."""
    kind, init, mix_lr = VARIANTS[name]
    if kind == "bert":
        return family
    return f"BERMo {init}, mix lr {'= model' if mix_lr is None else f'{mix_lr:g}'}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--model",
        default=bench_common.MINILM,
        help="checkpoint to start from: a folder of any supported family, minilm or mpnet-base (default: minilm)",
    )
    parser.add_argument(
        "--data_root", default=str(SHARED_DATA), help="folder holding rte/ and sst2/ (default ../shared/data)"
    )
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument(
        "--seeds_per_task",
        nargs="+",
        default=[],
        metavar="TASK=N",
        help="run only the first N of --seeds on TASK (to cut seeds on the large settings first), e.g. sst2-2000=3",
    )
    parser.add_argument("--epochs", type=float, help="override every task's number of epochs")
    parser.add_argument("--max_steps", type=int, help="override: stop every run after this many steps (smoke tests)")
    parser.add_argument("--learning_rate", type=float, help="override every task's learning rate")
    parser.add_argument("--batch_size", type=int, default=COMMON["batch_size"])
    parser.add_argument("--evals_per_epoch", type=int, default=2, help="dev evaluations per epoch (and at step 0)")
    parser.add_argument("--train_subset", type=int, help="override: train on this many examples of every task")
    parser.add_argument("--dev_subset", type=int, help="evaluate on the first N dev examples (default: all)")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: CUDA with bf16 when a GPU is present, else the CPU",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--time_budget_min", type=float, help="start no new run after this many minutes")
    parser.add_argument("--report_only", action="store_true", help="train nothing: report the runs recorded")
    parser.add_argument(
        "--reuse",
        nargs="+",
        default=[],
        metavar="JSON",
        help="results files of earlier runs (e.g. from a GPU machine): a run recorded there with the same key is\n"
        "copied into this grid's results instead of being trained again",
    )
    parser.add_argument("--name", default="stability", help="base name of the output files (default stability)")
    parser.add_argument("--results_dir", default=str(bench_common.RESULTS_DIR))
    parser.add_argument("--figures_dir", default=str(bench_common.FIGURES_DIR))
    args = parser.parse_args(argv)
    limits = {}
    for item in args.seeds_per_task:
        task, _, count = item.partition("=")
        if task not in TASKS or not count.isdigit():
            parser.error(f"--seeds_per_task takes TASK=N with TASK one of {', '.join(TASKS)}, not {item!r}")
        limits[task] = int(count)
    args.seeds_per_task = limits
    if args.evals_per_epoch < 1 or (args.max_steps is not None and args.max_steps < 1):
        parser.error("--evals_per_epoch and --max_steps must be positive")
    return args


def task_settings(task: str, args) -> dict:
    """The training settings of `task` with the command line's overrides: part of every run's key."""
    spec = TASKS[task]
    settings = {
        "task": task,
        "checkpoint": args.model,
        "train_subset": args.train_subset if args.train_subset is not None else spec["train_subset"],
        "dev_subset": args.dev_subset,
        "max_length": spec["max_length"],
        "learning_rate": args.learning_rate if args.learning_rate is not None else spec["learning_rate"],
        "epochs": args.epochs if args.epochs is not None else spec["epochs"],
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "warmup_ratio": COMMON["warmup_ratio"],
        "weight_decay": COMMON["weight_decay"],
        "evals_per_epoch": args.evals_per_epoch,
    }
    return settings


def variant_settings(name: str) -> dict:
    kind, init, mix_lr = VARIANTS[name]
    return {"variant": name, "model": kind, "layer_mix_init": init, "mix_learning_rate": mix_lr}


def run_key(settings: dict, variant: dict, seed: int) -> str:
    """The identity of a run: every setting that changes its result, and its seed (machine and threads excluded)."""
    return json.dumps({**settings, **variant, "seed": seed}, sort_keys=True)


def load_task(task: str, args, tokenizer):
    """Tokenized `train` and `validation` splits of `task` and its `LabelSpace`, read by `bermo train`'s code; an
    SST-2 subset is a fixed random sample (data seed 0), the same for every seed and variant."""
    from bermo_hf.training import DataArguments, LabelSpace, load_raw_datasets, tokenize_datasets

    spec, settings = TASKS[task], task_settings(task, args)
    folder = Path(args.data_root) / spec["data"]
    data_args = DataArguments(
        train_file=str(folder / "train.tsv"),
        validation_file=str(folder / "dev.tsv"),
        text_column=spec["text_column"],
        text_pair_column=spec["text_pair_column"],
        max_seq_length=settings["max_length"],
        max_eval_samples=settings["dev_subset"],
    )
    raw = load_raw_datasets(data_args)
    if settings["train_subset"] is not None:
        size = min(settings["train_subset"], len(raw["train"]))
        raw["train"] = raw["train"].shuffle(seed=0).select(range(size))
    label_space = LabelSpace.from_datasets(raw, data_args.label_column)
    tokenized = tokenize_datasets(raw, tokenizer, data_args, label_space)
    # Evaluation order does not change accuracy: sorting dev by length keeps padding, and evaluation time, low.
    lengths = [len(ids) for ids in tokenized["validation"]["input_ids"]]
    tokenized["validation"] = tokenized["validation"].select(sorted(range(len(lengths)), key=lengths.__getitem__))
    return tokenized, label_space


def majority_share(dataset) -> float:
    """Share of the most frequent label among the examples of `dataset`."""
    labels = list(dataset["labels"])
    return max(labels.count(label) for label in set(labels)) / len(labels)


def run_machine(device: str) -> dict:
    """The short machine record kept with every run (runs of one grid may come from several machines)."""
    info = bench_common.machine_info()
    return {
        "device": device,
        "cpu": info["cpu"],
        "cpu_count": info["cpu_count"],
        "torch_threads": info["torch_threads"],
        "cuda": info["cuda"],
        "bf16": device == "cuda",
        "git_commit": info["git_commit"],
    }


def schedule(settings: dict, num_train: int) -> dict:
    """Steps per epoch, total steps, warm-up steps and the evaluation interval of a run."""
    steps_per_epoch = math.ceil(num_train / settings["batch_size"])
    total = math.ceil(settings["epochs"] * steps_per_epoch)
    if settings["max_steps"] is not None:
        total = min(total, settings["max_steps"])
    eval_every = max(1, steps_per_epoch // settings["evals_per_epoch"])
    return {
        "steps_per_epoch": steps_per_epoch,
        "max_steps": total,
        "warmup_steps": math.ceil(settings["warmup_ratio"] * total),
        "eval_every": min(eval_every, total),
    }


def train_one(settings: dict, variant: dict, seed: int, data, label_space, tokenizer, device: str) -> dict:
    """Fine-tunes one variant with one seed; returns the run record (curve, accuracies, steps, wall time)."""
    from transformers import set_seed

    from bermo_hf.training import build_compute_metrics

    plan = schedule(settings, len(data["train"]))
    set_seed(seed)
    mix = {"layer_mix_init": variant["layer_mix_init"]} if variant["model"] == "bermo" else {}
    model = bench_common.build_comparable(
        variant["model"], settings["checkpoint"], num_labels=label_space.num_labels, seed=seed, **mix
    )
    trained = recipe.train_with_curve(
        model,
        tag=f"{settings['task']} {variant['variant']} seed {seed}",
        seed=seed,
        device=device,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        tokenizer=tokenizer,
        compute_metrics=build_compute_metrics(label_space),
        mix_learning_rate=variant["mix_learning_rate"],
        max_steps=plan["max_steps"],
        batch_size=settings["batch_size"],
        learning_rate=settings["learning_rate"],
        warmup_steps=plan["warmup_steps"],
        weight_decay=settings["weight_decay"],
        eval_every=plan["eval_every"],
    )
    curve = trained["curve"]
    accuracies = [point["dev_accuracy"] for point in curve]
    run = {
        "key": run_key(settings, variant, seed),
        "task": settings["task"],
        "variant": variant["variant"],
        "seed": seed,
        "settings": {**settings, **variant, **plan},
        "num_train": len(data["train"]),
        "num_dev": len(data["validation"]),
        "majority_share": majority_share(data["validation"]),
        "curve": curve,
        "final_accuracy": accuracies[-1],
        "best_accuracy": max(accuracies),
        "best_step": curve[accuracies.index(max(accuracies))]["step"],
        "steps": trained["steps"],
        "wall_time_s": trained["wall_time_s"],
        "machine": run_machine(device),
    }
    if variant["model"] == "bermo":
        run["layer_weights"] = model.layer_weights()
    return run


def planned_runs(args) -> list[tuple[dict, dict, int]]:
    """`(task settings, variant, seed)` of the grid, seed-major: seed 0 of every task and variant first."""
    plans = []
    for position, seed in enumerate(args.seeds):
        for task in args.tasks:
            if position >= args.seeds_per_task.get(task, len(args.seeds)):
                continue
            settings = task_settings(task, args)
            plans += [(settings, variant_settings(name), seed) for name in args.variants]
    return plans


def load_recorded(path: Path) -> dict:
    """The results file of this grid, or an empty one."""
    if path.is_file():
        return json.loads(path.read_text())
    return {"benchmark": "stability", "runs": []}


def is_failed(run: dict) -> bool:
    return run["final_accuracy"] <= run["majority_share"] + FAILURE_MARGIN


def _stats(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "best": max(values),
        "worst": min(values),
    }


def summarize(runs: list[dict]) -> dict:
    """Per task and variant: final and best dev accuracy (mean, std, best, worst), failed runs, the paired
    difference to the plain model (variant `bert`, same seed), and steps to its mean best accuracy (per seed and on the
    mean curve); `family` names the plain model's family."""
    summary = {}
    for task in dict.fromkeys(run["task"] for run in runs):
        task_runs = [run for run in runs if run["task"] == task]
        bert_runs = {run["seed"]: run for run in task_runs if run["variant"] == "bert"}
        bert_best = statistics.fmean(run["best_accuracy"] for run in bert_runs.values()) if bert_runs else None
        target = TARGET_FRACTION * bert_best if bert_runs else None
        entry = {
            "family": _plain_family(task_runs[0]),
            "majority_share": task_runs[0]["majority_share"],
            "failed_at_or_below": task_runs[0]["majority_share"] + FAILURE_MARGIN,
            "num_dev": task_runs[0]["num_dev"],
            "bert_best_mean": bert_best,
            "target_accuracy": target,
            "variants": {},
        }
        for name in VARIANTS:
            group = sorted((run for run in task_runs if run["variant"] == name), key=lambda run: run["seed"])
            if not group:
                continue
            paired = [
                run["final_accuracy"] - bert_runs[run["seed"]]["final_accuracy"]
                for run in group
                if run["seed"] in bert_runs
            ]
            per_seed = (
                {run["seed"]: convergence.first_step_reaching(run["curve"], target) for run in group}
                if target is not None
                else {}
            )
            reached = [steps for steps in per_seed.values() if steps is not None]
            mean_curve = convergence.mean_curve(group)
            entry["variants"][name] = {
                "seeds": [run["seed"] for run in group],
                "final_values": [run["final_accuracy"] for run in group],
                "final_accuracy": _stats([run["final_accuracy"] for run in group]),
                "best_accuracy": _stats([run["best_accuracy"] for run in group]),
                "failed": sum(is_failed(run) for run in group),
                "paired_final_difference_to_bert": _stats(paired) if paired else None,
                "steps_to_bert_best_per_seed": per_seed,
                "runs_reaching_bert_best": len(reached),
                "steps_to_bert_best_median": statistics.median(reached) if reached else None,
                "steps_to_bert_best_of_mean_curve": (
                    convergence.first_step_reaching(mean_curve, target) if target is not None else None
                ),
                "mean_curve": mean_curve,
                "wall_time_s": statistics.fmean(run["wall_time_s"] for run in group),
            }
            weights = [run["layer_weights"] for run in group if "layer_weights" in run]
            if weights:
                entry["variants"][name]["layer_weights_mean"] = {
                    "weights": [statistics.fmean(c) for c in zip(*(w["weights"] for w in weights), strict=True)],
                    "gamma": statistics.fmean(w["gamma"] for w in weights),
                }
        summary[task] = entry
    return summary


def _plain_family(run: dict) -> str:
    """The family of the checkpoint a run started from (`BERT` for runs that record none)."""
    checkpoint = run.get("settings", {}).get("checkpoint")
    return bench_common.family_name(checkpoint) if checkpoint else "BERT"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def summary_markdown(summary: dict) -> str:
    """One table per task, as pasted into BENCHMARKS.md."""
    lines = []
    for task, entry in summary.items():
        target, family = entry["target_accuracy"], entry.get("family", "BERT")
        lines += [
            f"**{task}** ({entry['num_dev']} dev examples, majority class {_pct(entry['majority_share'])} %, "
            f"failed: final dev accuracy <= {_pct(entry['failed_at_or_below'])} %"
            + (
                f"; target: {_pct(target)} % = {TARGET_FRACTION:.0%} of {family}'s mean best "
                f"{_pct(entry['bert_best_mean'])} %"
                if target is not None
                else ""
            )
            + ")",
            "",
            f"| variant | seeds | final acc mean +- std | best / worst final | failed | final - {family}, same seed "
            "(mean +- std) | best-during-run acc mean | mean acc at 1st eval | steps to target: runs reaching, "
            "median | mean curve | s per run |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in entry["variants"].items():
            final, paired = row["final_accuracy"], row["paired_final_difference_to_bert"]
            diff = (
                "-" if name == "bert" or paired is None else f"{100 * paired['mean']:+.1f} +- {100 * paired['std']:.1f}"
            )
            median = row["steps_to_bert_best_median"]
            curve_steps = row["steps_to_bert_best_of_mean_curve"]
            first = row["mean_curve"][1] if len(row["mean_curve"]) > 1 else row["mean_curve"][0]
            first_eval = f"{_pct(first['dev_accuracy'])} (step {first['step']})"
            lines.append(
                f"| {variant_label(name, family)} | {len(row['seeds'])} "
                f"| {_pct(final['mean'])} +- {_pct(final['std'])} "
                f"| {_pct(final['best'])} / {_pct(final['worst'])} | {row['failed']} of {len(row['seeds'])} | {diff} "
                f"| {_pct(row['best_accuracy']['mean'])} | {first_eval} "
                f"| {row['runs_reaching_bert_best']} of {len(row['seeds'])}, "
                f"{'-' if median is None else f'{median:g}'} | {'not reached' if curve_steps is None else curve_steps} "
                f"| {row['wall_time_s']:.0f} |"
            )
        mixes = [
            (name, row["layer_weights_mean"]) for name, row in entry["variants"].items() if "layer_weights_mean" in row
        ]
        if mixes:
            lines += ["", "Layer weights softmax(w) after training, mean over seeds (embeddings first), and gamma:", ""]
            lines += [
                f"- {variant_label(name, family)}: {' '.join(f'{w:.2f}' for w in mix['weights'])}; "
                f"gamma {mix['gamma']:.2f}"
                for name, mix in mixes
            ]
        lines.append("")
    return "\n".join(lines + overview_markdown(summary))


def overview_markdown(summary: dict) -> list[str]:
    """Every BERMo variant against BERT on every task: the paired difference of final dev accuracy (mean +- its
    standard error over seeds) and the failed runs of both."""
    tasks = [task for task, entry in summary.items() if "bert" in entry["variants"]]
    names = [name for name in VARIANTS if name != "bert" and any(name in summary[t]["variants"] for t in tasks)]
    if not tasks or not names:
        return []
    family = " / ".join(dict.fromkeys(summary[task].get("family", "BERT") for task in tasks))
    lines = [
        f"**All tasks**: final dev accuracy minus plain {family}'s with the same seed, mean +- standard error over "
        f"seeds (points); failed runs of the variant / of plain {family}.",
        "",
        "| variant | " + " | ".join(tasks) + " |",
        "|---|" + "---|" * len(tasks),
    ]
    for name in names:
        cells = []
        for task in tasks:
            row, bert = summary[task]["variants"].get(name), summary[task]["variants"]["bert"]
            paired = row and row["paired_final_difference_to_bert"]
            if not paired:
                cells.append("-")
                continue
            count = len(row["seeds"])
            error = paired["std"] / math.sqrt(count)
            difference = f"{100 * paired['mean']:+.1f} +- {100 * error:.1f} (n={count})"
            cells.append(f"{difference}; failed {row['failed']} / {bert['failed']}")
        lines.append(f"| {variant_label(name)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def plot(summary: dict, path: Path, title: str) -> Path:
    """Per task, a box plot of the final dev accuracies of every variant with each seed as a point; the failure
    line dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary)
    figure, axes = plt.subplots(1, len(tasks), figsize=(5.2 * len(tasks), 4.8), squeeze=False)
    for axis, task in zip(axes[0], tasks, strict=True):
        entry = summary[task]
        names = list(entry["variants"])
        values = [[100 * value for value in entry["variants"][name]["final_values"]] for name in names]
        axis.boxplot(values, widths=0.5, showfliers=False)
        for position, (name, points) in enumerate(zip(names, values, strict=True), 1):
            jitter = [position + 0.08 * ((i % 5) - 2) for i in range(len(points))]
            color = "tab:blue" if name == "bert" else "tab:orange"
            axis.scatter(jitter, points, s=14, zorder=3, color=color)
        axis.axhline(
            100 * entry["failed_at_or_below"], color="grey", linestyle="--", linewidth=1, label="failed at or below"
        )
        axis.set_xticks(
            range(1, len(names) + 1),
            [variant_label(n, entry.get("family", "BERT")).replace("BERMo ", "BERMo\n") for n in names],
            rotation=45,
            ha="right",
            fontsize=7,
        )
        axis.set_ylabel("final dev accuracy (%)")
        axis.set_title(task)
        axis.grid(alpha=0.3, axis="y")
        axis.legend(loc="lower right", fontsize=7)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return bench_common.save_figure(figure, path)


def report(payload: dict, runs: list[dict], args, results_path: Path) -> None:
    """Summary, Markdown and figure of `runs` (the recorded runs of this grid)."""
    if not runs:
        print("no recorded runs of this grid to report", flush=True)
        return
    payload["summary"] = summarize(runs)
    bench_common.write_report(results_path, payload, summary_markdown(payload["summary"]))
    checkpoint = bench_common.checkpoint_label(args.model)
    figure = plot(
        payload["summary"],
        Path(args.figures_dir) / f"{args.name}.png",
        f"{checkpoint}: final dev accuracy per seed, plain {bench_common.family_name(args.model)} and BERMo variants",
    )
    print(f"wrote {results_path}, {results_path.with_suffix('.md')} and {figure}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_common.quiet_transformers()
    bench_common.set_threads(args.threads)
    results_path = Path(args.results_dir) / f"{args.name}.json"
    payload = load_recorded(results_path)
    payload["command"] = bench_common.command_line(argv, "stability.py")
    recorded = {run["key"]: run for run in payload["runs"]}
    for path in args.reuse:
        for run in json.loads(Path(path).read_text())["runs"]:
            if run.get("key") and run["key"] not in recorded:
                recorded[run["key"]] = {**run, "reused_from": str(path)}
                payload["runs"].append(recorded[run["key"]])
    plans = planned_runs(args)
    keys = [run_key(settings, variant, seed) for settings, variant, seed in plans]
    todo = [plan for plan, key in zip(plans, keys, strict=True) if key not in recorded]
    print(f"{len(plans)} runs in the grid, {len(plans) - len(todo)} recorded in {results_path}", flush=True)
    if todo and not args.report_only:
        from transformers import AutoTokenizer

        device = recipe.resolve_device(args.device)
        checkpoint = bench_common.resolve_checkpoint(args.model)
        if checkpoint is None:
            raise SystemExit("stability needs a pretrained checkpoint folder, not bert-base-random")
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
        payload["machine"] = bench_common.machine_info()
        data = {}
        start = time.perf_counter()
        for index, (settings, variant, seed) in enumerate(todo, 1):
            elapsed = (time.perf_counter() - start) / 60
            if args.time_budget_min is not None and elapsed >= args.time_budget_min:
                print(
                    f"time budget of {args.time_budget_min:g} min spent: {len(todo) - index + 1} runs left", flush=True
                )
                break
            task = settings["task"]
            if task not in data:
                data[task] = load_task(task, args, tokenizer)
            run = train_one(settings, variant, seed, *data[task], tokenizer, device)
            payload["runs"].append(run)
            bench_common.write_json(results_path, payload)  # each run is kept as soon as it finishes
            print(
                f"[{index}/{len(todo)}] {task} {variant['variant']} seed {seed}: final {_pct(run['final_accuracy'])} "
                f"best {_pct(run['best_accuracy'])} ({run['wall_time_s']:.0f} s, {elapsed:.0f} min into this sitting)",
                flush=True,
            )
    wanted = set(keys)
    report(payload, [run for run in payload["runs"] if run["key"] in wanted], args, results_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
