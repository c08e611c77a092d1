"""Carry out a plan: write the flex-head checkpoint beside the target, check every byte, rename into place."""
