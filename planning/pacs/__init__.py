"""CT straight from the PACS: find studies, retrieve series into a local study cache.

Two kinds of node, one interface: a DICOM node (``AET@HOST:PORT``; C-ECHO, C-FIND, C-GET,
C-MOVE to this workstation's own storage SCP) and a DICOMweb service (``http://…/dicom-web``;
QIDO-RS, WADO-RS). Everything here is plain Python without Qt, so the window, the command line
and batch workers share it.
"""

DEFAULT_LOCAL_AE = "VERTEBROPLAN"
"""This workstation's AE title where Settings (or ``--ae-title``) say nothing."""
DEFAULT_LOCAL_PORT = 11112
"""Its storage port for C-MOVE where Settings (or ``--port``) say nothing. Both live here,
not in `planning.pacs.node`, so the command line's parser reads them without importing the
DICOM network stack at every start."""
