"""One module per step of a message's journey; intake/pipeline.py lists them in order."""
