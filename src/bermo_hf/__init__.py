"""BERMo for Hugging Face transformers: BERT whose task heads read a learned scalar mix of every layer.

Importing this package registers the `bermo` model type with the transformers Auto classes.
"""

import transformers

from .configuration_bermo import BermoConfig
from .hub import set_model_card_info, write_model_card
from .layer_weights import LayerWeights
from .modeling_bermo import (
    BERMO_TASKS,
    MODEL_CARD_WRITERS,
    BermoForMultipleChoice,
    BermoForQuestionAnswering,
    BermoForSequenceClassification,
    BermoForTokenClassification,
    BermoLayerMix,
    BermoModel,
    BermoPreTrainedModel,
)

__version__ = "0.1.0"

transformers.AutoConfig.register(BermoConfig.model_type, BermoConfig)
for _task in BERMO_TASKS:
    getattr(transformers, _task.auto_class).register(BermoConfig, _task.model_class)
MODEL_CARD_WRITERS.append(write_model_card)

__all__ = [
    "BermoConfig",
    "BermoForMultipleChoice",
    "BermoForQuestionAnswering",
    "BermoForSequenceClassification",
    "BermoForTokenClassification",
    "BermoLayerMix",
    "BermoModel",
    "BermoPreTrainedModel",
    "LayerWeights",
    "set_model_card_info",
    "write_model_card",
]
