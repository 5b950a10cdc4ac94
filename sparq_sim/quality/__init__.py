"""Published quality of sparse-attention methods, as data: one CSV per source paper.

Columns: paper, table, page, model (a preset name where the project has one), task, metric,
method (this project's method name), settings (as the paper states them, may be empty),
compression (nominal fraction of dense attention traffic, "1" for dense), value, status
("verified": read from the paper's table at that page; "unverified": a figure quoted for the
paper whose table and page have not been checked against the paper), note.

Retention = method's value / dense's value on the same (paper, table, model, task, metric).
For tasks where lower is better (bits per character) retention is dense / method so that 1 is
dense's quality and below 1 is worse. Nothing is interpolated across models, tasks or
compressions: a lookup with no matching row returns nothing.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("paper", "table", "page", "model", "task", "metric", "method", "settings", "compression",
           "value", "status", "note")
STATUSES = ("verified", "unverified")
LOWER_IS_BETTER = ("bits per character",)
# What a retention figure stands for when it is applied to a workload.
MATCHING_NOTE = ("published quality is matched by model, task and nominal compression (within 5%) only: the sources "
                 "measured it at their own sequence lengths (the SparQ paper's main table: 1k-2k tokens) "
                 "and settings, not at this S, r or k")


@dataclass(frozen=True)
class QualityRow:
    paper: str
    table: str
    page: str
    model: str
    task: str
    metric: str
    method: str
    settings: str
    compression: float
    value: float
    status: str
    note: str
    source_file: str = ""

    @property
    def key(self) -> tuple:
        return (self.paper, self.table, self.model, self.task, self.metric)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in COLUMNS}


def parse_compression(text: str) -> float:
    return float(Fraction(str(text).strip()))


def load_file(path: Path) -> list[QualityRow]:
    """Rows of one source file; ValueError naming the file and line for a malformed row."""
    rows = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path.name}: columns must be {', '.join(COLUMNS)}, got {reader.fieldnames}")
        for n, rec in enumerate(reader, start=2):
            try:
                rows.append(QualityRow(**{k: rec[k].strip() for k in COLUMNS if k not in ("compression", "value")},
                                       compression=parse_compression(rec["compression"]),
                                       value=float(rec["value"]), source_file=path.name))
            except (ValueError, ZeroDivisionError, TypeError) as exc:
                raise ValueError(f"{path.name} line {n}: {exc}") from None
    return rows


def source_files() -> list[Path]:
    return sorted(HERE.glob("*.csv"))


def all_rows() -> list[QualityRow]:
    out = []
    for path in source_files():
        out.extend(load_file(path))
    return out


def dense_row(rows: list[QualityRow], row: QualityRow) -> QualityRow | None:
    for r in rows:
        if r.key == row.key and r.method == "dense":
            return r
    return None


def retention(row: QualityRow, dense: QualityRow) -> float:
    if row.metric in LOWER_IS_BETTER:
        return dense.value / row.value
    return row.value / dense.value


def lookup(model: str, method: str, compression: float, rows: list[QualityRow] | None = None,
           rel_tol: float = 0.05) -> list[dict]:
    """Rows for this model and method whose nominal compression is within rel_tol of `compression`,
    each with its dense value and retention. Exact model match only; no interpolation."""
    rows = all_rows() if rows is None else rows
    out = []
    for r in rows:
        if r.model != model or r.method != method:
            continue
        if abs(r.compression - compression) > rel_tol * r.compression:
            continue
        d = dense_row(rows, r)
        out.append({**r.to_dict(), "dense_value": d.value if d else None,
                    "retention": retention(r, d) if d else None})
    return out


def models_with_rows(rows: list[QualityRow] | None = None) -> list[str]:
    return sorted({r.model for r in (all_rows() if rows is None else rows)})
