"""Reasonator: US-market news in, FinBERT sentiment scores out."""

__version__ = "1.0.0"
