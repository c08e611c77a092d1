"""The click commands: parse flags, call the library, render, map the outcome to an exit code."""
