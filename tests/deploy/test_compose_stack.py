"""The compose stack for real (issue 14): the image, PostgreSQL, MLflow, the head, two workers,
serve and the monitoring services on one Docker engine, driven through the API.

200 noop items and one wildlife clip succeed on three Ray nodes (head + 2 workers) while one
worker container is SIGKILLed mid-run: every item succeeds exactly once. The test's API traffic
goes through the load balancer (`lb`, HAProxy) to the two `api` replicas; both answer, and one
SIGKILLed is taken out while requests keep succeeding. Then the stack comes down and nothing of
it remains. Costs: see docs/deploy.md ("Compose stack").
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.docker_stack import (
    ComposeProject,
    ensure_conveyor_images,
    ensure_standin_image,
    free_port,
    require_docker,
    run,
)
from support.haproxy import read_stats

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(3600)]

ROOT = Path(__file__).resolve().parents[2]
CLIPS = ROOT.parent / "shared" / "data" / "wildlife"
SERVICES = ["postgres", "init", "mlflow", "head", "worker", "serve", "api", "lb"]
MONITORING = ["prometheus", "alertmanager", "node-exporter"]  # Grafana: no Debian package
NOOP_ITEMS = 200
NOOP_STEPS = {"a", "b", "c", "d"}


def wait_for(condition: Callable[[], Any], what: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = condition()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def read_env(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if "=" in line]
    return dict(line.split("=", 1) for line in lines if not line.startswith("#"))


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    require_docker()
    logs = tmp_path_factory.mktemp("image-builds")
    conveyor, mlflow = ensure_conveyor_images(logs / "conveyor.log")
    return {
        "conveyor": conveyor,
        "mlflow": mlflow,
        "standins": ensure_standin_image(logs / "standins.log"),
    }


@pytest.fixture(scope="module")
def stack(images: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("compose")
    env_file = folder / "secrets.env"
    run([str(ROOT / ".venv" / "bin" / "conveyor"), "deploy", "secrets", str(env_file)])
    names = ("http", "head", "lbstats", "mlflow", "prom", "am", "graf", "serve")
    ports = {name: str(free_port()) for name in names}
    project = ComposeProject(
        f"conveyortest{uuid.uuid4().hex[:8]}",
        env_file,
        {
            "CONVEYOR_IMAGE": images["conveyor"],
            "CONVEYOR_MLFLOW_IMAGE": images["mlflow"],
            "STANDIN_IMAGE": images["standins"],
            "CONVEYOR_HTTP_PORT": ports["http"],
            "CONVEYOR_HEAD_PORT": ports["head"],
            "CONVEYOR_LB_STATS_PORT": ports["lbstats"],
            "MLFLOW_PORT": ports["mlflow"],
            "PROMETHEUS_PORT": ports["prom"],
            "ALERTMANAGER_PORT": ports["am"],
            "GRAFANA_PORT": ports["graf"],
            "CONVEYOR_SERVE_PORTS": ports["serve"],
            "CONVEYOR_SERVE_WORKERS": "1",
        },
    )
    try:
        scale = ["--scale", "worker=2", "--scale", "api=2"]
        project("up", "-d", *scale, *SERVICES, *MONITORING)
        yield {"project": project, "secrets": read_env(env_file), "ports": ports}
    finally:
        (folder / "compose.log").write_text(_logs(project))
        project("down", "--volumes", "--remove-orphans", "--timeout", "30")
    assert project.leftovers() == [], "the stack left containers, networks or volumes behind"


def _logs(project: ComposeProject) -> str:
    try:
        return project("logs", "--no-color", "--tail", "300", timeout=120)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return f"no logs: {error}"


@pytest.fixture(scope="module")
def api(stack: dict) -> Iterator[httpx.Client]:
    """Logged in through the load balancer, as people and clients use the stack."""
    base = f"http://127.0.0.1:{stack['ports']['http']}"
    with httpx.Client(base_url=base, timeout=60) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, "an api replica ready", 600)
        password = stack["secrets"]["CONVEYOR_ADMIN_PASSWORD"]
        login = client.post("/api/v1/auth/login", json={"name": "admin", "password": password})
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield client


@pytest.fixture(scope="module")
def head_api(stack: dict, api: httpx.Client) -> Iterator[httpx.Client]:
    """The head's own API with the same session: only it lists Ray's nodes."""
    base = f"http://127.0.0.1:{stack['ports']['head']}"
    with httpx.Client(base_url=base, timeout=60, headers=api.headers) as client:
        client.cookies.update(api.cookies)
        wait_for(lambda: client.get("/readyz").status_code == 200, "the head's /readyz", 600)
        yield client


def alive_nodes(api: httpx.Client) -> dict[str, str]:
    """Ray node id -> address of the nodes that are alive."""
    nodes = api.get("/api/v1/workers").json()["nodes"]
    return {node["node_id"]: node["address"] for node in nodes if node["alive"]}


def submit_noop(api: httpx.Client, count: int) -> list[str]:
    ids = []
    for number in range(count):
        record = {"n": number, "sleep_ms": 150}
        answer = api.post("/api/v1/items", json={"pipeline": "noop", "record": record})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["item_id"])
    return ids


def submit_clip(api: httpx.Client) -> str:
    clip = sorted(CLIPS.glob("*.mp4"))[0]
    with clip.open("rb") as file:
        files = {"file": (clip.name, file, "video/mp4")}
        answer = api.post("/api/v1/items", data={"pipeline": "wildlife"}, files=files)
    assert answer.status_code == 201, answer.text
    return answer.json()["item_id"]


def succeeded_nodes(api: httpx.Client, item_ids: list[str]) -> set[str]:
    nodes = set()
    for item_id in item_ids:
        steps = api.get(f"/api/v1/items/{item_id}").json()["steps"]
        nodes |= {run["node_id"] for run in steps if run["status"] == "succeeded"}
    return nodes


def recent_nodes(api: httpx.Client) -> set[str]:
    """Nodes that ran the steps of the ten newest succeeded items."""
    params = {"status": "succeeded", "pipeline": "noop", "limit": 10}
    recent = [item["item_id"] for item in api.get("/api/v1/items", params=params).json()["items"]]
    return succeeded_nodes(api, recent)


def count_succeeded(api: httpx.Client) -> int:
    return len(
        api.get("/api/v1/items", params={"status": "succeeded", "limit": 500}).json()["items"]
    )


def test_stack_runs_items_on_three_nodes_and_survives_losing_a_worker(
    stack: dict, api: httpx.Client, head_api: httpx.Client
) -> None:
    project: ComposeProject = stack["project"]
    workers = project.container_ids("worker")
    assert len(workers) == 2
    wait_for(lambda: len(alive_nodes(head_api)) == 3, "head + 2 workers in the Ray cluster", 300)
    nodes = alive_nodes(head_api)
    victim_ip = project.ip_of(workers[0])
    victim = next(node for node, address in nodes.items() if address == victim_ip)

    clip_id = submit_clip(api)
    noop_ids = submit_noop(api, NOOP_ITEMS)
    # Kill the worker once it has finished work of its own and while most items still wait.
    wait_for(lambda: victim in recent_nodes(api), "the victim's first finished steps", 600)
    assert count_succeeded(api) < NOOP_ITEMS * 3 // 4, "too late to kill the worker mid-run"
    run(["docker", "kill", "--signal", "KILL", workers[0]])

    item_ids = [*noop_ids, clip_id]
    wait_for(lambda: count_succeeded(api) == len(item_ids), "every item to succeed", 900)
    _assert_each_step_succeeded_once(api, noop_ids)
    details = api.get(f"/api/v1/items/{clip_id}").json()
    assert details["status"] == "succeeded" and details["result"], details
    assert len(succeeded_nodes(api, item_ids)) >= 3
    assert set(nodes) <= succeeded_nodes(api, item_ids), "work ran on head and both workers"
    _assert_results_written_once(api, noop_ids)


def test_the_load_balancer_spreads_requests_and_drops_a_dead_replica(
    stack: dict, api: httpx.Client
) -> None:
    project: ComposeProject = stack["project"]
    stats = f"http://127.0.0.1:{stack['ports']['lbstats']}"

    seen: list[object] = []  # the last statistics read (or why not), for the failure message

    def up_servers() -> dict[str, dict[str, str]]:
        try:
            rows = read_stats(stats)
        except httpx.HTTPError as error:
            seen[:] = [repr(error)]
            raise
        seen[:] = [{name: row["status"] for name, row in rows.items()}]
        return {name: row for name, row in rows.items() if row["status"] == "UP"}

    try:
        wait_for(lambda: len(up_servers()) == 2, "both api replicas UP in HAProxy", 300)
    except AssertionError as error:
        raise AssertionError(f"{error}; HAProxy's statistics: {seen}") from None
    served = {name: int(row["stot"]) for name, row in up_servers().items()}
    assert all(count > 0 for count in served.values()), f"a replica answered nothing: {served}"
    replicas = project.container_ids("api")
    assert len(replicas) == 2
    run(["docker", "kill", "--signal", "KILL", replicas[0]])
    wait_for(lambda: len(up_servers()) == 1, "HAProxy to take the killed replica out", 60)
    answers = Counter(api.get("/api/v1/items", params={"limit": 1}).status_code for _ in range(20))
    assert answers == Counter({200: 20}), answers
    # `docker kill` counts as a manual stop, which Docker's restart policy leaves alone: start
    # it as an operator would; HAProxy takes it back once its /readyz answers.
    run(["docker", "start", replicas[0]])
    wait_for(lambda: len(up_servers()) == 2, "the restarted replica back in HAProxy", 600)


def _assert_each_step_succeeded_once(api: httpx.Client, item_ids: list[str]) -> None:
    for item_id in item_ids:
        item = api.get(f"/api/v1/items/{item_id}").json()
        assert item["status"] == "succeeded"
        counts = Counter(run["step"] for run in item["steps"] if run["status"] == "succeeded")
        assert counts == Counter(dict.fromkeys(NOOP_STEPS, 1)), item["steps"]


def _assert_results_written_once(api: httpx.Client, item_ids: list[str]) -> None:
    rows = api.get("/api/v1/results", params={"pipeline": "noop", "format": "json"}).json()
    found = [row["item_id"] for row in rows]
    assert sorted(found) == sorted(item_ids)


def test_stack_refuses_missing_secrets(tmp_path: Path) -> None:
    require_docker()
    empty = tmp_path / "empty.env"
    empty.write_text("")
    project = ComposeProject("conveyorsecrets", empty, {"STANDIN_IMAGE": "unused"})
    with pytest.raises(RuntimeError, match="conveyor deploy secrets"):
        project("config", "--quiet")


def test_image_refuses_default_secrets(images: dict[str, str]) -> None:
    environment = ["-e", "POSTGRES_PASSWORD=changeme", "-e", "CONVEYOR_ADMIN_PASSWORD=" + "k7" * 12]
    done = subprocess.run(
        ["docker", "run", "--rm", *environment, images["conveyor"], "init"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 64
    assert "POSTGRES_PASSWORD" in done.stderr and "conveyor deploy secrets" in done.stderr
