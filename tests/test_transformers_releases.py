"""Every transformers release the package accepts gives the same numbers: the oldest (4.57.6), the releases around
the loading change that once reset a trained mix (5.0.0, 5.2.0, 5.3.0), one from the line that ties the last hidden
state to the output without an opt-out (5.12.1), and the installed newest.

Each older release lives in a virtual environment of its own, with the dependency set of its line (the
`transformers_releases` fixture, built by `.ci/run` from `.ci/releases/`). Under each, the model tests that define
BERMo's numbers run whole (`MODEL_TESTS`), and a folder saved under one release loads under the other."""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path

import pytest
import torch
from transformers import BertForSequenceClassification, BertTokenizerFast

from bermo_hf import BermoConfig, BermoForSequenceClassification

from .conftest import REPO_ROOT, release_python, result_of_fresh_process, tiny_config_kwargs

RELEASES = ("4.57.6", "5.0.0", "5.2.0", "5.3.0", "5.12.1")
# The tests that define what BERMo computes: equivalence with the family's own heads, the reference mix, hidden
# states, the mix itself, gradient checkpointing and other runtimes, threads and nesting, loading and remote code.
MODEL_TESTS = (
    "tests/test_equivalence.py",
    "tests/test_families.py",
    "tests/test_family_runtimes.py",
    "tests/test_hidden_states.py",
    "tests/test_layer_mix.py",
    "tests/test_runtime.py",
    "tests/test_call_state.py",
    "tests/test_loading.py",
    "tests/test_config.py",
    "tests/test_remote_code.py",
    "tests/test_remote_code_families.py",
)
TEXTS = ["a gripping and beautifully acted film", "the plot is thin and the jokes fall flat", "what a film"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHECK_SCRIPT = Path(__file__).with_name("release_check.py")


def run_under(release_dir: Path, tmp_path: Path, *args: str) -> dict:
    return result_of_fresh_process([str(CHECK_SCRIPT), *args], tmp_path, release_python(release_dir))


class ReleaseRuns:
    """The model tests under every release, each a pytest process of its own with one torch thread. They start in
    the background as soon as the session's tests are collected (`conftest.pytest_collection_modifyitems`), one at a
    time on the core the main run leaves idle; when the main run reaches this module and waits for them, a second
    worker joins (`add_worker`). Release -> `Future` of the finished process in `futures`."""

    def __init__(self, releases_dir: Path):
        self.releases_dir = releases_dir
        self.base = Path(tempfile.mkdtemp(prefix="bermo-release-runs-"))
        self.futures = {release: Future() for release in RELEASES}
        self.pending = queue.SimpleQueue()
        for release in RELEASES:
            self.pending.put(release)
        self.processes = []
        self.workers = 0
        self.add_worker()

    def add_worker(self) -> None:
        if self.workers < 2:
            self.workers += 1
            threading.Thread(target=self._work, daemon=True).start()

    def _work(self) -> None:
        while True:
            try:
                release = self.pending.get_nowait()
            except queue.Empty:
                return
            try:
                self.futures[release].set_result(self._run(release))
            except BaseException as error:  # noqa: BLE001 - handed to the test that reads the future
                self.futures[release].set_exception(error)

    def _run(self, release: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH="", OMP_NUM_THREADS="1")
        command = [release_python(self.releases_dir / release), "-m", "pytest", "-q", "-p", "no:cacheprovider"]
        command += ["--basetemp", str(self.base / release), *MODEL_TESTS]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        self.processes.append(process)
        stdout, stderr = process.communicate(timeout=900)
        return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)

    def stop(self) -> None:
        """Ends what still runs (a session that stops early) and removes the runs' temporary folders."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        shutil.rmtree(self.base, ignore_errors=True)


_release_runs: ReleaseRuns | None = None


def start_release_runs(releases_dir: Path) -> ReleaseRuns:
    """The session's `ReleaseRuns`, started on the first call."""
    global _release_runs
    if _release_runs is None:
        _release_runs = ReleaseRuns(releases_dir)
    return _release_runs


def stop_release_runs() -> None:
    if _release_runs is not None:
        _release_runs.stop()


@pytest.fixture(scope="module")
def model_test_runs(transformers_releases):
    """Release -> future of its finished model-test process (see `ReleaseRuns`)."""
    runs = start_release_runs(transformers_releases)
    runs.add_worker()
    return runs.futures


@pytest.mark.parametrize("release", RELEASES)
def test_the_model_tests_pass_under(release, transformers_releases, model_test_runs):
    python = release_python(transformers_releases / release)
    version = subprocess.run(
        [python, "-c", "import transformers; print(transformers.__version__)"], capture_output=True, text=True
    )
    assert version.stdout.strip() == release, version.stderr[-2000:]
    result = model_test_runs[release].result()
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, (
        f"under transformers {release}: {summary}\n{result.stdout[-6000:]}{result.stderr[-2000:]}"
    )
    assert " passed" in summary and "skipped" not in summary, summary


def save_tiny_tokenizer(folder: Path) -> BertTokenizerFast:
    words = sorted({word for text in TEXTS for word in text.split()})
    vocab_file = folder.parent / "vocab.txt"
    vocab_file.write_text("\n".join(SPECIAL_TOKENS + words) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file))
    tokenizer.save_pretrained(folder)
    return tokenizer


@pytest.fixture(scope="module")
def trained_folder(tmp_path_factory):
    """A tiny classifier with a trained-looking mix and named classes, saved with the installed transformers."""
    folder = tmp_path_factory.mktemp("saved") / "bermo"
    torch.manual_seed(0)
    id2label = {0: "negative", 1: "neutral", 2: "positive"}
    config = BermoConfig(
        **tiny_config_kwargs(num_labels=3, id2label=id2label, label2id={v: k for k, v in id2label.items()})
    )
    model = BermoForSequenceClassification(config).eval()
    with torch.no_grad():
        model.bert.layer_mix.weights.copy_(torch.tensor([0.5, -0.25, 1.5]))
        model.bert.layer_mix.gamma.fill_(0.75)
        model.classifier.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    model.save_pretrained(folder)
    tokenizer = save_tiny_tokenizer(folder)
    inputs = dict(tokenizer(TEXTS, padding=True))
    batch = {name: torch.tensor(inputs[name]) for name in ("input_ids", "attention_mask")}
    # The reference hidden states are transformers' own BERT's, loaded from the same folder.
    plain = BertForSequenceClassification.from_pretrained(folder).eval()
    with torch.no_grad():
        logits = model(**batch).logits
        hidden_states = plain(**batch, output_hidden_states=True).hidden_states
    labels = [id2label[index] for index in logits.argmax(-1).tolist()]
    return folder, {**inputs, "texts": TEXTS}, logits, hidden_states, labels


@pytest.mark.parametrize("release", RELEASES)
def test_a_saved_model_loads_through_its_remote_code_to_identical_logits_hidden_states_and_labels(
    release, transformers_releases, trained_folder, tmp_path
):
    folder, inputs, logits, hidden_states, labels = trained_folder
    loaded = run_under(transformers_releases / release, tmp_path, "remote", str(folder), json.dumps(inputs))
    assert loaded["transformers"] == release
    assert loaded["module"].startswith("transformers_modules.")
    torch.testing.assert_close(torch.tensor(loaded["logits"]), logits, rtol=0, atol=1e-6)
    assert_hidden_states_equal(loaded["hidden_states"], hidden_states)
    assert loaded["labels"] == labels


def assert_hidden_states_equal(ours: list, reference) -> None:
    """Every depth (embeddings first, the last layer last, never the mix) as the reference has it."""
    assert len(ours) == len(reference)
    for depth, (state, expected) in enumerate(zip(ours, reference, strict=True)):
        torch.testing.assert_close(torch.tensor(state), expected, rtol=0, atol=1e-6, msg=f"hidden_states[{depth}]")


@pytest.mark.parametrize("release", RELEASES)
def test_the_package_trains_saves_and_reloads_exactly(release, transformers_releases, tmp_path):
    result = run_under(transformers_releases / release, tmp_path, "package", str(tmp_path / "out"))
    assert result["transformers"] == release
    assert result["mix_moved"]
    assert result["logits_after_reloading"] == result["logits_before_saving"]
    assert result["hidden_states_after_reloading"] == result["hidden_states_before_saving"]
    # ... and what that release saved loads here, with the installed newest, to the same numbers, its hidden states
    # those of transformers' own BERT from the same folder.
    saved = tmp_path / "out" / "saved"
    input_ids = torch.tensor(result["input_ids"])
    with torch.no_grad():
        logits = BermoForSequenceClassification.from_pretrained(saved).eval()(input_ids=input_ids).logits
        plain = BertForSequenceClassification.from_pretrained(saved).eval()
        hidden_states = plain(input_ids=input_ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(logits, torch.tensor(result["logits_before_saving"]), rtol=0, atol=1e-6)
    assert_hidden_states_equal(result["hidden_states_before_saving"], hidden_states)
