"""headcheck: classify a checkpoint's prediction head and judge whether it can become an adapters flex head."""

__version__ = "0.1.0"
