"""Tests of the intake.cli package."""
