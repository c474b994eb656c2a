"""Exception types for errors a user can cause; entry points print them as one line."""

from __future__ import annotations

from typing import Optional


class MCIRError(Exception):
    """Base class of every user-facing mcir error."""


class OptionError(MCIRError):
    """A bad option: unknown key, wrong type, malformed YAML, bad override.

    Args:
        message: What is wrong.
        file: The option file, if known.
        key: Dotted key path (e.g. ``train.optim_g.lr``), if known.
    """

    def __init__(self, message: str, file: Optional[str] = None, key: Optional[str] = None):
        self.file = file
        self.key = key
        self.message = message
        where = ": ".join(str(p) for p in (file, key) if p)
        super().__init__(f"{where}: {message}" if where else message)


class RegistryError(OptionError):
    """An unknown or duplicate registry name."""


class DataError(MCIRError):
    """Bad data: a missing folder, an unreadable image, mismatched pairs."""


class CheckpointError(MCIRError):
    """A checkpoint or weights file that is missing, corrupt or does not fit the network."""


class StopTraining(MCIRError):
    """Training must stop early for a reason the user should read (the trainer saves a state first)."""
