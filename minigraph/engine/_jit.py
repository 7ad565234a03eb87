"""The engine's numba decorator and where its compiled kernels are cached."""

# numba picks a cache directory per function when the function is decorated, trying in turn
# (numba/core/caching.py, _CacheImpl._locator_classes): NUMBA_CACHE_DIR (config.CACHE_DIR),
# the __pycache__ beside the source file, then the user-wide cache directory (~/.cache/numba
# on Linux); if none is writable it raises RuntimeError("cannot cache function ..."). A
# read-only install run by a user with no writable home (containers run as another user, CI
# images) hits that case and would compile every kernel on every run. There, and only when
# NUMBA_CACHE_DIR is unset, the kernels are cached in a private per-user directory under the
# system temp dir. numba's cache files are pickles, and loading a pickle runs code, so that
# directory is used only if this user owns it and nobody else can write to it.

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
import threading
from typing import Any, Callable, Iterator, Literal

import numba
from numba.core import config as numba_config

_config: Any = numba_config  # its settings are set at run time, unseen by type checkers

__all__ = ["jit", "private_cache_dir", "is_private_dir"]

PRIVATE_PREFIX = "minigraph-numba-"
_SWITCH = threading.Lock()  # kernel modules may be imported on two worker threads at once


def jit(func: Callable[..., Any] | None = None, *,
        inline: Literal["never", "always"] = "never") -> Any:
    """``numba.njit(cache=True, nogil=True)``, cached where the cache policy allows.

    ``inline="always"`` marks small helpers of hot loops: numba then inlines them in its own
    IR, which LLVM alone did not do for nested helpers (measured 3x slower without).
    Kernels release the GIL, so tensors can be clustered on several threads at once.
    Compilation happens at a kernel's first call, not here.
    """
    if func is None:
        return lambda f: jit(f, inline=inline)
    try:
        return numba.njit(cache=True, nogil=True, inline=inline)(func)
    except RuntimeError:  # no locator: none of numba's own cache directories is writable
        pass
    fallback = private_cache_dir()
    if fallback is not None:
        with _cache_dir(fallback):
            try:
                return numba.njit(cache=True, nogil=True, inline=inline)(func)
            except RuntimeError:
                pass
    return numba.njit(cache=False, nogil=True, inline=inline)(func)


@contextlib.contextmanager
def _cache_dir(path: str) -> Iterator[None]:
    """Point numba's cache locator at `path` while kernels are decorated, then restore it
    (numba reads config.CACHE_DIR only when a cached function is created), so other numba
    users in the process keep their own cache directories."""
    with _SWITCH:
        saved = _config.CACHE_DIR
        _config.CACHE_DIR = path
        try:
            yield
        finally:
            _config.CACHE_DIR = saved


@functools.lru_cache(maxsize=None)
def private_cache_dir() -> str | None:
    """This user's private cache directory under the system temp dir, or None.

    Returns None when NUMBA_CACHE_DIR is set (the user chose), where users or permissions
    do not exist (no ``os.getuid``), or when the directory cannot be created or fails
    `is_private_dir`. Never raises: a cache is an optimisation.
    """
    if _config.CACHE_DIR or not hasattr(os, "getuid"):
        return None
    try:
        uid = os.getuid()
        path = os.path.join(tempfile.gettempdir(), f"{PRIVATE_PREFIX}{uid}")
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        return path if is_private_dir(path, uid) else None
    except (OSError, ValueError):  # no usable temp dir, or a path numba cannot take
        return None


def is_private_dir(path: str, uid: int) -> bool:
    """True if `path` is a real directory (not a symlink) owned by `uid`, writable by no one else.

    Parameters
    ----------
    path : str
        Directory to check; symlinks are not followed.
    uid : int
        The user who must own it.

    Returns
    -------
    bool
    """
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(info.st_mode) and info.st_uid == uid
            and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
