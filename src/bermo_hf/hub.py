"""What a BERMo folder tells people: the model card (README.md) with the learned layer weights, and their chart.

Nothing here runs on its own: `model.save_pretrained` writes what any transformers model writes (no card), and the
card is written by explicit calls.

- `write_model_card(model, folder)` merges BERMo's card into `folder/README.md` and draws `layer_weights.png` beside
  it (not in `Trainer` checkpoint folders). The library calls it for every final BERMo folder it produces:
  `conversion.convert_checkpoint` (`bermo convert`, `bermo demo`) and `training.train_and_evaluate` (`bermo train`,
  `bermo prune`, `bermo demo`); the `Trainer`'s `checkpoint-STEP` folders get no card, as with any transformers model.
  Code that saves a model itself calls it after `save_pretrained`.
- `push_to_hub(model, repo_id, tokenizer)` publishes a model with its card in one commit, merged into the card the
  Hub repository already has. `model.push_to_hub` (transformers' own) also works, but uploads the Hub's card as it
  is (plus the `tags=`), without BERMo's section.
- `training.BermoTrainer.create_model_card` (run by `trainer.push_to_hub`, so by `bermo train --push_to_hub`) merges
  the card into the output folder's and the Hub's card.

What the model itself does not know (the checkpoint it started from, its data, its scores) is attached with
`set_model_card_info`.

A card already there is merged, never replaced (`merge_model_card`): its YAML metadata stays (tags, datasets and
metrics become unions; `license`, `language` and every other key are kept), its prose stays, and BERMo's own part
(usage snippet, layer-weight table, chart, scores) lives in one section between `SECTION_BEGIN` and `SECTION_END`,
added at the end the first time and updated in place afterwards.
"""

import dataclasses
import os
import re
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, ModelCard, ModelCardData
from torch import nn

from .layer_weights import CHART_FILENAME, LayerWeights, save_layer_weights_chart
from .modeling_bermo import family_of, task_of

CARD_FILENAME = "README.md"
# The delimiters of BERMo's section of a model card: what lies between them is rewritten by every `write_model_card`,
# the rest kept.
SECTION_BEGIN = "<!-- bermo-hf:begin (written by bermo_hf; edit outside this section) -->"
SECTION_END = "<!-- bermo-hf:end -->"
_SECTION = re.compile(r"<!-- bermo-hf:begin.*?-->.*?<!-- bermo-hf:end -->", re.DOTALL)
# Metadata lists merged as unions; every other key of an existing card is kept as it is.
_UNION_KEYS = ("tags", "datasets", "metrics")
# transformers' `create_and_tag_model_card` fills a repository without a card with the Hub's template and this
# sentence: such a card holds no one's prose, and BERMo's card replaces its text (its metadata is still merged).
_TRANSFORMERS_TEMPLATE_SENTENCE = "This model card has been automatically generated."
# The name the Trainer gives its checkpoint folders: no chart is drawn there.
_CHECKPOINT_FOLDER = re.compile(r"^checkpoint-\d+$")
PAPER_URL = "https://arxiv.org/abs/2110.15802"
_HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")
_CARD_INFO_ATTRIBUTE = "bermo_model_card_info"


@dataclasses.dataclass
class ModelCardInfo:
    """What the model card says beyond the model itself; every field is optional.

    Attributes:
        base_model: Hub id of the checkpoint this model was converted or fine-tuned from (only Hub ids are written).
        repo_id: Hub id the model is published under (used in the usage snippet).
        datasets: Hub ids of the training datasets.
        training_data: free-text description of the training data (e.g. local file names).
        metrics: evaluation scores, name -> value.
    """

    base_model: str | None = None
    repo_id: str | None = None
    datasets: list[str] = dataclasses.field(default_factory=list)
    training_data: str | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


def set_model_card_info(model: nn.Module, **fields) -> ModelCardInfo:
    """Updates the card information attached to `model` (fields of `ModelCardInfo`) and returns it."""
    info = dataclasses.replace(model_card_info(model), **fields)
    setattr(model, _CARD_INFO_ATTRIBUTE, info)
    return info


def model_card_info(model: nn.Module) -> ModelCardInfo:
    """The card information attached to `model`; by default what the card of the folder it was loaded from said."""
    info = getattr(model, _CARD_INFO_ATTRIBUTE, None)
    return info if info is not None else _card_info_of_folder(getattr(model.config, "name_or_path", ""))


def is_hub_id(name: str | None) -> bool:
    """Whether `name` reads as a Hub repository id rather than a local path."""
    return bool(name) and not os.path.exists(name) and bool(_HUB_ID.match(name))


def _card_info_of_folder(folder: str) -> ModelCardInfo:
    card_path = Path(folder or "") / "README.md"
    if not card_path.is_file():
        return ModelCardInfo()
    try:
        data = ModelCard.load(card_path).data
    except Exception:  # a README without valid metadata says nothing we can reuse
        return ModelCardInfo()
    if "bermo" not in (data.tags or []):
        return ModelCardInfo()
    datasets = data.datasets if isinstance(data.datasets, list) else [data.datasets] if data.datasets else []
    return ModelCardInfo(base_model=data.base_model, datasets=datasets)


def build_model_card(
    model: nn.Module, info: ModelCardInfo | None = None, chart_filename: str | None = None
) -> ModelCard:
    """The model card of a BERMo model on its own: YAML metadata, a title and BERMo's section (see
    `bermo_section`). `merge_model_card` puts it into a card that already exists."""
    info = info or model_card_info(model)
    pipeline_tag = task_of(type(model).__name__).pipeline_tag
    base_model = info.base_model if is_hub_id(info.base_model) else None
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=["bermo", "custom_code", *_family_tags(model)],
        base_model=base_model,
        datasets=info.datasets or None,
        metrics=sorted(name for name in info.metrics if name != "loss") or None,
    )
    title = info.repo_id.split("/")[-1] if info.repo_id else "BERMo model"
    text = f"# {title}\n\n{bermo_section(model, info, chart_filename)}\n"
    return ModelCard(f"---\n{card_data.to_yaml()}\n---\n\n{text}")


def bermo_section(model: nn.Module, info: ModelCardInfo | None = None, chart_filename: str | None = None) -> str:
    """BERMo's part of a model card, between `SECTION_BEGIN` and `SECTION_END`: what the model is, a usage snippet
    with `trust_remote_code=True`, the learned layer weights (and `chart_filename`), the scores, the training data."""
    info = info or model_card_info(model)
    task = task_of(type(model).__name__)
    pipeline_tag, auto_class = task.pipeline_tag, task.auto_class
    base_model = info.base_model if is_hub_id(info.base_model) else None
    layer_weights = LayerWeights.from_model(model)
    repo = info.repo_id or "path/to/this/folder"
    parts = [
        SECTION_BEGIN,
        "## BERMo",
        f"A [BERMo]({PAPER_URL}) model: {_family_name(model)} whose task head reads a learned scalar mix of every "
        "depth, "
        "`gamma * sum_j softmax(w)_j * h_j` (depth 0 is the embedding output), instead of the last layer only."
        + (f" Built from [{base_model}](https://huggingface.co/{base_model})." if base_model else ""),
        "### Usage\n\nThe model code ships with the weights, so loading needs `trust_remote_code=True` (and no other "
        "package than `transformers`):\n\n" + _usage_snippet(repo, pipeline_tag, auto_class),
    ]
    if layer_weights is not None:
        parts.append(
            "### Learned layer weights\n\n"
            + layer_weights.markdown_table()
            + f"\n\ngamma = {layer_weights.gamma:.4f}; expected layer sum_j j * s_j = "
            + f"{layer_weights.expected_layer:.2f} (the mix's center of gravity, Tenney et al. 2019)."
            + (f"\n\n![Layer weights]({chart_filename})" if chart_filename else "")
        )
    if info.metrics:
        rows = "\n".join(f"| {name} | {value:.4f} |" for name, value in sorted(info.metrics.items()))
        parts.append(f"### Evaluation\n\n| metric | value |\n|---|---:|\n{rows}")
    if info.training_data or info.datasets:
        parts.append(f"### Training data\n\n{info.training_data or ', '.join(info.datasets)}")
    return "\n\n".join(parts) + "\n\n" + SECTION_END


def _family_name(model: nn.Module) -> str:
    """The encoder family of a BERMo model, as its authors write it ("BERT", "RoBERTa", ...)."""
    try:
        return family_of(model.config.model_type).name
    except ValueError:
        return "an encoder"


def _family_tags(model: nn.Module) -> list[str]:
    """The plain family's model type as a Hub tag (`roberta`), so the card is found with the family's models."""
    try:
        return [family_of(model.config.model_type).model_type]
    except ValueError:
        return []


def merge_model_card(existing: ModelCard | str | None, card: ModelCard, tags: list[str] | None = None) -> ModelCard:
    """`card` (a BERMo card, see `build_model_card`) merged into the `existing` card, which keeps what it has.

    Metadata: `tags` (plus the `tags` argument), `datasets` and `metrics` become unions in which the existing entries
    come first; every other existing key (`license`, `language`, `base_model`, ...) is kept, and keys it lacks are
    taken from `card`. Text: the existing prose is kept; BERMo's section replaces the existing one in place, or is
    added at the end. An existing card that is transformers' generated template gets `card`'s text instead."""
    if existing is None or (isinstance(existing, str) and not existing.strip()):
        merged = ModelCard(str(card))
    else:
        merged = existing if isinstance(existing, ModelCard) else ModelCard(existing, ignore_metadata_errors=True)
        merged = ModelCard(str(merged), ignore_metadata_errors=True)  # a copy: `existing` is left as it was
        for key, value in card.data.to_dict().items():
            current = merged.data.get(key)
            if key in _UNION_KEYS:
                merged.data[key] = _union(_as_list(current), _as_list(value))
            elif current in (None, "", []):
                merged.data[key] = value
        section = _SECTION.search(card.text)
        if section is None:
            raise ValueError("the card to merge has no BERMo section")
        if _SECTION.search(merged.text):
            merged.text = _SECTION.sub(lambda _: section.group(0), merged.text, count=1)
        elif _TRANSFORMERS_TEMPLATE_SENTENCE in merged.text:
            merged.text = card.text
        else:
            merged.text = merged.text.rstrip() + "\n\n" + section.group(0) + "\n"
    if tags:
        merged.data.tags = _union(_as_list(merged.data.tags), list(tags))
    return merged


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _union(first: list, second: list) -> list:
    return first + [item for item in second if item not in first]


def load_hub_model_card(repo_id: str, token: str | bool | None = None, revision: str | None = None) -> ModelCard | None:
    """The model card of the Hub repository `repo_id` (on branch `revision`, default the main one), or None when the
    repository, the branch or its card does not exist.

    Any other failure (no network, no access) is raised: a push must not replace a card it could not read."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    try:
        if revision is None:
            return ModelCard.load(repo_id, token=token)
        path = hf_hub_download(repo_id, CARD_FILENAME, revision=revision, token=token)
        return ModelCard(Path(path).read_text(encoding="utf-8"))
    except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError):
        return None


def _usage_snippet(repo: str, pipeline_tag: str, auto_class: str) -> str:
    if pipeline_tag == "text-classification":
        return (
            "```python\nfrom transformers import pipeline\n\n"
            f'classifier = pipeline("text-classification", model="{repo}", trust_remote_code=True)\n'
            'print(classifier("A moving, beautifully acted film."))\n```'
        )
    return (
        f"```python\nfrom transformers import AutoTokenizer, {auto_class}\n\n"
        f'tokenizer = AutoTokenizer.from_pretrained("{repo}", trust_remote_code=True)\n'
        f'model = {auto_class}.from_pretrained("{repo}", trust_remote_code=True)\n```'
    )


def write_model_card(
    model: nn.Module,
    save_directory: str | os.PathLike,
    existing: ModelCard | str | None = None,
    *,
    tags: list[str] | None = None,
    info: ModelCardInfo | None = None,
    metadata: dict | None = None,
) -> Path:
    """Writes BERMo's model card into `save_directory/README.md`, merged (`merge_model_card`, with `tags` added) into
    the card already there, or into `existing` when given (e.g. the card on the Hub); and, when matplotlib is
    installed and `save_directory` is not a `Trainer` checkpoint folder (`checkpoint-STEP`), `layer_weights.png`.
    `info` replaces the card information attached to the model (`model_card_info`); `metadata` (e.g. `language`,
    `license`) is set in the card's YAML header last. Returns the card's path.

    Call it after `model.save_pretrained(save_directory)`, which writes no card; calling it again updates BERMo's
    section in place."""
    save_directory = Path(save_directory)
    card_path = save_directory / CARD_FILENAME
    if existing is None and card_path.is_file():
        existing = card_path.read_text(encoding="utf-8")
    layer_weights = LayerWeights.from_model(model)
    draw_chart = layer_weights is not None and not _CHECKPOINT_FOLDER.match(save_directory.name)
    chart_written = draw_chart and save_layer_weights_chart(layer_weights, save_directory / CHART_FILENAME)
    card = build_model_card(model, info, chart_filename=CHART_FILENAME if chart_written else None)
    card = merge_model_card(existing, card, tags=tags)
    for key, value in (metadata or {}).items():
        card.data[key] = value
    card.save(card_path)
    return card_path


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    tokenizer=None,
    *,
    tags: list[str] | None = None,
    commit_message: str = "Upload BERMo model",
    private: bool | None = None,
    token: str | bool | None = None,
    revision: str | None = None,
) -> CommitInfo:
    """Publishes `model` (and `tokenizer`) to the Hub repository `repo_id` in one commit, with BERMo's model card
    merged into the card the repository already has (its metadata and prose kept, `tags` added, BERMo's section
    updated in place); a new repository (`private` or not) is created. Returns the commit's `CommitInfo`.

    Only public `huggingface_hub` APIs: `HfApi.create_repo(exist_ok=True)`, then `save_pretrained` into a temporary
    folder, `write_model_card` there (merging into the Hub's card, read with `load_hub_model_card`), and one
    `HfApi.upload_folder`. Files already in the repository that the push does not write stay as they are."""
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True).repo_id
    hub_card = load_hub_model_card(repo_id, token=token, revision=revision)
    info = dataclasses.replace(model_card_info(model), repo_id=repo_id)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        if tokenizer is not None:
            tokenizer.save_pretrained(folder)
        write_model_card(model, folder, existing=hub_card, tags=tags, info=info)
        return api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message, revision=revision, token=token
        )
