"""`bermo export CKPT OUT --onnx [--quantize int8]`: a BERMo checkpoint as an ONNX graph, checked against PyTorch.

OUT receives `model.onnx` (dynamic batch and sequence axes), `config.json` and the tokenizer's files. Before anything
is moved into OUT, onnxruntime runs the graph on a check batch of another size and length than the traced one, and
the largest difference from PyTorch is printed; above `--atol` the export fails and OUT is left as it was.

With `--quantize int8`, OUT also receives `model_quantized.onnx`: the graph with int8 weights from onnxruntime's
dynamic quantization. It cannot match PyTorch to `--atol`, so it is checked on predicted labels: on `--check_data`
(labelled texts) its accuracy may be at most `--max_accuracy_drop` points below PyTorch's; without it, its labels may
differ from PyTorch's on at most that share (in %) of the built-in check texts, and no accuracy is measured. Accuracy
and sentences per second of PyTorch and both graphs are printed; a failed check writes nothing.
"""

import argparse
from pathlib import Path

from ..checkpoints import load_bermo_config
from ..errors import BermoUsageError
from ..modeling_bermo import family_of, task_of
from ..onnx_export import export_onnx, largest_onnx_difference
from ..onnx_quantization import (
    PYTORCH,
    QUANTIZATION_TYPES,
    QUANTIZED_ONNX_FILENAME,
    built_in_sample,
    check_quantizable,
    compare_on_sample,
    file_size_mb,
    quantize_onnx,
    read_labelled_sample,
)
from ..output_folders import check_output_dir, files_written_into
from ._common import reports_usage_errors

ONNX_FILENAME = "model.onnx"
FLOAT, INT8 = "ONNX float", "ONNX int8"
DEFAULT_MAX_ACCURACY_DROP = 1.0
CHECK_BATCH_SIZE = 32
# Options that only --quantize uses: flag -> attribute.
CHECK_OPTIONS = {
    "--check_data": "check_data",
    "--text_column": "text_column",
    "--text_pair_column": "text_pair_column",
    "--label_column": "label_column",
    "--max_check_samples": "max_check_samples",
    "--max_accuracy_drop": "max_accuracy_drop",
    "--threads": "threads",
}


def load_for_export(checkpoint: str):
    """The model (its saved head's class) and tokenizer of a BERMo checkpoint."""
    from transformers import AutoTokenizer

    config = load_bermo_config(checkpoint)
    model_class = family_of(config.model_type).model_class(task_of((config.architectures or [""])[0]).name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint, config=config)
    except (OSError, ValueError):
        raise BermoUsageError(f"{checkpoint} holds no tokenizer; the export needs one to build its inputs.") from None
    return model_class.from_pretrained(checkpoint, config=config).eval(), tokenizer


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bermo export",
        description="Export a BERMo checkpoint to ONNX (dynamic batch and sequence axes), with its config and "
        "tokenizer, and check the graph against PyTorch with onnxruntime.",
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="BERMo checkpoint: a local folder or a Hub id.")
    parser.add_argument("output_dir", metavar="OUT", help="folder to write model.onnx, config.json and tokenizer into.")
    parser.add_argument("--onnx", action="store_true", help="export to ONNX (the one format so far).")
    parser.add_argument(
        "--atol", type=float, default=1e-4, help="largest difference from PyTorch accepted on the check batch."
    )
    parser.add_argument(
        "--overwrite_output_dir", action="store_true", help="replace bermo export's own files in a non-empty OUT."
    )
    _add_quantization_arguments(parser.add_argument_group("int8 graph (sequence classifiers)"))
    args = parser.parse_args(argv)
    if args.quantize and not args.onnx:
        raise BermoUsageError(f"--quantize {args.quantize} quantizes the ONNX graph: add --onnx.")
    if not args.onnx:
        parser.error("name the format to export to: --onnx (the one format so far).")
    _check_quantization_arguments(args)
    return args


def _add_quantization_arguments(quantization) -> None:
    quantization.add_argument(
        "--quantize",
        choices=QUANTIZATION_TYPES,
        help=f"also write {QUANTIZED_ONNX_FILENAME}: the graph with int8 weights (onnxruntime's dynamic "
        "quantization), checked on predicted labels.",
    )
    quantization.add_argument(
        "--check_data",
        metavar="FILE",
        help="labelled csv, tsv, json or jsonl file to check the int8 graph on (accuracy of PyTorch and both graphs); "
        "default: label agreement with PyTorch on 296 built-in sentences, no accuracy.",
    )
    quantization.add_argument("--text_column", help="--check_data's text column (default: text or sentence).")
    quantization.add_argument("--text_pair_column", help="--check_data's second texts, for sentence-pair tasks.")
    quantization.add_argument("--label_column", help="--check_data's label column (default: label).")
    quantization.add_argument("--max_check_samples", type=int, help="check on the first N rows of --check_data only.")
    quantization.add_argument(
        "--max_accuracy_drop",
        type=float,
        help="points of accuracy the int8 graph may lose against PyTorch on --check_data (without it: %% of the "
        f"built-in texts whose labels may differ from PyTorch's); default {DEFAULT_MAX_ACCURACY_DROP:g}.",
    )
    quantization.add_argument(
        "--threads", type=int, help="threads of PyTorch and onnxruntime while the check is timed (default 1)."
    )


def _check_quantization_arguments(args: argparse.Namespace) -> None:
    given = [flag for flag, name in CHECK_OPTIONS.items() if getattr(args, name) is not None]
    if given and not args.quantize:
        raise BermoUsageError(f"{_options(given)} to --quantize int8 only; add --quantize int8.")
    if args.check_data is None and (given := [flag for flag in given if flag.endswith(("column", "samples"))]):
        raise BermoUsageError(f"{_options(given)} to --check_data FILE only; add --check_data FILE.")
    if (args.threads is not None and args.threads < 1) or (
        args.max_check_samples is not None and args.max_check_samples < 1
    ):
        raise BermoUsageError("--threads and --max_check_samples must be positive.")


def _options(flags: list[str]) -> str:
    return f"{flags[0]} applies" if len(flags) == 1 else f"{', '.join(flags)} apply"


def check_int8(results: dict, sample, max_drop: float) -> str:
    """Raises `BermoUsageError` when the int8 graph's accuracy on `sample` is more than `max_drop` points below
    PyTorch's (more than `max_drop` % of its labels differ from PyTorch's, for a sample without labels); otherwise
    returns the sentence that says how far it is."""
    int8 = results[INT8]
    if sample.labels is None:
        differing = round((1 - int8.agreement) * len(sample))
        share = 100 * (1 - int8.agreement)
        if share > max_drop:
            raise BermoUsageError(
                f"the int8 graph's labels differ from PyTorch's on {differing} of {len(sample)} texts ({share:.2f} %, "
                f"{sample.source}), more than --max_accuracy_drop {max_drop:g}; nothing was written (pass --check_data "
                "FILE to judge it by accuracy)."
            )
        return (
            f"its labels differ from PyTorch's on {differing} of {len(sample)} texts ({share:.2f} %, "
            f"--max_accuracy_drop {max_drop:g}); no accuracy was measured: pass --check_data FILE (labelled texts) "
            "to measure it."
        )
    torch_accuracy = 100 * results[PYTORCH].accuracy
    drop = torch_accuracy - 100 * int8.accuracy
    if drop > max_drop:
        raise BermoUsageError(
            f"the int8 graph's accuracy on {sample.source} is {100 * int8.accuracy:.2f} % against PyTorch's "
            f"{torch_accuracy:.2f} %, a drop of {drop:.2f} points, more than --max_accuracy_drop {max_drop:g}; nothing "
            "was written."
        )
    side = "below" if drop >= 0 else "above"
    return f"its accuracy is {abs(drop):.2f} points {side} PyTorch's (--max_accuracy_drop {max_drop:g})."


def check_table(results: dict, sample, sizes: dict, threads: int) -> list[str]:
    """The printed check: per engine, accuracy, labels equal to PyTorch's, sentences per second, file size."""
    kind = "labelled texts" if sample.labels is not None else "texts without labels"
    lines = [
        f"check on {sample.source} ({len(sample)} {kind}; {threads} thread(s), batches of {CHECK_BATCH_SIZE}, "
        "tokenization excluded):",
        f"{'engine':<12}{'accuracy':>10}{'labels equal to PyTorch':>26}{'sentences/s':>14}{'size (MB)':>12}",
    ]
    for name, result in results.items():
        accuracy = "-" if result.accuracy is None else f"{100 * result.accuracy:.2f} %"
        agreement = "-" if name == PYTORCH else f"{100 * result.agreement:.2f} %"
        size = f"{sizes[name]:.1f}" if name in sizes else "-"
        lines.append(f"{name:<12}{accuracy:>10}{agreement:>26}{result.sentences_per_s:>14.1f}{size:>12}")
    return lines


@reports_usage_errors("export")
def main(argv: list[str]) -> int:
    args = parse_args(argv)
    output_dir = Path(args.output_dir)
    check_output_dir(output_dir, args.overwrite_output_dir)
    model, tokenizer = load_for_export(args.checkpoint)
    if args.quantize:
        check_quantizable(model)
        if args.check_data is None:
            sample = built_in_sample()
        else:
            sample = read_labelled_sample(
                args.check_data,
                model.config,
                text_column=args.text_column,
                text_pair_column=args.text_pair_column,
                label_column=args.label_column or "label",
                max_samples=args.max_check_samples,
            )
    with files_written_into(output_dir, args.overwrite_output_dir, merged_files=()) as staging:
        export_onnx(model, tokenizer, staging / ONNX_FILENAME)
        difference = largest_onnx_difference(model, tokenizer, staging / ONNX_FILENAME)
        if not difference <= args.atol:
            raise BermoUsageError(
                f"the ONNX graph differs from PyTorch by {difference:.3g} on the check batch, more than --atol "
                f"{args.atol:g}; nothing was written."
            )
        if args.quantize:
            graphs = {
                FLOAT: staging / ONNX_FILENAME,
                INT8: quantize_onnx(staging / ONNX_FILENAME, staging / QUANTIZED_ONNX_FILENAME),
            }
            threads = args.threads or 1
            results = compare_on_sample(model, tokenizer, graphs, sample, threads=threads, batch_size=CHECK_BATCH_SIZE)
            verdict = check_int8(
                results, sample, DEFAULT_MAX_ACCURACY_DROP if args.max_accuracy_drop is None else args.max_accuracy_drop
            )
            table = check_table(results, sample, {name: file_size_mb(path) for name, path in graphs.items()}, threads)
        model.config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    print(
        f"ONNX graph written to {output_dir / ONNX_FILENAME} (with config and tokenizer); largest difference from "
        f"PyTorch on the check batch: {difference:.2e} (--atol {args.atol:g})"
    )
    if args.quantize:
        print("\n".join(table))
        print(f"int8 graph written to {output_dir / QUANTIZED_ONNX_FILENAME}; {verdict}")
    return 0
