"""A checkpoint of any supported encoder family (folder or Hub id) becomes a Hub-ready BERMo folder: configuration
with `auto_map`, both code files, safetensors weights (the family's, a fresh mix and head), tokenizer and model card.
`bermo convert` runs it."""

from pathlib import Path

from .checkpoints import config_as, load_checkpoint_config
from .errors import BermoUsageError
from .hub import is_hub_id, set_model_card_info, write_model_card
from .modeling_bermo import BERMO_TASKS, family_of
from .output_folders import check_output_dir, files_written_into


def convert_checkpoint(
    source: str,
    output_dir: str | Path,
    task: str = "sequence-classification",
    num_labels: int | None = None,
    labels: list[str] | None = None,
    base_model: str | None = None,
    overwrite_output_dir: bool = False,
) -> Path:
    """Converts the checkpoint `source` (of any family in `BERMO_FAMILIES`, plain or BERMo) into a BERMo model for
    `task` saved Hub-ready in `output_dir`. `labels` names the classes (and sets their number); `base_model` is the
    Hub id the card names as the origin (defaults to `source` when that is a Hub id). Returns `output_dir`.

    A non-empty `output_dir` is refused (`BermoUsageError`) unless `overwrite_output_dir`; then only the files written
    are replaced, each complete or absent, and nothing else is removed. A new `output_dir` is complete or absent."""
    from transformers import AutoTokenizer

    tasks = [row.name for row in BERMO_TASKS]
    if task not in tasks:
        raise BermoUsageError(f"unknown task {task!r}; choose one of: {', '.join(tasks)}.")
    output_dir = Path(output_dir)
    check_output_dir(output_dir, overwrite=overwrite_output_dir)
    config = load_checkpoint_config(source)
    try:
        model_class = family_of(config.model_type).model_class(task)
    except ValueError as error:
        raise BermoUsageError(f"{source}: {error}") from None
    head_settings = {}
    if labels:
        if num_labels is not None and num_labels != len(labels):
            raise BermoUsageError(f"--num_labels {num_labels} disagrees with the {len(labels)} names of --labels.")
        head_settings = {"id2label": dict(enumerate(labels)), "label2id": {label: i for i, label in enumerate(labels)}}
    elif num_labels is not None:
        head_settings = {"num_labels": num_labels}
    # A head of the source for other labels (or another task) is re-initialized.
    model = model_class.from_pretrained(
        source, config=config_as(model_class, config, **head_settings), ignore_mismatched_sizes=True
    )
    tokenizer = AutoTokenizer.from_pretrained(source, config=config)
    set_model_card_info(model, base_model=base_model or (source if is_hub_id(source) else None))
    with files_written_into(output_dir, overwrite=overwrite_output_dir) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_model_card(model, staging)  # merged into a card already in `output_dir`
    return output_dir
