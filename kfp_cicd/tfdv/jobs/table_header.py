"""The one rule for a table's header, shared by both hostile-file guards.

``kfp_cicd.data.tables`` (the kfp environment, every component's reads) and ``tfdv_inputs`` (the TFDV
interpreter, which cannot import kfp_cicd and loads its siblings by file) both refuse a header whose
columns are unnamed or named twice: pandas would rename them silently, TFDV keys its statistics by
name. Standard library only.
"""

from __future__ import annotations

from collections.abc import Sequence


def header_problem(header: Sequence[str]) -> str | None:
    """What is wrong with ``header``'s column names, as a sentence ending in what to do; None if fine.

    Names are compared stripped of surrounding spaces. A single unnamed column is allowed (a
    one-column file's header may be blank); otherwise every column needs a name, and no name may
    appear twice.
    """
    names = [str(name).strip() for name in header]
    unnamed = [str(index + 1) for index, name in enumerate(names) if not name]
    if unnamed and len(names) > 1:
        return f"header column(s) {', '.join(unnamed)} have no name; give every column a name"
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        return f"has duplicate column names: {', '.join(duplicates)}; give every column a unique name"
    return None
