"""LoRA in a whole model saved by adapters 0.1.0 - 1.0.1, which computed it with scaling 1 whatever `alpha` said.

adapters pull request #770 (released in 1.1.0) made LoRA compute `alpha / r` again, as adapter-transformers did.
adapters 1.1+ keeps older LoRAs as they were trained by setting `alpha = r` when it loads an adapter folder whose
adapter_config.json records `"version": "adapters.<1.1.0"` (`_fix_backward_compat` in adapters/loading.py). The
adapters block of a whole model's config.json records no adapters version, so adapters 1.1+ loads such a model
with `alpha / r` and silently computes something else. The writer is told from what the file does record:

- the LoRA config's keys: `LoRAConfig.to_dict()` is `dataclasses.asdict`, so a config written by a release
  holds every field that release's LoRAConfig has; 1.1.0 added `dtype` (1.2.0 `init_weights_seed`, `vera_d`,
  `vera_b`, 1.3.0 `use_dora`), so a LoRA config without `dtype` was written before 1.1.0;
- `transformers_version`: adapters 0.1.0 pinned transformers 4.35.2 and 1.0.1 ~=4.45.2, 1.1.0 requires
  ~=4.47.1; adapter-transformers (whose LoRA computed `alpha / r`, the behaviour 1.1 restored) is a fork of
  transformers 4.26.1 at most.

Only LoRAs that 1.1+ computes differently count: `architecture: lora` without gating (a gated LoRA multiplies
by its gate instead, in every release) with `r != alpha` (adapters' own test; for (IA)^3, r is 1 and the scaling
is alpha). They may sit in a union (`architecture: union`, e.g. UniPELT). Migrate writes `alpha = r`, what
adapters itself does to adapter folders of those releases.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

from ..model import Finding
from ..read.json_text import is_number
from .judgement import finding

FIRST_ADAPTERS_TRANSFORMERS = "4.35.2"  # adapters 0.1.0 requires transformers==4.35.2
FIRST_FIXED_TRANSFORMERS = "4.47.0"  # adapters 1.1.0 (the fix) requires transformers~=4.47.1
KEY_ADDED_IN_1_1 = "dtype"  # LoRAConfig.dtype, new in adapters 1.1.0


def _transformers_between(doc: Mapping[str, Any]) -> bool:
    from packaging.version import InvalidVersion, Version  # only configs that name adapters: a scan of others skips it

    try:
        version = Version(str(doc.get("transformers_version")))
    except InvalidVersion:
        return False
    return Version(FIRST_ADAPTERS_TRANSFORMERS) <= version < Version(FIRST_FIXED_TRANSFORMERS)


def _loras(settings: Any) -> Iterator[dict]:
    """The LoRA settings of an adapter config: itself, or the parts of a union (adapters allows no nested union)."""
    if not isinstance(settings, dict):
        return
    parts = settings.get("configs") if settings.get("architecture") == "union" else [settings]
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, dict) and part.get("architecture") == "lora":
            yield part


def _differs(lora: Mapping[str, Any]) -> bool:
    r, alpha = lora.get("r"), lora.get("alpha")
    numbers = all(is_number(v) for v in (r, alpha))
    return numbers and r > 0 and r != alpha and not lora.get("use_gating") and KEY_ADDED_IN_1_1 not in lora


def _scaling(lora: Mapping[str, Any]) -> float:
    """What adapters 1.1+ multiplies the LoRA's output by: alpha / r, or alpha for (IA)^3 (composition "scale")."""
    return lora["alpha"] if lora.get("composition_mode") == "scale" else lora["alpha"] / lora["r"]


def pre_1_1_loras(doc: Mapping[str, Any]) -> Iterator[tuple[str, str, dict]]:
    """(adapter name, config_map key, LoRA settings dict of DOC) for each LoRA written by adapters < 1.1.0
    that adapters 1.1+ would compute with another scaling."""
    block = doc.get("adapters")
    if not isinstance(block, Mapping):
        return
    names, config_map = block.get("adapters"), block.get("config_map")
    if not (isinstance(names, Mapping) and names and isinstance(config_map, Mapping) and _transformers_between(doc)):
        return
    for adapter, key in names.items():
        if isinstance(key, str):
            for lora in _loras(config_map.get(key)):
                if _differs(lora):
                    yield str(adapter), key, lora


def migrated_copy(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of DOC whose pre-1.1 LoRAs have alpha = r: adapters 1.1+ then computes scaling 1."""
    rewritten = copy.deepcopy(dict(doc))
    for _, _, lora in list(pre_1_1_loras(rewritten)):
        lora["alpha"] = lora["r"]
    return rewritten


def lora_scaling_findings(doc: Mapping[str, Any], file: str, convertible: bool) -> list[Finding]:
    found = list(pre_1_1_loras(doc))
    if not found:
        return []
    loras = ", ".join(f"{adapter!r} (r={lora['r']}, alpha={lora['alpha']}: scaling {_scaling(lora):g} in 1.1+)"
                      for adapter, _, lora in found)
    key = found[0][1]
    message = (f"LoRA {loras} written by adapters < 1.1.0 (its LoRA config has no {KEY_ADDED_IN_1_1!r}, which 1.1.0 "
               f"added; transformers_version {doc.get('transformers_version')}), which computed every LoRA with "
               f"scaling 1; config.json records no adapters version, so adapters 1.1+ loads it with alpha/r and "
               f"gives other outputs")
    hint = ("headcheck migrate sets alpha = r, as adapters does for adapter folders of those releases" if convertible
            else "set alpha to r in config.json's adapters config_map, as adapters does for adapter folders of those "
                 "releases")
    return [finding("HC132", message, file=file, key=f"adapters.config_map.{key}.alpha", hint=hint)]
