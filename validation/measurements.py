"""Reading measurement files in the schema of validation/data/README.md.

Each row becomes a ``Measurement``: the device (a hardware file, plus the thread count for CPU
rows), the kernel label (a phase model in ``sparq_sim.implementations.published_common``) and a
one-layer ``Workload``. Problems (missing file or columns, empty file, unknown device or kernel,
bad numbers) raise ``UserError`` naming the file, row and value.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from sparq_sim.errors import UserError
from sparq_sim.hardware import LOCAL_NAME

COLUMNS = ("device_name", "device", "dtype", "n_head", "head_dim", "sequence_length", "batch_size",
           "kernel", "r", "k", "store_k_twice", "duration_s", "duration_stderr_s", "reps", "warmup",
           "torch_version")
REQUIRED = ("device_name", "device", "dtype", "n_head", "head_dim", "sequence_length", "batch_size",
            "kernel", "r", "k", "store_k_twice", "duration_s")

# device_name (as the framework reports it, lower case, thread count removed) -> hardware file.
# Patterns are tried in order; the first that matches wins.
DEVICE_PATTERNS = (
    (r"\ba10g\b", "a10g"),
    (r"a100.*(80gb|80 gb)", "a100-80gb"),
    (r"a100", "a100-40gb"),
    (r"h100.*pcie", "h100-pcie"),
    (r"h100", "h100-sxm"),
    (r"h200", "h200"),
    (r"epyc\s*7763", "epyc-7763"),
    (r"epyc\s*9654", "epyc-9654"),
    (r"xeon.*8480", "xeon-8480"),
    (rf"^{LOCAL_NAME}\b", LOCAL_NAME),    # "local: <cpu> (N threads)": validate --local's runs
)
MACHINE_FILE = "machine.toml"        # beside such runs: the hardware file of the machine they ran on
THREADS = re.compile(r"\((\d+)\s*threads?\)\s*$", re.I)
MAX_THREADS = 4096
MAX_DURATION_S = 3600.0   # one call of one attention kernel; longer is a unit slip (ms, us)
MAX_FIELD = 4096          # characters in one field; the CSV reader's own limit fails with no line
LINE_KEY = "\0line"       # where read_measurements records each row's line in the file
# Upper bounds of the integer columns: beyond any measured kernel, and small enough that the
# predictions stay finite (sequence lengths as for the CLI's --seq).
LIMITS = {"n_head": 4096, "head_dim": 4096, "sequence_length": 1 << 30, "batch_size": 1 << 20,
          "r": 4096, "k": 1 << 30}


@dataclass(frozen=True)
class Measurement:
    """One measured call and what the model needs to predict it."""

    line: int                 # line in the file (header is line 1)
    device_name: str
    hardware: str             # hardware file name, "local" (this machine) or a machine.toml path
    threads: int | None       # CPU rows: threads used
    kernel: str               # label as in the file
    method: str               # dense or sparq
    dtype: str
    n_head: int
    head_dim: int
    seq: int
    batch: int
    r: int | None
    k: int | None
    store_k_twice: bool
    duration_s: float
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def rotated_inputs(self) -> bool:
        """Timed by this project's profiler (``validate --local``), which rotates its inputs past the
        LLC; the published benchmarks repeat a call on the same inputs without a flush."""
        return self.device_name.lower().startswith(LOCAL_NAME)

    @property
    def group(self) -> tuple:
        """Rows that share a dense baseline: same device, batch and sequence length."""
        return (self.device_name, self.batch, self.seq)

    def workload(self):
        from sparq_sim.models import ModelConfig
        from sparq_sim.workload import Workload
        model = ModelConfig("measured", layers=1, heads=self.n_head, kv_heads=self.n_head,
                            head_dim=self.head_dim, d_model=self.n_head * self.head_dim, params=1.0)
        r = self.r if self.r else min(16, self.head_dim)
        k = self.k if self.k else min(64, self.seq)
        return Workload(model=model, seq=self.seq, batch=self.batch, r=r, k=k, kv_dtype=self.dtype,
                        weight_dtype=self.dtype, store_k="twice" if self.store_k_twice else "once")

    def to_row(self, duration_s: float | None = None) -> dict:
        row = {c: "" for c in COLUMNS}
        row.update(self.extra)
        row.update({"device_name": self.device_name, "dtype": self.dtype, "n_head": self.n_head,
                    "head_dim": self.head_dim, "sequence_length": self.seq, "batch_size": self.batch,
                    "kernel": self.kernel, "r": "" if self.r is None else self.r,
                    "k": "" if self.k is None else self.k,
                    "store_k_twice": "true" if self.store_k_twice else "false",
                    "duration_s": repr(self.duration_s if duration_s is None else duration_s)})
        return row


def map_device(device_name: str) -> tuple[str, int | None]:
    """(hardware file name, threads or None) for a device_name; UserError when unknown."""
    text = str(device_name).strip()
    threads = None
    m = THREADS.search(text)
    if m:
        threads = int(m.group(1))
        if not 1 <= threads <= MAX_THREADS:
            raise UserError(f"bad device {device_name!r}: thread count must be 1 to {MAX_THREADS}, got {threads}")
        text = text[:m.start()].strip()
    low = text.lower()
    for pattern, name in DEVICE_PATTERNS:
        if re.search(pattern, low):
            return name, threads
    raise UserError(f"unknown device {device_name!r}: no hardware file matches it (known: A10G, A100, H100, "
                    "H200, AMD EPYC 7763/9654, Xeon 8480, local)")


def _int(value: str, what: str, where: str, allow_empty: bool = False) -> int | None:
    text = str(value).strip()
    if not text and allow_empty:
        return None
    if len(text) > 20:
        raise UserError(f"{where}: column {what}: expected an integer, got {text[:20]!r}...")
    try:
        out = int(float(text)) if re.fullmatch(r"\d+(\.0*)?", text) else int(text)
    except ValueError:
        raise UserError(f"{where}: column {what}: expected an integer, got {value!r}") from None
    if out < 1:
        raise UserError(f"{where}: column {what}: must be at least 1, got {value!r}")
    if what in LIMITS and out > LIMITS[what]:
        raise UserError(f"{where}: column {what}: must be at most {LIMITS[what]}, got {value!r}")
    return out


def _bool(value: str, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise UserError(f"{where}: column store_k_twice: expected true or false, got {value!r}")


def parse_rows(rows: list[dict], source: str, *, skip_unusable: bool = False) -> list[Measurement]:
    """Measurements from dict rows (header already checked). ``skip_unusable`` drops rows without a
    duration instead of failing (published files have a few)."""
    from sparq_sim import dtypes
    from sparq_sim.implementations.published_common import KERNELS, kernel_key, kernel_method

    out = []
    for n, row in enumerate(rows, start=2):
        line = row.pop(LINE_KEY, n)
        where = f"{source} line {line}"
        if None in row:
            raise UserError(f"{where}: {len(row) - 1 + len(row[None])} fields, the header has {len(row) - 1}")
        short = [c for c, v in row.items() if v is None]
        if short:
            raise UserError(f"{where}: {len(row) - len(short)} fields, the header has {len(row)} "
                            f"(no {', '.join(short[:3])}{', ...' if len(short) > 3 else ''})")
        kernel = str(row.get("kernel") or "").strip()
        if kernel_key(kernel) not in KERNELS:
            raise UserError(f"{where}: unknown kernel {kernel!r}: known kernels are {', '.join(sorted(KERNELS))}")
        try:
            hardware, threads = map_device(row.get("device_name") or "")
        except UserError as exc:
            raise UserError(f"{where}: {exc}") from None
        duration_text = str(row.get("duration_s") or "").strip()
        if not duration_text:
            if skip_unusable:
                continue
            raise UserError(f"{where}: column duration_s is empty")
        try:
            duration = float(duration_text)
        except ValueError:
            raise UserError(f"{where}: column duration_s: expected a number, got {duration_text[:40]!r}") from None
        if not math.isfinite(duration):
            raise UserError(f"{where}: column duration_s must be a finite number of seconds, got {duration_text!r}")
        if not 0 < duration <= MAX_DURATION_S:
            raise UserError(f"{where}: column duration_s must be above 0 and at most {MAX_DURATION_S:g} s, "
                            f"got {duration_text!r}")
        try:
            dtype = dtypes.canonical(str(row.get("dtype") or "").strip())
        except (UserError, KeyError, ValueError):
            raise UserError(f"{where}: column dtype: unknown dtype {row.get('dtype')!r}") from None
        method = kernel_method(kernel)
        r = _int(row.get("r", ""), "r", where, allow_empty=True)
        k = _int(row.get("k", ""), "k", where, allow_empty=True)
        if method == "sparq" and (r is None or k is None):
            raise UserError(f"{where}: SparQ kernel {kernel!r} needs r and k")
        m = Measurement(
            line=n, device_name=str(row["device_name"]).strip(), hardware=hardware, threads=threads,
            kernel=kernel, method=method, dtype=dtype,
            n_head=_int(row["n_head"], "n_head", where), head_dim=_int(row["head_dim"], "head_dim", where),
            seq=_int(row["sequence_length"], "sequence_length", where),
            batch=_int(row["batch_size"], "batch_size", where), r=r, k=k,
            store_k_twice=_bool(row.get("store_k_twice", ""), where), duration_s=duration,
            extra={c: row.get(c, "") for c in ("device", "duration_stderr_s", "reps", "warmup", "torch_version")})
        if m.r is not None and m.r > m.head_dim:
            raise UserError(f"{where}: r = {m.r} exceeds head_dim = {m.head_dim}")
        if m.k is not None and m.k > m.seq:
            raise UserError(f"{where}: k = {m.k} exceeds sequence_length = {m.seq}")
        out.append(m)
    return out


def read_measurements(path: str | Path, *, skip_unusable: bool = True) -> list[Measurement]:
    """Read and check a measurement CSV; UserError on any problem."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"measurement file {path} not found")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"measurement file {path}: cannot read it: {exc}") from None
    if not text.strip():
        raise UserError(f"measurement file {path} is empty")
    lines = text.splitlines()
    for n, line in enumerate(lines, start=1):
        if len(line) > MAX_FIELD * len(COLUMNS):
            raise UserError(f"measurement file {path} line {n}: {len(line)} characters, too long for a row")
    reader = csv.DictReader(lines)
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise UserError(f"measurement file {path}: missing column(s) {', '.join(missing)} "
                            f"(see validation/data/README.md for the schema)")
        rows = []
        for row in reader:
            fields = {k.strip() if k is not None else None: v for k, v in row.items()}
            big = [k for k, v in fields.items() if isinstance(v, str) and len(v) > MAX_FIELD]
            if big:
                raise UserError(f"measurement file {path} line {reader.line_num}: field {big[0]} has "
                                f"more than {MAX_FIELD} characters")
            fields[LINE_KEY] = reader.line_num
            rows.append(fields)
    except csv.Error as exc:
        raise UserError(f"measurement file {path} line {reader.line_num}: {exc}") from None
    if not rows:
        raise UserError(f"measurement file {path} has a header but no rows")
    out = parse_rows(rows, str(path), skip_unusable=skip_unusable)
    if not out:
        raise UserError(f"measurement file {path} has no usable rows (every duration_s is empty)")
    machine = p.parent / MACHINE_FILE
    if machine.is_file():
        # runs recorded by `validate --local` on some machine: predicted with that machine's file
        out = [replace(m, hardware=str(machine)) if m.hardware == LOCAL_NAME else m for m in out]
    return out


def write_measurements(path: str | Path, measurements: list[Measurement]) -> None:
    """Write rows in the schema, atomically (temporary file then rename)."""
    import io
    from sparq_sim.validation.io import atomic_write_text
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for m in measurements:
        w.writerow(m.to_row())
    atomic_write_text(path, buf.getvalue())
