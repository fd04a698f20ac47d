"""Deploy a version to a Vertex AI Endpoint: upload, canary split, checks, then promote or roll back.

For Vertex users without a cluster (``deploy_target=vertex-endpoint``), with the
google-cloud-aiplatform GAPIC clients (``aiplatform_v1``, REST transport) and the task's Google
credentials. The steps, each recorded in the :class:`RolloutReport`:

1. the version is uploaded to the Vertex Model Registry as a new version of the Vertex model named
   after the registered model (``parent_model``; the first upload creates it with that id), with the
   project's predictor image as a custom serving container: ``predictRoute``
   ``/v1/models/<name>:predict`` (KServe V1, the ``{"instances": [...]}`` → ``{"predictions": [...]}``
   shape Vertex forwards), ``healthRoute`` ``/v2/models/<name>/ready``, port 8080, the MLflow
   version's files as ``artifactUri`` (Vertex copies them to ``AIP_STORAGE_URI``, which
   ``kfp_cicd.gcp.vertex_serving`` downloads before serving) and the registry's digest in
   ``MODEL_DIGEST``. The version carries the alias ``mlflow-v<version>``: a rerun reuses it;
2. it is deployed to the endpoint (created with its id when missing) on dedicated nodes
   (machine type, replicas, optional accelerator) at ``canary_percent`` % beside the model that
   serves now (a first deploy takes 100 %);
3. smoke checks through the endpoint's ``predict``: answers coming from the new deployed model must
   be valid (one probability in [0, 1] and a 0/1 prediction per row), their error rate and p95
   latency within the policy; enough of them must arrive;
4. passed → all traffic to the new model, the old one undeployed, then the MLflow ``champion``
   moves; failed → all traffic back to the old model, the new one undeployed, and
   :class:`RolloutFailed` with the reason. The champion alias is untouched.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

from kfp_cicd.components.deploy.cluster_target import (
    CREATED,
    FAILED,
    PROMOTED,
    ROLLED_BACK,
    UPDATED_IN_PLACE,
    RolloutFailed,
    RolloutReport,
    RolloutSettings,
)
from kfp_cicd.components.deploy.service_check import CheckResult, _percentile
from kfp_cicd.components.deploy.smoke import _native, _parse_v1
from kfp_cicd.errors import DeploymentError
from kfp_cicd.gcp.google_api import default_credentials
from kfp_cicd.parameter_validation import check_accelerator_type, check_machine_type, check_vertex_endpoint
from kfp_cicd.registry.aliases import promote

VERTEX_API_ENV = "KFP_CICD_VERTEX_API_ENDPOINT"  # overrides {region}-aiplatform.googleapis.com
SERVING_PORT = 8080
SERVING_COMMAND = ["python3", "-m", "kfp_cicd.gcp.vertex_serving"]
MODE = "vertex-endpoint"
IAM_HINT = (
    "grant the task's service account roles/aiplatform.user on the project (and "
    "roles/iam.serviceAccountUser on the endpoint's serving service account if one is set); see "
    "docs/platforms/vertex-endpoints.md"
)


@dataclass(frozen=True)
class VertexEndpointOptions:
    """Where and on what the endpoint serves (the component's vertex_* inputs)."""

    endpoint: str = ""
    machine_type: str = "n1-standard-2"
    accelerator_type: str = ""
    accelerator_count: int = 1
    credentials: Any = None

    @property
    def location(self) -> str:
        """``projects/P/locations/L`` of the endpoint."""
        return self.endpoint.split("/endpoints/")[0]

    @property
    def region(self) -> str:
        return self.endpoint.split("/")[3]

    def check(self, min_replicas: int, max_replicas: int) -> None:
        """Refuse settings Vertex would refuse, before anything is uploaded."""
        if not self.endpoint:
            raise DeploymentError(
                "deploy_target=vertex-endpoint needs vertex_endpoint: projects/PROJECT/locations/REGION/"
                "endpoints/ID"
            )
        check_vertex_endpoint(self.endpoint)
        check_machine_type(self.machine_type, "vertex_machine_type")
        if self.accelerator_type:
            check_accelerator_type(self.accelerator_type, "vertex_accelerator_type")
            if self.accelerator_count < 1:
                raise DeploymentError(
                    "vertex_accelerator_count must be at least 1 when an accelerator is given"
                )
        if min_replicas < 1 or max_replicas < min_replicas:
            raise DeploymentError(
                f"a Vertex AI endpoint needs 1 <= min_replicas <= max_replicas, got {min_replicas} and "
                f"{max_replicas}"
            )


def predict_route(served_name: str) -> str:
    """Where Vertex sends predict calls in the container: the predictor's KServe V1 route."""
    return f"/v1/models/{served_name}:predict"


def health_route(served_name: str) -> str:
    """Where Vertex checks the container's health: the predictor's V2 model-ready route."""
    return f"/v2/models/{served_name}/ready"


def api_endpoint(region: str) -> str:
    """The Vertex API host of ``region`` (``$KFP_CICD_VERTEX_API_ENDPOINT`` overrides it)."""
    return os.environ.get(VERTEX_API_ENV) or f"{region}-aiplatform.googleapis.com"


class VertexClients:
    """The three aiplatform_v1 clients (REST transport) for one region, with the task's credentials."""

    def __init__(self, region: str, credentials: Any = None) -> None:
        from google.api_core.client_options import ClientOptions
        from google.cloud import aiplatform_v1

        options = ClientOptions(api_endpoint=api_endpoint(region))
        credentials = default_credentials(credentials)
        common = {"credentials": credentials, "transport": "rest", "client_options": options}
        self.models = aiplatform_v1.ModelServiceClient(**common)
        self.endpoints = aiplatform_v1.EndpointServiceClient(**common)
        self.predictions = aiplatform_v1.PredictionServiceClient(**common)


def _explain(exc: Exception, what: str) -> DeploymentError:
    """A DeploymentError for a failed Vertex call (``what`` was attempted)."""
    from google.api_core import exceptions

    if isinstance(exc, exceptions.PermissionDenied | exceptions.Unauthenticated):
        return DeploymentError(
            f"{what}: Vertex AI refused the task's credentials ({exc.message}); {IAM_HINT}"
        )
    if isinstance(exc, exceptions.GoogleAPICallError):
        return DeploymentError(f"{what}: Vertex AI answered {exc.code} {type(exc).__name__}: {exc.message}")
    return DeploymentError(f"{what}: {type(exc).__name__}: {exc}")


class VertexEndpointRollout:
    """One rollout of a registered version to a Vertex AI Endpoint (see the module docstring)."""

    def __init__(
        self,
        clients: VertexClients,
        options: VertexEndpointOptions,
        *,
        served_name: str,
        model_name: str,
        version: str,
        tracking_uri: str,
        artifact_uri: str,
        digest: str,
        image: str,
        smoke_rows: list[dict[str, Any]],
        min_replicas: int,
        max_replicas: int,
        settings: RolloutSettings,
    ) -> None:
        if not artifact_uri.startswith("gs://"):
            raise DeploymentError(
                f"Vertex AI serves model files from Cloud Storage, but version {version} of {model_name} "
                f"is stored at {artifact_uri}; use an MLflow artifact root on gs:// (mlflow server "
                "--default-artifact-root gs://BUCKET/...) to deploy to a Vertex AI endpoint"
            )
        if not image:
            raise DeploymentError("deploy_target=vertex-endpoint needs the predictor image (runtime_image)")
        options.check(min_replicas, max_replicas)
        self.clients = clients
        self.options = options
        self.name = served_name
        self.tracking_uri = tracking_uri
        self.artifact_uri = artifact_uri
        self.digest = digest
        self.image = image
        self.rows = [{key: _native(value) for key, value in row.items()} for row in smoke_rows]
        self.min_replicas, self.max_replicas = min_replicas, max_replicas
        self.settings = settings
        self.model_resource = f"{options.location}/models/{served_name}"
        self.alias = f"mlflow-v{version}"
        self.report = RolloutReport(
            name=options.endpoint.rsplit("/", 1)[-1],
            namespace=options.location,
            mode=MODE,
            model_name=model_name,
            version=str(version),
        )

    # --- Vertex calls ----------------------------------------------------------------------------

    def _wait(self, operation: Any, what: str) -> Any:
        from google.api_core import exceptions
        from google.api_core.retry import Retry

        poll = self.settings.poll_seconds
        polling = Retry(
            initial=poll, maximum=max(poll, 10.0), multiplier=1.5, timeout=self.settings.ready_timeout
        )
        try:
            return operation.result(timeout=self.settings.ready_timeout, polling=polling)
        except exceptions.GoogleAPICallError as exc:
            raise _explain(exc, what) from exc
        except TimeoutError as exc:
            raise DeploymentError(f"{what}: not done within {self.settings.ready_timeout:.0f} s") from exc

    def _call(self, what: str, function: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions

        try:
            return function(**kwargs)
        except exceptions.GoogleAPICallError as exc:
            raise _explain(exc, what) from exc

    def _get_model(self, name: str) -> Any | None:
        from google.api_core import exceptions

        try:
            return self.clients.models.get_model(name=name)
        except exceptions.NotFound:
            return None
        except exceptions.GoogleAPICallError as exc:
            raise _explain(exc, f"read Vertex model {name}") from exc

    def _endpoint(self) -> Any:
        from google.api_core import exceptions
        from google.cloud import aiplatform_v1

        try:
            return self.clients.endpoints.get_endpoint(name=self.options.endpoint)
        except exceptions.NotFound:
            pass
        except exceptions.GoogleAPICallError as exc:
            raise _explain(exc, f"read endpoint {self.options.endpoint}") from exc
        endpoint_id = self.options.endpoint.rsplit("/", 1)[-1]
        self.report.step(f"endpoint {self.options.endpoint} does not exist; creating it")
        operation = self._call(
            f"create endpoint {self.options.endpoint}",
            self.clients.endpoints.create_endpoint,
            parent=self.options.location,
            endpoint=aiplatform_v1.Endpoint(display_name=self.name, labels={"kfp-cicd-model": self.name}),
            endpoint_id=endpoint_id,
        )
        return self._wait(operation, f"create endpoint {self.options.endpoint}")

    def upload(self) -> str:
        """The Vertex model version (``…/models/<name>@<id>``) for this MLflow version, uploaded if new."""
        from google.cloud import aiplatform_v1

        existing = self._get_model(f"{self.model_resource}@{self.alias}")
        if existing is not None:
            self.report.step(
                f"Vertex model {self.model_resource} already has version {existing.version_id} "
                f"({self.alias}); reusing it"
            )
            return f"{self.model_resource}@{existing.version_id}"
        container = aiplatform_v1.ModelContainerSpec(
            image_uri=self.image,
            command=SERVING_COMMAND,
            env=[
                aiplatform_v1.EnvVar(name="MODEL_NAME", value=self.name),
                aiplatform_v1.EnvVar(name="MODEL_DIGEST", value=self.digest),
                aiplatform_v1.EnvVar(name="MODEL_VERSION", value=self.report.version),
            ],
            ports=[aiplatform_v1.Port(container_port=SERVING_PORT)],
            predict_route=predict_route(self.name),
            health_route=health_route(self.name),
        )
        model = aiplatform_v1.Model(
            display_name=self.report.model_name,
            description=f"MLflow model {self.report.model_name} version {self.report.version} (kfp-cicd)",
            artifact_uri=self.artifact_uri,
            container_spec=container,
            version_aliases=[self.alias],
            labels={"kfp-cicd-model": self.name, "mlflow-version": self.report.version},
        )
        parent_exists = self._get_model(self.model_resource) is not None
        request: dict[str, Any] = {"parent": self.options.location, "model": model}
        if parent_exists:
            request["parent_model"] = self.model_resource
        else:
            request["model_id"] = self.name
        self.report.step(
            f"uploading version {self.report.version} to the Vertex Model Registry as "
            f"{'a new version of ' if parent_exists else 'new model '}{self.model_resource} "
            f"(image {self.image}, artifacts {self.artifact_uri})"
        )
        operation = self._call(
            "upload the model to Vertex AI", self.clients.models.upload_model, request=request
        )
        response = self._wait(operation, "upload the model to Vertex AI")
        return f"{response.model}@{response.model_version_id}"

    def _deploy(self, model_version: str, split: dict[str, int]) -> str:
        from google.cloud import aiplatform_v1

        machine = aiplatform_v1.MachineSpec(machine_type=self.options.machine_type)
        if self.options.accelerator_type:
            machine.accelerator_type = aiplatform_v1.AcceleratorType[self.options.accelerator_type]
            machine.accelerator_count = self.options.accelerator_count
        deployed = aiplatform_v1.DeployedModel(
            model=model_version,
            display_name=f"{self.name}-v{self.report.version}",
            dedicated_resources=aiplatform_v1.DedicatedResources(
                machine_spec=machine, min_replica_count=self.min_replicas, max_replica_count=self.max_replicas
            ),
        )
        what = f"deploy {model_version} to {self.options.endpoint}"
        operation = self._call(
            what,
            self.clients.endpoints.deploy_model,
            endpoint=self.options.endpoint,
            deployed_model=deployed,
            traffic_split=split,
        )
        return str(self._wait(operation, what).deployed_model.id)

    def _set_traffic(self, split: dict[str, int]) -> None:
        from google.cloud import aiplatform_v1
        from google.protobuf import field_mask_pb2

        self._call(
            f"set the traffic split of {self.options.endpoint} to {split}",
            self.clients.endpoints.update_endpoint,
            endpoint=aiplatform_v1.Endpoint(name=self.options.endpoint, traffic_split=split),
            update_mask=field_mask_pb2.FieldMask(paths=["traffic_split"]),
        )

    def _undeploy(self, deployed_id: str, split: dict[str, int]) -> None:
        what = f"undeploy deployed model {deployed_id} from {self.options.endpoint}"
        operation = self._call(
            what,
            self.clients.endpoints.undeploy_model,
            endpoint=self.options.endpoint,
            deployed_model_id=deployed_id,
            traffic_split=split,
        )
        self._wait(operation, what)

    # --- checks ----------------------------------------------------------------------------------

    def check(self, deployed_id: str, percent: int) -> CheckResult:
        """Predict through the endpoint until the new deployed model answered enough times."""
        from google.api_core import exceptions
        from google.protobuf import json_format, struct_pb2

        policy = self.settings.checks
        needed = max(1, math.ceil(max(policy.requests, 1) * percent / 100))
        attempts = max(policy.requests, 1) + math.ceil(needed * 100 / percent) * 3
        instances = [json_format.ParseDict(row, struct_pb2.Value()) for row in self.rows]
        answered: list[float] = []
        errors, other, reason = 0, 0, ""
        for _ in range(attempts):
            started = time.perf_counter()
            try:
                response = self.clients.predictions.predict(
                    endpoint=self.options.endpoint, instances=instances, timeout=policy.request_timeout
                )
            except exceptions.GoogleAPICallError as exc:
                errors += 1
                reason = reason or f"predict failed: {exc.code} {exc.message}"
                continue
            latency = (time.perf_counter() - started) * 1000.0
            if response.deployed_model_id != deployed_id:
                other += 1
                continue
            body = json_format.MessageToDict(response._pb)
            try:
                _parse_v1({"predictions": body.get("predictions")}, len(self.rows))
            except DeploymentError as exc:
                errors += 1
                reason = reason or f"the new model answered badly: {exc}"
                continue
            answered.append(latency)
            if len(answered) >= needed and len(answered) + errors >= policy.requests * percent / 100:
                break
        total = len(answered) + errors
        p50 = _percentile(answered, 0.5) if answered else None
        p95 = _percentile(answered, 0.95) if answered else None
        rate = errors / total if total else 1.0
        summary = (
            f"{len(answered)} valid answers from deployed model {deployed_id}, {errors} errors, "
            f"{other} answers from the other model(s)"
        )
        if errors and rate > policy.max_error_rate:
            verdict = (
                f"smoke test failed: error rate {rate:.1%} ({errors} of {total}) exceeds "
                f"max_error_rate {policy.max_error_rate:.1%}; {reason}"
            )
            return CheckResult(self.options.endpoint, False, verdict, summary, total, errors, p50, p95)
        if len(answered) < needed:
            verdict = (
                f"smoke test failed: the new model answered {len(answered)} of the {needed} requests "
                f"needed in {attempts} tries ({summary})"
            )
            return CheckResult(self.options.endpoint, False, verdict, summary, total, errors, p50, p95)
        if p95 is not None and p95 > policy.max_p95_latency_ms:
            verdict = f"p95 latency {p95:.1f} ms exceeds max_p95_latency_ms {policy.max_p95_latency_ms:.0f}"
            return CheckResult(self.options.endpoint, False, verdict, summary, total, errors, p50, p95)
        verdict = f"smoke test passed through the endpoint: {summary}" + (
            f"; p50 {p50:.1f} ms, p95 {p95:.1f} ms" if p95 is not None else ""
        )
        return CheckResult(self.options.endpoint, True, verdict, summary, total, errors, p50, p95)

    def _record(self, what: str, result: CheckResult) -> CheckResult:
        self.report.checks.append({"what": what, **result.as_dict()})
        self.report.step(f"{what}: {'passed' if result.passed else 'FAILED'}: {result.reason}")
        return result

    # --- the rollout -----------------------------------------------------------------------------

    def run(self) -> RolloutReport:
        """Deploy; returns the report, or raises RolloutFailed (after rolling back) / DeploymentError."""
        endpoint = self._endpoint()
        self.report.url = self.options.endpoint
        model_version = self.upload()
        split = {key: int(value) for key, value in endpoint.traffic_split.items() if int(value) > 0}
        version_id = model_version.rsplit("@", 1)[1]
        mine = [m for m in endpoint.deployed_models if self._is_this_version(m, version_id)]
        mine_ids = {m.id for m in mine}
        stable = {key: share for key, share in split.items() if key not in mine_ids}
        previous = [m for m in endpoint.deployed_models if m.id in stable]
        self.report.previous_version = ", ".join(f"{m.display_name} ({m.id})" for m in previous) or None
        if mine and not stable:
            if split.get(mine[0].id) != 100:
                self._set_traffic({mine[0].id: 100})
            return self._in_place(mine[0].id)
        if len(stable) > 1:
            raise DeploymentError(
                f"endpoint {self.options.endpoint} splits traffic over {len(stable)} models ({stable}); "
                "settle that split first (move all traffic to one model), then rerun"
            )
        if not stable:
            return self._first_deploy(model_version)
        return self._canary(model_version, next(iter(stable)), mine[0].id if mine else None)

    def _is_this_version(self, deployed: Any, version_id: str) -> bool:
        """Whether ``deployed`` serves this Vertex model version (the project may be a number there)."""
        model_id = deployed.model.split("@", 1)[0].rsplit("/", 1)[-1]
        return model_id == self.name and deployed.model_version_id == version_id

    def _promote_champion(self) -> None:
        old = promote(self.tracking_uri, self.report.model_name, self.report.version)
        self.report.champion = self.report.version
        self.report.step(f"MLflow alias champion -> version {self.report.version} (was {old})")

    def _first_deploy(self, model_version: str) -> RolloutReport:
        self.report.step(f"deploying {model_version} to {self.options.endpoint} with 100% of traffic")
        try:
            deployed_id = self._deploy(model_version, {"0": 100})
        except DeploymentError as exc:
            self.report.outcome, self.report.reason = FAILED, f"{exc}; nothing was serving before"
            raise RolloutFailed(self.report) from exc
        result = self._record("new deployed model", self.check(deployed_id, 100))
        if result.passed:
            self.report.outcome, self.report.reason = CREATED, result.reason
            self._promote_champion()
            return self.report
        self.report.step(f"undeploying {deployed_id}: the endpoint serves nothing, as before")
        self._undeploy(deployed_id, {})
        self.report.outcome, self.report.reason = (
            FAILED,
            f"{result.reason}; no previous model to roll back to",
        )
        raise RolloutFailed(self.report)

    def _in_place(self, deployed_id: str) -> RolloutReport:
        self.report.step(
            f"version {self.report.version} already serves all traffic ({deployed_id}); re-checking"
        )
        result = self._record("deployed model", self.check(deployed_id, 100))
        if not result.passed:
            self.report.outcome, self.report.reason = FAILED, result.reason
            raise RolloutFailed(self.report)
        self.report.outcome, self.report.reason = UPDATED_IN_PLACE, result.reason
        self._promote_champion()
        return self.report

    def _canary(self, model_version: str, stable_id: str, pending_id: str | None) -> RolloutReport:
        percent = self.settings.canary_percent
        self.report.canary_percent = percent
        if pending_id is not None:  # an earlier run was stopped after deploying it: resume
            self.report.step(
                f"version {self.report.version} is already deployed ({pending_id}); setting it to {percent}%"
            )
            self._set_traffic({pending_id: percent, stable_id: 100 - percent})
            deployed_id = pending_id
        else:
            self.report.step(f"canary: {model_version} at {percent}% beside deployed model {stable_id}")
            try:
                deployed_id = self._deploy(model_version, {"0": percent, stable_id: 100 - percent})
            except DeploymentError as exc:
                self.report.outcome, self.report.reason = ROLLED_BACK, f"the canary never deployed: {exc}"
                self.report.step(f"deployment failed; {stable_id} keeps 100% of traffic")
                raise RolloutFailed(self.report) from exc
        result = self._record("canary through the endpoint", self.check(deployed_id, percent))
        if not result.passed:
            return self._roll_back(deployed_id, stable_id, result.reason)
        self.report.step(f"promoting {deployed_id} to 100%")
        self._set_traffic({deployed_id: 100})
        self.report.step(f"undeploying the previous deployed model {stable_id}")
        self._undeploy(stable_id, {deployed_id: 100})
        self.report.outcome, self.report.reason = PROMOTED, result.reason
        self._promote_champion()
        return self.report

    def _roll_back(self, deployed_id: str, stable_id: str, reason: str) -> RolloutReport:
        self.report.step(f"rolling back: {reason}")
        self._set_traffic({stable_id: 100})
        self._undeploy(deployed_id, {stable_id: 100})
        self.report.step(f"{deployed_id} undeployed; deployed model {stable_id} serves all traffic")
        self.report.outcome, self.report.reason = ROLLED_BACK, reason
        raise RolloutFailed(self.report)
