"""`bermo predict CKPT TEXT... | --file F`: labels and scores of a fine-tuned text classifier."""

import argparse
import json
from pathlib import Path

from ..checkpoints import load_checkpoint_config
from ..errors import BermoUsageError
from ._common import reports_usage_errors


def read_texts(path: str) -> list[str]:
    """The non-empty lines of a UTF-8 text file, one text per line."""
    file = Path(path)
    if not file.is_file():
        raise BermoUsageError(f"{path}: no such file.")
    texts = [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise BermoUsageError(f"{path} is empty.")
    return texts


@reports_usage_errors("predict")
def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="bermo predict",
        description="Classify texts with a fine-tuned BERMo (or BERT) checkpoint through "
        'pipeline("text-classification"); prints label, score and text, tab-separated.',
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="fine-tuned checkpoint: a local folder or a Hub id.")
    parser.add_argument("texts", metavar="TEXT", nargs="*", help="texts to classify.")
    parser.add_argument("--file", metavar="F", help="read the texts from F, one per line.")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--json", action="store_true", help="print one JSON object per text.")
    args = parser.parse_args(argv)
    if bool(args.texts) == bool(args.file):
        parser.error("give either TEXT... or --file F.")

    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    texts = args.texts or read_texts(args.file)
    config = load_checkpoint_config(args.checkpoint)
    # Loaded here from the configuration read once; `pipeline(model=CKPT)` would read it three more times.
    model = AutoModelForSequenceClassification.from_pretrained(args.checkpoint, config=config)
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint, config=config)
    classifier = pipeline("text-classification", model=model, tokenizer=tokenizer, batch_size=args.batch_size)
    for text, prediction in zip(texts, classifier(texts), strict=True):
        if args.json:
            print(json.dumps({"text": text, "label": prediction["label"], "score": prediction["score"]}))
        else:
            print(f"{prediction['label']}\t{prediction['score']:.4f}\t{text}")
    return 0
