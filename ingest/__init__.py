"""The ingestion pipeline: files on disk in, an up-to-date Chroma index out.

It imports :mod:`supportbot` (settings, embedder, store); :mod:`supportbot` never
imports it, so the runtime stays free of parsers it does not need.

Example:
    >>> from ingest import run_ingest
    >>> report = run_ingest(["kb/docs"])
    >>> report.count("added"), report.chunks_embedded
"""

from ingest.pipeline import FileResult, IngestReport, Progress, run_ingest
from ingest.verify import VerifyReport, verify_index

__all__ = ["FileResult", "IngestReport", "Progress", "VerifyReport", "run_ingest", "verify_index"]
