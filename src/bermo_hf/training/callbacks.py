"""`LayerWeightsCallback`: a BERMo model's layer weights, logged at each evaluation."""

import logging

from transformers import TrainerCallback

from ..layer_weights import LayerWeights

logger = logging.getLogger(__name__)


class LayerWeightsCallback(TrainerCallback):
    """Logs a BERMo model's layer weights after each evaluation.

    Each record (`{"step", "epoch", "weights", "gamma", "expected_layer"}`) is appended to `history` and to the
    trainer state's `log_history` (so it lands in `trainer_state.json`), and logged as one line by the
    `bermo_hf.training` logger on the main process. Does nothing for a model without a mix.

    Example:

    ```python
    >>> trainer = Trainer(model=model, args=args, ..., callbacks=[LayerWeightsCallback()])
    ```
    """

    def __init__(self):
        self.history: list[dict] = []

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        layer_weights = LayerWeights.from_model(model) if model is not None else None
        if layer_weights is None:
            return
        record = {
            "step": state.global_step,
            "epoch": state.epoch,
            "weights": layer_weights.weights,
            "gamma": layer_weights.gamma,
            "expected_layer": layer_weights.expected_layer,
        }
        self.history.append(record)
        state.log_history.append(
            {"layer_weights": record["weights"], "layer_mix_gamma": record["gamma"], "step": record["step"]}
        )
        if state.is_world_process_zero:
            shares = " ".join(
                f"{name.replace('layer ', 'L')}={weight:.3f}"
                for name, weight in zip(layer_weights.depth_names, layer_weights.weights, strict=True)
            )
            logger.info(
                f"layer weights at step {state.global_step}: {shares} gamma={layer_weights.gamma:.3f} "
                f"expected layer={layer_weights.expected_layer:.2f}"
            )
