"""Tiny random configurations of every BERMo family, and what a test needs to know of each: where the family's head
reads the last layer's sequence (to substitute a reference mix there by hand) and which inputs it takes.

Imports only torch and transformers, so that it also runs in a fresh process where `bermo_hf` cannot be imported."""

from pathlib import Path
from typing import NamedTuple

TINY = dict(vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=37)
MODERNBERT = dict(
    TINY, max_position_embeddings=64, pad_token_id=0, bos_token_id=2, eos_token_id=3, cls_token_id=2, sep_token_id=3
)


class TinyFamily(NamedTuple):
    """A family under test: its id in test names, the BERMo `model_type`, configuration settings, the module path of
    its mix point, whether the mix enters that module's input (a final norm) rather than its output, whether the base
    model also reads the last layer from the encoder's hidden states (DeBERTa), and whether it takes
    `token_type_ids`."""

    id: str
    model_type: str
    settings: dict
    mix_point: str
    mix_enters_input: bool = False
    reads_hidden_states: bool = False
    token_types: bool = True


TINY_FAMILIES = (
    TinyFamily("bert", "bermo", dict(TINY, max_position_embeddings=64), "encoder"),
    TinyFamily(
        "roberta", "bermo-roberta", dict(TINY, max_position_embeddings=66, pad_token_id=1, type_vocab_size=1), "encoder"
    ),
    TinyFamily(
        "xlm-roberta",
        "bermo-xlm-roberta",
        dict(TINY, max_position_embeddings=66, pad_token_id=1, type_vocab_size=1),
        "encoder",
    ),
    TinyFamily(
        "xlm-roberta-xl",
        "bermo-xlm-roberta-xl",
        dict(TINY, max_position_embeddings=66, pad_token_id=1, type_vocab_size=1),
        "encoder.LayerNorm",
        mix_enters_input=True,
    ),
    TinyFamily(
        "camembert",
        "bermo-camembert",
        dict(TINY, max_position_embeddings=66, pad_token_id=1, type_vocab_size=1),
        "encoder",
    ),
    TinyFamily(
        "distilbert",
        "bermo-distilbert",
        dict(vocab_size=100, dim=32, n_layers=3, n_heads=4, hidden_dim=37, max_position_embeddings=64),
        "transformer",
        token_types=False,
    ),
    TinyFamily("electra", "bermo-electra", dict(TINY, embedding_size=16, max_position_embeddings=64), "encoder"),
    TinyFamily(
        "deberta",
        "bermo-deberta",
        dict(TINY, max_position_embeddings=64, relative_attention=True, pos_att_type=["c2p", "p2c"]),
        "encoder",
        reads_hidden_states=True,
    ),
    TinyFamily(  # DeBERTa-v3's settings
        "deberta-v3",
        "bermo-deberta-v2",
        dict(
            TINY,
            max_position_embeddings=64,
            relative_attention=True,
            pos_att_type=["p2c", "c2p"],
            position_buckets=8,
            norm_rel_ebd="layer_norm",
            share_att_key=True,
            max_relative_positions=-1,
            position_biased_input=False,
            type_vocab_size=0,
        ),
        "encoder",
        reads_hidden_states=True,
        token_types=False,
    ),
    TinyFamily(  # DeBERTa-v2's convolution after the first layer
        "deberta-v2-conv",
        "bermo-deberta-v2",
        dict(
            TINY, max_position_embeddings=64, relative_attention=True, pos_att_type=["p2c", "c2p"], conv_kernel_size=3
        ),
        "encoder",
        reads_hidden_states=True,
    ),
    TinyFamily(
        "mpnet",
        "bermo-mpnet",
        dict(TINY, max_position_embeddings=66, pad_token_id=1),
        "encoder",
        token_types=False,
    ),
    TinyFamily(
        "albert",
        "bermo-albert",
        dict(TINY, embedding_size=16, max_position_embeddings=64, num_hidden_groups=1, inner_group_num=1),
        "encoder",
    ),
    TinyFamily(
        "modernbert",
        "bermo-modernbert",
        dict(MODERNBERT, global_attn_every_n_layers=2, local_attention=4),
        "final_norm",
        mix_enters_input=True,
        token_types=False,
    ),
    TinyFamily(  # heads that pool by mean read the whole sequence
        "modernbert-mean",
        "bermo-modernbert",
        dict(MODERNBERT, classifier_pooling="mean"),
        "final_norm",
        mix_enters_input=True,
        token_types=False,
    ),
)


SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "a gripping and beautifully acted film the plot is thin jokes fall flat".split()


def tiny_tokenizer(family: TinyFamily, folder: Path):
    """A WordPiece tokenizer over a few words (ids below 100), saved in `folder`; without `token_type_ids` for the
    families that take none."""
    from transformers import BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab_file = folder / "vocab.txt"
    vocab_file.write_text("\n".join(SPECIAL_TOKENS + sorted(set(WORDS))) + "\n")
    names = ["input_ids", "token_type_ids", "attention_mask"] if family.token_types else ["input_ids", "attention_mask"]
    tokenizer = BertTokenizerFast(vocab_file=str(vocab_file), model_input_names=names)
    tokenizer.save_pretrained(folder)
    return tokenizer
