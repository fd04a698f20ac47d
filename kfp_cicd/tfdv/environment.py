"""Where the validation (TFDV) interpreter lives.

kfp 2.17 and TensorFlow Data Validation 1.16 pin incompatible protobuf/pandas versions, so TFDV
runs in its own virtual environment and the steps that need it (validate_data, check_drift, the
``kfp-cicd schema`` commands) run that environment's interpreter as a subprocess
(:mod:`kfp_cicd.tfdv.runner`). This module finds that interpreter, the same way on a laptop (the
``.venv-tfdv`` that ``make install`` creates) and in the validation image (``/opt/tfdv``).
"""

from __future__ import annotations

import os
from pathlib import Path

from kfp_cicd.errors import EnvironmentNotReady

#: Environment variable naming the TFDV interpreter explicitly; it wins over every default.
TFDV_PYTHON_ENV_VAR = "KFP_CICD_TFDV_PYTHON"

#: The interpreter ``make install`` creates: kfp_cicd/tfdv/ -> repository root.
REPO_TFDV_PYTHON = Path(__file__).resolve().parents[2] / ".venv-tfdv" / "bin" / "python"

#: The interpreter in the validation image (see images/validation).
IMAGE_TFDV_PYTHON = Path("/opt/tfdv/bin/python")


def _is_executable_file(path: Path) -> bool:
    """True when ``path`` (following symlinks) is a regular file we may execute."""
    return path.is_file() and os.access(path, os.X_OK)


def find_tfdv_python() -> str:
    """Return the path of the Python interpreter that has TFDV installed.

    Looked up in order: the ``KFP_CICD_TFDV_PYTHON`` environment variable, the repository's
    ``.venv-tfdv/bin/python``, then the image's ``/opt/tfdv/bin/python``. The path is returned as
    found, not resolved: a venv's ``bin/python`` is a symlink, and resolving it would start the
    base interpreter without the venv's packages.

    Raises:
        EnvironmentNotReady: the variable is set but names no executable file, or no candidate
            exists.
    """
    explicit = os.environ.get(TFDV_PYTHON_ENV_VAR)
    if explicit:
        if _is_executable_file(Path(explicit)):
            return explicit
        raise EnvironmentNotReady(
            f"{TFDV_PYTHON_ENV_VAR}={explicit!r} is not an executable file. Point it at the "
            f"Python interpreter of an environment with tensorflow-data-validation installed, "
            f"or unset it to use the repository's .venv-tfdv."
        )
    for candidate in (REPO_TFDV_PYTHON, IMAGE_TFDV_PYTHON):
        if _is_executable_file(candidate):
            return str(candidate)
    raise EnvironmentNotReady(
        "No TFDV interpreter found (looked for "
        f"{REPO_TFDV_PYTHON} and {IMAGE_TFDV_PYTHON}). Run `make install` in the repository to "
        f"create .venv-tfdv, or set {TFDV_PYTHON_ENV_VAR} to the Python interpreter of an "
        "environment with tensorflow-data-validation 1.16 installed."
    )
