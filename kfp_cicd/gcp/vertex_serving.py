"""``python -m kfp_cicd.gcp.vertex_serving``: the predictor as a Vertex AI custom serving container.

Vertex AI starts the container with ``AIP_STORAGE_URI`` (a ``gs://`` copy of the model version's
``artifactUri``), ``AIP_HTTP_PORT`` (8080, the port the upload declared) and the environment the
upload set (``MODEL_NAME``, ``MODEL_DIGEST``, ``MODEL_VERSION``). This entry point downloads the
model files to a private temporary directory (``kfp_cicd.gcp.gcs``) and then runs the same
predictor as on KServe (``python -m kfp_cicd.serving``: V1/V2 REST, files verified against
``MODEL_DIGEST`` before anything is loaded), REST only, on ``AIP_HTTP_PORT``. Vertex's health
checks reach ``/v2/models/<name>/ready`` and its predict calls ``/v1/models/<name>:predict``, the
routes the upload declares (``components/deploy/vertex_target.py``).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kfp_cicd.errors import KfpCicdError

EXIT_USAGE = 2
log = logging.getLogger(__name__)


def serving_arguments(environ: Mapping[str, str], model_dir: Path) -> list[str]:
    """The ``kfp_cicd.serving`` command line for the Vertex environment ``environ``."""
    name = environ.get("MODEL_NAME", "")
    if not name:
        raise KfpCicdError("MODEL_NAME is not set: the Vertex model upload sets it (deploy_model)")
    port = environ.get("AIP_HTTP_PORT", "8080")
    return ["--model-dir", str(model_dir), "--model-name", name, "--http-port", port, "--no-grpc"]


def main(environ: Mapping[str, str] | None = None) -> int:
    """Download ``$AIP_STORAGE_URI`` and serve it; the exit status."""
    from kfp_cicd.gcp.gcs import download_prefix
    from kfp_cicd.serving.__main__ import main as serve_main

    environ = os.environ if environ is None else environ
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    storage = environ.get("AIP_STORAGE_URI", "")
    try:
        if not storage:
            raise KfpCicdError("AIP_STORAGE_URI is not set: upload the model with an artifactUri on gs://")
        model_dir = Path(tempfile.mkdtemp(prefix="kfp-cicd-model-")) / "model"
        files = download_prefix(storage, model_dir)
        log.info("downloaded %d files from %s", len(files), storage)
        arguments = serving_arguments(environ, model_dir)
    except KfpCicdError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return serve_main(arguments)


if __name__ == "__main__":
    sys.exit(main())
