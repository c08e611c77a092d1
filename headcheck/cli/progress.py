"""A progress bar for long work, on a terminal only."""

from __future__ import annotations

import sys


class progress_bar:
    """A progress bar on stderr, only on a terminal (tqdm comes with huggingface_hub); yields its update."""

    def __init__(self, **tqdm_options):
        self.options = {"unit": "B", "unit_scale": True, "desc": "writing", **tqdm_options}

    bar = None

    def __enter__(self):
        if not sys.stderr.isatty():
            self.bar = None
            return lambda n: None
        import shutil

        from tqdm import tqdm

        # a terminal that reports no size (a fresh pty, some CI consoles) makes tqdm draw nothing: it takes
        # 0 rows as "no room for a bar"; shutil falls back to 80x24
        size = shutil.get_terminal_size()
        self.bar = tqdm(file=sys.stderr, leave=False, ncols=size.columns, nrows=size.lines, **self.options)
        return self.bar.update

    def stage(self, text: str) -> None:
        """Say what the long work is doing now (e.g. loading models, which reports no bytes)."""
        if self.bar is not None:
            self.bar.set_description_str(text)
            self.bar.refresh()

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
