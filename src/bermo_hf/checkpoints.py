"""Checkpoints: reading one's configuration (once: `config_as` hands it on), finding the `Trainer`'s checkpoint folders,
choosing one to resume."""

import re
from pathlib import Path

from .configuration_bermo import LayerMixConfigMixin
from .errors import BermoUsageError

# The name the Trainer gives its checkpoint folders (transformers.trainer_utils.PREFIX_CHECKPOINT_DIR + "-STEP").
_CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")
# The file the Trainer writes last into a checkpoint: a checkpoint without it was interrupted while being saved.
TRAINER_STATE_NAME = "trainer_state.json"


def load_checkpoint_config(name_or_path: str):
    """The configuration of a checkpoint (local folder or Hub id), or a `BermoUsageError` saying it is neither."""
    from transformers import AutoConfig

    if Path(name_or_path).is_file():
        raise BermoUsageError(f"{name_or_path} is a file; give the checkpoint's folder or a Hub id.")
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        if Path(name_or_path).is_dir():
            raise BermoUsageError(f"{name_or_path} is not a model folder (no usable config.json).") from None
        raise BermoUsageError(
            f"{name_or_path} is neither a local folder nor a reachable Hub model id ({str(error).splitlines()[0]})"
        ) from None


def config_as(model_class, checkpoint_config, **settings):
    """`checkpoint_config` (a checkpoint's configuration, read once) as `model_class`'s configuration (a plain family
    checkpoint's read as BERMo's with the default mix, a BERMo checkpoint's as the plain family's), with `settings`
    applied as `from_pretrained` applies its keyword arguments. Passed as `from_pretrained(..., config=...)`, it spares
    transformers a second read of the same file."""
    config_class = model_class.config_class
    config_dict = {**checkpoint_config.to_dict(), "model_type": config_class.model_type}
    return config_class.from_dict(config_dict, **settings)


def load_bermo_config(name_or_path: str):
    """`load_checkpoint_config` for a checkpoint that must hold a layer mix: a `BermoUsageError` for any other type."""
    config = load_checkpoint_config(name_or_path)
    if not isinstance(config, LayerMixConfigMixin):
        raise BermoUsageError(
            f"{name_or_path} is a {config.model_type!r} checkpoint without a layer mix; convert it with "
            "`bermo convert` or fine-tune it with `bermo train` first."
        )
    return config


def checkpoint_folders(folder: str | Path) -> list[Path]:
    """The `Trainer` checkpoint folders (`checkpoint-STEP`) directly inside `folder`, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if (match := _CHECKPOINT_NAME.match(path.name)) and path.is_dir()
    ]
    return [path for _, path in sorted(found)]


def resolve_checkpoint_to_resume(resume_from_checkpoint: str | None, output_dir: Path) -> str | None:
    """`--resume_from_checkpoint`: a checkpoint folder, or `last` / `true` for the newest one in OUTPUT_DIR."""
    from transformers.trainer_utils import get_last_checkpoint

    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint.lower() in ("last", "true"):
        last = get_last_checkpoint(output_dir) if output_dir.is_dir() else None
        if last is None:
            raise BermoUsageError(f"--resume_from_checkpoint {resume_from_checkpoint}: {output_dir} has no checkpoint.")
        return last
    if not Path(resume_from_checkpoint).is_dir():
        raise BermoUsageError(f"--resume_from_checkpoint {resume_from_checkpoint}: no such checkpoint folder.")
    return resume_from_checkpoint
