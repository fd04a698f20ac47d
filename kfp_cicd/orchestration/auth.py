"""How the CLI authenticates to a Kubeflow Pipelines API, the ways KFP users already have.

In order of precedence:

1. a bearer token: ``--token`` or ``$KFP_CICD_KFP_TOKEN`` (e.g. a CI secret, ``gcloud auth
   print-access-token`` for IAP, a Dex/OIDC id token);
2. a token file: ``--token-file`` or the in-cluster projected service-account token that KFP
   mounts at ``/var/run/secrets/kubeflow/pipelines/token`` (``$KF_PIPELINES_SA_TOKEN_PATH``);
   re-read on every request, so kubelet rotation just works;
3. a kube context: without ``--host``, ``kfp.Client`` reaches the API through the Kubernetes API
   server's service proxy with the kubeconfig's credentials (``--kube-context`` picks one);
4. nothing: e.g. a ``kubectl port-forward`` to ``ml-pipeline-ui``.

Secrets never leave this module as text: :meth:`KfpAuth.describe` says which method is used,
and :func:`redact` scrubs a token from any message before it is printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfp.client import KF_PIPELINES_SA_TOKEN_ENV, KF_PIPELINES_SA_TOKEN_PATH
from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

from kfp_cicd.orchestration.errors import AuthenticationError

TOKEN_VARIABLE = "KFP_CICD_KFP_TOKEN"
HOST_VARIABLE = "KFP_CICD_KFP_HOST"


@dataclass(frozen=True)
class KfpAuth:
    """Resolved connection settings for ``kfp.Client``; ``token`` is never shown by repr."""

    method: str
    host: str | None = None
    token: str | None = field(default=None, repr=False)
    token_file: Path | None = None
    kube_context: str | None = None

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``kfp.Client`` (host, existing_token / credentials / kube_context)."""
        kwargs: dict[str, Any] = {"host": self.host}
        if self.method == "token":
            kwargs["existing_token"] = self.token
        elif self.method == "token-file":
            kwargs["credentials"] = ServiceAccountTokenVolumeCredentials(path=str(self.token_file))
        elif self.method == "kube-context":
            kwargs["kube_context"] = self.kube_context
        return kwargs

    def describe(self) -> str:
        """A log-safe sentence naming the method (never the token)."""
        where = self.host or "the cluster's ml-pipeline service"
        return {
            "token": f"KFP API {where}, bearer token from --token/${TOKEN_VARIABLE}",
            "token-file": f"KFP API {where}, service-account token file {self.token_file}",
            "kube-context": f"KFP API via kube context {self.kube_context or '(current)'}",
            "anonymous": f"KFP API {where}, no credentials",
        }[self.method]

    def secrets(self) -> list[str]:
        """Values that must never be printed (the bearer token, the token file's content)."""
        values = [self.token] if self.token else []
        if self.token_file and self.token_file.is_file():
            content = self.token_file.read_text(errors="replace").strip()
            if content:
                values.append(content)
        return values


def resolve_auth(
    host: str | None,
    token: str | None = None,
    token_file: str | None = None,
    kube_context: str | None = None,
    environ: dict[str, str] | None = None,
) -> KfpAuth:
    """Pick the authentication method from flags and environment (see the module docstring)."""
    env = os.environ if environ is None else environ
    host = (host or env.get(HOST_VARIABLE) or env.get("KF_PIPELINES_ENDPOINT") or "").rstrip("/") or None
    token = token or env.get(TOKEN_VARIABLE)
    if token:
        token = token.strip()
        if not token or any(ch.isspace() for ch in token):
            raise AuthenticationError(
                "the KFP token is empty or contains whitespace; pass the raw bearer "
                f"token via ${TOKEN_VARIABLE} (without the 'Bearer ' prefix)"
            )
        return KfpAuth("token", host=host, token=token)
    if token_file:
        path = Path(token_file)
        if not path.is_file():
            raise AuthenticationError(f"--token-file {path} does not exist")
        return KfpAuth("token-file", host=host, token_file=path)
    sa_token = Path(env.get(KF_PIPELINES_SA_TOKEN_ENV) or KF_PIPELINES_SA_TOKEN_PATH)
    if sa_token.is_file():
        return KfpAuth("token-file", host=host, token_file=sa_token)
    if kube_context or not host:
        return KfpAuth("kube-context", host=None, kube_context=kube_context)
    return KfpAuth("anonymous", host=host)


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
