"""`--verify`: load original and migrated checkpoints with transformers/adapters and compare outputs and loss.

Imports the heavy stack; only `headcheck migrate --verify` and the tests use this module.
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

ATOL = {torch.float16: 1e-3, torch.bfloat16: 1e-2}
DEFAULT_ATOL = 1e-5
# plus this much of the largest output: float32 rounding grows with the values (torch.testing.assert_close's rtol;
# a T5 with logits near 22 differs from itself in float64 by 9.6e-6, and from its flex twin by 1.3e-5)
RTOL = {torch.float16: 1e-3, torch.bfloat16: 1.6e-2}
DEFAULT_RTOL = 1.3e-6
BATCH, SEQ, CHOICES = 2, 7, 3
OUTPUT_FIELDS = ("logits", "start_logits", "end_logits", "arc_preds", "rel_preds")


@dataclass(frozen=True)
class Comparison:
    max_logits_diff: float
    loss_diff: float
    tolerance: float
    missing_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]
    # HC133: the original was loaded with these settings written the way transformers 4.57 reads them (config keys,
    # and "target = source" tensor copies), as the migrated checkpoint has them
    rewritten: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return (self.max_logits_diff <= self.tolerance and self.loss_diff <= self.tolerance
                and not self.missing_keys and not self.unexpected_keys)


def fixed_inputs(config, head_config: dict[str, Any], num_choices: int | None = None) -> dict[str, torch.Tensor]:
    """Deterministic inputs and labels that exercise the head and its loss."""
    gen = torch.Generator().manual_seed(1234)
    head_type = head_config["head_type"]
    inputs: dict[str, torch.Tensor] = {}
    if getattr(config, "model_type", None) in ("vit", "beit"):
        size = config.image_size
        inputs["pixel_values"] = torch.randn(BATCH, config.num_channels, size, size, generator=gen)
    elif getattr(config, "model_type", None) == "whisper":
        inputs["input_features"] = torch.randn(BATCH, config.num_mel_bins, 2 * config.max_source_positions, generator=gen)
    else:
        vocab = config.vocab_size
        ids = torch.randint(4, vocab, (BATCH, SEQ), generator=gen)
        eos = getattr(config, "eos_token_id", None)
        if isinstance(eos, int) and eos < vocab:
            ids[:, -1] = eos  # encoder-decoder classifiers pool at the eos token
        if head_type == "multiple_choice":
            ids = ids.unsqueeze(1).repeat(1, num_choices or CHOICES, 1)
            ids[:, 1:, 1] = (ids[:, 1:, 1] + 7) % vocab
        inputs["input_ids"] = ids
        inputs["attention_mask"] = torch.ones_like(ids)
    if getattr(config, "is_decoder", False) or getattr(config, "is_encoder_decoder", False):
        inputs["use_cache"] = False  # adapters' attention in some decoders cannot read transformers' cache objects
    if getattr(config, "is_encoder_decoder", False):
        inputs["decoder_input_ids"] = torch.randint(4, config.vocab_size, (BATCH, SEQ), generator=gen)
    num_labels = head_config.get("num_labels", 2)
    if head_type in ("classification", "image_classification"):
        inputs["labels"] = (torch.randn(BATCH, generator=gen) if num_labels == 1
                            else torch.randint(0, num_labels, (BATCH,), generator=gen))
    elif head_type == "multilabel_classification":
        inputs["labels"] = torch.randint(0, 2, (BATCH, num_labels), generator=gen).float()
    elif head_type == "multiple_choice":
        inputs["labels"] = torch.randint(0, num_choices or CHOICES, (BATCH,), generator=gen)
    elif head_type == "tagging":
        inputs["labels"] = torch.randint(0, num_labels, (BATCH, SEQ), generator=gen)
    elif head_type == "question_answering":
        inputs["start_positions"] = torch.randint(0, SEQ, (BATCH,), generator=gen)
        inputs["end_positions"] = torch.randint(0, SEQ, (BATCH,), generator=gen)
    elif head_type in ("masked_lm", "causal_lm", "seq2seq_lm"):
        inputs["labels"] = torch.randint(4, config.vocab_size, (BATCH, SEQ), generator=gen)
    elif head_type == "dependency_parsing":  # one word per token after [CLS]; 0 pads (and masks the loss)
        words = SEQ - 2
        inputs["word_starts"] = torch.cat([torch.arange(1, SEQ).repeat(BATCH, 1), torch.zeros(BATCH, 1, dtype=torch.long)], 1)
        arcs = torch.zeros(BATCH, SEQ, dtype=torch.long)
        arcs[:, :words] = torch.randint(1, words + 1, (BATCH, words), generator=gen)
        inputs["labels_arcs"] = arcs
        inputs["labels_rels"] = torch.randint(0, num_labels, (BATCH, SEQ), generator=gen)
    return inputs


def model_outputs(model, inputs):
    """(the output tensors worth comparing, the loss) of one forward pass without gradients."""
    with torch.no_grad():
        out = model(**inputs)
    logits = [getattr(out, f) for f in OUTPUT_FIELDS if getattr(out, f, None) is not None]
    return logits, out.loss


def _difference(a, b) -> tuple[float, float]:
    (logits_a, loss_a), (logits_b, loss_b) = a, b
    if len(logits_a) != len(logits_b) or any(x.shape != y.shape for x, y in zip(logits_a, logits_b)):
        return float("inf"), float("inf")
    diff = max(float((x.float() - y.float()).abs().max()) for x, y in zip(logits_a, logits_b))
    loss = float((loss_a.float() - loss_b.float()).abs()) if loss_a is not None and loss_b is not None else float("inf")
    return diff, loss


def _tolerance(dtype, expected) -> float:
    """atol + rtol * the largest original output (logits or loss)."""
    logits, loss = expected
    largest = max([float(x.float().abs().max()) for x in logits if x.numel()]
                  + ([abs(float(loss))] if loss is not None else []), default=0.0)
    return ATOL.get(dtype, DEFAULT_ATOL) + RTOL.get(dtype, DEFAULT_RTOL) * largest


@contextlib.contextmanager
def _quiet_loading():
    """Loading both models makes transformers and adapters warn about things that are expected here
    ("You should probably TRAIN this model", "adapters available but none are activated"): keep them out
    of a correct run's output."""
    import transformers

    loggers = [logging.getLogger(name) for name in ("adapters", "transformers")]
    levels = [logger.level for logger in loggers]
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            transformers.logging.set_verbosity(verbosity)
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)


def compare(original: Path, migrated: Path, base: Path | str | None = None,
            original_class: str | None = None, plan=None) -> Comparison:
    with _quiet_loading():
        return _compare(original, migrated, base, original_class, plan)


def _compare(original: Path, migrated: Path, base: Path | str | None, original_class: str | None,
             plan=None) -> Comparison:
    """Run both checkpoints on the same fixed inputs. `original_class` is the transformers class the original
    loads with (default: its config's architectures; a flex original loads with AutoAdapterModel); `base` is
    the base model for adapter folders (default: the model_name in adapter_config.json, a folder or Hub id)."""
    import adapters

    if (migrated / "head_config.json").exists():
        return _compare_adapter(original, migrated, base)
    before, rewritten = _load_original(original, original_class, plan)
    flex, info = adapters.AutoAdapterModel.from_pretrained(migrated, output_loading_info=True)
    flex.eval()
    head_name, head_config = next(iter(flex.config.prediction_heads.items()))
    for model in (before, flex):  # several heads: compare the first, in both
        if hasattr(model, "active_head"):
            model.active_head = head_name
    inputs = fixed_inputs(before.config, head_config, head_config.get("num_choices"))
    expected = model_outputs(before, inputs)
    diff, loss = _difference(expected, model_outputs(flex, inputs))
    return Comparison(diff, loss, _tolerance(before.dtype, expected),
                      tuple(info["missing_keys"]), tuple(info["unexpected_keys"]), rewritten)


def _load_original(original: Path, original_class: str | None, plan=None):
    """The original as the installed transformers computes it; with PLAN's HC133 rewrite (settings a newer
    transformers wrote that this one reads from other keys) applied the way migrate writes it."""
    import adapters
    import transformers

    config = json.loads((original / "config.json").read_text())
    name = original_class or next(iter(config.get("architectures") or []), None)
    if not (isinstance(name, str) and hasattr(transformers, name)):
        return adapters.AutoAdapterModel.from_pretrained(original).eval(), ()  # flex (or legacy flex) as it is
    changes = tuple(plan.config_changes) if plan is not None else ()
    model = getattr(transformers, name).from_pretrained(original, **{c.key: c.new for c in changes}).eval()
    copies = [(_static_name(name, copy.target), copy.source) for copy in (plan.copies if plan is not None else ())]
    with torch.no_grad():
        for target, source in copies:  # e.g. T5's lm_head, which transformers 5 tied to the embeddings
            model.get_parameter(target).copy_(model.get_parameter(source))
    return model, (*(c.key for c in changes), *(f"{target} = {source}" for target, source in copies))


def _static_name(class_name: str, flex_name: str) -> str:
    """heads.<name>.<i>.<param> -> the static class's name of the same parameter (its layout's layer i)."""
    from ..judge import layouts

    _, _, index, param = flex_name.split(".", 3)
    modules = {layer.index: layer.module for layer in layouts.static_layers(layouts.static_layout(class_name) or {})}
    return f"{modules[int(index)]}.{param}"


def _compare_adapter(original: Path, migrated: Path, base: Path | str | None) -> Comparison:
    import adapters
    import transformers

    head = json.loads((original / "head_config.json").read_text())
    base = _adapter_base(original, base)
    model_class = head["model_class"]
    if hasattr(transformers, model_class):  # static head: the original runs in its own class
        num_labels = head.get("num_labels") or len(head.get("label2id") or {}) or 2
        before = getattr(transformers, model_class).from_pretrained(base, num_labels=num_labels)
        adapters.init(before)
    else:
        before = adapters.AutoAdapterModel.from_pretrained(base)
    name = before.load_adapter(str(original), use_safetensors=_has_safetensors(original))
    before.set_active_adapters(name)
    after = adapters.AutoAdapterModel.from_pretrained(base)
    loading_info: dict[str, list] = {}
    after_name = after.load_adapter(str(migrated), loading_info=loading_info, use_safetensors=_has_safetensors(migrated))
    after.set_active_adapters(after_name)
    head_config = json.loads((migrated / "head_config.json").read_text())["config"]
    inputs = fixed_inputs(after.config, head_config, head_config.get("num_choices"))
    expected = model_outputs(before.eval(), inputs)
    diff, loss = _difference(expected, model_outputs(after.eval(), inputs))
    return Comparison(diff, loss, _tolerance(before.dtype, expected), tuple(loading_info.get("missing_keys", ())),
                      tuple(loading_info.get("unexpected_keys", ())))


def _adapter_base(original: Path, base: Path | str | None) -> Path | str:
    """The base model an adapter folder loads onto: --base, else the model_name its adapter_config.json gives."""
    base = base or json.loads((original / "adapter_config.json").read_text()).get("model_name")
    if not base:
        raise ValueError("verifying an adapter folder needs its base model, and adapter_config.json names none")
    return base


def _has_safetensors(folder: Path) -> bool:
    # load_adapter reads the .bin files unless told otherwise
    return (folder / "adapter.safetensors").exists()


def compare_export(original: Path, exported: Path, base: Path | str | None = None, original_class: str | None = None,
                   plan=None, head: str | None = None, adapter: str | None = None) -> Comparison:
    """An export out of adapters: the original with adapters (its head `head` and the merged `adapter` active; an
    adapter folder loaded onto `base`), the export with plain transformers' class named in its config.json, on the
    same fixed inputs. (`original_class` and `plan` belong to the flex direction's signature: an export's original
    is always flex.)"""
    with _quiet_loading():
        import adapters
        import transformers

        if (original / "config.json").exists():
            before = adapters.AutoAdapterModel.from_pretrained(original).eval()
        else:  # an adapter folder: loaded onto its base model, as its users load it
            before = adapters.AutoAdapterModel.from_pretrained(_adapter_base(original, base)).eval()
            adapter = before.load_adapter(str(original), use_safetensors=_has_safetensors(original))
        head = head or next(iter(before.config.prediction_heads))
        before.active_head = head
        if adapter is not None:
            before.set_active_adapters(adapter)
        head_config = before.config.prediction_heads[head]
        name = json.loads((exported / "config.json").read_text())["architectures"][0]
        after, info = getattr(transformers, name).from_pretrained(exported, output_loading_info=True)
        after.eval()
        inputs = fixed_inputs(after.config, head_config, head_config.get("num_choices"))
        expected = model_outputs(before, inputs)
        diff, loss = _difference(expected, model_outputs(after, inputs))
    # the same tolerance as into flex: a merged weight rounds W + scaling * B @ A once, where adapters adds the
    # product to every output, so the float32 difference grows with the outputs' size
    return Comparison(diff, loss, _tolerance(before.dtype, expected), tuple(info["missing_keys"]),
                      tuple(info["unexpected_keys"]))
