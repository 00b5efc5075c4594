"""``vertebroplan batch INPUT… -o OUTDIR``: plan many studies on a Dask cluster.

A `LocalCluster` on this machine by default (one single-threaded worker process per
``--workers``), or an existing cluster with ``--scheduler tcp://HOST:PORT``. Tasks are
`StudyTask`s (paths or PACS references); workers write each study's files and result under
OUTDIR, which every worker must see. Studies already done (a result file) are skipped, so a
rerun after a crash or a new input resumes; a failing study is recorded and the batch goes
on. Progress is printed per study and can be followed in the Dask dashboard.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planning.errors import VertebroPlanError

if TYPE_CHECKING:  # imported when a batch runs, not at every start of the command line
    from planning.batch.inputs import StudyTask

EXIT_OK = 0
EXIT_ERROR = 1


class BatchError(VertebroPlanError):
    """The batch cannot start as asked."""


def add_parser(sub: Any) -> None:
    from app.cli_pacs import add_identity

    p = sub.add_parser("batch", help="plan many studies on a Dask cluster; one table row "
                                     "per level")
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="DICOM folders (every CT series, recursively) and NIfTI files")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR",
                   help="results.parquet, results.csv and one folder per study")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, default=None, metavar="N",
                       help="worker processes of the local cluster (default 1)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on this existing Dask cluster instead")
    p.add_argument("--levels", default="fractured",
                   help="fractured (default; only with confident names), all, or T12,L1")
    p.add_argument("--gauge", default="11G")
    p.add_argument("--pdf", action="store_true", help="a PDF report per study")
    p.add_argument("--sr", action="store_true", help="a DICOM SR per study")
    p.add_argument("--send", metavar="NODE", help="send each study's plan to AET@HOST:PORT")
    p.add_argument("--pacs", metavar="NODE", help="take the studies from this PACS, found "
                                                  "by --query")
    p.add_argument("--query", nargs="*", default=[], metavar="KEY=VALUE",
                   help="PACS search keys: patient_id, patient_name, birth_date, "
                        "study_date, accession, study_uid")
    p.add_argument("--cache", metavar="DIR", help="study cache for --pacs inputs (a folder "
                                                  "every worker sees; default OUTDIR/cache)")
    add_identity(p)


def _tasks(args: argparse.Namespace) -> list[StudyTask]:
    from planning.batch.inputs import discover, pacs_tasks

    tasks = discover(list(args.inputs)) if args.inputs else []
    if args.pacs:
        from planning.pacs.node import LocalAE, parse_node
        from planning.pacs.records import StudyQuery
        from planning.pacs.retrieve import find_studies

        keys = {}
        for item in args.query:
            key, eq, value = item.partition("=")
            if not eq or key not in StudyQuery.__dataclass_fields__:
                raise BatchError(f"--query {item}: write KEY=VALUE with KEY one of "
                                 f"{', '.join(StudyQuery.__dataclass_fields__)}")
            keys[key] = value
        query = StudyQuery(**keys)
        if query.is_empty:
            raise BatchError("--pacs needs --query with at least one search key")
        studies = find_studies(parse_node(args.pacs), query,
                               local=LocalAE(args.ae_title, args.port), timeout_s=args.timeout)
        tasks += pacs_tasks(args.pacs, studies)
    if not tasks:
        raise BatchError("no input: give DICOM folders or NIfTI files, or --pacs with --query")
    return tasks


def _client(args: argparse.Namespace) -> tuple[Any, Any]:
    from dask.distributed import Client, LocalCluster

    if args.scheduler:
        try:
            return Client(args.scheduler, timeout="20s"), None
        except OSError as exc:
            raise BatchError(f"no Dask scheduler answers at {args.scheduler}: {exc}") from exc
    workers = args.workers or 1
    if workers < 1:
        raise BatchError("--workers must be at least 1")
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address="127.0.0.1:0", memory_limit=None)
    return Client(cluster), cluster


def _require_batch_libraries() -> None:
    try:
        import dask.distributed  # noqa: F401
        import pandas  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise BatchError(f"batch planning needs {exc.name}, which this installation lacks "
                         "(the desktop bundle leaves Dask out): run it from a Python "
                         "install of VertebroPlan (pip install vertebroplan).") from exc


def run(args: argparse.Namespace) -> int:
    from app.batch_jobs import LEVEL_CHOICES, BatchOptions, run_study
    from planning.batch.table import done_keys, write_tables

    _require_batch_libraries()
    if args.levels not in LEVEL_CHOICES:
        from planning.plan import validate_level

        for name in args.levels.split(","):
            validate_level(name.strip())  # a wrong level name is refused before any work
    from planning.plan import gauge

    gauge(args.gauge)
    outdir = Path(args.output).resolve()
    outdir.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(args)
    done = done_keys(outdir)
    todo = [t for t in tasks if t.key not in done]
    options = BatchOptions(levels=args.levels, gauge=args.gauge, pdf=args.pdf, sr=args.sr,
                           send=args.send, cache_dir=str(Path(args.cache).resolve())
                           if args.cache else str(outdir / "cache"),
                           ae_title=args.ae_title, port=args.port, method=args.method)
    print(f"{len(tasks)} studies: {len(done & {t.key for t in tasks})} already done, "
          f"{len(todo)} to plan.", flush=True)
    failed = 0
    if todo:
        from dask.distributed import as_completed

        client, cluster = _client(args)
        try:
            link = client.dashboard_link
            print(f"Dask: {len(client.scheduler_info()['workers'])} worker(s); dashboard "
                  f"{link}", flush=True)
            t0 = time.monotonic()
            futures = client.map(run_study, todo, outdir=str(outdir), options=options,
                                 key=[f"study-{t.key}" for t in todo], pure=False)
            for index, future in enumerate(as_completed(futures), 1):
                try:
                    summary = future.result()
                except Exception as exc:  # a worker died on it: the study is not done
                    summary = {"status": "failed", "error": f"worker lost: {exc}",
                               "seconds": 0.0, "key": "?"}
                failed += summary["status"] != "done"
                what = summary["error"] if summary["status"] != "done" else \
                    f"{summary['levels']} levels"
                print(f"[{index}/{len(todo)}] {summary['key']} {summary['status']} "
                      f"({summary['seconds']:.1f} s): {what}", flush=True)
            elapsed = time.monotonic() - t0
            print(f"{len(todo)} studies in {elapsed:.1f} s "
                  f"({60 * len(todo) / elapsed:.1f} studies/min); {failed} failed.",
                  flush=True)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    parquet, csv, count = write_tables(outdir)
    print(f"Written: {parquet} and {csv} ({count} rows)")
    if failed:
        print(f"vertebroplan: {failed} study(ies) failed; their rows say why; run the same "
              "command again to retry only them", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK
