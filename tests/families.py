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


# The kind of tokenizer each family's checkpoints ship: byte-level BPE with RoBERTa's pair encoding (`<s> A </s></s> B
# </s>`), byte-level BPE with BERT's special tokens (ModernBERT), SentencePiece-style unigram (DeBERTa-v2/v3, ALBERT),
# WordPiece with RoBERTa's pair encoding (MPNet), or BERT's WordPiece.
TOKENIZER_KINDS = {
    "roberta": "byte-level-bpe",
    "xlm-roberta": "unigram-roberta",
    "camembert": "unigram-roberta",
    "modernbert": "byte-level-bpe-bert",
    "modernbert-mean": "byte-level-bpe-bert",
    "deberta-v3": "unigram",
    "deberta-v2-conv": "unigram",
    "albert": "unigram",
    "mpnet": "wordpiece-roberta",
}
CORPUS = [
    "the film was great fun",
    "a lovely , warm story",
    "the food was awful",
    "dull and boring plot",
    "i love this film",
    "the worst acting",
    "a gripping and beautifully acted film",
    "the plot is thin , the jokes fall flat",
]


def family_kind_tokenizer(family: TinyFamily, folder: Path):
    """A tokenizer of the kind the family's real checkpoints ship (`TOKENIZER_KINDS`; BERT's WordPiece otherwise),
    trained on a few sentences with `tokenizers` and saved in `folder`; `token_type_ids` only for the families that
    take them; the family's `model_max_length` (8192 tokens for ModernBERT, 512 for the others). The checkpoint's
    `vocab_size` must be at least `len(tokenizer)`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    kind = TOKENIZER_KINDS.get(family.id)
    if kind is None:
        return tiny_tokenizer(family, folder)
    roberta_style = kind.endswith("roberta") or kind == "byte-level-bpe"
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"] if roberta_style else SPECIAL_TOKENS
    cls, pad, sep, unk, mask = (specials[i] for i in ((0, 1, 2, 3, 4) if roberta_style else (2, 0, 3, 1, 4)))
    if kind.startswith("byte-level-bpe"):
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=300, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
    elif kind.startswith("unigram"):
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.normalizer = normalizers.Lowercase()
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
        tokenizer.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=60, special_tokens=specials, unk_token=unk)
    else:
        tokenizer = Tokenizer(models.WordPiece(unk_token=unk))
        tokenizer.normalizer = normalizers.BertNormalizer()
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tokenizer.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=80, special_tokens=specials)
    tokenizer.train_from_iterator(CORPUS, trainer)
    cls_id, sep_id = tokenizer.token_to_id(cls), tokenizer.token_to_id(sep)
    if roberta_style:
        tokenizer.post_processor = processors.RobertaProcessing((sep, sep_id), (cls, cls_id))
    else:
        second = ":1" if family.token_types else ""  # the second text's token type
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}",
            pair=f"{cls} $A {sep} $B{second} {sep}{second}",
            special_tokens=[(cls, cls_id), (sep, sep_id)],
        )
    token_types = family.token_types and not roberta_style
    names = ["input_ids", "token_type_ids", "attention_mask"] if token_types else ["input_ids", "attention_mask"]
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=cls,
        eos_token=sep,
        cls_token=cls,
        sep_token=sep,
        pad_token=pad,
        unk_token=unk,
        mask_token=mask,
        model_input_names=names,
        model_max_length=8192 if family.id.startswith("modernbert") else 512,  # ModernBERT's long context
    )
    wrapped.save_pretrained(folder)
    return wrapped
