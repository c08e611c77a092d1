"""Types of the config fields the judges read, so that a wrong type is one clear error instead of a crash.

Checked by hand from this table: importing jsonschema alone (~250 ms) would cost more than a whole scan.
Fields not listed are left alone; a listed field may always be absent.
"""

from __future__ import annotations

from typing import Any, Callable

from ..errors import InputError
from .json_text import json_kind

Check = Callable[[Any, str], None]  # raises _Mismatch(path, expectation)


class _Mismatch(Exception):
    def __init__(self, path: str, expected: str):
        super().__init__(f"{path}: expected {expected}")


def _type(*types: type, name: str) -> Check:
    def check(value: Any, path: str) -> None:
        # bool is an int in Python; a JSON true where a number belongs is still wrong
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise _Mismatch(path, name)
    return check


STRING = _type(str, name="a string")
OPT_STRING = _type(str, type(None), name="a string or null")
BOOL = _type(bool, name="true or false")
OPT_BOOL = _type(bool, type(None), name="true, false or null")
COUNT = _type(int, name="an integer")
OBJECT = _type(dict, name="an object")


def _size(*, nullable: bool = False) -> Check:
    """A count of units, layers or labels: a model built from a negative or fractional one fails in torch."""
    expected = "a non-negative integer" + (" or null" if nullable else "")

    def check(value: Any, path: str) -> None:
        if value is None and nullable:
            return
        if type(value) is not int or value < 0:  # bool is an int in Python, 32.0 a float: both wrong here
            raise _Mismatch(path, expected)
    return check


SIZE = _size()
OPT_SIZE = _size(nullable=True)
# The sizes every transformers architecture builds its layers from, under the names the families use; null is
# left to the family (some configs write null where the family derives the value).
MODEL_SIZES = {key: OPT_SIZE for key in (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size",
    "max_position_embeddings", "type_vocab_size", "d_model", "n_embd", "n_layer", "n_head", "n_positions")}


def _list_of(item: Check, *, nullable: bool = False) -> Check:
    def check(value: Any, path: str) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, list):
            raise _Mismatch(path, "a list" + (" or null" if nullable else ""))
        for i, element in enumerate(value):
            item(element, f"{path}[{i}]")
    return check


def _map_of(item: Check, *, nullable: bool = False, int_keys: bool = False) -> Check:
    def check(value: Any, path: str) -> None:
        if value is None and nullable:
            return
        if not isinstance(value, dict):
            raise _Mismatch(path, "an object" + (" or null" if nullable else ""))
        for key, element in value.items():
            if int_keys and not str(key).lstrip("-").isdigit():
                raise _Mismatch(f"{path}.{key}", "an integer key")
            item(element, f"{path}.{key}")
    return check


def _fields(table: dict[str, Check], *, required: tuple[str, ...] = ()) -> Check:
    def check(value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise _Mismatch(path, "an object")
        for key in required:
            if key not in value:
                raise _Mismatch(f"{path}.{key}", "a value (the field is required)")
        for key, field_check in table.items():
            if key in value:
                field_check(value[key], f"{path}.{key}")
    return check


def _nullable(check: Check) -> Check:
    def nullable(value: Any, path: str) -> None:
        if value is not None:
            check(value, path)
    return nullable


def _anything(value: Any, path: str) -> None:
    pass


FLEX_HEAD = _fields({
    "head_type": STRING, "layers": SIZE, "num_labels": OPT_SIZE, "num_choices": OPT_SIZE,
    "activation_function": OPT_STRING, "label2id": _map_of(COUNT, nullable=True), "layer_norm": OPT_BOOL,
    "bias": OPT_BOOL, "use_pooler": OPT_BOOL,
}, required=("head_type",))
ROLE_CHECKS: dict[str, Check] = {
    "model": _fields({
        "model_type": STRING, "architectures": _list_of(STRING, nullable=True), "auto_map": OBJECT,
        "problem_type": OPT_STRING, "num_labels": SIZE, **MODEL_SIZES,
        # adapters writes null label maps when the active head is an LM head
        "id2label": _map_of(_anything, nullable=True, int_keys=True), "label2id": _map_of(COUNT, nullable=True), "is_decoder": BOOL, "is_encoder_decoder": BOOL, "tie_word_embeddings": BOOL,
        "prediction_heads": _map_of(FLEX_HEAD),
    }),
    "head": _fields({
        "model_type": OPT_STRING, "model_class": OPT_STRING, "name": OPT_STRING, "num_labels": OPT_SIZE,
        "label2id": _map_of(COUNT, nullable=True), "config": _nullable(FLEX_HEAD), "hidden_size": SIZE,
    }),
    # adapters reads the adapter's settings as an object (config["config"].get(...)) and writes hidden_size
    "adapter": _fields({"model_type": OPT_STRING, "model_class": OPT_STRING, "name": OPT_STRING,
                        "model_name": OPT_STRING, "config": OBJECT, "hidden_size": SIZE}),
    "peft": _fields({"peft_type": STRING, "task_type": OPT_STRING, "modules_to_save": _list_of(STRING, nullable=True),
                     "base_model_name_or_path": OPT_STRING}),
}


def check_object(data: Any, rel: str) -> None:
    """A file under a config's own name holds an object of fields: transformers and adapters read nothing else
    (`cls(**config_dict)`), so an array, string, number or null there is unreadable, not another tool's file."""
    if not isinstance(data, dict):
        raise InputError(f"{rel}: the JSON is {json_kind(data)}, not an object of config fields")


def check_fields(role: str, data: Any, rel: str) -> None:
    """Raise InputError naming the file and the JSON path of the first field with a wrong type."""
    check = ROLE_CHECKS.get(role)
    if check is None:
        return
    try:
        check(data, "$")
    except _Mismatch as exc:
        raise InputError(f"{rel}: {exc}") from None
