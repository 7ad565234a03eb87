"""The README's Python examples run as written, from the repository root, on the sample model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_python_example_runs_as_written(index, tmp_path, monkeypatch, capsys):
    block = _python_blocks()[index]
    shutil.copytree(README.parent / "tests" / "fixtures", tmp_path / "tests" / "fixtures")
    monkeypatch.chdir(tmp_path)  # the examples write their outputs into the current directory
    exec(compile(block, f"README.md python block {index}", "exec"), {"np": np})
    printed = capsys.readouterr().out
    for comment in re.findall(r"print\((.*)\)\s+# (\(.*)", block):
        assert comment[1] in printed  # a printed value the README shows in a comment


def test_readme_names_every_runtime_dependency():
    text = README.read_text()
    dependencies = re.search(r"dependencies = \[(.*?)\]",
                             (README.parent / "pyproject.toml").read_text(), flags=re.S).group(1)
    for name in re.findall(r'"([a-z0-9_-]+)[<>=]', dependencies):
        assert f"`{name}`" in text, name
