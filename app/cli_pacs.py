"""``vertebroplan pacs echo|find|get`` and ``open --pacs``: the PACS from the command line.

Kept apart from `app.cli` so the query/retrieve commands read as one piece; they import no
Qt. NODE is ``AET@HOST:PORT`` (DIMSE) or ``http(s)://…/dicom-web`` (DICOMweb). This
workstation's AE title and storage port come from ``--ae-title`` / ``--port`` (defaults
VERTEBROPLAN and 11112, as in the window's Settings ▸ PACS).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from planning.pacs import DEFAULT_LOCAL_AE, DEFAULT_LOCAL_PORT

if TYPE_CHECKING:  # the network stack is imported when a PACS command runs, not at start
    from planning.pacs.node import LocalAE
    from planning.pacs.records import RetrieveReport

EXIT_OK = 0
EXIT_ERROR = 1


def add_identity(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ae-title", default=DEFAULT_LOCAL_AE,
                        help=f"this workstation's AE title (default {DEFAULT_LOCAL_AE})")
    parser.add_argument("--port", type=int, default=DEFAULT_LOCAL_PORT,
                        help="this workstation's storage port, where C-MOVE sends images "
                             f"(default {DEFAULT_LOCAL_PORT})")
    parser.add_argument("--method", choices=("get", "move"), default="get",
                        help="DIMSE retrieval: C-GET (default) or C-MOVE to --port")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds to wait for the PACS (default 30)")


def add_parsers(sub: Any) -> None:
    """The ``pacs`` command and its three subcommands."""
    p_pacs = sub.add_parser("pacs", help="find and retrieve CT studies from a PACS "
                                         "(DIMSE or DICOMweb)")
    verbs = p_pacs.add_subparsers(dest="pacs_command", required=True)
    p_echo = verbs.add_parser("echo", help="test a node (C-ECHO, or a QIDO-RS search)")
    p_echo.add_argument("node", help="AET@HOST:PORT or http://HOST:PORT/dicom-web")
    p_find = verbs.add_parser("find", help="search studies; each with its series")
    p_find.add_argument("node", help="AET@HOST:PORT or http://HOST:PORT/dicom-web")
    p_find.add_argument("--patient-id", default="", metavar="ID")
    p_find.add_argument("--patient-name", default="", metavar="NAME",
                        help="DICOM name, wildcards * and ?, e.g. 'DOE^J*'")
    p_find.add_argument("--birth-date", default="", metavar="YYYYMMDD")
    p_find.add_argument("--study-date", default="", metavar="YYYYMMDD-YYYYMMDD",
                        help="a date or a range (either end may be left open)")
    p_find.add_argument("--accession", default="", metavar="N")
    p_find.add_argument("--modality", default="CT", help="default CT; '' for every modality")
    p_find.add_argument("--json", action="store_true", help="print JSON")
    p_get = verbs.add_parser("get", help="retrieve a study's CT series (or one series)")
    p_get.add_argument("node", help="AET@HOST:PORT or http://HOST:PORT/dicom-web")
    p_get.add_argument("study_uid", metavar="STUDY_UID")
    p_get.add_argument("--series", metavar="UID", help="only this series")
    p_get.add_argument("-o", "--output", required=True, metavar="DIR",
                       help="folder; images land in DIR/<study>/<series>/<image>.dcm and "
                            "those already there are not fetched again")
    p_get.add_argument("--json", action="store_true", help="print the reports as JSON")
    for p in (p_echo, p_find, p_get):
        add_identity(p)


def local_of(args: argparse.Namespace) -> LocalAE:
    from planning.pacs.node import LocalAE

    return LocalAE(args.ae_title, args.port)


def retrieve_to(args: argparse.Namespace, node_text: str, study_uid: str,
                series_uid: str | None, store: Any) -> list[RetrieveReport]:
    """Retrieve with the command's identity, method and timeout, progress on stderr
    (``pacs get`` and ``open --pacs``; each says what is missing its own way)."""
    from app.cli_common import stderr_progress
    from planning.pacs.node import parse_node
    from planning.pacs.retrieve import retrieve

    return retrieve(parse_node(node_text), study_uid, store, series_uid=series_uid,
                    method=args.method, local=local_of(args), progress=stderr_progress(),
                    timeout_s=args.timeout)


def run(args: argparse.Namespace) -> int:
    from planning.pacs import retrieve as pacs
    from planning.pacs.node import parse_node
    from planning.pacs.records import StudyQuery

    node = parse_node(args.node)
    if args.pacs_command == "echo":
        seconds = pacs.echo(node, local=local_of(args), timeout_s=args.timeout)
        print(f"{node.describe()} answers ({seconds * 1000:.0f} ms).")
        return EXIT_OK
    if args.pacs_command == "find":
        query = StudyQuery(patient_id=args.patient_id, patient_name=args.patient_name,
                           birth_date=args.birth_date, study_date=args.study_date,
                           accession=args.accession, modality=args.modality)
        studies = pacs.find_studies(node, query, local=local_of(args), timeout_s=args.timeout)
        if args.json:
            print(json.dumps({"studies": [s.to_json() for s in studies]}, indent=1))
            return EXIT_OK
        if not studies:
            print("No study matches.")
        for study in studies:
            print(f"{study.study_date or '--------'}  {study.patient_id:<12} "
                  f"{study.patient_name:<24} {study.description}  [{study.study_uid}]")
            for series in study.series:
                images = "?" if series.images is None else series.images
                print(f"    {series.modality:<3} {images:>5} images  {series.description}  "
                      f"[{series.series_uid}]")
        return EXIT_OK
    from planning.pacs.cache import InstanceStore

    reports = retrieve_to(args, args.node, args.study_uid, args.series,
                          InstanceStore(args.output))
    if args.json:
        print(json.dumps({"series": [
            {"series_uid": r.series_uid, "folder": r.folder, "expected": r.expected,
             "already_present": r.already_present, "fetched": r.fetched,
             "missing": list(r.missing), "seconds": round(r.seconds, 2)} for r in reports]},
            indent=1))
    else:
        for r in reports:
            print(f"{r.folder}: {r.describe()} ({r.seconds:.1f} s)")
    if any(r.missing for r in reports):
        print("vertebroplan: error: the retrieval partly failed; run the same command again "
              "to fetch only what is missing", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
