"""Tiny real checkpoints for headcheck's tests.

Every builder instantiates the *real* ``transformers`` / ``adapters`` classes
with a tiny config (hidden size 32, 2 layers, vocab 99, random weights, seed 0)
and writes the result with the library's own ``save_pretrained`` /
``save_adapter``, so the files on disk are exactly what those libraries write
for full-size models - only smaller.

Typical use from a test module::

    @pytest.fixture(scope="session")
    def bert_mlm(tmp_path_factory):
        return zoo.build_static("BertForMaskedLM", tmp_path_factory.mktemp("bert_mlm"))

Builders:

* :func:`build_static` - one of the 82 static-head classes that adapters knows how
  to convert (``adapters.head_utils.STATIC_TO_FLEX_HEAD_MAP``, see ``STATIC_CLASSES``).
* :func:`build_any` - any ``transformers`` class of a family in ``FAMILIES``
  (e.g. ``BertForPreTraining``, ``BertModel``, ``XLNetForSequenceClassification``).
* :func:`build_flex` - an ``adapters`` ``XAdapterModel`` with flexible heads.
* :func:`build_adapter_folder` - a folder written by ``model.save_adapter(...)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import transformers

import adapters
from adapters.head_utils import STATIC_TO_FLEX_HEAD_MAP

__all__ = [
    "STATIC_CLASSES",
    "FAMILIES",
    "CLASS_TWEAKS",
    "SEED",
    "tiny_config",
    "build_static",
    "build_any",
    "build_flex",
    "build_adapter_folder",
]

SEED = 0

#: Exactly the static-head classes adapters can convert to flex heads (82 in adapters 1.3.0).
STATIC_CLASSES: list[str] = list(STATIC_TO_FLEX_HEAD_MAP)

# Shared sizes. 37 for FFN sizes (odd on purpose: no shape coincides with another one).
_V, _H, _L, _A, _FF = 99, 32, 2, 4, 37

_ENC = dict(  # BERT-like encoders
    vocab_size=_V,
    hidden_size=_H,
    num_hidden_layers=_L,
    num_attention_heads=_A,
    intermediate_size=_FF,
    max_position_embeddings=64,
)
_BART = dict(  # BART-like encoder-decoders
    vocab_size=_V,
    d_model=_H,
    encoder_layers=_L,
    decoder_layers=_L,
    encoder_attention_heads=_A,
    decoder_attention_heads=_A,
    encoder_ffn_dim=_FF,
    decoder_ffn_dim=_FF,
    max_position_embeddings=64,
)
_T5 = dict(vocab_size=_V, d_model=_H, d_kv=8, d_ff=_FF, num_layers=_L, num_decoder_layers=_L, num_heads=_A)
_VISION = dict(
    image_size=32,
    patch_size=8,
    num_channels=3,
    hidden_size=_H,
    num_hidden_layers=_L,
    num_attention_heads=_A,
    intermediate_size=_FF,
)
_DECODER = dict(  # llama-like decoders
    vocab_size=_V,
    hidden_size=_H,
    intermediate_size=_FF,
    num_hidden_layers=_L,
    num_attention_heads=_A,
    num_key_value_heads=2,
    max_position_embeddings=64,
)

#: model_type -> config kwargs. Anything not given keeps the transformers default, so
#: tie_word_embeddings etc. behave like the real checkpoints of the family.
FAMILIES: dict[str, dict[str, Any]] = {
    # --- the 22 families of STATIC_TO_FLEX_HEAD_MAP --------------------------------------
    "albert": dict(_ENC, embedding_size=16),
    # vocab = visual tokens (only BeitForMaskedImageModeling uses it); the default
    # out_indices [3, 5, 7, 11] only fit 12 layers
    "beit": dict(_VISION, vocab_size=_V, out_indices=[1, 2]),
    "bert": dict(_ENC),
    "bert-generation": dict(_ENC),
    "roberta": dict(_ENC),
    "xlm-roberta": dict(_ENC),
    "xmod": dict(_ENC, languages=["en_XX", "de_DE"], default_language="en_XX"),
    "bart": dict(_BART),
    "mbart": dict(_BART),
    "plbart": dict(_BART),
    "t5": dict(_T5, decoder_start_token_id=0),  # as in the real t5-* config.json (mt5 has it by default)
    "mt5": dict(_T5),
    "distilbert": dict(vocab_size=_V, dim=_H, n_layers=_L, n_heads=_A, hidden_dim=_FF, max_position_embeddings=64),
    "gpt2": dict(vocab_size=_V, n_embd=_H, n_layer=_L, n_head=_A, n_positions=64, bos_token_id=98, eos_token_id=98),
    "gptj": dict(
        vocab_size=_V, n_embd=_H, n_layer=_L, n_head=_A, n_positions=64, rotary_dim=4, bos_token_id=98, eos_token_id=98
    ),
    # deberta(-v2) configured like the real deberta-base / deberta-v3-base (relative attention on)
    "deberta": dict(
        _ENC, relative_attention=True, pos_att_type=["c2p", "p2c"], position_biased_input=False, type_vocab_size=0
    ),
    "deberta-v2": dict(
        _ENC,
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_buckets=16,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        position_biased_input=False,
        type_vocab_size=0,
    ),
    "vit": dict(_VISION),
    "llama": dict(_DECODER),
    "mistral": dict(_DECODER),
    "electra": dict(_ENC, embedding_size=16),
    "whisper": dict(
        vocab_size=_V,
        d_model=_H,
        encoder_layers=_L,
        decoder_layers=_L,
        encoder_attention_heads=_A,
        decoder_attention_heads=_A,
        encoder_ffn_dim=_FF,
        decoder_ffn_dim=_FF,
        num_mel_bins=8,
        max_source_positions=16,  # => 32 input frames
        max_target_positions=32,
        # defaults are 50256/50257, outside the tiny vocab (the decoder embedding uses padding_idx)
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=3,
        # real whisper configs carry these, but transformers moves them to generation_config.json with a
        # UserWarning; None keeps the build quiet
        suppress_tokens=None,
        begin_suppress_tokens=None,
    ),
    # --- extra families for build_any ----------------------------------------------------
    "xlnet": dict(vocab_size=_V, d_model=_H, n_layer=_L, n_head=_A, d_inner=_FF),
    "modernbert": dict(
        _ENC,
        global_attn_every_n_layers=2,
        local_attention=16,
        # defaults are 5028x, outside the tiny vocab
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        cls_token_id=1,
        sep_token_id=2,
    ),
}

#: Per-class tweaks on top of the family config.
CLASS_TWEAKS: dict[str, dict[str, Any]] = {
    # decoder-only sequence classifiers pool on the last non-pad token: real checkpoints set a pad id
    "GPT2ForSequenceClassification": dict(pad_token_id=98),
    "GPTJForSequenceClassification": dict(pad_token_id=98),
    "LlamaForSequenceClassification": dict(pad_token_id=0),
    "MistralForSequenceClassification": dict(pad_token_id=0),
    # bert-generation decoder as published (e.g. google/bert_for_seq_generation_L-24_bbc_encoder -> decoder)
    "BertGenerationDecoder": dict(is_decoder=True),
    "BertLMHeadModel": dict(is_decoder=True),
    "RobertaForCausalLM": dict(is_decoder=True),
    "XLMRobertaForCausalLM": dict(is_decoder=True),
    "XmodForCausalLM": dict(is_decoder=True),
    "ElectraForCausalLM": dict(is_decoder=True),
}


def _model_type(name: str) -> str:
    """``name`` is a model_type ("bert") or a transformers class name ("BertForMaskedLM")."""
    if name in FAMILIES:
        return name
    cls = getattr(transformers, name, None)
    config_class = getattr(cls, "config_class", None)
    if config_class is None:
        raise KeyError(f"{name!r} is neither a known model_type nor a transformers model class")
    return config_class.model_type


def tiny_config(class_name: str, **overrides) -> transformers.PretrainedConfig:
    """Tiny config for the family of ``class_name`` (a transformers class name or a model_type)."""
    model_type = _model_type(class_name)
    if model_type not in FAMILIES:
        raise KeyError(f"no tiny config for model_type {model_type!r} ({class_name}); add it to zoo.FAMILIES")
    kwargs = {**FAMILIES[model_type], **CLASS_TWEAKS.get(class_name, {}), **overrides}
    return transformers.AutoConfig.for_model(model_type, **kwargs)


def _save_model(model, out_dir: Path, *, safe_serialization=True, dtype=None, max_shard_size=None) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if dtype is not None:
        model = model.to(dtype)
    kw = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    model.save_pretrained(out_dir, safe_serialization=safe_serialization, **kw)
    return out_dir


def _nonzero_biases(model) -> None:
    """Initialisation zeroes biases; a conversion that dropped one would then go unnoticed. Make them count."""
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if name.endswith("bias") and tensor.is_floating_point():
                tensor.normal_(0.0, 0.1)


def build_any(
    class_name: str,
    out_dir: Path,
    *,
    safe_serialization: bool = True,
    dtype: torch.dtype | None = None,
    max_shard_size: int | str | None = None,
    **config_overrides,
) -> Path:
    """Instantiate ``transformers.<class_name>`` from a tiny config (seed 0) and ``save_pretrained`` it.

    ``dtype`` casts the weights before saving (config.json's ``dtype`` follows);
    ``max_shard_size`` (e.g. ``"20KB"``) produces a sharded checkpoint with an index file.
    """
    cls = getattr(transformers, class_name)
    config = tiny_config(class_name, **config_overrides)
    torch.manual_seed(SEED)
    model = cls(config).eval()
    _nonzero_biases(model)
    return _save_model(
        model, out_dir, safe_serialization=safe_serialization, dtype=dtype, max_shard_size=max_shard_size
    )


def build_static(class_name: str, out_dir: Path, **kw) -> Path:
    """Like :func:`build_any`, restricted to the 82 classes of ``STATIC_CLASSES``."""
    if class_name not in STATIC_TO_FLEX_HEAD_MAP:
        raise KeyError(f"{class_name!r} is not in adapters.head_utils.STATIC_TO_FLEX_HEAD_MAP; use build_any")
    return build_any(class_name, out_dir, **kw)


# head "type" -> (AdapterModel method, extra kwargs). Types are the adapters head_type names
# (as written to head_config.json), plus a few short aliases.
_HEAD_ADDERS: dict[str, tuple[str, dict]] = {
    "classification": ("add_classification_head", {}),
    "multilabel_classification": ("add_classification_head", {"multilabel": True}),
    "multilabel": ("add_classification_head", {"multilabel": True}),
    "multiple_choice": ("add_multiple_choice_head", {}),
    "tagging": ("add_tagging_head", {}),
    "question_answering": ("add_qa_head", {}),
    "qa": ("add_qa_head", {}),
    "masked_lm": ("add_masked_lm_head", {}),
    "causal_lm": ("add_causal_lm_head", {}),
    "seq2seq_lm": ("add_seq2seq_lm_head", {}),
    "image_classification": ("add_image_classification_head", {}),
    "dependency_parsing": ("add_dependency_parsing_head", {}),
}


def _add_heads(model, heads: dict[str, dict]) -> None:
    for head_name, spec in heads.items():
        spec = dict(spec)
        head_type = spec.pop("type")
        method, extra = _HEAD_ADDERS[head_type]
        getattr(model, method)(head_name, **{**extra, **spec})


def build_flex(
    model_type: str,
    out_dir: Path,
    heads: dict[str, dict],
    *,
    safe_serialization: bool = True,
    **config_overrides,
) -> Path:
    """``adapters.AutoAdapterModel`` for ``model_type`` with the given flex heads, saved with ``save_pretrained``.

    ``heads`` maps head name -> ``{"type": <head type>, **kwargs for the add_*_head method}``, e.g.
    ``{"sst": {"type": "classification", "num_labels": 3}, "mlm": {"type": "masked_lm"}}``.
    """
    config = tiny_config(model_type, **config_overrides)
    torch.manual_seed(SEED)
    model = adapters.AutoAdapterModel.from_config(config).eval()
    _add_heads(model, heads)
    return _save_model(model, out_dir, safe_serialization=safe_serialization)


ADAPTER_NAME = "tiny_adapter"


def build_adapter_folder(
    out_dir: Path,
    *,
    head_from: str,
    model_type: str = "roberta",
    adapter_name: str = ADAPTER_NAME,
    adapter_config: str = "seq_bn",
    num_labels: int = 3,
    use_safetensors: bool = False,
) -> Path:
    """A folder written by ``model.save_adapter(out_dir, adapter_name)``.

    Files: ``adapter_config.json`` + ``pytorch_adapter.bin`` (``adapter.safetensors`` with
    ``use_safetensors=True``) and, unless ``head_from == "none"``, ``head_config.json`` +
    ``pytorch_model_head.bin`` (``model_head.safetensors``).

    ``head_from``:

    * ``"flex"``   - ``RobertaAdapterModel`` with adapter + classification head of the same name;
      head_config.json has ``model_class: RobertaAdapterModel`` and a flex ``config`` block.
    * ``"static"`` - ``RobertaForSequenceClassification`` + ``adapters.init``; adapters saves the
      whole static head (``classifier.*``) with ``model_class: RobertaForSequenceClassification``,
      ``config: null`` and ``num_labels``.
    * ``"legacy"`` - the ``"flex"`` files with ``model_class`` rewritten to ``RobertaModelWithHeads``
      (what adapter-transformers 2.x/3.x wrote; how legacy adapters look on the Hub).
    * ``"none"``   - ``save_adapter(..., with_head=False)``: adapter files only.
    """
    if head_from not in ("static", "flex", "legacy", "none"):
        raise ValueError(f"head_from must be one of static/flex/legacy/none, not {head_from!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    if head_from == "static":
        prefix = {"roberta": "Roberta", "bert": "Bert"}[model_type]
        config = tiny_config(model_type, num_labels=num_labels)
        model = getattr(transformers, f"{prefix}ForSequenceClassification")(config)
        adapters.init(model)
    else:
        model = adapters.AutoAdapterModel.from_config(tiny_config(model_type))
        if head_from != "none":
            model.add_classification_head(adapter_name, num_labels=num_labels)
    model.add_adapter(adapter_name, config=adapter_config)
    model.eval()
    model.save_adapter(
        str(out_dir), adapter_name, with_head=head_from != "none", use_safetensors=use_safetensors
    )
    if head_from == "legacy":
        head_config_path = out_dir / "head_config.json"
        head_config = json.loads(head_config_path.read_text())
        head_config["model_class"] = type(model).__name__.replace("AdapterModel", "ModelWithHeads")
        head_config_path.write_text(json.dumps(head_config, indent=2, sort_keys=True))
    return out_dir
