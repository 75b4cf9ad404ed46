"""Writing files and directories all-or-nothing, and one writer per target.

Every write goes to a temporary name beside its target, ``.NAME.<pid>.<random>.tmp``, and is
renamed when complete: readers see the old version or the new one, and a failed write (a
full disk, a read-only folder, an interrupt) removes its temporary files and re-raises the
``OSError`` with the target's name. Temporary names whose process no longer runs (a writer
killed by ``kill -9``) are removed by the next write to that target. :func:`target_lock`
lets one process at a time write a target (``fcntl.flock`` on ``.NAME.lock`` beside it).
Files get the usual mode (``0666`` less the umask), as ``open()`` would give them.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import secrets
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping

from bayeslm.exceptions import BayesLMError

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_texts", "atomic_file", "atomic_directory",
           "check_writable_file", "target_lock", "TargetBusyError", "remove_stale_temporaries"]


class TargetBusyError(BayesLMError):
    """Another process is writing the same target (it holds the lock beside it)."""


# -- temporary names ----------------------------------------------------------------------
def _temporary_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _temporary_name(path: Path) -> Path:
    """A fresh name of the temporary pattern beside ``path`` (for a rename or a link target)."""
    return path.parent / f"{_temporary_prefix(path)}{secrets.token_hex(4)}.tmp"


_MAX_PID = 2**22  # Linux's PID_MAX_LIMIT


def _is_stale_temporary(entry: str, target: str) -> bool:
    match = re.fullmatch(rf"\.{re.escape(target)}\.(\d{{1,7}})\.[a-z0-9_]{{8}}\.tmp", entry)
    return match is not None and 0 < int(match.group(1)) <= _MAX_PID and not _process_alive(int(match.group(1)))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove ``.NAME.<pid>.*.tmp`` files and folders beside ``path`` whose process has ended."""
    path = Path(path)
    removed = []
    try:
        entries = os.listdir(path.parent)
    except OSError:
        return removed
    for entry in entries:
        if _is_stale_temporary(entry, path.name):
            stale = path.parent / entry
            try:
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink(missing_ok=True)
            except OSError:  # not ours to remove after all (permissions): leave it
                continue
            removed.append(stale)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` about ``path`` (writes to an open file name none, others name a temporary file)."""
    if err.errno is None:
        return OSError(errno.EIO, str(err) or type(err).__name__, str(path))
    return OSError(err.errno, err.strerror or os.strerror(err.errno), str(path))


# -- single files --------------------------------------------------------------------------
@contextmanager
def _temporary_file(path: Path, mode: str):
    """Yield ``(open file, its name)`` beside ``path``; synced and given the usual mode when the block ends.

    On any exception the file is removed and the exception re-raised (an ``OSError`` names ``path``).
    """
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _naming(err, path) from err
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle, Path(tmp)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(err, path) from err
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: str | Path, mode: str = "w") -> Iterator:
    """An open file (``"w"``: UTF-8 text, ``"wb"``: bytes) that replaces ``path`` when the block ends.

    On any exception the temporary file is removed, ``path`` is untouched and the
    exception re-raised (an ``OSError`` names ``path``).
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    with _temporary_file(path, mode) as (handle, tmp):
        yield handle
    try:
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise _naming(err, path) from err


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    with atomic_file(path, "wb") as handle:
        handle.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that readers see the old file or the new one."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_texts(texts: Mapping[str | Path, str]) -> None:
    """Write several files (path -> UTF-8 text): all of them or, on any error, none.

    Every file is written to its temporary name first (where a full disk shows); only
    then are they renamed, and a failed rename puts back the files already replaced.
    """
    targets = [Path(target) for target in texts]
    staged: list[Path] = []
    kept: list[Path | None] = []
    try:
        for target, text in zip(targets, texts.values()):
            staged.append(_staged_copy(target, text.encode("utf-8")))
        kept = [_second_name(target) for target in targets]
        _rename_all(staged, targets, kept)
    except BaseException:
        for leftover in [*staged, *kept]:
            if leftover is not None:
                leftover.unlink(missing_ok=True)
        raise
    for old in kept:
        if old is not None:
            old.unlink(missing_ok=True)


def _rename_all(sources: list[Path], targets: list[Path], kept: list[Path | None]) -> None:
    """Rename each source to its target; on a failure put back the targets already replaced."""
    done = 0
    try:
        for source, target in zip(sources, targets):
            try:
                os.replace(source, target)
            except OSError as err:
                raise _naming(err, target) from err
            done += 1
    except BaseException:
        for target, old in zip(targets[:done], kept[:done]):
            if old is not None:
                os.replace(old, target)
            else:
                target.unlink(missing_ok=True)
        raise


def _staged_copy(target: Path, data: bytes) -> Path:
    """``data`` written and synced to a temporary name beside ``target`` (usual mode)."""
    with _temporary_file(target, "wb") as (handle, tmp):
        handle.write(data)
    return tmp


def _second_name(target: Path) -> Path | None:
    """A hard link to the current ``target`` (to put it back), or None if there is none."""
    if not target.is_file():
        return None
    keep = _temporary_name(target)
    try:
        os.link(target, keep)
    except OSError:
        return None
    return keep


def check_writable_file(path: str | Path) -> Path:
    """Fail now, with the reason, if ``path`` could not be written later (before a long computation).

    The folder must exist and take a new file (one is created and removed); ``path`` must
    not be a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not path.parent.is_dir():
        reason = "is not a directory" if path.parent.exists() else "does not exist"
        raise BayesLMError(f"{path}: directory {path.parent} {reason}")
    try:
        fd, probe = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise _naming(err, path) from err
    os.close(fd)
    os.unlink(probe)
    return path


# -- one writer per target -------------------------------------------------------------
_HELD: dict[str, list] = {}  # absolute target -> [lock file descriptor, depth, lock path]


@contextmanager
def target_lock(path: str | Path):
    """Hold ``.NAME.lock`` beside ``path`` (``fcntl.flock``) for the block; re-entrant in one process.

    Creates missing parent folders (removed again if the block leaves ``path`` absent).
    A target locked by another process raises :class:`TargetBusyError` at once. Stale
    temporary names beside ``path`` are removed once the lock is held.
    """
    path = Path(path)
    key = os.path.abspath(path)
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield path
        finally:
            _HELD[key][1] -= 1
        return
    created = _make_parents(path.parent)
    lock_path = path.parent / f".{path.name}.lock"
    try:
        fd = _acquire(lock_path, path)
    except BaseException:
        _remove_empty(created)
        raise
    _HELD[key] = [fd, 1, lock_path]
    try:
        remove_stale_temporaries(path)
        yield path
    finally:
        del _HELD[key]
        lock_path.unlink(missing_ok=True)  # before unlocking: a waiter that then locks sees the file gone
        os.close(fd)
        if not path.exists():
            _remove_empty(created)


def _acquire(lock_path: Path, target: Path) -> int:
    while True:
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as err:
            raise _naming(err, target) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise TargetBusyError(
                f"{target}: another bayeslm process{f' (pid {owner})' if owner.isdigit() else ''} is writing it; "
                "wait for it to finish or choose another output") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:  # else the holder removed the file between our open and our lock: try again
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        os.close(fd)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; returns those created, deepest last."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    created = []
    for item in reversed(missing):
        try:
            item.mkdir()
        except OSError as err:
            _remove_empty(created)
            raise _naming(err, item) from err
        created.append(item)
    return created


def _remove_empty(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


# -- directories ------------------------------------------------------------------------
@contextmanager
def atomic_directory(path: str | Path, force: bool = False):
    """Yield a temporary folder beside ``path``; when the block ends it becomes ``path``.

    If the block raises (or the rename fails) the temporary folder is removed and ``path``
    is untouched. With ``force=True`` an existing folder at ``path`` is replaced, in one
    atomic exchange where the system has one (Linux ``renameat2``), and removed afterwards;
    anything but a folder at ``path`` is refused. Holds :func:`target_lock` meanwhile.
    """
    path = Path(path)
    with target_lock(path):
        if path.is_symlink() or (path.exists() and not path.is_dir()):
            raise FileExistsError(errno.EEXIST, "exists and is not a directory", str(path))
        try:
            tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent))
            os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700
        except OSError as err:
            raise _naming(err, path) from err
        try:
            yield tmp
            if not path.exists():
                os.rename(tmp, path)
            elif not force:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
            else:
                _replace_directory(tmp, path)
        except OSError as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _naming(err, path) from err
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def _replace_directory(new: Path, path: Path) -> None:
    """Put folder ``new`` at ``path`` (a folder); the old one ends under ``new``'s name, then removed."""
    if not _exchange(new, path):
        old = _temporary_name(path)
        os.rename(path, old)
        try:
            os.rename(new, path)
        except BaseException:
            os.rename(old, path)
            raise
        new = old
    shutil.rmtree(new, ignore_errors=True)


_RENAME_EXCHANGE = 2  # <linux/fs.h>
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))
