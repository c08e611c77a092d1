"""Model classes a config maps to code shipped with the checkpoint (`auto_map`), which headcheck never runs."""

from __future__ import annotations

from typing import Any, Mapping

from ..model import Finding
from .judgement import finding


def remote_code_findings(config: Mapping[str, Any], config_file: str) -> list[Finding]:
    auto_map = config.get("auto_map")
    if not isinstance(auto_map, Mapping):
        return []
    # AutoConfig / AutoTokenizer code does not compute the head; only model classes do
    models = {key: value for key, value in auto_map.items() if str(key).startswith("AutoModel")}
    if not models:
        return []
    shown = ", ".join(f"{key} -> {value if isinstance(value, str) else '?'}" for key, value in sorted(models.items())[:3])
    return [finding(
        "HC130", f"auto_map takes the model from code shipped with the checkpoint ({shown}): it loads only with "
                 "trust_remote_code=True, which headcheck never does; what that code computes was not checked",
        file=config_file, key="auto_map",
        hint="read the code: a conversion gives the outputs of the standard layout of these weights",
    )]
