"""Migrate checkpoints where they live: download a Hub repository's checkpoint, migrate it, and commit the result
as a pull request (or into a new repository) with huggingface_hub's commit API."""
