"""`bermo train` interrupted for real: a subprocess gets SIGINT (or SIGTERM) after its first checkpoint, keeps it, and
`--resume_from_checkpoint last` ends where an uninterrupted run ends (same loss curve, same final logits)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bermo_hf import BermoForSequenceClassification

from .test_training import SENTENCES, save_tiny_bert, write_tsv

# Runs `bermo` with each training step slowed down (sleeping changes no number), so that a signal can arrive mid-run;
# with Ctrl-C's own handler, as in a terminal (a shell's background job would inherit SIGINT ignored).
SLOW_BERMO = """
import signal, sys, time
import transformers

signal.signal(signal.SIGINT, signal.default_int_handler)

training_step = transformers.Trainer.training_step


def slow_training_step(self, *args, **kwargs):
    time.sleep(float(sys.argv[1]))
    return training_step(self, *args, **kwargs)


transformers.Trainer.training_step = slow_training_step
from bermo_hf.cli import main

sys.exit(main(sys.argv[2:]))
"""
INPUT_IDS = torch.tensor([[2, 5, 17, 23, 42, 3], [2, 30, 31, 8, 9, 3]])


@pytest.fixture(scope="module")
def run_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("interrupt")
    return save_tiny_bert(folder / "tiny-bert"), write_tsv(folder / "train.tsv", SENTENCES * 4)


def start_bermo(run_files, output_dir: Path, *extra: str, step_seconds: float = 0.0) -> subprocess.Popen:
    tiny_bert, train = run_files
    argv = [
        *("train", "--model_name_or_path", str(tiny_bert), "--train_file", str(train), "--output_dir", str(output_dir)),
        *("--max_steps", "6", "--save_strategy", "steps", "--save_steps", "2", "--logging_steps", "1"),
        *("--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--seed", "3", "--disable_tqdm", "true"),
        *("--report_to", "none", *extra),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_BERMO, str(step_seconds), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, err = process.communicate(timeout=600)
    return process.returncode, err


def interrupt_after_first_checkpoint(process: subprocess.Popen, output_dir: Path, signal_number: int):
    first = output_dir / "checkpoint-2" / "trainer_state.json"
    while not first.is_file():
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.05)
    process.send_signal(signal_number)
    return finish(process)


def losses(output_dir: Path) -> list[float]:
    state = json.loads((output_dir / "checkpoint-6" / "trainer_state.json").read_text())
    return [record["loss"] for record in state["log_history"] if "loss" in record]


def final_logits(output_dir: Path) -> torch.Tensor:
    with torch.no_grad():
        return BermoForSequenceClassification.from_pretrained(output_dir).eval()(input_ids=INPUT_IDS).logits


def test_sigint_keeps_the_checkpoints_and_resuming_matches_an_uninterrupted_run(run_files, tmp_path):
    interrupted = tmp_path / "interrupted"
    status, err = interrupt_after_first_checkpoint(
        start_bermo(run_files, interrupted, step_seconds=0.5), interrupted, signal.SIGINT
    )
    assert status == 130, err[-3000:]
    last_line = err.rstrip().splitlines()[-1]
    assert last_line.startswith("bermo train: interrupted; ") and "--resume_from_checkpoint last" in last_line
    kept = sorted(path.name for path in interrupted.glob("checkpoint-*"))
    assert kept and f"newest: {kept[-1]}" in last_line
    assert not (interrupted / "model.safetensors").exists() and not (interrupted / ".bermo-partial").exists()

    status, err = finish(start_bermo(run_files, interrupted, "--resume_from_checkpoint", "last"))
    assert status == 0, err[-3000:]
    straight = tmp_path / "straight"
    status, err = finish(start_bermo(run_files, straight))
    assert status == 0, err[-3000:]

    assert len(losses(straight)) == 6
    assert losses(interrupted) == pytest.approx(losses(straight), abs=1e-6)
    torch.testing.assert_close(final_logits(interrupted), final_logits(straight), rtol=0, atol=1e-6)


def test_sigterm_keeps_the_checkpoints(run_files, tmp_path):
    output_dir = tmp_path / "out"
    status, err = interrupt_after_first_checkpoint(
        start_bermo(run_files, output_dir, step_seconds=0.5), output_dir, signal.SIGTERM
    )
    assert status == 128 + signal.SIGTERM, err[-3000:]
    assert err.rstrip().splitlines()[-1].startswith("bermo train: terminated (SIGTERM); ")
    assert list(output_dir.glob("checkpoint-*/trainer_state.json"))


def test_an_interruption_removes_only_the_checkpoint_it_left_half_written(tmp_path, capsys):
    """What the cleanup after an interruption may remove: the one checkpoint this run left without its
    `trainer_state.json`. The user's files and earlier complete checkpoints stay."""
    from bermo_hf.commands._common import checkpoints_kept_on_interrupt

    out = tmp_path / "out"
    (out / "checkpoint-5").mkdir(parents=True)
    (out / "checkpoint-5" / "trainer_state.json").write_text("{}")
    (out / "notes.txt").write_text("my notes")
    (out / "checkpoint-notes").mkdir()  # not a Trainer checkpoint name
    with pytest.raises(KeyboardInterrupt), checkpoints_kept_on_interrupt("train", out, created=False):
        (out / "checkpoint-10").mkdir()  # saving was interrupted: no trainer_state.json
        (out / "checkpoint-10" / "model.safetensors").write_text("half")
        raise KeyboardInterrupt
    assert sorted(path.name for path in out.iterdir()) == ["checkpoint-5", "checkpoint-notes", "notes.txt"]
    assert (out / "notes.txt").read_text() == "my notes"
    assert "1 checkpoint(s) kept" in capsys.readouterr().err


def test_an_error_before_any_checkpoint_removes_only_a_folder_the_command_created(tmp_path):
    from bermo_hf.commands._common import checkpoints_kept_on_interrupt

    existing, created = tmp_path / "existing", tmp_path / "created"
    existing.mkdir()
    (existing / "notes.txt").write_text("my notes")
    created.mkdir()
    for folder, was_created in ((existing, False), (created, True)):
        with pytest.raises(RuntimeError), checkpoints_kept_on_interrupt("train", folder, created=was_created):
            raise RuntimeError("out of memory, say")
    assert [path.name for path in existing.iterdir()] == ["notes.txt"] and not created.exists()
