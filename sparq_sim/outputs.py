"""Output files of the commands: checked before any work, written all together or not at all.

* ``check_output_path(path, extensions, flag)``: before any work, the output file's name and
  folder: the extension, the folder exists, the path is not a folder, and a file can really be
  created there (a trial temporary file, removed at once: permission bits say nothing for root
  or under /proc). UserError naming the flag otherwise.
* ``check_output_folder(path, flag)``: the same for an output folder (which may not exist yet;
  then its parent must take a new folder).
* ``atomic_write(path, binary=False)``: one file written to a temporary file in its folder and
  moved over `path` with ``os.replace`` only when the block succeeds; ``write_text_atomic(path,
  text)`` the same for one text (calibration files, profiles, validation tables).
* ``OutputSet``: every output of one command. ``staged(path)`` gives a temporary path beside
  the final one to write to (with the same extension, so writers that pick the format from it
  work unchanged); ``commit()`` moves them all into place; ``discard()`` (or leaving the
  ``with`` block by an exception) deletes them, so a failure leaves no file behind. Used as
  ``with OutputSet() as outs: ... outs.write_text(path, text) ...``.
* ``save_figure(fig, path)``: a matplotlib figure written by ``atomic_write`` in the format its
  extension names (the charts are drawn in ``sparq_sim.plots``).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from sparq_sim.errors import UserError

PLOT_EXTENSIONS = (".png", ".svg")


def _writable_folder(folder: Path, flag: str, path) -> None:
    """UserError unless a file can be created in `folder` (tried, then removed)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".sparq-sim-probe.", dir=str(folder))
    except OSError as exc:
        raise UserError(f"bad {flag} {str(path)!r}: cannot write in folder {str(folder)!r}: "
                        f"{exc.strerror or exc}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_path(path, extensions=PLOT_EXTENSIONS, flag: str = "--out") -> Path:
    """The output path as a Path, or UserError if its extension, folder or permissions are wrong."""
    p = Path(str(path))
    if extensions and p.suffix.lower() not in extensions:
        raise UserError(f"bad {flag} {str(path)!r}: the file name must end in {' or '.join(extensions)}")
    if p.is_dir():
        raise UserError(f"bad {flag} {str(path)!r}: is a folder, not a file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"bad {flag} {str(path)!r}: folder {str(parent)!r} does not exist")
    _writable_folder(parent, flag, path)
    return p


def check_output_folder(path, flag: str = "--out") -> Path:
    """An output folder that exists and takes files, or whose parent takes a new folder."""
    p = Path(str(path))
    if p.exists() and not p.is_dir():
        raise UserError(f"bad {flag} {str(path)!r}: not a folder")
    if p.is_dir():
        _writable_folder(p, flag, path)
        return p
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"bad {flag} {str(path)!r}: folder {str(parent)!r} does not exist")
    _writable_folder(parent, flag, path)
    return p


@contextmanager
def atomic_write(path, binary: bool = False):
    """Write `path` all at once: a temporary file in the same folder, then os.replace."""
    p = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=str(p.parent) or ".")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8",
                                                                          "newline": ""})) as f:
            yield f
        os.chmod(tmp, 0o644)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_atomic(path, text: str) -> None:
    """Write `text` to `path` all at once; UserError (not a traceback) if its folder is missing."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"cannot write {path}: folder {parent} does not exist")
    with atomic_write(p) as f:
        f.write(text)


class OutputSet:
    """All outputs of one command: staged beside their final paths, moved into place together."""

    def __init__(self):
        self._staged: list[tuple[Path, Path]] = []   # (temporary, final)
        self._folders: list[Path] = []               # folders to create at commit

    def __enter__(self) -> "OutputSet":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if kind is None:
            self.commit()
            return False
        self.discard()
        if issubclass(kind, OSError):   # disk full, folder removed meanwhile: one line, not a traceback
            raise UserError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None
        return False

    def staged(self, path) -> Path:
        """A temporary path to write `path`'s content to; moved to `path` by commit()."""
        final = Path(path)
        folder = final.parent if str(final.parent) else Path(".")
        while not folder.is_dir():          # a folder this set creates at commit
            if folder not in self._folders:
                self._folders.append(folder)
            folder = folder.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=str(folder))
        os.close(fd)
        self._staged.append((Path(tmp), final))
        return Path(tmp)

    def write_text(self, path, text: str) -> None:
        self.staged(path).write_text(text, encoding="utf-8")

    def write_bytes(self, path, data: bytes) -> None:
        self.staged(path).write_bytes(data)

    def commit(self) -> None:
        """Move every staged file into place (folders first); on an error, remove what is left."""
        try:
            for folder in sorted(self._folders, key=lambda f: len(f.parts)):
                folder.mkdir(exist_ok=True)
            for tmp, final in self._staged:
                os.chmod(tmp, 0o644)
                os.replace(tmp, final)
        except OSError as exc:
            self.discard()
            raise UserError(f"cannot write {exc.filename or 'output'}: {exc.strerror or exc}") from None
        self._staged, self._folders = [], []

    def discard(self) -> None:
        """Delete every staged file that has not been moved into place."""
        for tmp, _ in self._staged:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        self._staged, self._folders = [], []


def save_figure(fig, path) -> None:
    """Write a matplotlib figure atomically in the format its extension names (.png or .svg)."""
    p = check_output_path(path)
    with atomic_write(p, binary=True) as f:
        fig.savefig(f, format=p.suffix.lower().lstrip("."), dpi=120)
