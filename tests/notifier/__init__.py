"""Tests of the notifier package."""
