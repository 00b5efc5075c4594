"""Where a PACS is: a DICOM node or a DICOMweb service, parsed from what a user types.

Why one parser: the command line (``NODE``), the settings' node list and batch jobs all name
a PACS the same way, ``AET@HOST:PORT`` or ``http(s)://host/…/dicom-web``, and each must refuse
a malformed address with the same plain message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from planning.interop.send import RemoteAE, RemoteAEError, SendError
from planning.pacs import DEFAULT_LOCAL_AE, DEFAULT_LOCAL_PORT


class PacsError(SendError):
    """Searching or retrieving failed; the message names the node and says why."""


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb service (QIDO-RS and WADO-RS below one base URL)."""

    url: str

    def __post_init__(self) -> None:
        parts = urlsplit(self.url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RemoteAEError(
                f"'{self.url}' is not a DICOMweb address: write it as "
                "http://HOST:PORT/dicom-web (or https://…)"
            )
        object.__setattr__(self, "url", self.url.strip().rstrip("/"))

    def __str__(self) -> str:
        return self.url

    def describe(self) -> str:
        """How messages name the service: its base URL without credentials."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"the DICOMweb service at {parts.scheme}://{host}{port}{parts.path}"


PacsNode = RemoteAE | WebNode


def parse_node(text: str) -> PacsNode:
    """``AET@HOST:PORT`` → `RemoteAE`; ``http(s)://…`` → `WebNode`; anything else is refused."""
    stripped = text.strip()
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", stripped):
        return WebNode(stripped)
    return RemoteAE.parse(stripped)


@dataclass(frozen=True)
class LocalAE:
    """This workstation as a DICOM node: the AE title it calls with and, for C-MOVE, the
    port of its own storage SCP (both in Settings; the PACS must know them)."""

    ae_title: str = DEFAULT_LOCAL_AE
    port: int = DEFAULT_LOCAL_PORT

    def __post_init__(self) -> None:
        RemoteAE(self.ae_title, "localhost", self.port)  # the same checks as a remote's


THIS_WORKSTATION = LocalAE()
"""The default identity: AE title VERTEBROPLAN, storage port 11112 (Settings change it)."""

_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")


def check_uid(uid: str, what: str) -> str:
    """A UID as it may name a folder in the cache: digits and dots, at most 64 characters.

    Why: a PACS's answer becomes a path on disk; a UID that is anything else (``../..``,
    spaces) is refused rather than written.
    """
    value = str(uid).strip().rstrip("\x00")
    if not value or len(value) > 64 or not _UID.match(value):
        raise PacsError(f"The {what} UID '{value[:80]}' is not a valid DICOM UID.")
    return value


__all__ = ["DEFAULT_LOCAL_AE", "DEFAULT_LOCAL_PORT", "THIS_WORKSTATION", "LocalAE", "PacsError",
           "PacsNode", "RemoteAE", "RemoteAEError", "WebNode", "check_uid", "parse_node"]
