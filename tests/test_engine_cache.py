"""Tests of the engine's numba cache policy: the private per-user fallback and its refusals."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import FIXTURES
from minigraph.engine import _jit

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def private(monkeypatch, tmp_path):
    """private_cache_dir() as if the system temp dir were tmp_path and NUMBA_CACHE_DIR unset."""
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(_jit._config, "CACHE_DIR", "")
    _jit.private_cache_dir.cache_clear()
    yield lambda: _jit.private_cache_dir()
    _jit.private_cache_dir.cache_clear()


def expected_path(tmp_path: Path) -> Path:
    return tmp_path / f"minigraph-numba-{os.getuid()}"


def test_private_cache_dir_is_created_for_this_user_only(private, tmp_path):
    path = private()
    assert path == str(expected_path(tmp_path))
    info = os.lstat(path)
    assert info.st_uid == os.getuid() and info.st_mode & 0o777 == 0o700
    assert private() == path  # and reused


def test_private_cache_dir_is_refused_when_others_can_write_to_it(private, tmp_path):
    expected_path(tmp_path).mkdir()
    expected_path(tmp_path).chmod(0o777)
    assert private() is None
    _jit.private_cache_dir.cache_clear()
    expected_path(tmp_path).chmod(0o720)  # group-writable is refused too
    assert private() is None


def test_private_cache_dir_is_refused_when_it_is_a_symlink(private, tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    expected_path(tmp_path).symlink_to(target)
    assert private() is None


def test_private_cache_dir_is_refused_when_someone_else_owns_it(private, tmp_path, monkeypatch):
    # Pretend to be another user: the directory named for that user exists, owned by us.
    other = os.getuid() + 1
    (tmp_path / f"minigraph-numba-{other}").mkdir(mode=0o700)
    monkeypatch.setattr(os, "getuid", lambda: other)
    assert private() is None


def test_private_cache_dir_is_refused_when_it_is_a_file(private, tmp_path):
    expected_path(tmp_path).write_text("")
    assert private() is None


def test_no_private_cache_dir_when_numba_cache_dir_is_set(private, monkeypatch, tmp_path):
    monkeypatch.setattr(_jit._config, "CACHE_DIR", str(tmp_path / "chosen"))
    assert private() is None and not expected_path(tmp_path).exists()


def test_no_private_cache_dir_without_a_temp_dir(monkeypatch):
    def no_temp_dir() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    monkeypatch.setattr(tempfile, "gettempdir", no_temp_dir)
    monkeypatch.setattr(_jit._config, "CACHE_DIR", "")
    _jit.private_cache_dir.cache_clear()
    try:
        assert _jit.private_cache_dir() is None
    finally:
        _jit.private_cache_dir.cache_clear()


# ---- a simulated read-only install, run as a user with no writable home ----

def read_only_install(tmp_path: Path) -> dict[str, str]:
    """Copy the packages into a read-only site dir; return the environment of a user with no
    writable home and NUMBA_CACHE_DIR unset. Root ignores permission bits, so numba's own cache
    paths are also made impossible: each __pycache__ is a file and HOME lies under a file."""
    site = tmp_path / "site"
    for package in ("minigraph", "graphdef_pb2"):
        shutil.copytree(REPO / package, site / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for folder in [p for p in site.rglob("*") if p.is_dir()]:
        (folder / "__pycache__").write_text("")
    for path in sorted(site.rglob("*"), reverse=True):
        path.chmod(0o555 if path.is_dir() else 0o444)
    (tmp_path / "file").write_text("")
    (tmp_path / "tmp").mkdir()
    env = {key: value for key, value in os.environ.items()
           if key not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(tmp_path / "file" / "home"), PYTHONPATH=str(site),
               TMPDIR=str(tmp_path / "tmp"))
    return env


def writable_again(tmp_path: Path) -> None:
    for path in (tmp_path / "site").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (tmp_path / "site").chmod(0o755)


def run_sample_model(env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """CPU seconds (user + system) of `python -m minigraph` on the sample model, and what
    numba said about its cache (NUMBA_DEBUG_CACHE lines: "[cache] data saved to PATH" ...)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-m", "minigraph", str(FIXTURES / "mlp_digits.pb"),
                           "-o", str(cwd / "out.pb"), "-f", "-q"], cwd=cwd,
                          env={**env, "NUMBA_DEBUG_CACHE": "1"}, capture_output=True, text=True,
                          timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, done.stderr
    cache_lines = "\n".join(line for line in done.stdout.splitlines() if line.startswith("[cache]"))
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), cache_lines


def test_read_only_install_caches_in_the_private_dir(tmp_path):
    env = read_only_install(tmp_path)
    try:
        first, first_log = run_sample_model(env, tmp_path)
        second, second_log = run_sample_model(env, tmp_path)
    finally:
        writable_again(tmp_path)
    # numba names the subdirectory after the source directory (caching.py,
    # get_suitable_cache_subpath): the read-only copy's kernels, not the repository's.
    cache = tmp_path / "tmp" / f"minigraph-numba-{os.getuid()}"
    engine = tmp_path / "site" / "minigraph" / "engine"
    where = cache / ("engine_" + hashlib.sha1(str(engine).encode()).hexdigest())
    assert f"data saved to '{where}/_optimal_kernels.penalized_partition" in first_log, first_log
    assert f"data loaded from '{where}/_optimal_kernels.penalized_partition" in second_log
    assert "saved" not in second_log, second_log  # nothing compiled the second time
    assert os.lstat(cache).st_mode & 0o777 == 0o700
    print(f"read-only install: first run {first:.2f} s CPU, second {second:.2f} s")
    assert second < first, (first, second)


def test_read_only_install_runs_uncached_when_the_private_dir_is_refused(tmp_path):
    env = read_only_install(tmp_path)
    cache = tmp_path / "tmp" / f"minigraph-numba-{os.getuid()}"
    cache.mkdir()
    cache.chmod(0o777)  # writable by others: their pickles could run code in our process
    try:
        _, log = run_sample_model(env, tmp_path)
    finally:
        writable_again(tmp_path)
    assert list(cache.iterdir()) == [] and "[cache]" not in log, log
