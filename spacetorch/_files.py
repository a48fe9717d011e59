"""Writing results all or nothing, with the permissions the user's umask gives.

Every file and directory spacetorch writes as a result goes through here:

* :func:`atomic_write` writes a file under a temporary name beside its target and renames it
  into place: the target is the old file or the complete new one, never a partial one;
* :func:`atomic_directory` builds a directory under a temporary name beside its target and
  then puts it in the target's place, exchanging the two in one step where the system can
  (Linux ``renameat2(RENAME_EXCHANGE)``); elsewhere the old directory is moved aside first,
  so that an interruption between the two renames leaves no directory (which loaders refuse),
  never a mixture.

A command opens each of its outputs as an :class:`Output` before any work.  Opening checks that
the output lies apart from every input (:func:`check_apart`), that what it will replace is
spacetorch's (a whole folder: :func:`check_replaceable`, recognised by its manifest and holding
nothing else; entries in a folder the user names: :func:`check_results`, listed in the folder's
record) and takes the output's lock (:func:`lock_output`).  Everything the command then writes
goes through the object: each path is kept under the output (:func:`contained`), each file is
written whole, and the entries written are recorded, with the command and its settings, in the
folder's record (:func:`record_results`), which is what a later run may replace.

Temporary names are hidden and carry the writing process's id (``.<name>.<pid>.<random>.tmp``),
so a later write to the same target removes what an earlier, killed writer left behind
(:func:`remove_stale_temporaries`) and nothing else.  :func:`temporary_name` gives such a name
to writers that open the file themselves (VISSL's checkpoint writer).  Files and directories get mode
``0o666`` / ``0o777`` minus the umask, as ``open`` and ``mkdir`` give them, although the
temporary files they start as are private.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

__all__ = [
    "OWN_MARKER",
    "Output",
    "OutputError",
    "atomic_directory",
    "atomic_write",
    "check_apart",
    "check_free_space",
    "check_own_folder",
    "check_replaceable",
    "check_results",
    "check_writable_folder",
    "contained",
    "OutputBusy",
    "is_temporary",
    "lock_output",
    "locked_outputs",
    "move_file",
    "own_folder",
    "publish",
    "record_results",
    "release_locks",
    "remove_own_folder",
    "remove_stale_temporaries",
    "temporary_name",
    "umask",
]

PathLike = str | os.PathLike[str]
_TEMPORARY = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[^.]+\.tmp$")

#: the file that marks a working folder (a resume folder, say) as one spacetorch made
OWN_MARKER = ".spacetorch_own"


def check_replaceable(folder: PathLike, manifest: str, ours: Callable[[str], bool], what: str) -> None:
    """Check, before any work, that ``folder`` may be replaced: it is missing, or it holds the
    file ``manifest`` that spacetorch writes into every ``what`` and, besides it, only entries
    whose names ``ours`` accepts (and temporaries of an interrupted write).  So replacing it
    never deletes a file spacetorch did not write.

    Raises:
        FileExistsError: naming the folder and what in it is not spacetorch's.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a directory; choose another output")
    if Path.cwd().resolve().is_relative_to(folder.resolve()):
        raise FileExistsError(f"{folder}: refusing to replace the directory you are working in")
    entries = sorted(entry.name for entry in folder.iterdir())
    if entries and manifest not in entries:
        raise FileExistsError(
            f"{folder} is not a {what} spacetorch wrote (it has no {manifest}); it is left as it is: "
            "choose another output"
        )
    foreign = [name for name in entries if name != manifest and not ours(name) and not is_temporary(folder / name)]
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FileExistsError(f"{folder} holds files that are not part of a {what} ({shown}); it is left as it is: "
                              "move them, or choose another output")


#: the file, in a folder of results, that lists the entries spacetorch wrote there
RESULTS_RECORD = ".spacetorch_results.json"


def _recorded(folder: Path) -> set[str]:
    import json

    try:
        names = json.loads((folder / RESULTS_RECORD).read_text())["written"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    return {name for name in names if isinstance(name, str)}


def check_results(folder: PathLike, names: Iterable[str]) -> None:
    """Check, before any work, that writing the entries ``names`` (files or folders) into
    ``folder`` deletes nothing of the user's: each is missing, or spacetorch wrote it there
    (it is in the folder's record, :func:`record_results`).  Other files in ``folder`` stay.

    Raises:
        FileExistsError: naming the entries spacetorch did not write.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    ours = _recorded(folder)
    foreign = sorted(name for name in names if (folder / name).exists() and name not in ours)
    if foreign:
        raise FileExistsError(
            f"{folder} already holds {', '.join(foreign)}, which spacetorch did not write there; "
            "it is left as it is: move it, or choose another output"
        )


def record_results(folder: PathLike, names: Iterable[str], settings: Mapping[str, Any] | None = None) -> None:
    """Note that the entries ``names`` of ``folder`` are spacetorch's (:class:`Output` notes each
    before it is made), and with which ``settings`` (the command and its arguments) they are written."""
    import json

    folder = Path(folder)
    names = set(names)
    try:
        by = json.loads((folder / RESULTS_RECORD).read_text()).get("settings", {})
        by = by if isinstance(by, dict) else {}
    except (OSError, ValueError, AttributeError):
        by = {}
    by.update({name: dict(settings) for name in names} if settings is not None else {})
    written = sorted(_recorded(folder) | names)
    record = {"written": written, "settings": {name: by[name] for name in written if name in by}}
    text = json.dumps(record, indent=1, default=str)
    atomic_write(folder / RESULTS_RECORD, lambda f: f.write(text.encode()))


def contained(root: PathLike, relative: str) -> Path:
    """``root / relative`` for a path read from data (a class id, a file name in an annotation
    file), refused unless it stays under ``root``.

    Raises:
        ValueError: ``relative`` is empty, absolute, holds a ``..`` component or a NUL, or
            leads out of ``root`` through a link (the message says which).
    """
    part = Path(relative)
    if not relative or "\0" in relative or part.is_absolute() or part.drive or ".." in part.parts or "\\" in relative:
        raise ValueError(f"{relative!r} is not a relative path inside the output (absolute, '..', empty or a backslash)")
    base = Path(root).resolve()
    target = (base / part).resolve()
    if target != base and base not in target.parents:
        raise ValueError(f"{relative!r} leads out of {root} (through a link)")
    return Path(root) / part


def own_folder(folder: PathLike, what: str) -> Path:
    """Make ``folder`` (a working folder beside an output: a resume state, say) and mark it as
    spacetorch's, or take it as it is if it is marked already.

    Raises:
        FileExistsError: ``folder`` exists without the mark (a file, or a folder of the user's).
    """
    folder = check_own_folder(folder, what)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / OWN_MARKER
    if not marker.exists():
        marker.write_text(f"a {what} of spacetorch's; deleted when its command finishes\n")
    return folder


def check_own_folder(folder: PathLike, what: str) -> Path:
    """Check, before any work, that :func:`own_folder` may take ``folder``: it is missing or marked.

    Raises:
        FileExistsError: ``folder`` exists without the mark.
    """
    folder = Path(folder)
    if (folder.exists() or folder.is_symlink()) and (folder.is_symlink() or not (folder / OWN_MARKER).is_file()):
        raise FileExistsError(f"{folder} exists and is not a {what} spacetorch made; move it away or choose another output")
    return folder


def remove_own_folder(folder: PathLike, mark: str = OWN_MARKER) -> None:
    """Delete ``folder`` if it is spacetorch's: it holds the ``mark`` file (:data:`OWN_MARKER`, or
    a folder's own manifest); a folder without it is left alone and named.

    Raises:
        FileExistsError: ``folder`` is not marked as spacetorch's.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if folder.is_symlink() or not (folder / mark).is_file():
        raise FileExistsError(f"{folder} is not a folder spacetorch made (no {mark} in it); it is left as it is")
    shutil.rmtree(folder)


def publish(partial: PathLike, target: PathLike) -> Path:
    """Put ``partial``, a file this process built completely under a temporary name, in
    ``target``'s place in one step (the caller checked before the work that ``target`` may be
    replaced)."""
    os.replace(partial, target)
    return Path(target)


def move_file(source: PathLike, root: PathLike, into: PathLike) -> Path:
    """Move ``source`` (a file under ``root``) to the same place under ``into``, never over a
    file that is there.

    Raises:
        FileExistsError: the place under ``into`` is taken.
        ValueError: ``source`` is not under ``root``.
    """
    source, root = Path(source), Path(root)
    try:
        relative = source.relative_to(root)
    except ValueError:
        raise ValueError(f"{source} is not under {root}") from None
    target = contained(into, relative.as_posix())
    if target.exists() or target.is_symlink():
        raise FileExistsError(f"{target} exists; it is not replaced")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(source, target)
    return target


def check_writable_folder(folder: PathLike, named: PathLike | None = None) -> None:
    """Check, before any work, that ``folder`` can be written in: it, or the nearest folder above
    it that exists, is a folder this user may write in (the rest is made).  Messages start with
    ``named`` (default: ``folder``), the path the user gave.

    Raises:
        ValueError: a file stands where a folder is needed, or permission is denied.
    """
    folder = Path(folder)
    for place in (folder, *folder.parents):
        if place.exists():
            if not place.is_dir():
                raise ValueError(f"{named or folder}: {place} is a file, not a folder")
            if not os.access(place, os.W_OK | os.X_OK):
                raise ValueError(f"{named or folder}: cannot write in {place} (permission denied)")
            return


def check_free_space(target: PathLike, needed: int, what: str) -> None:
    """Check, before any work, that the file system of ``target`` (or of the nearest folder above
    it that exists) has ``needed`` bytes free for ``what``.

    Raises:
        ValueError: naming both sizes.
    """
    place = next((p for p in (Path(target), *Path(target).parents) if p.exists()), Path("."))
    free = shutil.disk_usage(place).free
    if needed > free:
        raise ValueError(f"{target}: {what} needs about {_size(needed)}, and {place} has {_size(free)} free")


def _size(count: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


def check_apart(output: PathLike, output_flag: str, inputs: Mapping[str, PathLike]) -> None:
    """Check that the output ``output`` (given as ``output_flag``) is neither inside one of the
    ``inputs`` (``{flag: path}``) nor holds one: an output inside an input set becomes part of
    it (a new "class", images the next check scans again).

    Raises:
        ValueError: naming both options.
    """
    out = Path(output).resolve()
    for flag, path in inputs.items():
        source = Path(path).resolve()
        if out == source or out.is_relative_to(source):
            raise ValueError(f"{output_flag} {output} lies inside {flag} {path}; choose an output outside it")
        if source.is_relative_to(out):
            raise ValueError(f"{flag} {path} lies inside {output_flag} {output}; choose an output outside it")


def umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # not thread-safe: only where /proc is missing
    os.umask(mask)
    return mask


def _temporary_prefix(target: Path) -> str:
    return f".{target.name}.{os.getpid()}."


def temporary_name(target: str, tag: str = "partial") -> str:
    """A hidden temporary name for the file ``target`` written by this process."""
    return f".{target}.{os.getpid()}.{tag}.tmp"


def is_temporary(path: Path, target: Path | None = None) -> bool:
    """Whether ``path`` is a temporary of this module (for ``target``, if given)."""
    match = _TEMPORARY.match(path.name)
    return match is not None and (target is None or match["target"] == target.name)


def remove_stale_temporaries(directory: PathLike, target: str | None = None) -> list[Path]:
    """Remove the temporaries in ``directory`` (of the file named ``target``, if given) that
    writers which no longer run left behind; return their paths.

    Only names this module makes are considered, and only those whose process id is not a
    running process on this machine.
    """
    directory = Path(directory)
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for path in directory.iterdir():
        match = _TEMPORARY.match(path.name)
        if match is None or (target is not None and match["target"] != target) or _is_running(int(match["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class OutputBusy(FileExistsError):
    """Another live spacetorch process is writing the same output."""


#: the output locks this process holds: lock file -> (what it wrote there, the output as named)
_LOCKS: dict[Path, tuple[str, Path]] = {}


def lock_output(target: PathLike) -> Path | None:
    """Hold ``target``'s output lock until :func:`release_locks` (or the process's exit): a file
    ``.<name>.lock`` beside it naming this process.  Taking it again in this process is a no-op;
    a lock left by a process that no longer runs on this machine is taken over.  Without a
    folder to hold it (``target``'s parent does not exist yet) no lock is taken.

    Raises:
        OutputBusy: another running process (here, or on another machine) holds the lock.
    """
    import atexit
    import socket

    target = Path(target)
    whole = Path(os.path.abspath(target))  # "." and "x/.." have no name of their own
    lock = whole.parent / f".{whole.name}.lock"
    if lock in _LOCKS:
        return lock
    if not lock.parent.is_dir() or whole.parent == whole:  # no folder yet, or the root
        return None
    host = socket.gethostname()
    owner = f"{os.getpid()}@{host}"
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~umask())
        except FileExistsError:
            try:
                pid_text, _, holder_host = lock.read_text().strip().partition("@")
                pid = int(pid_text)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            except (ValueError, OSError):
                pid, holder_host = -1, host  # unreadable: a writer killed while writing it
            if holder_host == host and (pid <= 0 or not _is_running(pid)):
                lock.unlink(missing_ok=True)  # left by a process that no longer runs
                continue
            raise OutputBusy(
                f"{target} is being written by another spacetorch command (process {pid} on {holder_host}); "
                f"wait for it to finish, or delete {lock} if that process no longer runs"
            ) from None
        with os.fdopen(fd, "w") as file:
            file.write(owner)
        if not _LOCKS:
            atexit.register(release_locks)
        _LOCKS[lock] = owner, target
        return lock
    raise OutputBusy(f"{target}: its lock {lock} keeps changing; another command is starting on it")


def locked_outputs() -> list[Path]:
    """The outputs whose locks this process holds (what it is writing), in the order locked."""
    return [target for _, target in _LOCKS.values()]


def release_locks() -> None:
    """Remove every output lock this process holds (each only if it still names this process)."""
    for lock in list(_LOCKS):
        _release(lock)


def _release(lock: Path) -> None:
    owner, _ = _LOCKS.pop(lock)
    with contextlib.suppress(OSError):
        if lock.read_text() == owner:
            lock.unlink()


#: the files that mark a folder spacetorch writes as a whole (a file added to one breaks it, or
#: blocks its replacement), by what the folder is; kept equal to each writer's constant by a test
WHOLE_FOLDER_MARKS = {"manifest.json": "position set", "panels.json": "panels folder",
                      "corruptions.json": "corrupted set", OWN_MARKER: "working folder"}  # fmt: skip
#: the file that marks a training run's folder (its checkpoints and logs are the run's own)
RUN_MARK = "train_config.yaml"


def _check_file_is_free(target: Path) -> None:
    """Check that a single-file output may be written at ``target``: not a folder, not a file in a
    folder spacetorch writes whole, not an existing file of a training run, and not a result that
    a spacetorch command recorded in its folder.

    Raises:
        FileExistsError: naming the folder or record that owns it.
    """
    if target.is_dir():
        raise FileExistsError(f"{target} is a folder; name a file")
    folder = target.parent
    for mark, what in WHOLE_FOLDER_MARKS.items():
        if (folder / mark).is_file():
            raise FileExistsError(f"{target} lies in a {what} spacetorch wrote ({folder}); a file added there would "
                                  "break it: choose a file outside it")  # fmt: skip
    if target.exists() and (folder / RUN_MARK).is_file():
        raise FileExistsError(f"{target} is a file of the training run {folder}; it is left as it is: choose another file")
    if target.exists() and target.name in _recorded(folder):
        raise FileExistsError(f"{target} is a result another spacetorch command wrote there (listed in "
                              f"{folder / RESULTS_RECORD}); it is left as it is: choose another file")  # fmt: skip


class OutputError(ValueError):
    """An output that may not be written as asked; the message names it by the option that gave it."""


class Output:
    """One output of a command: a folder of results, or a folder written whole.

    Opened before any work (:meth:`open`); everything the command writes then goes through it:

    * **entries** (the default): ``target`` is a folder, the user's or new, and the command writes
      the named ``entries`` (files, or folders of figures) into it.  Opening refuses an entry that
      exists and is not in the folder's record; :meth:`write` and :meth:`path` keep every path
      inside ``target`` and inside a declared entry, and note each entry, with ``settings``, in
      the folder's record before it is first written.  Other files in the folder are never touched.
    * **file** (``file=True``): ``target`` is one file (a figure, a JSON summary) that the user
      named; :meth:`write` with no name writes it whole.  A folder in its place is refused.
    * **whole** (``manifest`` given): ``target`` is a folder spacetorch writes as a unit (a folder
      of panels with its manifest).  An existing one is replaced only with ``overwrite`` and only
      if it holds the manifest and, besides it, only names ``ours`` accepts; :meth:`build` yields
      the partial folder beside it, which takes its place in one step when the block ends.

    Either way opening takes the output's lock (a second command on it is refused, named) and
    checks it lies apart from each of ``inputs`` (``{option: path}``; ``None`` for one not given).

    Args:
        target: the output, as the user named it.
        flag: the option that named it (``--out``), which every message starts with.
        what: what the output is, for messages ("SOM panels folder").
        settings: recorded beside the entries written (the command and its arguments).
    """

    def __init__(
        self,
        target: PathLike,
        flag: str = "--out",
        *,
        what: str = "output",
        inputs: Mapping[str, PathLike | None] | None = None,
        entries: Iterable[str] = (),
        manifest: str | None = None,
        ours: Callable[[str], bool] = lambda name: False,
        overwrite: bool = False,
        file: bool = False,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.target = Path(target)
        self.flag, self.what = flag, what
        self.inputs = {name: Path(path) for name, path in (inputs or {}).items() if path is not None}
        self.entries = list(entries)
        self.manifest, self.ours, self.overwrite, self.file = manifest, ours, overwrite, file
        self.settings = dict(settings or {})
        self.written: list[str] = []
        self._root = self.target  # where paths resolve: the partial folder while one is built

    def open(self) -> Output:
        """Check the output before any work and take its lock; return it.

        Raises:
            OutputError: naming ``flag``, the output and what is wrong (inside an input, an
                entry or a folder that is not spacetorch's, exists without ``overwrite``, another
                command is writing it).
        """
        try:
            check_apart(self.target, self.flag, self.inputs)
        except ValueError as err:
            raise OutputError(str(err)) from None
        try:
            held = set(_LOCKS)
            lock = lock_output(self.target)  # held until the command ends: a second command on it is refused
            try:
                self._check_replaceable()
            except FileExistsError:
                if lock is not None and lock not in held:  # refused: no lock left in a folder it may not write
                    _release(lock)
                raise
        except FileExistsError as err:
            raise OutputError(f"{self.flag} {err}") from None
        return self

    def _check_replaceable(self) -> None:
        if self.file:
            _check_file_is_free(self.target)
        elif self.manifest is None:
            check_results(self.target, self.entries)
        elif self.target.exists() or self.target.is_symlink():
            if not self.overwrite:
                raise FileExistsError(f"{self.target} exists; choose another folder or pass --overwrite")
            check_replaceable(self.target, self.manifest, self.ours, self.what)

    def path(self, name: str = "") -> Path:
        """The place of ``name`` (``results.json``, ``cams/a.png``) in the output, made sure to
        stay inside it and, for an entries output, inside one of its declared entries; a file
        output's own path for no name."""
        if self.file:
            if name:
                raise ValueError(f"{self.target} is one file; it has no entry {name!r}")
            return self.target
        place = contained(self._root, name)
        top = Path(name).parts[0]
        if self.manifest is None and top not in self.entries:
            raise ValueError(f"{name!r} is not one of the entries {self.target} was opened for ({', '.join(self.entries)})")
        if self.manifest is None and top not in self.written:  # recorded before it is made: a rerun may replace it
            self.written.append(top)
            record_results(self.target, [top], self.settings)
        return place

    def write(self, name: str, write: Callable[[IO[bytes]], object]) -> Path:
        """Write the file ``name`` in the output (``""``: a file output itself) through
        ``write(binary_file)``, whole or not at all."""
        return atomic_write(self.path(name), write)

    def write_text(self, name: str, text: str) -> Path:
        """Write the text file ``name`` in the output (``""``: a file output itself), whole or not at all."""
        return self.write(name, lambda file: file.write(text.encode()))

    @contextlib.contextmanager
    def build(self) -> Iterator[Path]:
        """A whole output's partial folder; it takes ``target``'s place when the block ends
        without an exception, and is removed otherwise (:func:`atomic_directory`)."""
        if self.manifest is None:
            raise TypeError(f"{self.target} was opened for entries, not as a whole folder")
        with atomic_directory(self.target) as partial:
            self._root = partial
            try:
                yield partial
            finally:
                self._root = self.target


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Write ``path`` through ``write(binary_file)``, all or nothing; make its folder.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent, path.name)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def atomic_directory(target: PathLike) -> Iterator[Path]:
    """Build a directory to take ``target``'s place, all or nothing.

    Yields an empty temporary directory beside ``target``; when the block ends without an
    exception it replaces ``target`` (whatever ``target`` held is removed: the caller checks
    first that it may be).  When the block raises, the temporary directory is removed and
    ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent, target.name)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~umask())
        if not target.exists():
            os.rename(tmp, target)
            return
        if not _exchange(tmp, target):
            aside = Path(tempfile.mkdtemp(prefix=_temporary_prefix(target), suffix=".tmp", dir=target.parent))
            os.rename(target, aside / "old")
            os.rename(tmp, target)
            tmp = aside
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(tmp, ignore_errors=True)  # the replaced directory


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):  # glibc < 2.28, musl
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # a file system without exchange
        return False
    raise OSError(code, os.strerror(code), str(b))
