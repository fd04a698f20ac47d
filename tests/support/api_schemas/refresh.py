"""Rewrite the stored Vertex AI schema excerpt from a google-api-python-client wheel (by hand).

    pip download --no-deps google-api-python-client==VERSION -d /tmp/gapi
    python tests/support/api_schemas/refresh.py /tmp/gapi/google_api_python_client-VERSION-py3-none-any.whl

The wheel (from PyPI) vendors the Vertex AI v1 discovery document at
``googleapiclient/discovery_cache/documents/aiplatform.v1.json``. Only the schemas the fake Vertex
server checks, and everything they reference, are kept in ``aiplatform_v1.discovery.json``; its
``source`` records the wheel, the path inside it, the document's revision and sha256.

The KFP checks need no refresh: they are derived at test time from the installed ``kfp_server_api``
package (see ``__init__.py``); upgrading ``kfp-server-api`` in ``requirements/main.lock`` updates them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERTEX_ROOTS = ("GoogleCloudAiplatformV1PipelineJob", "GoogleCloudAiplatformV1Schedule")
DOCUMENT = "googleapiclient/discovery_cache/documents/aiplatform.v1.json"


def _closure(definitions: dict, roots: tuple[str, ...]) -> dict:
    keep: dict = {}
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in keep:
            continue
        keep[name] = definitions[name]
        pending += _refs(definitions[name])
    return dict(sorted(keep.items()))


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def vertex(wheel: Path) -> None:
    """Write ``aiplatform_v1.discovery.json`` from the discovery document inside ``wheel``."""
    name, version = wheel.name.split("-")[:2]
    if name != "google_api_python_client":
        raise SystemExit(f"{wheel.name}: expected a google_api_python_client-*.whl from PyPI")
    with zipfile.ZipFile(wheel) as archive:
        raw = archive.read(DOCUMENT)
    document = json.loads(raw)
    excerpt = {
        "source": {
            "package": f"google-api-python-client=={version} (PyPI wheel)",
            "wheel": wheel.name,
            "path": DOCUMENT,
            "document": document["rootUrl"] + "$discovery/rest?version=v1",
            "revision": document["revision"],
            "sha256": hashlib.sha256(raw).hexdigest(),
            "note": "schemas the fake Vertex AI server checks request bodies against, and their references",
        },
        "schemas": _closure(document["schemas"], VERTEX_ROOTS),
    }
    (HERE / "aiplatform_v1.discovery.json").write_text(json.dumps(excerpt, indent=1) + "\n")


if __name__ == "__main__":
    vertex(Path(sys.argv[1]))
