"""The command line's promises on one fuzz case (see tests/fuzz.py): run in-process, judged.

Exit code 0, 1 or 2; no traceback; on failure exactly one ``minigraph: error:`` line; nothing
on stderr after a success (warnings are errors); a file ``inspect`` reads also compresses; the
input is unchanged; the output re-reads, keeps NaN/Inf bit for bit, makes no finite value
non-finite and meets the k bound.
"""

from __future__ import annotations

import contextlib
import io
import traceback
import warnings
from pathlib import Path

import numpy as np
from google.protobuf import text_format

from minigraph.schema import GraphDef

from fuzz import Case


def run_cli(argv: list[str]) -> tuple[int | None, str, str, str | None]:
    """``minigraph.cli.main(argv)`` in this process with warnings turned into errors.

    Returns (exit code, stdout, stderr, the exception that escaped main formatted, or None).
    """
    from minigraph.cli import main

    out, err = io.StringIO(), io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        warnings.simplefilter("error")
        try:
            code = main(argv)
        except BaseException:  # noqa: B036 - SystemExit or a warning escaping is a finding too
            return None, out.getvalue(), err.getvalue(), traceback.format_exc()
    return code, out.getvalue(), err.getvalue(), None


def stream_problems(code: int | None, err: str, crash: str | None) -> list[str]:
    """Broken promises of the exit code and stderr: exit 0/1/2, no traceback, no warning on a
    success, exactly one ``minigraph: error:`` line on a failure."""
    if crash is not None:
        return ["traceback: " + crash.strip().splitlines()[-1]]
    if "Traceback" in err:
        return ["traceback on stderr"]
    if code not in (0, 1, 2):
        return [f"exit code {code}"]
    lines = err.splitlines()
    if code == 0 and err:
        return [f"stderr on success: {err[:200]!r}"]
    if code and (len(lines) != 1 or not lines[0].startswith("minigraph: error: ")):
        return [f"stderr on failure is not one error line: {err[:300]!r}"]
    return []


def _float_bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values).reshape(-1).view(f"u{values.dtype.itemsize}")


def _tensor_problems(name: str, old: np.ndarray, new: np.ndarray, k: int,
                     global_clusters: bool) -> list[str]:
    if new.dtype != old.dtype or new.shape != old.shape:
        return [f"{name!r}: {old.dtype}{old.shape} became {new.dtype}{new.shape}"]
    if old.dtype.kind != "f":
        return [f"{name!r}: a {old.dtype} tensor was changed"]
    finite = np.isfinite(old.reshape(-1))
    flat = new.reshape(-1)
    problems = []
    if not (_float_bits(old)[~finite] == _float_bits(new)[~finite]).all():
        problems.append(f"{name!r}: NaN/Inf not kept bit for bit")
    if not np.isfinite(flat[finite]).all():
        problems.append(f"{name!r}: a finite value became non-finite")
    if not global_clusters and finite.any():
        if len(set(flat[finite].tolist())) > k:
            problems.append(f"{name!r}: more than {k} distinct values")
        lo, hi = old.reshape(-1)[finite].min(), old.reshape(-1)[finite].max()
        if flat[finite].min() < lo or flat[finite].max() > hi:
            problems.append(f"{name!r}: values outside the original range")
    return problems


def output_problems(data: bytes, out_path: Path, k: int, global_clusters: bool,
                    text: bool = False) -> list[str]:
    """Broken promises of a successful compression: the output re-reads, holds the same nodes,
    changes only float Const values, keeps NaN/Inf bit for bit, makes no finite value
    non-finite, and holds at most k values per tensor (per graph with a global codebook)."""
    from minigraph import read_graph, to_array
    from minigraph.graph import iter_consts

    try:
        after = read_graph(out_path)
    except Exception as exc:  # noqa: BLE001 - any failure to re-read is the finding
        return [f"output does not re-read: {exc}"]
    before = text_format.Parse(data.decode(), GraphDef()) if text else GraphDef.FromString(data)
    if [(n.name, n.op) for n in before.node] != [(n.name, n.op) for n in after.node]:
        return ["nodes differ"]
    problems, pooled = [], set()
    for old, new in zip(iter_consts(before), iter_consts(after), strict=False):
        # Bytes, not message equality: protobuf 4.21 compares float fields by value, and a NaN
        # in a typed list is unequal to itself, so an untouched tensor would look changed.
        if old.tensor.SerializeToString(deterministic=True) == \
                new.tensor.SerializeToString(deterministic=True):
            continue
        old_values, new_values = to_array(old.tensor), to_array(new.tensor)
        problems += _tensor_problems(old.name, old_values, new_values, k, global_clusters)
        flat = new_values.reshape(-1)
        pooled |= set(flat[np.isfinite(flat)].tolist()) if flat.dtype.kind == "f" else set()
    if global_clusters and len(pooled) > k:
        problems.append(f"{len(pooled)} distinct values in the graph for k={k}")
    return problems


def check_case(case: Case, workdir: Path, codes: list | None = None) -> list[str]:
    """Run ``minigraph inspect FILE`` and ``minigraph OPTIONS FILE`` on one case; every broken
    promise, each prefixed by the command it broke. The two exit codes go to ``codes``."""
    path = workdir / ("case" + case.suffix)
    out_path = workdir / ("case" + case.suffix + ".min")
    out_path.unlink(missing_ok=True)
    path.write_bytes(case.data)
    code, _, err, crash = run_cli(["inspect", str(path)])
    problems = ["inspect: " + p for p in stream_problems(code, err, crash)]
    inspected = code
    if codes is not None:
        codes.append(code)
    code, _, err, crash = run_cli([*case.options, "-q", str(path)])
    if codes is not None:
        codes.append(code)
    problems += ["compress: " + p for p in stream_problems(code, err, crash)]
    if inspected == 0 and code == 1:  # a file inspect reads must compress
        problems.append(f"compress: failed where inspect passed: {err.strip()[:300]}")
    if path.read_bytes() != case.data:
        problems.append("compress: the input file changed")
    if code == 0 and not problems:
        k = int(case.options[case.options.index("-k") + 1])
        found = output_problems(case.data, out_path, k, "--global_clusters" in case.options,
                                case.suffix == ".pbtxt")
        problems += ["corruption: " + p for p in found]
    return problems
