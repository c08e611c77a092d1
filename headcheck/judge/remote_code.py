"""Code shipped with the checkpoint, which headcheck never runs: model classes in config.json's `auto_map` (HC130),
and the pipelines, tokenizers and processors it loads the same way (HC136)."""

from __future__ import annotations

from typing import Any, Mapping

from ..model import Finding
from .judgement import finding


def _shown(entries: Mapping[Any, Any]) -> str:
    """`key -> module.Class` for the first three entries (a tokenizer maps to a [slow, fast] pair)."""
    def target(value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)) and any(isinstance(v, str) for v in value):
            return " / ".join(v for v in value if isinstance(v, str))
        if isinstance(value, Mapping) and isinstance(value.get("impl"), str):  # custom_pipelines: {"impl": ...}
            return value["impl"]
        return "?"

    items = sorted(entries.items(), key=lambda kv: str(kv[0]))
    return ", ".join(f"{str(key)[:80]} -> {target(value)[:120]}" for key, value in items[:3]) + (
        f" and {len(items) - 3} more" if len(items) > 3 else "")


def remote_code_findings(config: Mapping[str, Any], config_file: str) -> list[Finding]:
    auto_map = config.get("auto_map")
    auto_map = auto_map if isinstance(auto_map, Mapping) else {}
    # AutoConfig code does not compute the head; only model classes do
    models = {key: value for key, value in auto_map.items() if str(key).startswith("AutoModel")}
    others = {key: value for key, value in auto_map.items() if not str(key).startswith(("AutoModel", "AutoConfig"))}
    found = []
    if models:
        found.append(finding(
            "HC130", f"auto_map takes the model from code shipped with the checkpoint ({_shown(models)}): it loads "
                     "only with trust_remote_code=True, which headcheck never does; what that code computes was not "
                     "checked",
            file=config_file, key="auto_map",
            hint="read the code: a conversion gives the outputs of the standard layout of these weights",
        ))
    if others:
        found.append(_other_code(f"auto_map loads {_shown(others)}", config_file, "auto_map"))
    pipelines = config.get("custom_pipelines")
    if isinstance(pipelines, Mapping) and pipelines:
        found.append(_other_code(f"custom_pipelines defines the pipeline tasks {_shown(pipelines)}", config_file,
                                 "custom_pipelines"))
    return found


def side_config_findings(side_configs: Mapping[str, Mapping[str, Any]]) -> list[Finding]:
    """`auto_map` of tokenizer_config.json and the processor configs: tokenizer or processor classes from code."""
    found = []
    for file, config in sorted(side_configs.items()):
        auto_map = config.get("auto_map")
        if isinstance(auto_map, Mapping) and auto_map:
            found.append(_other_code(f"auto_map loads {_shown(auto_map)}", file, "auto_map"))
    return found


def _other_code(what: str, file: str, key: str) -> Finding:
    return finding(
        "HC136", f"{what} from code shipped with the checkpoint (or another repository): it runs with "
                 "trust_remote_code=True when the checkpoint is used as published; headcheck never runs or reads it",
        file=file, key=key, hint="read the code it names, or drop the entry when the standard class serves",
    )
