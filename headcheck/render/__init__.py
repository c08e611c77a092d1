"""Renderers: the only code that formats a report. Format name -> function(report, color) -> text."""

from .json_report import render_json
from .text import render_text

RENDERERS = {"text": render_text, "json": render_json}
