"""Choices and helpers shared by the command modules."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

from ..judge.suppress import FAIL_ON  # noqa: F401  (--fail-on choices: the same names as fail-on in the configuration)

HEAD_TYPES = ["classification", "multilabel_classification", "tagging", "question_answering", "multiple_choice",
              "masked_lm", "causal_lm", "seq2seq_lm", "image_classification"]


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def fail(message: str, code: int) -> NoReturn:
    """End the command: one line on stderr, prefixed as every headcheck message is, and the contract's exit code."""
    click.echo(f"headcheck: {message}", err=True)
    sys.exit(code)
