"""Choices and helpers shared by the command modules."""

from __future__ import annotations

import os

from ..model import Severity

HEAD_TYPES = ["classification", "multilabel_classification", "tagging", "question_answering", "multiple_choice",
              "masked_lm", "causal_lm", "seq2seq_lm", "image_classification"]
FAIL_ON = {"error": Severity.ERROR, "warning": Severity.WARNING, "never": None}


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ
