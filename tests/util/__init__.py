"""Helpers for the ovstore black-box suite (see tests/README.md)."""
