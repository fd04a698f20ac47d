"""docs/reliability.md: every row names tests, and every test it names exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST_REFERENCE = re.compile(r"(tests/[\w/]+\.py)?::(\w+)")
UNESCAPED_PIPE = re.compile(r"(?<!\\)\|")


def _test_functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_")
    }


def test_every_row_is_backed_by_tests_that_exist() -> None:
    rows = [
        line
        for line in (ROOT / "docs" / "reliability.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith(("| fault or hostile input", "| ---"))
    ]
    assert len(rows) >= 50
    missing = []
    for row in rows:
        cells = [cell.strip() for cell in UNESCAPED_PIPE.split(row.strip().strip("|"))]
        assert len(cells) == 4, f"a row needs 4 cells: {row[:80]}"
        references = TEST_REFERENCE.findall(cells[3])
        assert references, f"row without a test: {row[:80]}"
        current: Path | None = None
        for file, name in references:
            if file:
                current = ROOT / file
            assert current is not None, f"'::{name}' without a file before it: {row[:80]}"
            if not current.is_file() or name not in _test_functions(current):
                missing.append(f"{current.relative_to(ROOT)}::{name}")
    assert not missing, f"docs/reliability.md names tests that do not exist: {missing}"
