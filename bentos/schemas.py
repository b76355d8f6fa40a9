"""Kept for imports from before bentos/base.py: the request building blocks now live in the serving base."""

from bentos.base import Id, Strict

__all__ = ["Id", "Strict"]
