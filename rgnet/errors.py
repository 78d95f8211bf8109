"""Exceptions for users: each message is one sentence saying what was wrong and how to fix it.

The CLI turns any :class:`RgnetError` into that sentence on stderr and its ``exit_code`` (2; 3 for a
training run that diverged or for damaged data).
"""


class RgnetError(Exception):
    """Base class of every error caused by what the user asked for."""

    exit_code = 2


class ConfigError(RgnetError, ValueError):
    """A setting, name or value that is not valid."""


class DataError(RgnetError, FileNotFoundError):
    """Data files missing or malformed."""


class StoreError(RgnetError):
    """A file that is not an rgnet file, is corrupt, or belongs to another experiment."""


class DivergedError(RgnetError):
    """Training produced a non-finite loss or weights; the level is recorded as diverged (exit code 3)."""

    exit_code = 3


class WriteError(StoreError):
    """The file system refused a write (disk full, file-size limit, quota, permissions); nothing committed changed."""


class DamagedError(StoreError):
    """Stored data that fails its checks (checksum, owner, level); exit code 3."""

    exit_code = 3


class LimitError(ConfigError):
    """A request beyond what rgnet stores (32-bit counts) or what this machine can hold."""


class RgnetWarning(UserWarning):
    """Something the user should know about a result; the CLI prints it as one line."""


class DuplicateRunWarning(RgnetWarning):
    """A run given twice to an analysis (counted once)."""
