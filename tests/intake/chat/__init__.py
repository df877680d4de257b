"""Tests of the intake.chat package."""
