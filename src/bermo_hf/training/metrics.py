"""Scores: the `Trainer`'s `compute_metrics` for a task, and the evaluation scores read back from its records."""

from collections.abc import Callable

import numpy as np
from transformers import EvalPrediction

from .labels import LabelSpace


def build_compute_metrics(label_space: LabelSpace) -> Callable[[EvalPrediction], dict[str, float]]:
    """`compute_metrics` for the `Trainer`: accuracy, F1 (binary, or macro for several classes) and Matthews
    correlation for classification; Pearson, Spearman and MSE for regression."""
    from scipy.stats import pearsonr, spearmanr
    from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef, mean_squared_error

    def compute_metrics(prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        labels = prediction.label_ids
        if label_space.is_regression:
            scores = np.squeeze(logits, axis=-1)
            return {
                "pearson": float(pearsonr(scores, labels)[0]),
                "spearmanr": float(spearmanr(scores, labels)[0]),
                "mse": float(mean_squared_error(labels, scores)),
            }
        predicted = np.argmax(logits, axis=-1)
        average = "binary" if label_space.num_labels == 2 else "macro"
        return {
            "accuracy": float(accuracy_score(labels, predicted)),
            "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
            "matthews_correlation": float(matthews_corrcoef(labels, predicted)),
        }

    return compute_metrics


def eval_scores(metrics: dict) -> dict[str, float]:
    """The `eval_*` scores of a metrics record (a `Trainer` log entry or `evaluate()`'s result), without its timings
    (`eval_runtime`, `eval_*_per_second`)."""
    return {
        key: float(value)
        for key, value in metrics.items()
        if key.startswith("eval_") and not key.endswith(("_runtime", "_per_second")) and isinstance(value, (int, float))
    }


def last_eval_metrics(log_history: list[dict]) -> dict[str, float]:
    """The scores of the last evaluation in a `Trainer`'s log history, without the `eval_` prefix and timings."""
    for record in reversed(log_history):
        if any(key.startswith("eval_") for key in record):
            return {key.removeprefix("eval_"): value for key, value in eval_scores(record).items()}
    return {}
