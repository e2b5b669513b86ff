"""Per-depth sentence vectors of a frozen checkpoint, and their cache on disk.

`extract_depth_features` runs the model once over the sentences and pools every depth (the embedding output and each
layer) into one vector per sentence; `cached_depth_features` does so for each split of a task and stores the result in
a cache folder keyed by the checkpoint (`checkpoint_fingerprint`), the pooling, the length limit and the exact
sentences, so that a second run with other probe settings does not run the model again.
"""

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..output_folders import write_file_atomically
from .data import TaskData


def extract_depth_features(
    model: nn.Module,
    tokenizer,
    sentences: Sequence[str],
    pooling: str = "first",
    batch_size: int = 32,
    max_length: int = 128,
    description: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Every depth's sentence vector in one pass: `(num_sentences, num_hidden_layers + 1, hidden_size)` on the CPU,
    in `dtype`.

    `model` is a `BertModel` or `BermoModel`; depth 0 is the embedding output. `pooling` is `"first"` (the first
    token) or `"mean"` (the mean over real tokens). Sentences are batched by length, results come back in order."""
    device = next(model.parameters()).device
    depths = model.config.num_hidden_layers + 1
    features = torch.empty(len(sentences), depths, model.config.hidden_size, dtype=dtype)
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    model.eval()
    for start in tqdm(range(0, len(order), batch_size), desc=description, unit="batch", leave=False):
        indices = order[start : start + batch_size]
        batch = tokenizer(
            [sentences[i] for i in indices], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        with torch.inference_mode():
            states = torch.stack(model(**batch, output_hidden_states=True).hidden_states, dim=1)
        if pooling == "first":
            pooled = states[:, :, 0]
        else:
            mask = batch["attention_mask"][:, None, :, None].to(states.dtype)
            pooled = (states * mask).sum(dim=2) / mask.sum(dim=2)
        features[indices] = pooled.to("cpu", dtype)
    return features


# The files of a checkpoint folder that decide its features: configuration, weights and tokenizer.
FINGERPRINTED_SUFFIXES = (".safetensors", ".bin", ".model")
FINGERPRINTED_PREFIXES = (
    "config.json",
    "tokenizer",
    "vocab",
    "merges",
    "special_tokens_map",
    "spiece",
    "sentencepiece",
)
# Files up to this size are hashed whole; larger ones (weights) by their size and evenly spaced samples, which any
# re-saved or further trained weights change.
WHOLE_FILE_LIMIT = 4 << 20
SAMPLES, SAMPLE_SIZE = 16, 64 << 10


def file_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content: the whole file up to `WHOLE_FILE_LIMIT`, otherwise its size and `SAMPLES`
    evenly spaced blocks (first and last included), so that a large checkpoint costs a few reads, not a full one."""
    digest = hashlib.sha256()
    size = os.path.getsize(path)
    digest.update(str(size).encode())
    with open(path, "rb") as file:
        if size <= WHOLE_FILE_LIMIT:
            digest.update(file.read())
        else:
            for index in range(SAMPLES):
                file.seek((size - SAMPLE_SIZE) * index // (SAMPLES - 1))
                digest.update(file.read(SAMPLE_SIZE))
    return digest.hexdigest()


def checkpoint_fingerprint(model_name_or_path: str) -> str:
    """What identifies a checkpoint in the feature cache and in a resumed `bermo probe`: the content of its
    configuration, weight and tokenizer files (`file_fingerprint`), wherever the folder is (or the Hub id as given)."""
    folder = Path(model_name_or_path)
    if not folder.is_dir():
        return model_name_or_path
    digest = hashlib.sha256()
    for file in sorted(folder.iterdir()):
        if file.is_file() and (file.suffix in FINGERPRINTED_SUFFIXES or file.name.startswith(FINGERPRINTED_PREFIXES)):
            digest.update(f"{file.name}:{file_fingerprint(file)}\n".encode())
    return digest.hexdigest()


def cached_depth_features(
    data: TaskData,
    model_loader: Callable[[], tuple[nn.Module, object]],
    fingerprint: str,
    cache_dir: str | os.PathLike,
    pooling: str = "first",
    batch_size: int = 32,
    max_length: int = 128,
) -> dict[str, torch.Tensor]:
    """`extract_depth_features` for each split of `data`, read from `cache_dir` when a previous run stored them.

    The cache key covers the checkpoint's `fingerprint`, the pooling, `max_length` and the exact sentences (hence the
    subsampling). Features are stored (and always returned) rounded to float16, so cached and fresh runs agree;
    `model_loader()` -> `(model, tokenizer)` is only called on a cache miss."""
    key_source = {"checkpoint": fingerprint, "pooling": pooling, "max_length": max_length}
    key_source["sentences"] = {
        split: hashlib.sha256("\n".join(sentences).encode()).hexdigest() for split, sentences in data.sentences.items()
    }
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]
    cache_file = Path(cache_dir) / f"{data.task.name}-{pooling}-{key}.pt"
    if cache_file.is_file():
        stored = torch.load(cache_file, weights_only=True)
    else:
        model, tokenizer = model_loader()
        stored = {
            split: extract_depth_features(
                model,
                tokenizer,
                sentences,
                pooling,
                batch_size,
                max_length,
                dtype=torch.float16,
                description=f"{data.task.short_name} {split}",
            )
            for split, sentences in data.sentences.items()
        }
        write_file_atomically(cache_file, lambda path: torch.save(stored, path))
    return {split: features.float() for split, features in stored.items()}
