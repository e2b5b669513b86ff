"""The `bermo` command: one subcommand per job, each implemented in its own module.

`bermo COMMAND --help` shows a command's flags. Every command module exposes `main(argv) -> int`; this file only
dispatches.
"""

import importlib
import sys

# command -> (module implementing it, one-line description)
COMMANDS = {
    "convert": ("bermo_hf.commands.convert", "turn a BERT checkpoint (folder or Hub id) into a Hub-ready BERMo folder"),
    "train": ("bermo_hf.commands.train", "fine-tune BERMo (or plain BERT with --baseline) with the standard Trainer"),
    "inspect": ("bermo_hf.commands.inspect", "show a checkpoint's learned layer weights (table, --json, --plot)"),
    "predict": ("bermo_hf.commands.predict", "classify texts with a fine-tuned checkpoint"),
    "demo": ("bermo_hf.commands.demo", "convert, fine-tune, reload and predict end to end on the bundled sample"),
    "prune": ("bermo_hf.commands.prune", "fine-tune with magnitude or movement pruning and report sparsity"),
    "probe": ("bermo_hf.commands.probe", "SentEval probing of BERT and BERMo, fine-tuned or frozen"),
    "export": ("bermo_hf.commands.export", "export a checkpoint to ONNX and check it against PyTorch"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: bermo COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {description}" for name, (_, description) in COMMANDS.items()]
    lines += ["", "Run `bermo COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bermo` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"bermo: unknown command {command!r}; choose one of: {', '.join(COMMANDS)}.", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main())
