"""Tests of heapseg.catalog (mirrors the package)."""
