"""The CLI's own errors: what it refuses before the SDK is asked anything."""

from __future__ import annotations


class BadInput(Exception):
    """Command-line input that cannot be turned into a request (exit code 2). The message says how to fix it."""
