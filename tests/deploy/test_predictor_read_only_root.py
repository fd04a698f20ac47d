"""The predictor runs with the root filesystem read-only and only /tmp writable, as the rendered
InferenceService demands (``readOnlyRootFilesystem: true`` plus an emptyDir on /tmp).

No container runtime exists here, so the REAL predictor process is started in its own mount
namespace (``unshare -m``, root only) where ``/`` is remounted read-only, the model directory is
bind-mounted read-only (KServe's /mnt/models) and /tmp stays writable as its own bind mount (the
pod's emptyDir; not a fresh tmpfs, which would hide a checkout or virtual environment under /tmp):
any write elsewhere fails with EROFS, exactly as in the pod.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from kfp_cicd.components.deploy.local_target import free_port, stop_server, wait_until_ready
from kfp_cicd.data.synthetic import LABEL_COLUMN, generate_transactions

MODEL_MOUNT = Path("/srv")  # an empty directory of the image; the model is bind-mounted over it
_READ_ONLY_ROOT = r"""set -e
mount --make-rprivate /
mount --bind "$1" /srv
mount -o remount,bind,ro /srv
mount --bind /tmp /tmp
mount -o remount,bind,ro /
if touch /kfp-cicd-write-probe 2>/dev/null; then echo "the root filesystem is still writable" >&2; exit 3; fi
exec env HOME=/tmp "$2" -m kfp_cicd.serving --model-dir /srv --model-name "$3" --http-port "$4" --no-grpc
"""


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None or not MODEL_MOUNT.is_dir():
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
def test_the_predictor_serves_with_a_read_only_root_and_only_tmp_writable(
    untrained_model_dir: Path, tmp_path: Path
) -> None:
    if not _can_unshare():
        pytest.skip("needs root, unshare(1) and an empty /srv to build a read-only mount namespace")
    port, name = free_port(), "fraud-detector"
    log_path = tmp_path / "predictor.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                _READ_ONLY_ROOT,
                "sh",
                str(untrained_model_dir),
                sys.executable,
                name,
                str(port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(url, name, 240, still_running=lambda: process.poll() is None)
        rows = generate_transactions(3, seed=4).drop(columns=[LABEL_COLUMN]).to_dict(orient="records")
        answer = requests.post(f"{url}/v1/models/{name}:predict", json={"instances": rows}, timeout=30)
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["predictions"]) == 3
        assert requests.get(f"{url}/metrics", timeout=10).status_code == 200
    except Exception:
        print(log_path.read_text(errors="replace")[-4000:])
        raise
    finally:
        stop_server(process)
    log = log_path.read_text(errors="replace")
    assert "Read-only file system" not in log, log[-4000:]
