"""Tests of the intake.pipeline package."""
