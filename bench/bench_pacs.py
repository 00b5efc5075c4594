"""Retrieval speed from a real PACS: a 512 × 512 × 300 CT series by C-GET, C-MOVE and
WADO-RS from Orthanc on loopback, beside DCMTK's getscu as the reference for C-GET.

Figures asked by issue 24: images per second for each method (fresh cache each time), and
the resume case (half the series cached: only the rest is fetched).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench.bench_load import _cache_dir
from bench.make_series import make_bench_series
from planning.interop.send import send
from planning.pacs.cache import StudyCache
from planning.pacs.records import StudyQuery
from planning.pacs.retrieve import find_studies, retrieve


def _timed(label: str, call) -> tuple[str, float, int]:
    t = time.perf_counter()
    count = call()
    return label, time.perf_counter() - t, count


def run() -> dict[str, float]:
    if shutil.which("Orthanc") is None:
        print("\n## PACS retrieval: skipped (Orthanc is not installed; make sysdeps)")
        return {}
    from tests.orthanc_pacs import running_orthanc

    folder = make_bench_series(_cache_dir())
    files = sorted(folder.glob("*.dcm"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp_text, running_orthanc(Path(tmp_text) / "pacs") \
            as pacs:
        tmp = Path(tmp_text)
        t = time.perf_counter()
        report = send(pacs.dimse, files)
        store_s = time.perf_counter() - t
        assert report.ok, str(report)
        study = find_studies(pacs.dimse, StudyQuery(study_uid=""), local=pacs.local)
        study_uid = next(s.study_uid for s in study if s.series)

        def ours(kind: str, method: str, cache_dir: Path) -> int:
            node = pacs.dimse if kind == "dimse" else pacs.web
            reports = retrieve(node, study_uid, StudyCache(cache_dir), method=method,
                               local=pacs.local, scp_host="127.0.0.1")
            return sum(r.fetched for r in reports)

        for label, kind, method in (("C-GET", "dimse", "get"), ("C-MOVE", "dimse", "move"),
                                    ("WADO-RS", "web", "get")):
            rows.append(_timed(f"VertebroPlan {label}", lambda k=kind, m=method, d=tmp / label:
                               ours(k, m, d)))
        # resume: half of the series in the cache, the rest fetched
        half = tmp / "resume"
        shutil.copytree(tmp / "C-GET", half)
        series_dir = next(p for p in half.rglob("*") if p.is_dir() and any(p.glob("*.dcm")))
        for path in sorted(series_dir.glob("*.dcm"))[::2]:
            path.unlink()
        rows.append(_timed("VertebroPlan C-GET, half cached", lambda: ours("dimse", "get", half)))
        out = tmp / "getscu"
        out.mkdir()
        cmd = ["getscu", "-aet", pacs.local.ae_title, "-aec", pacs.dimse.ae_title, "-S",
               "-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
               "-od", str(out), pacs.dimse.host, str(pacs.dimse.port)]
        rows.append(_timed("DCMTK getscu C-GET (reference)", lambda: (
            subprocess.run(cmd, check=True, capture_output=True),
            len(list(out.glob("*"))))[1]))
    print("\n## PACS retrieval: 512 × 512 × 300 CT, Orthanc 1.10 on loopback "
          f"({os.cpu_count()} cores)")
    print(f"C-STORE of the 300 images into Orthanc (VertebroPlan send): {store_s:.1f} s "
          f"({len(files) / store_s:.0f} images/s)")
    print("| retrieval | images | s | images/s |")
    print("|---|---|---|---|")
    figures = {}
    for label, seconds, count in rows:
        print(f"| {label} | {count} | {seconds:.2f} | {count / seconds:.0f} |")
        figures[label] = count / seconds if seconds else 0.0
    return figures
