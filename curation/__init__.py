"""Curation pipeline for interleaved image-text corpora (VILA-style pre-training data)."""

__version__ = "0.1.0"
