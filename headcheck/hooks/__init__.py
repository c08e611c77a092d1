"""git plumbing and the pre-push hook: read the pushed commit from git and judge its checkpoints."""
