"""`bermo convert SRC OUT`: a BERT checkpoint (folder or Hub id) becomes a Hub-ready BERMo folder.

OUT holds the configuration (with `auto_map`), both code files, the safetensors weights (BERT's, a fresh mix and
head), the tokenizer and the model card: it loads anywhere with `trust_remote_code=True`. A non-empty OUT is refused
unless `--overwrite_output_dir`, which replaces only the files written (a model card already there is merged into).
"""

import argparse

from ..conversion import convert_checkpoint
from ..modeling_bermo import BERMO_TASKS
from ._common import reports_usage_errors


@reports_usage_errors("convert")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bermo convert",
        description="Turn a BERT checkpoint (local folder or Hub id) into a Hub-ready BERMo folder: config with "
        "auto_map, configuration_bermo.py, modeling_bermo.py, safetensors, tokenizer and model card.",
    )
    parser.add_argument("source", metavar="SRC", help="BERT checkpoint: a local folder or a Hub id.")
    parser.add_argument(
        "output_dir", metavar="OUT", help="folder to write; an existing non-empty one needs --overwrite_output_dir."
    )
    parser.add_argument(
        "--overwrite_output_dir",
        action="store_true",
        help="write into an existing non-empty OUT: only the files written are replaced, nothing else is removed.",
    )
    parser.add_argument("--task", choices=[row.name for row in BERMO_TASKS], default="sequence-classification")
    parser.add_argument("--num_labels", type=int, help="number of classes of the head (default: the checkpoint's).")
    parser.add_argument("--labels", help="comma-separated class names, e.g. neg,pos (sets --num_labels).")
    args = parser.parse_args(argv)

    labels = [label.strip() for label in args.labels.split(",")] if args.labels else None
    output_dir = convert_checkpoint(
        args.source, args.output_dir, args.task, args.num_labels, labels, overwrite_output_dir=args.overwrite_output_dir
    )
    print(f"BERMo {args.task} model written to {output_dir} (load it with trust_remote_code=True)")
    return 0
