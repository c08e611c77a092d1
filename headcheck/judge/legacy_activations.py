"""Activation names of adapter-transformers 2.x, which mean other functions to the adapters library.

2.x computed "gelu" as the tanh approximation and "gelu_orig" as the exact function; since 3.0 the names
follow transformers (adapters' ACTIVATION_RENAME). adapters translates them only in an adapter_config.json
without "version"; in head configs and in the adapters block of config.json it reads the new meaning.
"""

from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

from ..model import Finding
from .judgement import finding

RENAME = {"gelu": "gelu_new", "gelu_orig": "gelu"}  # 2.x name -> the same function's name since 3.0
FIRST_V3_TRANSFORMERS = "4.17.0"  # adapter-transformers 3.0.0 was built on transformers 4.17.0


def written_by_v2(doc: Mapping[str, Any], role: str) -> bool:
    """Saved by a 2.x XModelWithHeads: head_config.json gained "version" in 3.0, and a full model tells by the
    transformers release it was built on. Migrated files name XAdapterModel, so they never count again."""
    model_class = doc.get("model_class") if role == "head" else (doc.get("architectures") or [None])[0]
    if not (isinstance(model_class, str) and model_class.endswith("ModelWithHeads")):
        return False
    if role == "head":
        return "version" not in doc
    from packaging.version import InvalidVersion, Version  # only for XModelWithHeads configs

    try:
        return Version(str(doc.get("transformers_version"))) < Version(FIRST_V3_TRANSFORMERS)
    except InvalidVersion:
        return False


def legacy_settings(doc: Mapping[str, Any], role: str) -> Iterator[tuple[dict, str]]:
    """(settings dict of DOC, key) for each activation name that means another function to adapters."""
    if not written_by_v2(doc, role):
        return
    heads = [doc.get("config")] if role == "head" else list((doc.get("prediction_heads") or {}).values())
    adapters = doc.get("adapters") if role == "model" else None
    config_map = adapters.get("config_map") if isinstance(adapters, Mapping) else None
    blocks = [(h, "activation_function") for h in heads]
    blocks += [(c, "non_linearity") for c in (config_map.values() if isinstance(config_map, Mapping) else ())]
    for settings, key in blocks:
        if isinstance(settings, dict) and isinstance(settings.get(key), str) and settings[key].lower() in RENAME:
            yield settings, key


def migrated_copy(doc: Mapping[str, Any], role: str) -> dict[str, Any]:
    """A deep copy of DOC naming each activation as adapters reads it."""
    renamed = copy.deepcopy(dict(doc))
    for settings, key in list(legacy_settings(renamed, role)):
        settings[key] = RENAME[settings[key].lower()]
    return renamed


def legacy_activation_findings(doc: Mapping[str, Any], role: str, file: str) -> list[Finding]:
    names = sorted({settings[key] for settings, key in legacy_settings(doc, role)})
    if not names:
        return []
    meant = ", ".join(f"{name!r} meant what adapters calls {RENAME[name.lower()]!r}" for name in names)
    return [finding(
        "HC129", f"written by adapter-transformers 2.x, where activation {meant}; migrate writes the names "
                 "adapters reads for the same functions",
        file=file, hint="headcheck migrate renames them; loading the files as they are changes the outputs",
    )]
