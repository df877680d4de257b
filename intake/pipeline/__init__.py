"""The journey of one message: its types, the services it needs, the steps, the worker, failures
and the quarantine."""
