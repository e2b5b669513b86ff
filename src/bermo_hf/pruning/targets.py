"""Which weights are pruned, in every encoder family: the linear layers inside the encoder layers, by role."""

from torch import nn

# The linear layers pruned in every layer of BERT's layout: short name -> path inside `encoder.layer[i]`.
ENCODER_MATRICES = {
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "intermediate": "intermediate.dense",
    "output": "output.dense",
}

# Where each encoder family keeps its layers, inside its base model: BERT and most families, DistilBERT, ModernBERT,
# ALBERT (its shared layer groups, each pruned once however often it runs).
_LAYER_LISTS = ("encoder.layer", "transformer.layer", "layers", "encoder.albert_layer_groups")
# The family-neutral role of a linear layer inside an encoder layer, from the last part of its name there.
ROLES = ("attention_in", "attention_out", "feed_forward_in", "feed_forward_out")
_ATTENTION_IN_NAMES = {
    "query", "key", "value", "q_lin", "k_lin", "v_lin", "q", "k", "v", "Wqkv",
    "query_proj", "key_proj", "value_proj", "pos_key_proj", "pos_query_proj", "in_proj",
}  # fmt: skip
_ATTENTION_OUT_NAMES = {"dense", "out_lin", "o", "Wo", "out_proj"}
_FEED_FORWARD_IN_NAMES = {"lin1", "Wi", "ffn"}


def base_model_of(model: nn.Module) -> nn.Module:
    base = getattr(model, "base_model", model)
    encoder_layers(base)  # raises for a model without encoder layers
    return base


def encoder_layers(base: nn.Module) -> list[nn.Module]:
    """The encoder layers of a base model of any supported family (`encoder.layer`, `transformer.layer`, `layers`, or
    ALBERT's shared `encoder.albert_layer_groups`)."""
    for path in _LAYER_LISTS:
        try:
            return list(base.get_submodule(path))
        except AttributeError:
            continue
    places = ", ".join(f"`{path}`" for path in _LAYER_LISTS)
    raise ValueError(f"{type(base).__name__} has no encoder layers to prune (looked for {places}).")


def linear_role(path: str) -> str:
    """The role (one of `ROLES`) of the linear layer at `path` inside an encoder layer: `attention.self.query` and
    `attn.Wqkv` are `attention_in`, `attention.output.dense` and `attn.Wo` `attention_out`, `intermediate.dense`,
    `ffn.lin1` and `mlp.Wi` `feed_forward_in`, `output.dense`, `ffn.lin2` and `mlp.Wo` `feed_forward_out`."""
    parts = path.split(".")
    in_attention = any(part.startswith(("attention", "attn")) for part in parts[:-1])
    if parts[-1] in _ATTENTION_IN_NAMES:
        return "attention_in"
    if in_attention and parts[-1] in _ATTENTION_OUT_NAMES:
        return "attention_out"
    if parts[-1] in _FEED_FORWARD_IN_NAMES or "intermediate" in parts:
        return "feed_forward_in"
    return "feed_forward_out"


def pooler_linear(pooler: nn.Module) -> nn.Module:
    """The linear layer of a family's pooler (`pooler.dense` for BERT, the pooler itself for ALBERT)."""
    return pooler if isinstance(pooler, nn.Linear) else pooler.dense


def layer_matrices(layer: nn.Module) -> dict[str, str]:
    """The prunable linear layers of one encoder layer: name -> path inside it. BERT's layout gets its short names
    (`ENCODER_MATRICES`); other families' linear layers are named by their path."""
    try:
        for path in ENCODER_MATRICES.values():
            layer.get_submodule(path)
        return dict(ENCODER_MATRICES)
    except AttributeError:
        return {name: name for name, module in layer.named_modules() if isinstance(module, nn.Linear)}


def prunable_weights(
    model: nn.Module, embeddings: bool = False, pooler: bool = False, classifier: bool = False
) -> dict[str, nn.Module]:
    """The modules whose `weight` is pruned, by parameter-path prefix (`"bert.encoder.layer.0.attention.self.query"`).

    The six linear layers of every encoder layer; optionally the word/position/token-type embeddings, the pooler's
    dense layer and the task head's linear layer(s) (`classifier` or `qa_outputs`)."""
    base = base_model_of(model)
    wanted = []
    for layer in encoder_layers(base):
        wanted += [layer.get_submodule(path) for path in layer_matrices(layer).values()]
    if embeddings:
        emb = base.embeddings
        for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
            if getattr(emb, name, None) is not None:
                wanted.append(getattr(emb, name))
    if pooler and getattr(base, "pooler", None) is not None:
        wanted.append(pooler_linear(base.pooler))
    if classifier:
        for name in ("classifier", "qa_outputs"):
            head = getattr(model, name, None)
            if isinstance(head, nn.Linear):
                wanted.append(head)
            elif isinstance(head, nn.Module):  # e.g. BertForPreTraining-style heads: every linear inside
                wanted += [module for module in head.modules() if isinstance(module, nn.Linear)]
    names = {id(module): name for name, module in model.named_modules()}
    return {names[id(module)]: module for module in wanted}
