"""`bermo prune`: fine-tune BERMo (or, with `--baseline`, plain BERT) while pruning it, and report its sparsity.

Takes every flag of `bermo train` (data, model and `TrainingArguments`) plus the pruning flags: `--method` (magnitude,
movement or soft-movement), `--initial_sparsity`, `--final_sparsity`, `--warmup_steps_pruning`,
`--cooldown_steps_pruning`, `--pruning_frequency`, `--global_pruning`, `--penalty`, `--penalty_normalization`,
`--score_threshold`, `--scores_learning_rate` and `--prune_embeddings/--prune_pooler/--prune_classifier`. The
encoder's linear weights are pruned, with the masks applied at the end: OUTPUT_DIR receives an ordinary Hub-ready
checkpoint whose weights are zero where pruned, `metrics.json` and `pruning_report.json`, each file complete or
absent, under `bermo train`'s folder rules (`--overwrite_output_dir`, checkpoints kept after an interruption). Unlike
`bermo train`, no checkpoint is saved during training by default (`--save_strategy` to change that; such checkpoints
load as BERMo or BERT with the masks applied, and `--resume_from_checkpoint` continues the schedule exactly) and the
final model is kept, never the best one: an earlier checkpoint would be less sparse.
"""

import logging
import sys
from pathlib import Path

from ..checkpoints import resolve_checkpoint_to_resume
from ..errors import BermoUsageError
from ..output_folders import prepare_training_output_dir
from ..pruning import (
    REPORT_FILENAME,
    PruningArguments,
    build_pruning_trainer,
    format_sparsity_report,
    prune_and_evaluate,
)
from ..training import DataArguments, ModelArguments, take_label_names_as_class_names
from ._common import checkpoints_kept_on_interrupt, output_folder_argument_classes, reports_usage_errors


def parse_arguments(argv: list[str]):
    """`(ModelArguments, DataArguments, PruningArguments, TrainingArguments, overwrite_output_dir)` from the command
    line."""
    from transformers import HfArgumentParser, TrainingArguments

    parser = HfArgumentParser(
        (ModelArguments, DataArguments, PruningArguments, TrainingArguments, *output_folder_argument_classes()),
        prog="bermo prune",
    )
    parser.description = __doc__.split("\n\n", 1)[1].replace("\n", " ")
    parser.set_defaults(eval_strategy="no", save_strategy="no", load_best_model_at_end=False)
    try:
        model_args, data_args, pruning_args, training_args, *output_args = parser.parse_args_into_dataclasses(argv)
    except ValueError as error:  # a pruning flag, or TrainingArguments' own consistency checks
        raise BermoUsageError(" ".join(str(error).split())) from None
    if training_args.max_steps > 0:  # otherwise known once the data is read: the callback checks it then
        pruning_args.check_schedule(training_args.max_steps)
    if training_args.load_best_model_at_end:
        raise BermoUsageError(
            "--load_best_model_at_end is not allowed with bermo prune: the best checkpoint would be less sparse than "
            "the final model, which is always kept."
        )
    overwrite = any(getattr(args, "overwrite_output_dir", False) for args in (training_args, *output_args))
    take_label_names_as_class_names(data_args, training_args)
    return model_args, data_args, pruning_args, training_args, overwrite


@reports_usage_errors("prune")
def main(argv: list[str]) -> int:
    model_args, data_args, pruning_args, training_args, overwrite = parse_arguments(argv)
    logging.basicConfig(format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout)
    logging.getLogger("bermo_hf").setLevel(logging.INFO if training_args.should_log else logging.WARNING)

    output_dir = Path(training_args.output_dir)
    resume = resolve_checkpoint_to_resume(training_args.resume_from_checkpoint, output_dir)
    created = prepare_training_output_dir(output_dir, overwrite, resume, training_args)
    with checkpoints_kept_on_interrupt("prune", output_dir, created):
        trainer = build_pruning_trainer(model_args, data_args, pruning_args, training_args)
        report = prune_and_evaluate(trainer, resume_from_checkpoint=resume)
        if training_args.push_to_hub:
            trainer.push_to_hub(commit_message="End of pruning")

    if trainer.is_world_process_zero():
        print(format_sparsity_report(report["sparsity"]))
        if pruning_args.method == "soft-movement":
            print(
                f"final sparsity reached with --penalty {pruning_args.penalty}: "
                f"{100 * report['sparsity']['encoder']['sparsity']:.2f}% of the encoder's weights"
            )
        for key, value in report["eval_metrics"].items():
            if isinstance(value, float):
                print(f"{key}: {value:.4f}")
        kind = "BERT baseline" if model_args.baseline else "BERMo"
        print(f"pruned {kind} model, metrics.json and {REPORT_FILENAME} written to {output_dir}")
    return 0
