"""Speed and memory overhead of BERMo against the plain family model on the same checkpoint.

For each model, the family's own sequence classifier (`BertForSequenceClassification`, ...) and its BERMo class
(`BermoForSequenceClassification`, ...) start from identical weights and are timed on the same random batch (default
32 x 128 tokens):

- train step: forward + backward (gradients cleared before each step, no optimizer);
- inference: forward under `torch.inference_mode()`.

Runs are interleaved (plain, BERMo, then BERMo, plain, ...) after warm-up steps, so drifts in machine load hit both
models alike; medians and min-max are reported, and the ratio BERMo/plain of the medians. Tokens per second are given
for both models. On a busy shared machine, `--clock cpu --threads 1` times the CPU work of each step, which waiting
for a core does not inflate.

Peak memory of inference is measured with each model in its own fresh process (this script re-run with
`--memory_child`): on CPU the resident set size (RSS). The child builds the model and the batch, records its RSS
(the baseline: Python, torch, the weights and the inputs), resets the kernel's peak-RSS mark to it, runs the
forward passes and reads the peak (`VmHWM`). It reports the peak, and the peak minus the baseline (the memory the
forward passes themselves take). On CUDA the same from `torch.cuda.max_memory_allocated`.

On CUDA the models run under bf16 autocast. Sizes: `minilm` (the pretrained MiniLM-L6 checkpoint, 6 layers,
hidden 384), `mpnet-base` (the pretrained MPNet-base, 12 layers, hidden 768), base-size models with random weights
(`bert-base-random`, `roberta-base-random`, `deberta-v3-base-random`, `modernbert-base-random`) or a folder of any
supported family.

    python bench/overhead.py
    python bench/overhead.py --threads 1 --clock cpu   # on a shared, busy CPU machine
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bench_common

MODELS = ("plain", "bermo")
DEFAULT_SIZES = (bench_common.MINILM, *bench_common.RANDOM_BASE_CONFIGS)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=list(DEFAULT_SIZES),
        help="minilm, mpnet-base, bert-/roberta-/deberta-v3-/modernbert-base-random or model folders",
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: cuda when present")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seq_len", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model before timing")
    parser.add_argument("--train_repeats", type=int, default=10, help="timed train steps per model")
    parser.add_argument("--inference_repeats", type=int, default=20, help="timed forward passes per model")
    parser.add_argument("--memory_repeats", type=int, default=2, help="fresh processes per model (0: no memory run)")
    parser.add_argument("--memory_steps", type=int, default=2, help="forward passes in each memory process")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: elapsed time; cpu: CPU time of this process (CPU only), which time spent waiting for a core\n"
        "on a busy shared machine does not inflate; use it with --threads 1",
    )
    parser.add_argument("--output", help="results JSON (default bench/results/overhead_<device>.json)")
    parser.add_argument("--memory_child", choices=MODELS, help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def pick_device(choice: str) -> str:
    import torch

    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def make_batch(vocab_size: int, batch_size: int, seq_len: int, device: str, seed: int = 0) -> dict:
    """A random batch of token ids (no padding) with labels, the same for every model."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    batch = {
        "input_ids": torch.randint(1, vocab_size, (batch_size, seq_len), generator=generator),
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch_size,), generator=generator),
    }
    return {name: tensor.to(device) for name, tensor in batch.items()}


def _autocast(device: str):
    import contextlib

    import torch

    if device == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _synchronize(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def train_step(model, batch: dict, device: str) -> None:
    """Forward and backward of one batch, gradients cleared first."""
    model.zero_grad(set_to_none=True)
    with _autocast(device):
        loss = model(**batch).loss
    loss.backward()


def inference_step(model, batch: dict, device: str) -> None:
    """One forward pass without autograd."""
    import torch

    inputs = {name: tensor for name, tensor in batch.items() if name != "labels"}
    with torch.inference_mode(), _autocast(device):
        model(**inputs)


def time_interleaved(models: dict, step, batch: dict, device: str, warmup: int, repeats: int, clock) -> dict:
    """Seconds per `step(model, batch, device)` for each model, read off `clock`; runs interleaved and the order
    alternated per round."""
    for model in models.values():
        for _ in range(warmup):
            step(model, batch, device)
    times = {name: [] for name in models}
    names = list(models)
    for round_index in range(repeats):
        for name in names if round_index % 2 == 0 else reversed(names):
            _synchronize(device)
            start = clock()
            step(models[name], batch, device)
            _synchronize(device)
            times[name].append(clock() - start)
    return times


def speed_report(times: dict, tokens: int) -> dict:
    """Median, min, max seconds (and every sample) and tokens/s per model; BERMo/plain ratios of the medians, of the
    minima, and the median of the per-round (paired) ratios."""
    report = {name: {**bench_common.summarize(values), "samples": values} for name, values in times.items()}
    for entry in report.values():
        entry["tokens_per_s"] = tokens / entry["median"]
    report["ratio"] = report["bermo"]["median"] / report["plain"]["median"]
    report["min_ratio"] = report["bermo"]["min"] / report["plain"]["min"]
    report["paired_ratio_median"] = statistics.median(
        bermo / plain for bermo, plain in zip(times["bermo"], times["plain"], strict=True)
    )
    return report


# --- memory: one fresh process per model --------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    """A `kB` field of /proc/self/status (`VmRSS`, `VmHWM`), in KiB; `None` off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark (`VmHWM`) to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def memory_child(kind: str, size: str, device: str, batch_size: int, seq_len: int, steps: int) -> dict:
    """Runs in a fresh process: peak memory of `steps` inference passes of one model, and its baseline."""
    import gc

    import torch

    model = bench_common.build_model(kind, size).to(device).eval()
    batch = make_batch(model.config.vocab_size, batch_size, seq_len, device)
    gc.collect()
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
        for _ in range(steps):
            inference_step(model, batch, device)
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
        return {"measure": "cuda_max_memory_allocated", "baseline_mib": baseline / 2**20, "peak_mib": peak / 2**20}
    baseline_kib = _status_kib("VmRSS")
    reset = _reset_peak_rss()
    for _ in range(steps):
        inference_step(model, batch, device)
    peak_kib = _status_kib("VmHWM") if reset else None
    if peak_kib is None:  # no /proc: fall back to getrusage, whose peak also covers loading
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        baseline_kib = baseline_kib or 0
    return {
        "measure": "VmHWM after reset" if reset else "ru_maxrss",
        "baseline_mib": baseline_kib / 1024,
        "peak_mib": peak_kib / 1024,
    }


def run_memory_child(command: list[str]) -> dict:
    """Runs one memory child process and returns the measurement it prints as its last line of JSON."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"memory process {' '.join(command[2:])} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_memory(size: str, args, device: str) -> dict:
    """Inference peak memory per model, each run in `args.memory_repeats` fresh processes (interleaved)."""
    runs = {name: [] for name in MODELS}
    for repeat in range(args.memory_repeats):
        for name in MODELS if repeat % 2 == 0 else reversed(MODELS):
            command = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--memory_child",
                name,
                "--size",
                size,
                "--device",
                device,
                "--batch_size",
                str(args.batch_size),
                "--seq_len",
                str(args.seq_len),
                "--memory_steps",
                str(args.memory_steps),
            ]
            if args.threads is not None:
                command += ["--threads", str(args.threads)]
            runs[name].append(run_memory_child(command))
    report = {}
    for name, measurements in runs.items():
        peaks = [m["peak_mib"] for m in measurements]
        above = [m["peak_mib"] - m["baseline_mib"] for m in measurements]
        report[name] = {
            "measure": measurements[0]["measure"],
            "peak_mib": statistics.median(peaks),
            "baseline_mib": statistics.median(m["baseline_mib"] for m in measurements),
            "above_baseline_mib": statistics.median(above),
            "runs": measurements,
        }
    report["peak_ratio"] = report["bermo"]["peak_mib"] / report["plain"]["peak_mib"]
    above_plain = report["plain"]["above_baseline_mib"]
    report["above_baseline_ratio"] = report["bermo"]["above_baseline_mib"] / above_plain if above_plain > 0 else None
    return report


# --- one size, all measurements -----------------------------------------------------------------------------------


def measure_size(size: str, args, device: str) -> dict:
    """Train-step and inference timings of the plain model and BERMo at one size, and (unless disabled) inference
    memory."""
    plain, bermo = bench_common.build_pair(size)
    models = {"plain": plain.to(device).train(), "bermo": bermo.to(device).train()}
    config = plain.config
    batch = make_batch(config.vocab_size, args.batch_size, args.seq_len, device)
    tokens = args.batch_size * args.seq_len
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"[{size}] train steps ({args.train_repeats} per model) ...", flush=True)
    train = speed_report(
        time_interleaved(models, train_step, batch, device, args.warmup, args.train_repeats, clock), tokens
    )
    print(f"[{size}] train ratio BERMo/plain {train['ratio']:.3f}; inference ...", flush=True)
    for model in models.values():
        model.eval()
    inference = speed_report(
        time_interleaved(models, inference_step, batch, device, args.warmup, args.inference_repeats, clock), tokens
    )
    print(f"[{size}] inference ratio BERMo/plain {inference['ratio']:.3f}", flush=True)
    result = {
        "size": size,
        "family": bench_common.family_name(size),
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "parameters": {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()},
        "train_step": train,
        "inference": inference,
    }
    del models, plain, bermo
    if args.memory_repeats > 0:
        print(f"[{size}] inference peak memory ({args.memory_repeats} fresh processes per model) ...", flush=True)
        result["inference_memory"] = measure_memory(size, args, device)
        print(f"[{size}] peak memory ratio BERMo/plain {result['inference_memory']['peak_ratio']:.3f}", flush=True)
    return result


def _time_row(label: str, model: str, entry: dict) -> str:
    return (
        f"| {label} | {model} | {entry['median'] * 1000:.0f} "
        f"| {entry['min'] * 1000:.0f}-{entry['max'] * 1000:.0f} | {entry['tokens_per_s']:.0f} |"
    )


def _fmt_ratio(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.3f}"


def report_markdown(payload: dict) -> str:
    """Per size: a timing table, the ratios, and the memory table."""
    settings = payload["settings"]
    lines = [
        f"Device {payload['device']}{' (bf16 autocast)' if payload['device'] == 'cuda' else ''}, batch "
        f"{settings['batch_size']} x seq {settings['seq_len']}, torch threads {payload['machine']['torch_threads']}, "
        f"{settings['clock']} clock.",
        "",
    ]
    for result in payload["results"]:
        train, inference, family = result["train_step"], result["inference"], result["family"]
        labels = {"plain": family, "bermo": f"BERMo-{family}"}
        lines += [
            f"**{result['size']}** ({family}, {result['layers']} layers, hidden {result['hidden']}; "
            f"{train['plain']['n']} train / {inference['plain']['n']} inference runs per model)",
            "",
            f"| measurement | model | median {settings['clock']} time (ms) | min-max (ms) | tokens/s |",
            "|---|---|---|---|---|",
            *(_time_row("train step (fwd+bwd)", labels[name], train[name]) for name in MODELS),
            *(_time_row("inference", labels[name], inference[name]) for name in MODELS),
            "",
            f"| ratio BERMo/{family} | of medians | of minima | median of paired rounds |",
            "|---|---|---|---|",
            *(
                f"| {label} | {report['ratio']:.3f} | {report['min_ratio']:.3f} | {report['paired_ratio_median']:.3f} |"
                for label, report in (("train step", train), ("inference", inference))
            ),
            "",
        ]
        memory = result.get("inference_memory")
        if memory:
            lines += [
                f"| inference memory ({memory['plain']['measure']}) | {family} | BERMo | ratio |",
                "|---|---|---|---|",
                f"| peak (MiB) | {memory['plain']['peak_mib']:.0f} | {memory['bermo']['peak_mib']:.0f} "
                f"| {memory['peak_ratio']:.3f} |",
                f"| peak above baseline (MiB) | {memory['plain']['above_baseline_mib']:.1f} "
                f"| {memory['bermo']['above_baseline_mib']:.1f} | {_fmt_ratio(memory['above_baseline_ratio'])} |",
                "",
            ]
    return "\n".join(lines)


def _recorded_results(output: Path, payload: dict) -> dict:
    """The results already in `output` by size, when it was written with the same device and settings (so that an
    interrupted grid resumes where it stopped); empty otherwise."""
    if not output.is_file():
        return {}
    earlier = json.loads(output.read_text())
    same = {key: value for key, value in earlier.get("settings", {}).items() if key != "sizes"} == {
        key: value for key, value in payload["settings"].items() if key != "sizes"
    }
    if not same or earlier.get("device") != payload["device"]:
        return {}
    return {result["size"]: result for result in earlier.get("results", []) if "family" in result}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bench_common.quiet_transformers()
    bench_common.set_threads(args.threads)
    device = pick_device(args.device)
    if device == "cuda" and args.clock == "cpu":
        raise SystemExit("--clock cpu measures CPU work only: use the wall clock on CUDA")
    if args.memory_child:
        result = memory_child(args.memory_child, args.size, device, args.batch_size, args.seq_len, args.memory_steps)
        print(json.dumps(result))
        return 0

    output = Path(args.output or bench_common.RESULTS_DIR / f"overhead_{device}.json")
    payload = {
        "benchmark": "overhead",
        "command": bench_common.command_line(argv, "overhead.py"),
        "device": device,
        "settings": {
            key: getattr(args, key)
            for key in (
                "sizes",
                "batch_size",
                "seq_len",
                "warmup",
                "train_repeats",
                "inference_repeats",
                "memory_repeats",
                "memory_steps",
                "threads",
                "clock",
            )
        },
        "machine": bench_common.machine_info(),
        "results": [],
    }
    recorded = _recorded_results(output, payload)
    start = time.perf_counter()
    for size in args.sizes:
        if size in recorded:  # measured by an earlier, interrupted run with the same settings
            print(f"[{size}] recorded in {output}; skipped", flush=True)
            payload["results"].append(recorded[size])
            continue
        payload["results"].append(measure_size(size, args, device))
        payload["wall_time_s"] = time.perf_counter() - start
        bench_common.write_json(output, payload)
    payload["wall_time_s"] = time.perf_counter() - start
    bench_common.write_report(output, payload, report_markdown(payload))
    print(f"wrote {output} and {output.with_suffix('.md').name} in {payload['wall_time_s']:.0f}s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
