"""The command line: one module per subject, each registering its commands."""
