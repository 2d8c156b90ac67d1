"""The Kubernetes manifests (deploy/kubernetes) render with kustomize, pass the Kubernetes
schemas offline in strict mode, and the RayCluster uses only KubeRay fields pinned here.

No package ships KubeRay's CRD schema, so ``RAYCLUSTER_FIELDS`` pins the ray.io/v1 fields the
manifests use (KubeRay API reference, v1.1 to v1.6); the pod templates inside the RayCluster are
checked as Kubernetes ``PodTemplate`` objects.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import ray
import yaml

from conveyor.cli.deploy import new_secrets, write_secrets_file
from support.alerting import (
    SITE_SETTINGS,
    amtool,
    assert_routes,
    channels,
    render_alertmanager,
    webhook_urls,
)

KUBERNETES = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.32.0"  # the kubectl installed here
RAYCLUSTER_FIELDS = {
    "apiVersion",
    "kind",
    "metadata",
    "metadata.name",
    "metadata.namespace",
    "metadata.labels",
    "spec",
    "spec.rayVersion",
    "spec.enableInTreeAutoscaling",
    "spec.autoscalerOptions",
    "spec.autoscalerOptions.upscalingMode",
    "spec.autoscalerOptions.idleTimeoutSeconds",
    "spec.autoscalerOptions.env",
    "spec.headGroupSpec",
    "spec.workerGroupSpecs",
    "spec.workerGroupSpecs[].groupName",
    "spec.workerGroupSpecs[].replicas",
    "spec.workerGroupSpecs[].minReplicas",
    "spec.workerGroupSpecs[].maxReplicas",
    "spec.headGroupSpec.rayStartParams",
    "spec.headGroupSpec.template",
    "spec.workerGroupSpecs[].rayStartParams",
    "spec.workerGroupSpecs[].template",
}
ALERTMANAGER_MOUNT = "/etc/alertmanager"  # render.py --directory, as the overlay documents
UPSCALING_MODES = {"Default", "Aggressive", "Conservative"}


def _render(folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return [document for document in yaml.safe_load_all(done.stdout) if document]


@pytest.fixture(scope="module")
def kubectl() -> None:
    if shutil.which("kubectl") is None:  # part of this machine kind, not installable here
        pytest.skip("kubectl is not installed; `kubectl kustomize` renders the manifests")


@pytest.fixture(scope="module")
def base(kubectl: None) -> list[dict[str, Any]]:
    return _render(KUBERNETES / "base")


@pytest.fixture(scope="module")
def example_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/kubernetes, so the secrets file never lands in the work tree."""
    copy = tmp_path_factory.mktemp("kubernetes") / "kubernetes"
    shutil.copytree(KUBERNETES, copy)
    return copy


@pytest.fixture(scope="module")
def example(kubectl: None, example_copy: Path) -> list[dict[str, Any]]:
    overlay = example_copy / "overlays" / "example"
    write_secrets_file(overlay / "secrets.env", new_secrets())
    _render_alertmanager(overlay)
    return _render(overlay)


def _render_alertmanager(overlay: Path) -> None:
    """The documented step: render.py with the overlay's settings and secrets files."""
    site_secrets = {k: v for k, v in SITE_SETTINGS.items() if k.endswith(("_URL", "PASSWORD"))}
    with (overlay / "secrets.env").open("a") as file:
        file.writelines(f"{name}={value}\n" for name, value in site_secrets.items())
    arguments = ["--directory", ALERTMANAGER_MOUNT, "--settings", str(overlay / "alertmanager.env")]
    arguments += ["--settings", str(overlay / "secrets.env")]
    render_alertmanager(overlay / "alertmanager", {}, *arguments)


def _by_kind(documents: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [document for document in documents if document["kind"] == kind]


def _named(documents: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in _by_kind(documents, kind) if d["metadata"]["name"] == name]
    return found


def _ray_cluster(documents: list[dict[str, Any]]) -> dict[str, Any]:
    (cluster,) = _by_kind(documents, "RayCluster")
    return cluster


def _groups(cluster: dict[str, Any]) -> list[dict[str, Any]]:
    return [cluster["spec"]["headGroupSpec"], *cluster["spec"]["workerGroupSpecs"]]


def _field_paths(value: Any, prefix: str = "") -> Iterator[str]:
    """Dotted paths of every key, ``[]`` for list items; stops at pod templates and maps."""
    if isinstance(value, list):
        for item in value:
            yield from _field_paths(item, f"{prefix}[]")
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        yield path
        if key not in {"template", "rayStartParams", "labels", "env"}:
            yield from _field_paths(item, path)


def _containers(documents: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for document in documents:
        templates = [document["spec"].get("template")] if "spec" in document else []
        if document["kind"] == "RayCluster":
            templates = [group["template"] for group in _groups(document)]
        for template in filter(None, templates):
            yield from template["spec"]["containers"]


def test_missing_secrets_file_stops_the_render(kubectl: None, tmp_path: Path) -> None:
    shutil.copytree(KUBERNETES, tmp_path / "kubernetes")
    done = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path / "kubernetes" / "overlays" / "example")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "secrets.env" in done.stderr


@pytest.mark.parametrize("rendered", ["base", "example"])
def test_standard_objects_pass_the_kubernetes_schemas_strictly(
    rendered: str, request: pytest.FixtureRequest
) -> None:
    documents = request.getfixturevalue(rendered)
    standard = [document for document in documents if document["kind"] != "RayCluster"]
    kinds = {document["kind"] for document in standard}
    assert {"Deployment", "Service", "ConfigMap", "Job", "PersistentVolumeClaim"} <= kinds
    for document in standard:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_schema_check_rejects_a_bad_object(base: list[dict[str, Any]]) -> None:
    service = _by_kind(base, "Service")[0]
    broken = service | {"spec": service["spec"] | {"ports": [{"port": "eighty"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_raycluster_pod_templates_pass_as_kubernetes_pod_templates(
    base: list[dict[str, Any]],
) -> None:
    for group in _groups(_ray_cluster(base)):
        template = {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}}
        template["template"] = group["template"]
        kubernetes_validate.validate(template, KUBERNETES_VERSION, strict=True)


def test_raycluster_uses_only_pinned_kuberay_fields(example: list[dict[str, Any]]) -> None:
    cluster = _ray_cluster(example)
    assert cluster["apiVersion"] == "ray.io/v1"
    unknown = set(_field_paths(cluster)) - RAYCLUSTER_FIELDS
    assert unknown == set()
    assert cluster["spec"]["autoscalerOptions"]["upscalingMode"] in UPSCALING_MODES
    for group in _groups(cluster):
        assert all(isinstance(value, str) for value in group["rayStartParams"].values())


def test_raycluster_runs_the_tested_ray_with_bounded_cpu_and_gpu_groups(
    example: list[dict[str, Any]],
) -> None:
    spec = _ray_cluster(example)["spec"]
    assert spec["rayVersion"] == ray.__version__ and spec["enableInTreeAutoscaling"] is True
    groups = {group["groupName"]: group for group in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu", "gpu"}
    for group in groups.values():
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
    (gpu_container,) = groups["gpu"]["template"]["spec"]["containers"]
    assert gpu_container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert gpu_container["image"].split(":")[0].endswith("conveyor-cuda")
    assert groups["gpu"]["minReplicas"] == 0  # no idle GPU machine


def test_every_ray_container_carries_the_token(example: list[dict[str, Any]]) -> None:
    cluster = _ray_cluster(example)
    containers = [c for group in _groups(cluster) for c in group["template"]["spec"]["containers"]]
    for container in containers:
        env = {variable["name"]: variable for variable in container["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "conveyor-secrets"


def test_references_resolve_to_secret_and_config_keys(example: list[dict[str, Any]]) -> None:
    """Every secret key exists in the file `conveyor deploy secrets` writes, and every
    ``$(NAME)`` in an env value or argument names a variable the container has."""
    secret = _named(example, "Secret", "conveyor-secrets")
    (config,) = _by_kind(example, "ConfigMap")
    assert set(secret["data"]) >= set(new_secrets())
    for container in _containers(example):
        names = set(config["data"]) | {variable["name"] for variable in container.get("env", [])}
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                assert (
                    reference["name"] == "conveyor-secrets" and reference["key"] in secret["data"]
                )
        texts = [v.get("value", "") for v in container.get("env", [])] + container.get("args", [])
        used = {name for text in texts for name in re.findall(r"\$\(([A-Z_]+)\)", text)}
        assert used <= names, (container["name"], used - names)


def _alertmanager_folder(documents: list[dict[str, Any]], folder: Path) -> Path:
    """The files Alertmanager's pod sees: the Secret's keys at its volume's item paths."""
    secret = _named(documents, "Secret", "conveyor-alertmanager")
    pod = _named(documents, "Deployment", "conveyor-alertmanager")["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert volume["secret"]["secretName"] == "conveyor-alertmanager"
    for item in volume["secret"]["items"]:
        path = folder / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(secret["data"][item["key"]]))
    assert {i["key"] for i in volume["secret"]["items"]} == set(secret["data"])
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == ALERTMANAGER_MOUNT
    assert f"--config.file={ALERTMANAGER_MOUNT}/alertmanager.yml" in container["args"]
    return folder


def test_alertmanager_runs_the_rendered_shipped_configuration(
    example: list[dict[str, Any]], tmp_path: Path
) -> None:
    folder = _alertmanager_folder(example, tmp_path)
    assert "SUCCESS" in amtool(folder, "check-config", "alertmanager.yml")
    assert_routes(folder)
    config_file = folder / "alertmanager.yml"
    assert channels(config_file)["oncall"] == {"slack", "email", "webhook"}
    assert (folder / "secrets" / "slack-webhook-url").read_text() == SITE_SETTINGS[
        "ALERTMANAGER_SLACK_WEBHOOK_URL"
    ]
    # Alertmanager reads these from where the pod mounts them (absolute paths).
    glob = yaml.safe_load(config_file.read_text())["global"]
    for key in ("slack_api_url_file", "smtp_auth_password_file"):
        path = Path(glob[key]).relative_to(ALERTMANAGER_MOUNT)
        assert (folder / path).is_file(), key


def test_alertmanager_reaches_conveyor_through_the_api_service(
    example: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The receiver URL names the API Service and its port; the token is the one the init Job
    registers (CONVEYOR_ALERTS_TOKEN of conveyor-secrets)."""
    folder = _alertmanager_folder(example, tmp_path)
    service = _named(example, "Service", "conveyor-api")
    (port,) = service["spec"]["ports"]
    address = "conveyor-api" if port["port"] == 80 else f"conveyor-api:{port['port']}"
    urls = webhook_urls(folder / "alertmanager.yml")
    assert f"http://{address}/api/v1/alerts/webhook" in urls
    secrets = _named(example, "Secret", "conveyor-secrets")["data"]
    token = base64.b64decode(secrets["CONVEYOR_ALERTS_TOKEN"]).decode()
    assert (folder / "secrets" / "conveyor-token").read_text() == token
    init = _named(example, "Job", "conveyor-init")["spec"]["template"]["spec"]["containers"][0]
    assert "CONVEYOR_ALERTS_TOKEN" in {variable["name"] for variable in init["env"]}


def test_the_api_service_balances_replicas_that_follow_the_store(
    example: list[dict[str, Any]],
) -> None:
    """Two API replicas behind the Service, each taken out within seconds by /readyz (503
    without the store) and never restarted for it; serving pods stay in while the store is away
    (their predictions go on from loaded models)."""
    api = _named(example, "Deployment", "conveyor-api")
    assert api["spec"]["replicas"] >= 2
    assert api["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    service = _named(example, "Service", "conveyor-api")
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    (container,) = api["spec"]["template"]["spec"]["containers"]
    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert readiness["periodSeconds"] * readiness["failureThreshold"] <= 10
    assert liveness["httpGet"]["path"] == "/healthz"
    serve = _named(example, "Deployment", "conveyor-serve")
    (container,) = serve["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
