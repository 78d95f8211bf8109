"""Exceptions for users: each message is one sentence saying what was wrong and how to fix it.

The CLI turns any :class:`RgnetError` into that sentence on stderr and exit code 2.
"""


class RgnetError(Exception):
    """Base class of every error caused by what the user asked for."""


class ConfigError(RgnetError, ValueError):
    """A setting, name or value that is not valid."""


class DataError(RgnetError, FileNotFoundError):
    """Data files missing or malformed."""


class StoreError(RgnetError):
    """A file that is not an rgnet file, is corrupt, or belongs to another experiment."""
