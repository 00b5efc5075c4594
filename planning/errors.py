"""Domain exceptions.

Each one subclasses the matching builtin so callers that only know Python's own exception
types still catch it, and each message is written for a radiographer: it names the file or
folder and says what is wrong with it, in plain words.
"""

from __future__ import annotations


class VertebroPlanError(Exception):
    """Base of every error VertebroPlan raises on purpose (shown to the user as is)."""


class SeriesError(VertebroPlanError, ValueError):
    """A DICOM folder or series cannot be turned into a trustworthy volume."""


class CodecError(SeriesError):
    """The pixel data is compressed with a transfer syntax no installed decoder handles."""


class VolumeFileError(VertebroPlanError, ValueError):
    """A volume file (NIfTI) cannot be read or has geometry we refuse to guess."""


class Cancelled(VertebroPlanError):
    """The user cancelled a long operation; nothing was changed."""
