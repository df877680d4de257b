"""Tests of the intake.channels package."""
