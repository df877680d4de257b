"""Tests of the intake.config package."""
