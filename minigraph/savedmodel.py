"""SavedModel directories: cluster float variables and Consts, copy everything else, atomically.

A SavedModel (``tensorflow/python/saved_model/``) is ``saved_model.pb`` (a ``SavedModel``
message: meta graphs, each with a GraphDef and, in TF2, an object graph), ``variables/`` (a
tensor bundle, see :mod:`minigraph.bundle`), ``assets/`` and ``fingerprint.pb``. Variables are
clustered as if each were a Const named by its checkpoint key, in the same planning pass as the
Consts of the first meta graph, so selection rules, reports and a global codebook cover both.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import codec, dtypes
from .bundle import Bundle, read_bundle, write_bundle
from .compress import (Change, Options, Progress, as_changes, palettize_changes,
                       plan_compression)
from .errors import DecodeError, SavedModelError
from .objectgraph import OBJECT_GRAPH_KEY, variable_names
from .report import Report, TensorReport
from .schema import GraphDef, SavedModel, TensorProto

__all__ = ["compress_savedmodel", "plan_savedmodel", "read_savedmodel", "is_fixed_size",
           "SAVED_MODEL",
           "VARIABLES_PREFIX", "FINGERPRINT"]

PathLike = Union[str, "os.PathLike[str]"]
SAVED_MODEL = "saved_model.pb"
VARIABLES_PREFIX = os.path.join("variables", "variables")
FINGERPRINT = "fingerprint.pb"


def read_savedmodel(src: PathLike) -> tuple[SavedModel, Bundle | None]:
    """Parse ``saved_model.pb`` and read the variables bundle (None when there is none).

    Raises
    ------
    SavedModelError
        Not a directory, no binary ``saved_model.pb``, a file protobuf cannot parse.
    BundleError
        A corrupt or unsupported bundle.
    """
    src = Path(src)
    if not src.is_dir():
        raise SavedModelError(f"{src}: not a directory")
    path = src / SAVED_MODEL
    if not path.is_file():
        text = " (saved_model.pbtxt is not supported)" if (src / "saved_model.pbtxt").exists() else ""
        raise SavedModelError(f"{src}: no {SAVED_MODEL}{text}: not a SavedModel directory")
    try:
        saved_model = SavedModel.FromString(path.read_bytes())
    except Exception:  # protobuf raises DecodeError, or RuntimeError/ValueError in some runtimes
        raise SavedModelError(f"{path}: not a SavedModel message") from None
    if not saved_model.meta_graphs:
        raise SavedModelError(f"{path}: contains no meta graph")
    index = src / f"{VARIABLES_PREFIX}.index"
    return saved_model, read_bundle(src / VARIABLES_PREFIX) if index.is_file() else None


def _tensor_for(bundle: Bundle, key: str, marker: bytes) -> TensorProto:
    entry = bundle.entries[key]
    tensor = TensorProto(dtype=entry.dtype, tensor_content=marker)
    tensor.tensor_shape.CopyFrom(entry.shape)
    return tensor


def is_fixed_size(dtype: int) -> bool:
    try:
        return dtypes.lookup(dtype).storage.kind != "O"
    except DecodeError:
        return False


def _whitelist(options: Options, names: dict[str, tuple[str, ...]]) -> Options:
    """Options whose patterns also name, exactly, each variable whitelisted by an alias."""
    extra = tuple(_escape(key) for key, aliases in names.items()
                  if any(fnmatch.fnmatchcase(alias, p) for alias in aliases
                         for p in options.whitelisted))
    return replace(options, whitelisted=options.whitelisted + extra)


def _escape(name: str) -> str:
    """A shell pattern matching exactly ``name``."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def _add_variables(graph: GraphDef, bundle: Bundle
                   ) -> tuple[dict[bytes, memoryview], list[TensorReport], set[str]]:
    """Append each fixed-size variable to ``graph`` as a Const whose content is a marker.

    Returns the marker -> bytes map for the planner, report rows of the variables that cannot
    be Consts (strings), and the checkpoint keys added.
    """
    real_names = {node.name for node in graph.node}
    lifted: dict[bytes, memoryview] = {}
    others: list[TensorReport] = []
    added: set[str] = set()
    nonce = os.urandom(12)
    for index, (key, entry) in enumerate(bundle.entries.items()):
        if key == OBJECT_GRAPH_KEY:
            continue
        if key in real_names:
            raise SavedModelError(f"{bundle.prefix}.index: checkpoint key '{key}' is also the "
                                  f"name of a node of the graph")
        name = dtypes.dtype_name(entry.dtype)
        if not is_fixed_size(entry.dtype):
            shape = tuple(d.size for d in entry.shape.dim)
            elements = int(np.prod(shape, dtype=np.int64))
            others.append(TensorReport(key, None, name, shape, elements,
                                       skipped=f"not float ({name})"))
            continue
        marker = b"minigraph-variable:" + nonce + index.to_bytes(4, "little")
        node = graph.node.add(name=key, op="Const")
        node.attr["value"].tensor.CopyFrom(_tensor_for(bundle, key, marker))
        lifted[marker] = bundle.data(key)
        added.add(key)
    return lifted, others, added


def plan_savedmodel(saved_model: SavedModel, bundle: Bundle | None, options: Options,
          progress: Progress | None = None
          ) -> tuple[Report, list[tuple[GraphDef, str, list[Change]]], dict[str, Any]]:
    """Plan every meta graph; variables join the first one's planning as extra Consts.

    Returns the report, each meta graph's Const changes (with the prefix of its report rows),
    and the new values of variables by checkpoint key.
    """
    graph = saved_model.meta_graphs[0].graph_def
    n_real = len(graph.node)
    lifted: dict[bytes, memoryview] = {}
    others: list[TensorReport] = []
    variables: set[str] = set()
    planned = options
    try:
        if bundle is not None:
            lifted, others, variables = _add_variables(graph, bundle)
            planned = _whitelist(options, variable_names(saved_model, bundle))
        report, planned_changes = plan_compression(graph, planned, lifted=lifted,
                                                   progress=progress)
        changes = as_changes(planned_changes)
    finally:
        del graph.node[n_real:]
    report.whitelisted = list(options.whitelisted)
    report.tensors += others
    consts = [(ref, values) for ref, values in changes if ref.name not in variables]
    variable_changes = {ref.name: values for ref, values in changes if ref.name in variables}
    per_graph = [(graph, "", consts)]
    for number, meta_graph in enumerate(saved_model.meta_graphs[1:], start=1):
        more, more_planned = plan_compression(meta_graph.graph_def, options)
        more_changes = as_changes(more_planned)
        for row in more.tensors:
            row.name = f"meta_graph_{number}/{row.name}"
        report.tensors += more.tensors
        per_graph.append((meta_graph.graph_def, f"meta_graph_{number}/", more_changes))
    report.tensors.sort(key=lambda row: row.name)
    return report, per_graph, variable_changes


def _apply_consts(saved_model: SavedModel, report: Report,
                  per_graph: list[tuple[GraphDef, str, list[Change]]], palettize: bool) -> bool:
    """Write the planned Const values into their graphs (in the palette form if asked);
    returns whether any Const changed."""
    changed = False
    for number, (graph, prefix, changes) in enumerate(per_graph):
        changed = changed or bool(changes)
        if palettize and changes:
            # TensorFlow restores a captured constant from its Const node's `value` attr
            # (saved_model_utils.py), so such a node must stay a Const.
            captured = {node.constant.operation for node in
                        saved_model.meta_graphs[number].object_graph_def.nodes
                        if node.WhichOneof("kind") == "constant"}
            held = [(ref, values) for ref, values in changes if ref.name in captured]
            changes = held + palettize_changes(
                graph, report, [(ref, values) for ref, values in changes
                                if ref.name not in captured], prefix=prefix)
            rows = {row.name: row for row in report.tensors}
            for ref, _ in held:
                rows[prefix + ref.name].palette_skipped = (
                    "a captured constant: TensorFlow reads it back as a Const")
        for ref, values in changes:
            codec.set_values(ref.tensor, values)
    return changed


def _copy_tree(src: Path, dst: Path, skip: set[str]) -> None:
    """Copy every file and directory of ``src`` into ``dst`` except the relative paths in ``skip``."""
    # Symlinked directories are followed (their files copied), as copy2 follows file symlinks.
    for root, dirs, files in os.walk(src, followlinks=True):
        here = Path(root).relative_to(src)
        (dst / here).mkdir(exist_ok=True)
        for name in files:
            rel = os.path.normpath(here / name)
            if rel not in skip:
                shutil.copy2(Path(root) / name, dst / here / name, follow_symlinks=True)
        dirs.sort()


def _tree_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _write(src: Path, tmp: Path, saved_model: SavedModel | None, bundle: Bundle | None,
           changed: bool) -> None:
    """Fill ``tmp``: new saved_model.pb and bundle where given, the rest copied byte for byte."""
    skip = set()
    if saved_model is not None:
        skip.add(SAVED_MODEL)
    if bundle is not None:
        skip.add(os.path.normpath(f"{VARIABLES_PREFIX}.index"))
        skip.update(os.path.normpath(f"{VARIABLES_PREFIX}.data-{i:05d}-of-{len(bundle.shards):05d}")
                    for i in range(len(bundle.shards)))
    if changed:
        # TensorFlow does not check fingerprint.pb on load (tested with TF 2.21), so a stale one
        # would silently give the changed model the original's identity; computing a correct one
        # needs FarmHash and TensorFlow's graph canonicalisation, so none is written.
        skip.add(FINGERPRINT)
    _copy_tree(src, tmp, skip)
    if saved_model is not None:
        (tmp / SAVED_MODEL).write_bytes(saved_model.SerializeToString(deterministic=True))
    if bundle is not None:
        write_bundle(bundle, tmp / VARIABLES_PREFIX)
    _fsync_tree(tmp)


def _fsync_tree(root: Path) -> None:
    """Flush every file, then every directory, to disk: the rename that publishes the output
    must not land before its contents (as ``pbfile.write_atomic`` does for one file)."""
    for here, _, files in os.walk(root, topdown=False):
        for name in files:
            with open(os.path.join(here, name), "rb") as file:
                os.fsync(file.fileno())
        descriptor = os.open(here, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _replace(tmp: Path, dst: Path) -> None:
    """Rename ``tmp`` to ``dst``; an existing ``dst`` is first renamed aside, so that ``dst``
    is always either the old directory or the complete new one."""
    if not dst.exists():
        os.rename(tmp, dst)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
    os.rename(dst, aside / dst.name)
    os.rename(tmp, dst)
    shutil.rmtree(aside, ignore_errors=True)


def _check_paths(src: Path, dst: Path, force: bool) -> None:
    source, target = src.resolve(), dst.resolve()
    if target == source or source in target.parents or target in source.parents:
        raise SavedModelError(f"output {dst} cannot be the input directory, inside it, or "
                              f"contain it")
    if (dst.exists() or dst.is_symlink()) and not force:
        raise SavedModelError(f"output {dst} already exists (use --force to replace it)")
    if not dst.parent.is_dir():
        raise SavedModelError(f"cannot write {dst}: its parent directory does not exist")
    if dst.exists() and not dst.is_dir():
        raise SavedModelError(f"output {dst} exists and is not a directory")


def compress_savedmodel(src: PathLike, dst: PathLike, options: Options | None = None, *,
                        force: bool = False, verify: bool = True,
                        progress: Progress | None = None) -> Report:
    """Write a copy of the SavedModel ``src`` to ``dst`` with float variables and Consts clustered.

    Float variables (half, bfloat16, float, double) are selected and clustered exactly like
    Consts; whitelist patterns match a variable's checkpoint key, its object path and its
    variable name. Float Consts of every meta graph's GraphDef and function library are
    clustered as :func:`minigraph.compress.compress` does. Everything else (other variables, the
    object graph, assets, other files) is copied byte for byte; ``fingerprint.pb`` is dropped
    when anything changed (a stale one would still claim the original's identity). ``dst`` is
    built as a hidden directory beside it, read back (unless ``verify=False``), then renamed
    into place; ``src`` is never modified.

    Parameters
    ----------
    src, dst : path
        The SavedModel directory and the directory to create.
    options : Options, optional
        As for Consts (k, global codebook, whitelist, minimum size, method, seed, workers).
    force : bool
        Replace an existing ``dst`` directory.
    verify : bool
        Read the output back before publishing it, checking every checksum (default).
    progress : callable, optional
        As for :func:`minigraph.compress.plan_compression`, over the variables and the first
        meta graph's Consts (other meta graphs, rare, are not reported to it).

    Returns
    -------
    Report
        One row per variable (named by checkpoint key) and per Const; ``files`` holds the
        directory sizes before and after and whether the fingerprint was kept.

    Raises
    ------
    MinigraphError
        SavedModelError, BundleError, DecodeError or ClusteringError naming what is wrong.
    """
    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    options = (options or Options()).validate()
    _check_paths(src, dst, force)
    saved_model, bundle = read_savedmodel(src)
    report, per_graph, variable_changes = plan_savedmodel(saved_model, bundle, options, progress)
    consts = _apply_consts(saved_model, report, per_graph, options.palettize)
    del per_graph
    if options.palettize:  # variables live in the checkpoint, which has no graph to decode them
        for row in report.tensors:
            if row.name in variable_changes:
                row.palette_skipped = "a variable: the checkpoint holds values, not a graph"
    if bundle is not None:
        for key, values in variable_changes.items():
            bundle.set_bytes(key, codec.content_of(values, bundle.entries[key].dtype))
    changed_variables = bool(variable_changes)
    changed = bool(consts) or changed_variables
    del variable_changes  # the new values now live in the shards: free the copies
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; give the usual mode
        _write(src, tmp, saved_model if consts else None, bundle if changed_variables else None,
               changed)
        del saved_model, bundle, consts  # before the read-back, which holds the output's copy
        if verify:
            read_savedmodel(tmp)  # every checksum of what was written, verified
        _replace(tmp, dst)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise SavedModelError(f"cannot write {dst}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.files = {"file": str(src), "output": str(dst), "bytes_before": _tree_bytes(src),
                    "bytes_after": _tree_bytes(dst),
                    "fingerprint": "dropped" if changed and (src / FINGERPRINT).exists()
                    else "kept" if (src / FINGERPRINT).exists() else "none"}
    report.elapsed_seconds = time.perf_counter() - started
    return report
