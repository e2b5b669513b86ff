"""`bermo export CKPT OUT --onnx`: a BERMo checkpoint as an ONNX graph, checked against PyTorch.

OUT receives `model.onnx` (dynamic batch and sequence axes), `config.json` and the tokenizer's files. Before anything
is moved into OUT, onnxruntime runs the graph on a check batch of another size and length than the traced one, and
the largest difference from PyTorch is printed; above `--atol` the export fails and OUT is left as it was.
"""

import argparse
from pathlib import Path

from ..checkpoints import load_bermo_config
from ..errors import BermoUsageError
from ..modeling_bermo import family_of, task_of
from ..onnx_export import export_onnx, largest_onnx_difference
from ..output_folders import check_output_dir, files_written_into
from ._common import reports_usage_errors

ONNX_FILENAME = "model.onnx"


def load_for_export(checkpoint: str):
    """The model (its saved head's class) and tokenizer of a BERMo checkpoint."""
    from transformers import AutoTokenizer

    config = load_bermo_config(checkpoint)
    model_class = family_of(config.model_type).model_class(task_of((config.architectures or [""])[0]).name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    except (OSError, ValueError):
        raise BermoUsageError(f"{checkpoint} holds no tokenizer; the export needs one to build its inputs.") from None
    return model_class.from_pretrained(checkpoint).eval(), tokenizer


@reports_usage_errors("export")
def main(argv: list[str]) -> int:
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
    args = parser.parse_args(argv)
    if not args.onnx:
        parser.error("name the format to export to: --onnx (the one format so far).")

    output_dir = Path(args.output_dir)
    check_output_dir(output_dir, args.overwrite_output_dir)
    model, tokenizer = load_for_export(args.checkpoint)
    with files_written_into(output_dir, args.overwrite_output_dir, merged_files=()) as staging:
        export_onnx(model, tokenizer, staging / ONNX_FILENAME)
        difference = largest_onnx_difference(model, tokenizer, staging / ONNX_FILENAME)
        if not difference <= args.atol:
            raise BermoUsageError(
                f"the ONNX graph differs from PyTorch by {difference:.3g} on the check batch, more than --atol "
                f"{args.atol:g}; nothing was written."
            )
        model.config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    print(
        f"ONNX graph written to {output_dir / ONNX_FILENAME} (with config and tokenizer); largest difference from "
        f"PyTorch on the check batch: {difference:.2e} (--atol {args.atol:g})"
    )
    return 0
