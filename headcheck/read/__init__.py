"""Where bytes come from and what they say: sources (local folder, Hub), file-format readers, facts.

Imports nothing above it."""
