"""Data-parallel training in two processes (gloo on CPU) through `accelerate launch`: no unused-parameter error, and
both ranks end with the same layer mix, the one saved."""

import json
import socket
import subprocess
import sys

from safetensors import safe_open

from .test_training import SENTENCES, save_tiny_bert, write_tsv


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_processes_end_with_identical_mix_weights(tmp_path):
    tiny_bert = save_tiny_bert(tmp_path / "tiny-bert")
    train = write_tsv(tmp_path / "train.tsv", SENTENCES * 4)
    dev = write_tsv(tmp_path / "dev.tsv", SENTENCES[:4])
    out = tmp_path / "out"
    # On a machine without GPUs `accelerate launch --cpu` runs one process unless MPI is set up; `--multi_gpu` starts
    # the processes with torchrun, which use gloo when there is no GPU.
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.accelerate_cli",
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
    ]
    launch += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--main_process_port", str(free_port())]
    train_args = ["--model_name_or_path", tiny_bert, "--train_file", train, "--validation_file", dev]
    train_args += ["--output_dir", out, "--max_steps", "4", "--per_device_train_batch_size", "4", "--use_cpu", "true"]
    train_args += ["--learning_rate", "1e-3", "--mix_learning_rate", "0.05", "--disable_tqdm", "true", "--seed", "3"]
    result = subprocess.run(
        [*launch, "-m", "bermo_hf", "train", *map(str, train_args)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "unused parameters" not in result.stderr.lower() or "did not find any unused" in result.stderr

    metrics = json.loads((out / "metrics.json").read_text())
    per_rank = metrics["layer_weights_by_rank"]
    assert len(per_rank) == 2 and per_rank[0] == per_rank[1]
    with safe_open(out / "model.safetensors", "pt") as weights:
        saved_gamma = weights.get_tensor("bert.layer_mix.gamma").item()
    assert per_rank[0][-1] == saved_gamma and per_rank[0][:-1] == metrics["layer_weights"]["weights"]
    assert saved_gamma != 1.0  # the mix was trained
    assert metrics["train_loss"] < 1.0  # a batch mean, not a sum over the processes
