"""The data under rules/ agrees with the installed adapters release and with real checkpoints.

* head_layouts.json reproduces adapters.head_utils.STATIC_TO_FLEX_HEAD_MAP exactly (an adapters upgrade that
  changes the map fails here), and every `tied_output_bias` names a tensor real checkpoints store.
* families.json names exactly adapters' AdapterModel classes, and its base prefixes + ignored buffers + the
  layout layers cover every tensor a real static checkpoint stores (what makes custom-head detection sound).
* rules.json: codes and names are well formed and unique, and source, rules and tests refer to the same codes.
"""

from __future__ import annotations

import ast
import functools
import json
import re
from pathlib import Path

import pytest

from headcheck.judge import ruledata

zoo = pytest.importorskip("zoo")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from adapters.head_utils import STATIC_TO_FLEX_HEAD_MAP  # noqa: E402
from adapters.models.auto.adapter_model import ADAPTER_MODEL_MAPPING_NAMES  # noqa: E402
from safetensors import safe_open  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "headcheck"
TESTS = REPO / "tests"
CODE_RE = re.compile(r"^HC\d{3}$")
KEBAB_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
CODE_IN_TEXT = re.compile(r"\bHC\d{3}\b")
# Codes tests may use on purpose as "no such rule" (e.g. `headcheck rule HC999` is a usage error).
NOT_A_RULE = {"HC000", "HC999"}

LAYOUTS = ruledata.head_layouts()
FAMILIES = ruledata.families()["families"]
TIED_CLASSES = sorted(name for name, layout in LAYOUTS.items() if layout.get("tied_output_bias"))
FORMATS = ["safetensors", "bin"]


def _canonical(value) -> str:
    """JSON text with sorted keys: tuples == lists, but True != 1 and 1 != 1.0."""
    return json.dumps(value, sort_keys=True)


def _final_module(layout) -> str:
    return [name for name in layout["layers"] if name is not None][-1]


def _under(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


# ---------------------------------------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(class, format) -> (model_type, names of the tensors the real tiny checkpoint stores); built on demand."""
    root = tmp_path_factory.mktemp("rules_data")

    @functools.cache
    def build(class_name: str, fmt: str) -> tuple[str, frozenset[str]]:
        folder = zoo.build_static(class_name, root / f"{class_name}-{fmt}", safe_serialization=fmt == "safetensors")
        model_type = json.loads((folder / "config.json").read_text())["model_type"]
        if fmt == "safetensors":
            with safe_open(folder / "model.safetensors", framework="pt") as f:
                return model_type, frozenset(f.keys())
        return model_type, frozenset(torch.load(folder / "pytorch_model.bin", weights_only=True, map_location="cpu"))

    return build


def _model(class_name: str):
    torch.manual_seed(zoo.SEED)
    return getattr(transformers, class_name)(zoo.tiny_config(class_name)).eval()


# ---------------------------------------------------------------------------------------------- head_layouts.json


def test_static_to_flex_lists_exactly_the_adapters_classes():
    assert len(STATIC_TO_FLEX_HEAD_MAP) == 82  # adapters 1.3.0; a new release must be reviewed, not absorbed
    assert set(LAYOUTS) == set(STATIC_TO_FLEX_HEAD_MAP)


@pytest.mark.parametrize("class_name", sorted(STATIC_TO_FLEX_HEAD_MAP))
def test_static_layout_equals_adapters_map(class_name):
    theirs = STATIC_TO_FLEX_HEAD_MAP[class_name]
    ours = LAYOUTS[class_name]
    assert set(theirs) == {"config", "layers"}, f"adapters added fields to its map entry: {sorted(theirs)}"
    assert _canonical(ours["config"]) == _canonical(theirs["config"])
    assert _canonical(ours["layers"]) == _canonical(theirs["layers"])


def test_tied_output_bias_classes_are_the_known_ones():
    # the masked/causal LM heads whose decoder bias transformers ties to a separately named parameter
    assert TIED_CLASSES == sorted([
        "AlbertForMaskedLM", "BertForMaskedLM", "BertLMHeadModel", "BertGenerationDecoder", "DebertaForMaskedLM",
        "DebertaV2ForMaskedLM", "RobertaForMaskedLM", "RobertaForCausalLM", "XLMRobertaForMaskedLM",
        "XLMRobertaForCausalLM", "XmodForMaskedLM", "XmodForCausalLM",
    ])


@pytest.mark.parametrize("class_name", sorted(STATIC_TO_FLEX_HEAD_MAP))
def test_output_bias_is_stored_where_the_layout_says(class_name, saved):
    """tied_output_bias is stored and stands for the final layer's bias, which is not stored; without it the
    final layer's bias (if the module has one) is stored under its own name. Checked on safetensors, the
    format save_pretrained writes by default and the one that drops tied duplicates (.bin keeps both names)."""
    layout = LAYOUTS[class_name]
    final = _final_module(layout)
    _, keys = saved(class_name, "safetensors")
    model = _model(class_name)
    final_bias = model.get_submodule(final).bias
    tied = layout.get("tied_output_bias")
    if tied:
        assert tied in keys, f"{tied} is not stored; stored head tensors: {sorted(keys)}"
        assert f"{final}.bias" not in keys
        assert final_bias is not None and model.get_parameter(tied) is final_bias, (
            f"{tied} is not the parameter {final}.bias"
        )
    elif final_bias is not None:
        assert f"{final}.bias" in keys, f"{final}.bias is not stored: a tied_output_bias entry is missing"


# ---------------------------------------------------------------------------------------------- families.json


def test_families_are_exactly_the_adapter_models():
    assert {name: fam["adapter_model"] for name, fam in FAMILIES.items()} == dict(ADAPTER_MODEL_MAPPING_NAMES)


def test_base_prefixes_are_first_name_components():
    # judge_static.head_keys compares a tensor name's first dotted component with these; a dotted prefix
    # ("model.decoder") would match nothing there (the schema does not forbid it)
    dotted = {
        name: [p for p in (*fam["static_base_prefixes"], *fam.get("ignored_buffers", ())) if "." in p or not p]
        for name, fam in FAMILIES.items()
    }
    assert not any(dotted.values()), {k: v for k, v in dotted.items() if v}


@pytest.mark.parametrize("model_type", sorted({zoo.tiny_config(c).model_type for c in STATIC_TO_FLEX_HEAD_MAP}))
def test_base_modules_are_what_the_bare_base_class_stores(model_type):
    # a checkpoint saved from XModel has these first name components and no base prefix (judge/static.head_keys)
    config = zoo.tiny_config(next(c for c in STATIC_TO_FLEX_HEAD_MAP if zoo.tiny_config(c).model_type == model_type))
    model = transformers.AutoModel.from_config(config)
    assert sorted({name.split(".", 1)[0] for name in model.state_dict()}) == sorted(FAMILIES[model_type]["base_modules"])


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("class_name", sorted(STATIC_TO_FLEX_HEAD_MAP))
def test_family_prefixes_and_layout_cover_every_stored_tensor(class_name, fmt, saved):
    model_type, keys = saved(class_name, fmt)
    assert model_type in FAMILIES, f"{class_name}: model_type {model_type!r} has no family"
    fam = FAMILIES[model_type]
    base = fam["static_base_prefixes"]
    ignored = fam.get("ignored_buffers", [])
    layout = LAYOUTS[class_name]
    layer_modules = [m for m in layout["layers"] if m is not None]
    tied = layout.get("tied_output_bias")

    # the base prefixes must not swallow the head, or a custom head tensor there would go unnoticed
    head_names = [*layer_modules, *([tied] if tied else [])]
    swallowed = [m for m in head_names if _under(m, base) or _under(m, ignored)]
    assert not swallowed, f"head modules under the base prefixes {base} / ignored {ignored}: {swallowed}"

    layer_params = {f"{m}.{p}" for m in layer_modules for p in ("weight", "bias")}
    uncovered = sorted(
        k for k in keys if not (_under(k, base) or k in ignored or k in layer_params or k == tied)
    )
    assert not uncovered, f"{class_name} ({fmt}) stores tensors neither base, ignored nor head: {uncovered}"
    # and every weight-carrying layout layer is real: its parameters are stored under its own name
    # (.bin keeps tied duplicates, so LM decoders show up too; adapters also maps weightless `dropout` modules)
    if fmt == "bin":
        model = _model(class_name)
        expected = {
            f"{m}.{p}" for m in layer_modules for p, _ in model.get_submodule(m).named_parameters(recurse=False)
        }
        assert expected <= keys, f"layout layer parameters not stored: {sorted(expected - keys)}"


# ---------------------------------------------------------------------------------------------- rules.json


def _raw_rules() -> dict:
    return json.loads((ruledata.rules_root() / "rules.json").read_text(encoding="utf-8"))


def _python_files(root: Path):
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _string_literals(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


def test_registry_loads_and_is_well_formed():
    entries = _raw_rules()["rules"]
    codes = [e["code"] for e in entries]
    names = [e["name"] for e in entries]
    assert len(codes) == len(set(codes)), "duplicate codes"
    assert len(names) == len(set(names)), "duplicate names"
    assert all(CODE_RE.match(c) for c in codes), [c for c in codes if not CODE_RE.match(c)]
    assert all(KEBAB_RE.match(n) for n in names), [n for n in names if not KEBAB_RE.match(n)]
    registry = ruledata.registry()  # schema-validated
    assert list(registry) == codes
    for rule in registry.values():
        assert set(rule.explanation) == set(ruledata.EXPLANATION_SECTIONS), rule.code
        assert all(text.strip() for text in rule.explanation.values()), rule.code
        assert rule.summary.strip()
        assert ruledata.lookup(rule.code) is rule and ruledata.lookup(rule.name) is rule


def test_redirects_point_from_retired_codes_to_live_ones():
    redirects = ruledata.redirects()
    registry = ruledata.registry()
    for old, new in redirects.items():
        assert CODE_RE.match(old) and old not in registry, f"{old} is redirected but still live (codes are never reused)"
        assert new in registry, f"{old} redirects to unknown {new}"


def test_every_code_the_source_mentions_exists():
    registry = ruledata.registry()
    unknown = {
        f"{path.relative_to(REPO)}: {code}"
        for path in _python_files(SOURCE)
        for code in CODE_IN_TEXT.findall(path.read_text(encoding="utf-8"))
        if code not in registry
    }
    assert not unknown, sorted(unknown)


def test_every_rule_is_emitted_somewhere_in_the_source():
    literals = {s for path in _python_files(SOURCE) for s in _string_literals(path) if CODE_RE.match(s)}
    dead = sorted(set(ruledata.registry()) - literals)
    assert not dead, f"rules no code in headcheck/ emits: {dead}"


def test_every_code_the_tests_use_exists():
    known = set(ruledata.registry()) | set(ruledata.redirects())
    used = {
        f"{path.relative_to(REPO)}: {code}"
        for path in _python_files(TESTS)
        for s in _string_literals(path)
        for code in CODE_IN_TEXT.findall(s)
        if code not in known and code not in NOT_A_RULE
    }
    assert not used, sorted(used)


def test_docs_rules_md_is_generated_from_the_registry():
    """docs/rules.md (SARIF's helpUri target) must be regenerated when rules change: `headcheck rule --markdown`."""
    from headcheck.render.rules_doc import render_rules_markdown

    docs = Path(__file__).resolve().parents[1] / "docs" / "rules.md"
    assert docs.read_text(encoding="utf-8") == render_rules_markdown()
    for code in ruledata.registry():
        assert f'<a id="{code.lower()}"></a>' in docs.read_text(encoding="utf-8")
