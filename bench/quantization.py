"""int8 ONNX export for CPU serving: accuracy, speed and size of a fine-tuned BERMo classifier under PyTorch, its
float ONNX graph and its dynamically quantized int8 graph.

For each model (`--models`): fine-tunes the BERMo sequence classifier of the checkpoint (mix started uniform) on a
fixed random subset of SST-2's train sentences (data seed 0) with `bermo_hf.training.BermoTrainer` on data read and
tokenized by `bermo train`'s own code (batch 16, 10 % linear warm-up, weight decay 0.01, max length 64), or takes an
already fine-tuned BERMo classifier (`--checkpoint`). Then, through the library (`bermo_hf.onnx_export`,
`bermo_hf.onnx_quantization`, what `bermo export --onnx --quantize int8` calls): exports the float graph (checked
against PyTorch to 1e-4 on the export's check batch), quantizes it with `onnxruntime.quantization.quantize_dynamic`
(int8 weights), and runs PyTorch, the float graph and the int8 graph on the whole SST-2 dev set (872 sentences) on
`--threads` threads (onnxruntime: intra-op threads), in batches of `--eval_batch_size` tokenized once for all three,
the engines interleaved batch by batch. Speed is measured `--repeats` times (the median is reported), by wall clock
and by this process's CPU time, which waiting for a core on a busy shared machine does not inflate. Sizes: the
checkpoint's `model.safetensors` and the two `.onnx` files. Ratios are against PyTorch in the same run.

Each finished model is recorded in the results JSON at once; rerunning the same command skips it.

    python bench/quantization.py --models minilm --threads 1
    python bench/quantization.py --models mpnet-base --threads 1
    python bench/quantization.py --models minilm --checkpoint ./bermo-sst2   # an already fine-tuned classifier
"""

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench_common

SHARED_DATA = bench_common.REPO_ROOT.parent / "shared" / "data"
# Learning rates for the 1-epoch fine-tuning: the smaller model takes a larger one.
LEARNING_RATES = {bench_common.MINILM: 1e-4, bench_common.MPNET_BASE: 5e-5}
DEFAULT_LEARNING_RATE = 5e-5
COMMON = {"warmup_ratio": 0.1, "weight_decay": 0.01, "max_length": 64}
ENGINES = ("PyTorch", "ONNX float", "ONNX int8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--models",
        nargs="+",
        default=[bench_common.MINILM],
        help="checkpoints to start from: minilm, mpnet-base or folders of any supported family (default minilm)",
    )
    parser.add_argument(
        "--checkpoint",
        help="an already fine-tuned BERMo sequence classifier (a folder) to measure instead of fine-tuning;\n"
        "takes one --models entry, which names it in the tables",
    )
    parser.add_argument("--data_dir", default=str(SHARED_DATA / "sst2"), help="folder of train.tsv and dev.tsv")
    parser.add_argument("--train_size", type=int, default=2000, help="SST-2 train sentences to fine-tune on")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--max_steps", type=int, help="stop fine-tuning after this many steps (smoke tests)")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument(
        "--learning_rate", type=float, help="default: 1e-4 for minilm, 5e-5 for mpnet-base and other models"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev_subset", type=int, help="measure on the first N dev sentences (default: all 872)")
    parser.add_argument("--eval_batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the dev set (median reported)")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads (default 1)")
    parser.add_argument("--output", help="results JSON (default bench/results/quantization.json)")
    parser.add_argument(
        "--keep_dir",
        help="keep the fine-tuned checkpoint and the graphs in KEEP_DIR/MODEL (default: a temporary folder)",
    )
    args = parser.parse_args(argv)
    if args.checkpoint and len(args.models) != 1:
        parser.error("--checkpoint measures one model: give one --models entry to name it")
    if min(args.train_size, args.batch_size, args.repeats, args.eval_batch_size) < 1:
        parser.error("--train_size, --batch_size, --repeats and --eval_batch_size must be positive")
    return args


def run_settings(model: str, args) -> dict:
    """Every setting that changes a model's result (machine and thread count excluded): its record's key."""
    return {
        "model": model,
        "checkpoint": args.checkpoint,
        "train_size": None if args.checkpoint else args.train_size,
        "epochs": None if args.checkpoint else args.epochs,
        "max_steps": None if args.checkpoint else args.max_steps,
        "batch_size": None if args.checkpoint else args.batch_size,
        "learning_rate": None if args.checkpoint else learning_rate(model, args),
        "seed": args.seed,
        "dev_subset": args.dev_subset,
        "eval_batch_size": args.eval_batch_size,
        "repeats": args.repeats,
        "threads": args.threads,
        **({} if args.checkpoint else COMMON),
    }


def learning_rate(model: str, args) -> float:
    return args.learning_rate if args.learning_rate is not None else LEARNING_RATES.get(model, DEFAULT_LEARNING_RATE)


def fine_tune(model_name: str, settings: dict, args, folder: Path) -> dict:
    """Fine-tunes the BERMo classifier of `model_name` on the SST-2 train subset and saves it (with its tokenizer)
    to `folder`; returns the training record."""
    from transformers import AutoTokenizer, DataCollatorWithPadding, PrinterCallback, TrainingArguments, set_seed

    from bermo_hf.training import BermoTrainer, DataArguments, LabelSpace, load_raw_datasets, tokenize_datasets

    tokenizer = AutoTokenizer.from_pretrained(bench_common.resolve_checkpoint(model_name))
    data_args = DataArguments(
        train_file=str(Path(args.data_dir) / "train.tsv"), text_column="sentence", max_seq_length=COMMON["max_length"]
    )
    raw = load_raw_datasets(data_args)
    raw["train"] = raw["train"].shuffle(seed=0).select(range(min(settings["train_size"], len(raw["train"]))))
    label_space = LabelSpace.from_datasets(raw, data_args.label_column)
    train = tokenize_datasets(raw, tokenizer, data_args, label_space)["train"]
    steps_per_epoch = math.ceil(len(train) / settings["batch_size"])
    total_steps = math.ceil(settings["epochs"] * steps_per_epoch)
    if settings["max_steps"] is not None:
        total_steps = min(total_steps, settings["max_steps"])
    set_seed(settings["seed"])
    model = bench_common.build_model("bermo", model_name, num_labels=label_space.num_labels, seed=settings["seed"])
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir,
            max_steps=total_steps,
            per_device_train_batch_size=settings["batch_size"],
            learning_rate=settings["learning_rate"],
            warmup_steps=math.ceil(COMMON["warmup_ratio"] * total_steps),
            weight_decay=COMMON["weight_decay"],
            lr_scheduler_type="linear",
            logging_steps=25,
            save_strategy="no",
            report_to="none",
            seed=settings["seed"],
            data_seed=settings["seed"],
            dataloader_num_workers=0,
            use_cpu=True,
            disable_tqdm=True,
        )
        trainer = BermoTrainer(
            model=model,
            args=training_args,
            train_dataset=train,
            processing_class=tokenizer,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)
        start = time.perf_counter()
        print(f"[{model_name}] fine-tuning on {len(train)} SST-2 train sentences ...", flush=True)
        trainer.train()
        wall_time = time.perf_counter() - start
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    print(f"[{model_name}] fine-tuned: {trainer.state.global_step} steps in {wall_time:.0f}s", flush=True)
    return {
        "num_train": len(train),
        "steps": trainer.state.global_step,
        "wall_time_s": wall_time,
        "last_logged_loss": losses[-1] if losses else None,
        "layer_weights": model.layer_weights(),
    }


def measure(model_name: str, folder: Path, args) -> dict:
    """Exports the float and int8 graphs of the classifier in `folder` and measures the three engines on dev."""
    import bermo_hf
    from bermo_hf.onnx_export import export_onnx, largest_onnx_difference
    from bermo_hf.onnx_quantization import compare_on_sample, file_size_mb, quantize_onnx, read_labelled_sample

    model, tokenizer = _load(folder)
    float_path, int8_path = folder / "model.onnx", folder / "model_quantized.onnx"
    start = time.perf_counter()
    export_onnx(model, tokenizer, float_path)
    export_s = time.perf_counter() - start
    difference = largest_onnx_difference(model, tokenizer, float_path)
    start = time.perf_counter()
    quantize_onnx(float_path, int8_path)
    quantize_s = time.perf_counter() - start
    print(f"[{model_name}] exported in {export_s:.0f}s (difference {difference:.1e}), quantized in {quantize_s:.0f}s")
    sample = read_labelled_sample(Path(args.data_dir) / "dev.tsv", model.config, max_samples=args.dev_subset)
    graphs = {"ONNX float": float_path, "ONNX int8": int8_path}
    passes = []
    for repeat in range(args.repeats):
        passes.append(
            compare_on_sample(model, tokenizer, graphs, sample, threads=args.threads, batch_size=args.eval_batch_size)
        )
        speeds = ", ".join(f"{name} {result.sentences_per_s:.1f}" for name, result in passes[-1].items())
        print(f"[{model_name}] pass {repeat + 1}/{args.repeats}: sentences/s {speeds}", flush=True)
    sizes = {
        "PyTorch": file_size_mb(folder / "model.safetensors"),
        "ONNX float": file_size_mb(float_path),
        "ONNX int8": file_size_mb(int8_path),
    }
    engines = {}
    for name in ENGINES:
        results = [measured[name] for measured in passes]
        engines[name] = {
            "accuracy": results[0].accuracy,
            "agreement_with_pytorch": results[0].agreement,
            "sentences_per_s": statistics.median(result.sentences_per_s for result in results),
            "cpu_sentences_per_s": statistics.median(result.cpu_sentences_per_s for result in results),
            "sentences_per_s_passes": [result.sentences_per_s for result in results],
            "cpu_sentences_per_s_passes": [result.cpu_sentences_per_s for result in results],
            "size_mb": sizes[name],
        }
    for entry in engines.values():
        for key in ("sentences_per_s", "cpu_sentences_per_s", "size_mb"):
            entry[f"{key}_ratio"] = entry[key] / engines["PyTorch"][key]
    return {
        "family": bermo_hf.family_of(model.config.model_type).name,
        "num_dev": len(sample),
        "export_s": export_s,
        "quantize_s": quantize_s,
        "float_max_difference": difference,
        "engines": engines,
    }


def _load(folder: Path):
    """The BERMo sequence classifier saved in `folder`, in eval mode, and its tokenizer."""
    from transformers import AutoTokenizer

    import bermo_hf

    model = bermo_hf.AutoBermoModelForSequenceClassification.from_pretrained(folder)
    return model.eval(), AutoTokenizer.from_pretrained(folder)


def measure_model(model_name: str, args) -> dict:
    """Fine-tunes (unless `--checkpoint`), exports, quantizes and measures one model; returns its record."""
    settings = run_settings(model_name, args)
    record = {"key": json.dumps(settings, sort_keys=True), "model": model_name, "settings": settings}
    if args.keep_dir:
        work = Path(args.keep_dir) / Path(model_name).name
        work.mkdir(parents=True, exist_ok=True)
        return {**record, **_measure_in(model_name, settings, args, work)}
    with tempfile.TemporaryDirectory() as scratch:
        return {**record, **_measure_in(model_name, settings, args, Path(scratch))}


def _measure_in(model_name: str, settings: dict, args, work: Path) -> dict:
    import shutil

    record = {}
    folder = work / "checkpoint"
    if args.checkpoint:
        shutil.copytree(args.checkpoint, folder, dirs_exist_ok=True)
    else:
        record["training"] = fine_tune(model_name, settings, args, folder)
    record.update(measure(model_name, folder, args))
    return record


def report_markdown(payload: dict) -> str:
    """One table of every measured model: accuracy, agreement, speed and size of the three engines."""
    lines = [
        f"SST-2 dev, {payload['machine']['cpu']}, {payload['settings_threads']} thread(s) per engine, batches of "
        f"{payload['results'][0]['settings']['eval_batch_size'] if payload['results'] else '-'}; speed: median of the "
        "passes, tokenization excluded.",
        "",
        "| model | format | dev accuracy | labels equal to PyTorch's | sentences/s (wall) | ratio | sentences/s "
        "(CPU time) | ratio | file size (MB) | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for result in payload["results"]:
        for name in ENGINES:
            entry = result["engines"][name]
            lines.append(
                f"| {result['model']} ({result['family']}, {result['num_dev']} sentences) | {name} "
                f"| {100 * entry['accuracy']:.2f} % | {100 * entry['agreement_with_pytorch']:.2f} % "
                f"| {entry['sentences_per_s']:.1f} | {entry['sentences_per_s_ratio']:.2f} "
                f"| {entry['cpu_sentences_per_s']:.1f} | {entry['cpu_sentences_per_s_ratio']:.2f} "
                f"| {entry['size_mb']:.1f} | {entry['size_mb_ratio']:.2f} |"
            )
    lines.append("")
    return "\n".join(lines)


def _recorded(output: Path) -> dict:
    """The results already in `output`, by key."""
    if not output.is_file():
        return {}
    return {result["key"]: result for result in json.loads(output.read_text()).get("results", [])}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_common.quiet_transformers()
    bench_common.set_threads(args.threads)
    output = Path(args.output or bench_common.RESULTS_DIR / "quantization.json")
    recorded = _recorded(output)
    payload = {
        "benchmark": "quantization",
        "command": bench_common.command_line(argv, "quantization.py"),
        "settings_threads": args.threads,
        "machine": bench_common.machine_info(),
        "results": list(recorded.values()),
    }
    for model_name in args.models:
        key = json.dumps(run_settings(model_name, args), sort_keys=True)
        if key in recorded:
            print(f"[{model_name}] recorded in {output}; skipped", flush=True)
            continue
        start = time.perf_counter()
        result = measure_model(model_name, args)
        result["wall_time_s"] = time.perf_counter() - start
        result["machine"] = {
            key: payload["machine"][key] for key in ("cpu", "cpu_count", "torch_threads", "git_commit")
        }
        payload["results"].append(result)
        bench_common.write_json(output, payload)
    bench_common.write_report(output, payload, report_markdown(payload))
    print(f"wrote {output} and {output.with_suffix('.md').name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
