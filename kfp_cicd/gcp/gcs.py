"""Download a Cloud Storage prefix with the JSON API and google-auth (no google-cloud-storage needed).

The predictor image carries google-auth and requests but no Cloud Storage client; on a Vertex AI
endpoint the model's files are at ``$AIP_STORAGE_URI`` (``gs://…``, a copy Vertex made of the
model's ``artifactUri``), readable by the endpoint's service account. Lists
``GET /storage/v1/b/BUCKET/o?prefix=…`` (all pages) and fetches each object with ``alt=media``.
``$KFP_CICD_STORAGE_API_ENDPOINT`` overrides ``https://storage.googleapis.com`` (tests, private
endpoints).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from kfp_cicd.errors import DeploymentError
from kfp_cicd.gcp.google_api import GoogleApi, GoogleApiError, call, default_credentials

STORAGE_API = GoogleApi(
    "Cloud Storage JSON API", "https://storage.googleapis.com", "KFP_CICD_STORAGE_API_ENDPOINT"
)


def split_gs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` → (``bucket``, ``some/prefix``)."""
    if not uri.startswith("gs://") or not uri[5:].split("/", 1)[0]:
        raise DeploymentError(f"{uri!r} is not a gs://BUCKET/PATH location")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def download_prefix(uri: str, destination: Path, credentials: Any = None) -> list[Path]:
    """Copy every object under ``uri`` into ``destination`` (relative paths kept); the files written."""
    import requests
    from google.auth.transport.requests import AuthorizedSession

    bucket, prefix = split_gs_uri(uri)
    credentials = default_credentials(credentials)
    listing_prefix = f"{prefix}/" if prefix else ""
    names: list[str] = []
    token = ""
    while True:
        query = f"prefix={quote(listing_prefix, safe='')}"
        if token:
            query += f"&pageToken={quote(token, safe='')}"
        try:
            page = call(
                STORAGE_API,
                "GET",
                f"storage/v1/b/{bucket}/o?{query}",
                credentials=credentials,
                what=f"list {uri}",
            )
        except GoogleApiError as exc:
            if exc.code == 403:
                raise DeploymentError(
                    f"{exc}; grant the serving service account roles/storage.objectViewer on bucket {bucket}"
                ) from exc
            raise
        names += [item["name"] for item in page.get("items", []) if not item["name"].endswith("/")]
        token = page.get("nextPageToken", "")
        if not token:
            break
    if not names:
        raise DeploymentError(f"no files under {uri}: the model's artifacts are missing")
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    written = []
    session = AuthorizedSession(credentials)
    try:
        for name in names:
            relative = PurePosixPath(name[len(listing_prefix) :])
            target = (destination / Path(*relative.parts)).resolve()
            if ".." in relative.parts or not target.is_relative_to(root):
                raise DeploymentError(f"object {name!r} would be written outside {destination}")
            url = f"{STORAGE_API.base_url}/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
            try:
                response = session.get(url, timeout=300)
            except requests.RequestException as exc:
                raise DeploymentError(f"could not download gs://{bucket}/{name}: {exc}") from exc
            if response.status_code != 200:
                raise DeploymentError(
                    f"could not download gs://{bucket}/{name}: HTTP {response.status_code} "
                    f"{response.text[:300]}"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(response.content)
            written.append(target)
    finally:
        session.close()
    return written
