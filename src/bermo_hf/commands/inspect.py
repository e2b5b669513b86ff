"""`bermo inspect CKPT [--plot out.png] [--json]`: which depths a BERMo checkpoint's task head reads."""

import argparse
import json

from ..checkpoints import load_bermo_config
from ..errors import BermoUsageError
from ..layer_weights import LayerWeights, format_layer_weights, save_layer_weights_chart
from ..pruning import format_sparsity_report, sparsity_report
from ._common import reports_usage_errors


def load_bermo_model(checkpoint: str):
    """The base model of a BERMo checkpoint (folder or Hub id), whatever its head."""
    from transformers import AutoModel

    return AutoModel.from_pretrained(checkpoint, config=load_bermo_config(checkpoint))


@reports_usage_errors("inspect")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bermo inspect",
        description="Show the learned layer weights of a BERMo checkpoint: per-depth softmax weights, gamma, and the "
        "expected layer sum_j j * s_j.",
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="BERMo checkpoint: a local folder or a Hub id.")
    parser.add_argument("--plot", metavar="PNG", help="also write a bar chart of the weights (needs matplotlib).")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table.")
    args = parser.parse_args(argv)

    model = load_bermo_model(args.checkpoint)
    layer_weights = LayerWeights.from_model(model)
    sparsity = sparsity_report(model)
    pruned = sparsity["encoder"]["zeros"] > 0
    if args.plot and not save_layer_weights_chart(layer_weights, args.plot, title=f"{args.checkpoint}: layer weights"):
        raise BermoUsageError("--plot needs matplotlib: pip install 'bermo-hf[plot]'.")
    if args.json:
        print(json.dumps({**layer_weights.to_dict(), **({"sparsity": sparsity} if pruned else {})}, indent=2))
    else:
        print(format_layer_weights(layer_weights))
        if pruned:
            print()
            print(format_sparsity_report(sparsity))
    if args.plot and not args.json:
        print(f"chart written to {args.plot}")
    return 0
