"""Where image bytes come from: plain files on disk, or BasicSR-layout LMDB databases."""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple

from mcir.errors import DataError, OptionError

# py-lmdb refuses to open one database twice in a process, so backends that read the same database
# (e.g. train and val datasets, or lq and gt on one file) must share its handle. Weak values free a handle
# once no backend uses it; the pid in the key keeps forked workers from reusing their parent's handle.
_OPEN_ENVS: "weakref.WeakValueDictionary[Tuple[int, str], Any]" = weakref.WeakValueDictionary()


def _open_env(path: str) -> Any:
    """A read-only handle on the LMDB at ``path``, shared within this process."""
    import lmdb  # only LMDB users need the package loaded

    pid, real = os.getpid(), os.path.realpath(path)
    env = _OPEN_ENVS.get((pid, real))
    if env is None:
        # py-lmdb refuses to open a database that was open when this process was forked (e.g. a worker
        # started after the main process read the same LMDB). The inherited handle must not be used after
        # a fork anyway; closing it only unmaps this process's copy.
        for (owner, p), inherited in list(_OPEN_ENVS.items()):
            if p == real and owner != pid:
                inherited.close()
                _OPEN_ENVS.pop((owner, p), None)
        try:
            env = lmdb.open(path, readonly=True, lock=False, readahead=False)
        except lmdb.Error as exc:
            raise DataError(f"{path}: cannot open LMDB ({exc})") from exc
        _OPEN_ENVS[(pid, real)] = env
    return env


class DiskBackend:
    """Reads whole files from disk."""

    def get(self, path: str) -> bytes:
        """Read a file.

        Args:
            path: File path.

        Returns:
            Its bytes.
        """
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


class LMDBBackend:
    """Reads values from one or more LMDB databases, each under a client key (e.g. ``lq``, ``gt``).

    The databases are opened on the first :meth:`get` in each process, not in the constructor, because
    an LMDB environment must not cross a ``fork``: every DataLoader worker opens its own read-only handle.

    Args:
        db_paths: ``*.lmdb`` folders (each with ``data.mdb``).
        client_keys: One name per database, used by :meth:`get`.
    """

    def __init__(self, db_paths: Sequence[str], client_keys: Sequence[str]):
        if isinstance(db_paths, (str, os.PathLike)):
            db_paths = [db_paths]
        if isinstance(client_keys, str):
            client_keys = [client_keys]
        if len(db_paths) != len(client_keys):
            raise OptionError(f"got {len(db_paths)} LMDB paths but {len(client_keys)} client keys", key="io_backend")
        for path in db_paths:
            if not (Path(path) / "data.mdb").is_file():
                raise DataError(f"{path}: not an LMDB database (no data.mdb)")
        self.db_paths: Dict[str, str] = {k: str(p) for k, p in zip(client_keys, db_paths)}
        self._envs: Optional[Dict[str, Any]] = None
        self._pid: Optional[int] = None

    def __getstate__(self) -> Dict[str, Any]:
        # Open environments cannot be pickled (spawned workers); they reopen lazily.
        state = self.__dict__.copy()
        state["_envs"] = None
        state["_pid"] = None
        return state

    def _open(self) -> Dict[str, Any]:
        if self._envs is None or self._pid != os.getpid():
            self._envs = {client: _open_env(path) for client, path in self.db_paths.items()}
            self._pid = os.getpid()
        return self._envs

    def get(self, key: str, client_key: str = "default") -> bytes:
        """Read the value stored under ``key``.

        Args:
            key: The LMDB key (file stem, ascii).
            client_key: Which database (one of the constructor's ``client_keys``).

        Returns:
            The stored bytes (an encoded image).
        """
        envs = self._open()
        if client_key not in envs:
            raise DataError(f"no LMDB for client key '{client_key}' (have: {', '.join(envs)})")
        with envs[client_key].begin(write=False) as txn:
            value = txn.get(key.encode("ascii"))
        if value is None:
            raise DataError(f"{self.db_paths[client_key]}: no key '{key}' in LMDB")
        return bytes(value)

    def close(self) -> None:
        """Release this backend's database handles (closed once no other backend uses them; reopened by
        the next :meth:`get`)."""
        self._envs = None
        self._pid = None


def build_backend(io_backend: Optional[Dict[str, Any]]) -> Any:
    """Build a backend from an ``io_backend`` option section.

    Args:
        io_backend: ``{'type': 'disk'}`` or ``{'type': 'lmdb', 'db_paths': [...], 'client_keys': [...]}``;
            None means disk.

    Returns:
        A :class:`DiskBackend` or :class:`LMDBBackend`.
    """
    cfg = dict(io_backend or {"type": "disk"})
    kind = cfg.pop("type", None)
    if kind == "disk":
        if cfg:
            raise OptionError(f"unexpected key for the disk backend: {', '.join(sorted(cfg))}", key="io_backend")
        return DiskBackend()
    if kind == "lmdb":
        unknown = set(cfg) - {"db_paths", "client_keys"}
        if unknown:
            raise OptionError(f"unexpected key for the lmdb backend: {', '.join(sorted(unknown))}", key="io_backend")
        if "db_paths" not in cfg or "client_keys" not in cfg:
            raise OptionError("the lmdb backend needs db_paths and client_keys", key="io_backend")
        return LMDBBackend(cfg["db_paths"], cfg["client_keys"])
    raise OptionError(f"unknown io backend '{kind}' (choose disk or lmdb)", key="io_backend.type")
