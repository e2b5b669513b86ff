"""BERMo for Hugging Face transformers: BERT whose task heads read a learned scalar mix of every layer.

Importing this package registers the `bermo` model type with the transformers Auto classes, and does nothing else:
the model card is written by explicit calls (`write_model_card` after `save_pretrained`, `push_to_hub`).
"""

import transformers

from .configuration_bermo import BermoConfig
from .hub import push_to_hub, set_model_card_info, write_model_card
from .layer_weights import LayerWeights
from .modeling_bermo import (
    BERMO_TASKS,
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
    "push_to_hub",
    "set_model_card_info",
    "write_model_card",
]
