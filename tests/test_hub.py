"""Model card and Hub push: the card's metadata and content as `write_model_card` writes and merges it, a plain
`save_pretrained` that leaves the card alone, and pushes (`bermo_hf.push_to_hub`, `model.push_to_hub`,
`trainer.push_to_hub`) intercepted at `HfApi.create_commit` whose uploaded files load with `trust_remote_code=True` in
a fresh process that cannot import `bermo_hf`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import ModelCard
from safetensors import safe_open

import bermo_hf
from bermo_hf import BermoForSequenceClassification
from bermo_hf.cli import main as bermo
from bermo_hf.hub import set_model_card_info, write_model_card
from bermo_hf.layer_weights import LayerWeights

from .conftest import release_python, result_of_fresh_process
from .test_cli import HUB_READY_FILES
from .test_training import SENTENCES, save_tiny_bert, write_tsv

INPUT_IDS = [[2, 5, 17, 23, 42, 3, 0, 0], [2, 30, 31, 8, 9, 10, 11, 3]]
ATTENTION_MASK = [[1, 1, 1, 1, 1, 1, 0, 0], [1] * 8]
# Loads a folder through its own code files, in a process where `import bermo_hf` fails, and prints the logits.
LOGITS_SCRIPT = """
import json, sys
sys.modules["bermo_hf"] = None
import torch, transformers
from transformers import AutoModelForSequenceClassification

folder, inputs = sys.argv[1], json.loads(sys.argv[2])
model = AutoModelForSequenceClassification.from_pretrained(folder, trust_remote_code=True).eval()
with torch.no_grad():
    logits = model(**{name: torch.tensor(values) for name, values in inputs.items()}).logits
result = {"transformers": transformers.__version__, "class": type(model).__module__, "logits": logits.tolist()}
print(json.dumps(result))
"""


def logits_in_fresh_process(folder: Path, modules_cache: Path, extra_env: dict | None = None) -> dict:
    """Runs `LOGITS_SCRIPT` on `folder` in a new interpreter with its own `HF_MODULES_CACHE`."""
    inputs = json.dumps({"input_ids": INPUT_IDS, "attention_mask": ATTENTION_MASK})
    result = subprocess.run(
        [sys.executable, "-c", LOGITS_SCRIPT, str(folder), inputs],
        capture_output=True,
        text=True,
        cwd=modules_cache.parent,
        env={**os.environ, "HF_MODULES_CACHE": str(modules_cache), "HF_HUB_OFFLINE": "1", **(extra_env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def reference_logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(input_ids=torch.tensor(INPUT_IDS), attention_mask=torch.tensor(ATTENTION_MASK)).logits


def trained_looking_model(tiny_config) -> BermoForSequenceClassification:
    """A tiny BERMo whose mix is far from its initial uniform state."""
    tiny_config.id2label = {0: "neg", 1: "pos"}
    tiny_config.label2id = {"neg": 0, "pos": 1}
    model = BermoForSequenceClassification(tiny_config)
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.tensor([0.1, -1.0, 2.0]))
        model.bert.layer_mix.gamma.fill_(1.5)
    return model


def save_with_card(model, folder: Path) -> Path:
    model.save_pretrained(folder)
    write_model_card(model, folder)
    return folder


def test_write_model_card_writes_the_model_card_and_chart(tiny_config, tmp_path):
    model = trained_looking_model(tiny_config)
    set_model_card_info(
        model,
        base_model="google-bert/bert-base-uncased",
        repo_id="someone/bermo-sst2",
        datasets=["nyu-mll/glue"],
        metrics={"accuracy": 0.91, "f1": 0.9},
    )
    model.save_pretrained(tmp_path)
    assert write_model_card(model, tmp_path) == tmp_path / "README.md"
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.tags == ["bermo", "custom_code", "bert"]  # the family, as a tag
    assert card.data.base_model == "google-bert/bert-base-uncased"
    assert card.data.datasets == ["nyu-mll/glue"] and card.data.metrics == ["accuracy", "f1"]
    assert 'pipeline("text-classification", model="someone/bermo-sst2", trust_remote_code=True)' in card.text
    weights = LayerWeights.from_model(model)
    assert f"| layer 2 | {weights.weights[2]:.4f} |" in card.text and "gamma = 1.5000" in card.text
    assert f"expected layer sum_j j * s_j = {weights.expected_layer:.2f}" in card.text
    assert "![Layer weights](layer_weights.png)" in card.text and "| accuracy | 0.9100 |" in card.text
    assert (tmp_path / "layer_weights.png").read_bytes().startswith(b"\x89PNG")


def test_card_of_a_model_from_a_local_folder_names_no_base_model(tiny_config, tmp_path):
    model = BermoForSequenceClassification(tiny_config)
    set_model_card_info(model, base_model=str(tmp_path))
    save_with_card(model, tmp_path / "out")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    assert card.data.base_model is None and "path/to/this/folder" in card.text


def test_the_card_survives_a_reload_and_resave(tiny_config, tmp_path):
    model = trained_looking_model(tiny_config)
    set_model_card_info(model, base_model="google-bert/bert-base-uncased")
    save_with_card(model, tmp_path / "first")
    save_with_card(BermoForSequenceClassification.from_pretrained(tmp_path / "first"), tmp_path / "second")
    assert ModelCard.load(tmp_path / "second" / "README.md").data.base_model == "google-bert/bert-base-uncased"


def test_save_pretrained_writes_no_card_and_leaves_one_already_there_as_it_is(tiny_config, tmp_path):
    model = trained_looking_model(tiny_config)
    set_model_card_info(model, base_model="google-bert/bert-base-uncased", metrics={"accuracy": 0.9})
    model.save_pretrained(tmp_path / "new")
    saved = {path.name for path in (tmp_path / "new").iterdir()}
    assert {"config.json", "configuration_bermo.py", "modeling_bermo.py", "model.safetensors"} <= saved
    assert not (tmp_path / "new" / "README.md").exists() and not (tmp_path / "new" / "layer_weights.png").exists()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "README.md").write_bytes(EXISTING_CARD.encode())
    model.save_pretrained(tmp_path / "old")
    assert (tmp_path / "old" / "README.md").read_bytes() == EXISTING_CARD.encode()
    assert not (tmp_path / "old" / "layer_weights.png").exists()


@pytest.fixture
def created_repos() -> list[dict]:
    """The calls of `HfApi.create_repo` under `hub_commits`: `{"repo_id": ..., **keyword arguments}`."""
    return []


@pytest.fixture
def hub_commits(monkeypatch, created_repos) -> list[dict]:
    """Intercepts the Hub: `create_repo` is recorded in `created_repos` and answers, `create_commit` records
    `{repo_id, message, files: {path: bytes}}` and answers a `CommitInfo`; the Hub has no model card."""
    commits = []

    def create_repo(self, repo_id, *args, **kwargs):
        created_repos.append({"repo_id": repo_id, **kwargs})
        return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

    def create_commit(self, repo_id, operations, *args, commit_message=None, **kwargs):
        files = {}
        for operation in operations:
            assert isinstance(operation, huggingface_hub.CommitOperationAdd)
            with operation.as_file() as file:
                files[operation.path_in_repo] = file.read()
        commits.append({"repo_id": repo_id, "message": commit_message, "files": files})
        oid = f"{len(commits):040x}"
        return huggingface_hub.CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/{oid}",
            commit_message=commit_message,
            commit_description="",
            oid=oid,
        )

    def no_card_on_the_hub(*args, **kwargs):
        raise huggingface_hub.errors.EntryNotFoundError("README.md")

    def validate_yaml_here(self, content, *args, **kwargs):
        assert ModelCard(content).data.library_name == "transformers"  # the Hub checks the card's metadata too

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    monkeypatch.setattr(huggingface_hub.HfApi, "_validate_yaml", validate_yaml_here)
    monkeypatch.setattr(huggingface_hub.ModelCard, "load", no_card_on_the_hub)
    # With hf_xet installed, upload_folder streams through its own pipeline; without, it makes one create_commit.
    monkeypatch.setattr(huggingface_hub.hf_api, "is_xet_available", lambda: False)
    return commits


def rebuild_folder(files: dict[str, bytes], folder: Path) -> Path:
    for path_in_repo, content in files.items():
        (folder / path_in_repo).parent.mkdir(parents=True, exist_ok=True)
        (folder / path_in_repo).write_bytes(content)
    return folder


def check_uploaded_bermo(files: dict[str, bytes], tmp_path: Path, expected_logits: torch.Tensor) -> str:
    assert HUB_READY_FILES <= set(files)
    assert "AutoModelForSequenceClassification" in json.loads(files["config.json"])["auto_map"]
    folder = rebuild_folder(files, tmp_path / "downloaded")
    with safe_open(folder / "model.safetensors", "pt") as weights:
        assert {"bert.layer_mix.weights", "bert.layer_mix.gamma"} <= set(weights.keys())
    card = files["README.md"].decode()
    metadata = ModelCard(card).data
    assert {"bermo", "custom_code"} <= set(metadata.tags) and metadata.library_name == "transformers"
    result = logits_in_fresh_process(folder, tmp_path / "modules")
    assert result["class"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(result["logits"]), expected_logits, rtol=0, atol=1e-6)
    return card


def test_bermo_train_push_to_hub_uploads_a_folder_that_loads_without_bermo_hf(tmp_path, hub_commits):
    tiny_bert = save_tiny_bert(tmp_path / "tiny-bert")
    train = write_tsv(tmp_path / "train.tsv", SENTENCES * 2)
    dev = write_tsv(tmp_path / "dev.tsv", SENTENCES[:4])
    status = bermo(
        [
            *("train", "--model_name_or_path", str(tiny_bert), "--train_file", str(train)),
            *("--validation_file", str(dev), "--output_dir", str(tmp_path / "out"), "--max_steps", "2"),
            *("--per_device_train_batch_size", "8", "--push_to_hub", "--hub_model_id", "someone/bermo-tiny"),
            *("--disable_tqdm", "true", "--save_strategy", "no", "--eval_strategy", "no"),
        ]
    )
    assert status == 0
    final = [commit for commit in hub_commits if commit["message"] == "End of training"]
    assert len(final) == 1 and final[0]["repo_id"] == "someone/bermo-tiny"
    model = BermoForSequenceClassification.from_pretrained(tmp_path / "out")
    card = check_uploaded_bermo(final[0]["files"], tmp_path, reference_logits(model))
    assert "metrics.json" in final[0]["files"]
    assert 'model="someone/bermo-tiny"' in card and "| accuracy |" in card


def tiny_tokenizer(tmp_path: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(save_tiny_bert(tmp_path / "tiny-bert"))


def test_push_to_hub_uploads_model_tokenizer_and_card_in_one_commit(tiny_config, tmp_path, hub_commits, created_repos):
    model = trained_looking_model(tiny_config)
    commit = bermo_hf.push_to_hub(model, "someone/bermo-pushed", tiny_tokenizer(tmp_path), private=True)
    assert [repo["repo_id"] for repo in created_repos] == ["someone/bermo-pushed"]
    assert created_repos[0]["exist_ok"] is True and created_repos[0]["private"] is True
    assert len(hub_commits) == 1 and hub_commits[0]["message"] == "Upload BERMo model"
    assert commit.oid == f"{1:040x}"
    card = check_uploaded_bermo(hub_commits[0]["files"], tmp_path, reference_logits(model))
    assert 'model="someone/bermo-pushed"' in card and "![Layer weights](layer_weights.png)" in card
    assert bermo_hf.hub.model_card_info(model).repo_id is None  # the push left the model's card information alone


def test_model_push_to_hub_keeps_the_hub_card_as_transformers_does(tiny_config, hub_commits, hub_card):
    model = trained_looking_model(tiny_config)
    model.push_to_hub("me/x", tags=["sentiment"])
    assert len(hub_commits) == 1
    files = hub_commits[0]["files"]
    assert {"config.json", "configuration_bermo.py", "modeling_bermo.py", "model.safetensors"} <= set(files)
    card = ModelCard(files["README.md"].decode())
    assert card.data.license == "apache-2.0" and card.data.language == ["en"] and card.data.datasets == ["imdb"]
    assert {"sentiment-analysis", "my-tag", "sentiment"} <= set(card.data.tags)
    assert "# My sentiment model" in card.text and "Hand-written prose that must survive every push." in card.text
    assert "<!-- bermo-hf:begin" not in card.text  # BERMo's section comes with bermo_hf.push_to_hub


EXISTING_CARD = """---
license: apache-2.0
language:
- en
tags:
- sentiment-analysis
- my-tag
datasets:
- imdb
---

# My sentiment model

Hand-written prose that must survive every push.
"""


def check_merged_card(card_text: str, pushed_tags=()) -> ModelCard:
    card = ModelCard(card_text)
    assert card.data.license == "apache-2.0" and card.data.language == ["en"]
    assert card.data.tags[:2] == ["sentiment-analysis", "my-tag"]
    assert {"bermo", "custom_code", *pushed_tags} <= set(card.data.tags)
    assert card.data.datasets[0] == "imdb" and card.data.library_name == "transformers"
    assert "# My sentiment model" in card.text and "Hand-written prose that must survive every push." in card.text
    assert card.text.count("<!-- bermo-hf:begin") == 1 and card.text.count("<!-- bermo-hf:end -->") == 1
    assert "trust_remote_code=True" in card.text and "### Learned layer weights" in card.text
    return card


@pytest.fixture
def hub_card(hub_commits, monkeypatch) -> dict:
    """The Hub repository already has a hand-written card (`EXISTING_CARD`); each commit replaces it as the Hub does."""
    state = {"card": EXISTING_CARD}

    def load_card(repo_id, *args, **kwargs):
        if hub_commits and "README.md" in hub_commits[-1]["files"]:
            state["card"] = hub_commits[-1]["files"]["README.md"].decode()
        return ModelCard(state["card"])

    monkeypatch.setattr(huggingface_hub.ModelCard, "load", load_card)
    return state


def test_push_to_hub_keeps_the_existing_hub_card_and_updates_its_bermo_section_in_place(
    tiny_config, tmp_path, hub_commits, hub_card
):
    model = trained_looking_model(tiny_config)
    tokenizer = tiny_tokenizer(tmp_path)
    bermo_hf.push_to_hub(model, "me/x", tokenizer=tokenizer, tags=["sentiment"])
    assert len(hub_commits) == 1
    card_text = check_uploaded_bermo(hub_commits[-1]["files"], tmp_path, reference_logits(model))
    first = check_merged_card(card_text, pushed_tags=["sentiment"])
    assert "layer_weights.png" in hub_commits[-1]["files"]
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.tensor([3.0, 0.0, 0.0]))
    bermo_hf.push_to_hub(model, "me/x", tokenizer=tokenizer, commit_message="Second push")
    assert len(hub_commits) == 2 and hub_commits[-1]["message"] == "Second push"
    second = check_merged_card(hub_commits[-1]["files"]["README.md"].decode(), pushed_tags=["sentiment"])
    assert second.text.split("<!-- bermo-hf:begin")[0] == first.text.split("<!-- bermo-hf:begin")[0]
    weights = LayerWeights.from_model(model)
    assert f"| embeddings | {weights.weights[0]:.4f} |" in second.text


def test_bermo_train_push_to_hub_merges_into_the_existing_hub_card(tmp_path, hub_commits, hub_card):
    tiny_bert = save_tiny_bert(tmp_path / "tiny-bert")
    train = write_tsv(tmp_path / "train.tsv", SENTENCES * 2)
    status = bermo(
        [
            *("train", "--model_name_or_path", str(tiny_bert), "--train_file", str(train)),
            *("--output_dir", str(tmp_path / "out"), "--max_steps", "1", "--push_to_hub"),
            *("--hub_model_id", "me/x", "--disable_tqdm", "true", "--save_strategy", "no"),
        ]
    )
    assert status == 0
    final = [commit for commit in hub_commits if commit["message"] == "End of training"]
    check_merged_card(final[-1]["files"]["README.md"].decode())
    check_merged_card((tmp_path / "out" / "README.md").read_text())


def test_trainer_push_to_hub_adds_its_tags_to_the_hub_card(tmp_path, hub_commits, hub_card):
    from transformers import TrainingArguments

    from bermo_hf.training import DataArguments, ModelArguments, build_trainer

    tiny_bert = save_tiny_bert(tmp_path / "tiny-bert")
    train = write_tsv(tmp_path / "train.tsv", SENTENCES * 2)
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=1, report_to="none", push_to_hub=True, hub_model_id="me/x"
    )
    trainer = build_trainer(ModelArguments(str(tiny_bert)), DataArguments(train_file=str(train)), args)
    trainer.train()
    trainer.push_to_hub(tags=["sentiment"], license="mit")
    card = ModelCard(hub_commits[-1]["files"]["README.md"].decode())
    assert card.data.license == "mit"  # given explicitly
    card.data.license = "apache-2.0"
    check_merged_card(str(card), pushed_tags=["sentiment"])


def test_write_model_card_merges_into_a_readme_already_in_the_folder(tiny_config, tmp_path):
    (tmp_path / "README.md").write_text(EXISTING_CARD)
    model = trained_looking_model(tiny_config)
    save_with_card(model, tmp_path)
    first = check_merged_card((tmp_path / "README.md").read_text())
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.tensor([3.0, 0.0, 0.0]))
    save_with_card(model, tmp_path)  # the section is updated in place, not added twice
    second = check_merged_card((tmp_path / "README.md").read_text())
    assert second.text.split("<!-- bermo-hf:begin")[0] == first.text.split("<!-- bermo-hf:begin")[0]
    assert f"| embeddings | {LayerWeights.from_model(model).weights[0]:.4f} |" in second.text
    write_model_card(model, tmp_path, tags=["sentiment"])
    check_merged_card((tmp_path / "README.md").read_text(), pushed_tags=["sentiment"])
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "README.md").write_text("Notes without metadata.\n")
    save_with_card(model, plain)
    card = ModelCard.load(plain / "README.md")
    assert card.text.startswith("Notes without metadata.") and card.data.tags == ["bermo", "custom_code", "bert"]


def test_no_chart_is_drawn_in_trainer_checkpoints(tiny_config, tmp_path):
    model = trained_looking_model(tiny_config)
    save_with_card(model, tmp_path / "checkpoint-500")
    assert not (tmp_path / "checkpoint-500" / "layer_weights.png").exists()
    assert "![Layer weights]" not in (tmp_path / "checkpoint-500" / "README.md").read_text()


# `bermo_hf.push_to_hub` under transformers 4.57.6 and its huggingface_hub 0.36 (in the release environment, a fresh
# process), the Hub intercepted as above and holding the card given as argv[1]: two pushes, one commit each, the card
# merged and updated in place; then 4.57's own `model.push_to_hub`, which keeps the Hub's card.
PUSH_UNDER_RELEASE = """
import json, sys
import huggingface_hub, torch, transformers
import transformers.utils.hub as transformers_hub
import bermo_hf
from bermo_hf import BermoConfig, BermoForSequenceClassification

commits = []
hub_card = {"text": sys.argv[1]}

def create_repo(*args, **kwargs):
    repo_id = kwargs.get("repo_id") or [a for a in args if isinstance(a, str)][0]
    return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

def create_commit(*args, operations=(), commit_message=None, **kwargs):
    files = {}
    for operation in operations:
        with operation.as_file() as file:
            files[operation.path_in_repo] = file.read()
    commits.append({"message": commit_message, "files": sorted(files)})
    if "README.md" in files:
        hub_card["text"] = files["README.md"].decode()
    oid = f"{len(commits):040x}"
    return huggingface_hub.CommitInfo(commit_url=f"https://huggingface.co/me/x/commit/{oid}",
                                      commit_message=commit_message, commit_description="", oid=oid)

huggingface_hub.HfApi.create_repo = lambda self, *a, **k: create_repo(*a, **k)
huggingface_hub.HfApi.create_commit = lambda self, *a, **k: create_commit(*a, **k)
for name, function in (("create_repo", create_repo), ("create_commit", create_commit)):
    if hasattr(transformers_hub, name):
        setattr(transformers_hub, name, function)
huggingface_hub.ModelCard.load = classmethod(lambda cls, *a, **k: cls(hub_card["text"]))

def validate_yaml_here(self, content, *args, **kwargs):  # the Hub checks the card's metadata; here, locally
    assert huggingface_hub.ModelCard(content).data.library_name == "transformers"

huggingface_hub.HfApi._validate_yaml = validate_yaml_here
if hasattr(huggingface_hub.hf_api, "is_xet_available"):
    huggingface_hub.hf_api.is_xet_available = lambda: False

config = BermoConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                     max_position_embeddings=64)
model = BermoForSequenceClassification(config)
cards = []
bermo_hf.push_to_hub(model, "me/x", tags=["sentiment"])
cards.append(hub_card["text"])
with torch.no_grad():
    model.bert.layer_mix.weights.copy_(torch.tensor([3.0, 0.0, 0.0]))
commit = bermo_hf.push_to_hub(model, "me/x")
cards.append(hub_card["text"])
model.push_to_hub("me/x", tags=["plain"])
cards.append(hub_card["text"])
print("RESULT " + json.dumps({"transformers": transformers.__version__, "hub": huggingface_hub.__version__,
                              "cards": cards, "commits": commits, "oid": commit.oid}))
"""


def test_push_to_hub_merges_the_card_under_transformers_4_57(transformers_releases, tmp_path):
    python = release_python(transformers_releases / "4.57.6")
    outcome = result_of_fresh_process(["-c", PUSH_UNDER_RELEASE, EXISTING_CARD], tmp_path, python)
    assert outcome["transformers"] == "4.57.6" and outcome["hub"].startswith("0.")
    first_push, second_push, plain_push = outcome["commits"]
    assert first_push["message"] == second_push["message"] == "Upload BERMo model" and outcome["oid"] == f"{2:040x}"
    for push in (first_push, second_push):
        assert {"config.json", "modeling_bermo.py", "model.safetensors", "layer_weights.png"} <= set(push["files"])
    first = check_merged_card(outcome["cards"][0], pushed_tags=["sentiment"])
    second = check_merged_card(outcome["cards"][1], pushed_tags=["sentiment"])
    assert second.text.split("<!-- bermo-hf:begin")[0] == first.text.split("<!-- bermo-hf:begin")[0]
    assert second.text != first.text  # the layer weights changed
    check_merged_card(outcome["cards"][2], pushed_tags=["sentiment", "plain"])  # 4.57's push kept the Hub's card
