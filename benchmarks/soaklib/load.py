"""The soak's users, all through HAProxy: predictors on the heart endpoint at a paced rate,
and one submitter of mixed work (noop records with sleeps, CSV files to profile, a wildlife
clip, a short call, a training run) that repeats a refused request as a client should."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

HEART = {
    "age": 61.0, "sex": 1.0, "cp": 4.0, "trestbps": 140.0, "chol": 260.0, "fbs": 0.0,
    "restecg": 2.0, "thalach": 120.0, "exang": 1.0, "oldpeak": 2.5, "slope": 2.0,
    "ca": 2.0, "thal": 7.0,
}  # fmt: skip
RETRYABLE = (502, 503, 504)


@dataclass
class Answer:
    at: float  # time.monotonic() when the answer (or the failure) came
    status: int  # 0: no HTTP answer (connection refused or reset)
    what: str  # "predict" or the kind of work submitted
    detail: str = ""  # who refused a prediction and why: the start of the body, the server header


@dataclass
class Accepted:
    item_id: str
    kind: str
    attempts: int


@dataclass
class Traffic:
    """Every request's outcome, shared by the load threads (list.append is atomic)."""

    answers: list[Answer] = field(default_factory=list)
    predicted: list[tuple[float, str]] = field(default_factory=list)  # (time, prediction id)
    accepted: list[Accepted] = field(default_factory=list)
    given_up: list[str] = field(default_factory=list)


class Predictors:
    """``threads`` clients sharing a ``rate`` (requests/s), each request one heart record."""

    def __init__(self, url: str, token: str, rate: float, threads: int, traffic: Traffic) -> None:
        self.url, self.rate, self.traffic = url, rate, traffic
        self.headers = {"Authorization": f"Bearer {token}"}
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(n, threads), daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _run(self, offset: int, stride: int) -> None:
        period = stride / self.rate
        due = time.monotonic() + offset / self.rate
        with httpx.Client(base_url=self.url, headers=self.headers, timeout=15) as client:
            while not self.stop.wait(max(0.0, due - time.monotonic())):
                self._predict(client)
                due = max(due + period, time.monotonic() - 1.0)  # no burst after a stall

    def _predict(self, client: httpx.Client) -> None:
        try:
            answer = client.post("/api/v1/endpoints/heart/predict", json=HEART)
        except httpx.TransportError as error:
            self.traffic.answers.append(Answer(time.monotonic(), 0, "predict", repr(error)[:200]))
            return
        now = time.monotonic()
        detail = "" if answer.status_code == 200 else _refusal(answer)
        self.traffic.answers.append(Answer(now, answer.status_code, "predict", detail))
        if answer.status_code == 200:
            for prediction in answer.json()["predictions"]:
                self.traffic.predicted.append((now, prediction["id"]))


def _refusal(answer: httpx.Response) -> str:
    """Enough of a refused answer to tell HAProxy's own 503 from a replica's."""
    return f"{answer.headers.get('server', '?')}: {answer.text[:160]}"


class Submitter:
    """Sends mixed work on a schedule; a 502/503/504 or a dropped connection is repeated
    (after its Retry-After) until accepted or ``give_up_s`` passed."""

    def __init__(self, url: str, token: str, traffic: Traffic, rng: random.Random) -> None:
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
        self.traffic, self.rng = traffic, rng
        self.give_up_s = 300.0

    def noop(self) -> None:
        record = {"n": uuid.uuid4().hex, "sleep_ms": self.rng.randint(100, 1500)}
        self._send("noop", lambda: self.client.post(
            "/api/v1/items", json={"pipeline": "noop", "record": record}
        ))  # fmt: skip

    def csv(self) -> None:
        rows = [f"{uuid.uuid4().hex},{self.rng.random():.6f},{self.rng.randint(0, 99)}"]
        rows += [f"r{n},{self.rng.random():.6f},{self.rng.randint(0, 99)}" for n in range(500)]
        body = ("id,value,count\n" + "\n".join(rows) + "\n").encode()
        self.upload("csv_profile", f"soak-{uuid.uuid4().hex[:8]}.csv", body)

    def upload(self, pipeline: str, name: str, body: bytes) -> None:
        self._send(pipeline, lambda: self.client.post(
            "/api/v1/items", data={"pipeline": pipeline}, files={"file": (name, body)}
        ))  # fmt: skip

    def upload_file(self, pipeline: str, path: Path) -> None:
        self.upload(pipeline, path.name, path.read_bytes())

    def train(self) -> None:
        self._send("training", lambda: self.client.post(
            "/api/v1/models/heart/train", json={"params": {}}
        ))  # fmt: skip

    def _send(self, kind: str, request: Callable[[], httpx.Response]) -> None:
        started = time.monotonic()
        for attempt in range(1, 1000):
            answer, status, detail = _attempt(request)
            self.traffic.answers.append(Answer(time.monotonic(), status, kind, detail))
            if answer is not None and status not in RETRYABLE:
                self._record(kind, answer, attempt)
                return
            if time.monotonic() - started > self.give_up_s:
                break
            time.sleep(_retry_after(answer))
        self.traffic.given_up.append(kind)

    def _record(self, kind: str, answer: httpx.Response, attempts: int) -> None:
        if answer.status_code >= 400:
            raise RuntimeError(f"{kind} refused: {answer.status_code} {answer.text}")
        item_id = answer.json()["item_id"]
        self.traffic.accepted.append(Accepted(item_id, kind, attempts))

    def close(self) -> None:
        self.client.close()


def _attempt(request: Callable[[], httpx.Response]) -> tuple[httpx.Response | None, int, str]:
    """The answer, its status (0: none came) and, when refused or cut off, what happened."""
    try:
        answer = request()
    except httpx.TransportError as error:
        return None, 0, f"client: {error!r}"[:200]
    return answer, answer.status_code, "" if answer.status_code < 400 else _refusal(answer)


def _retry_after(answer: httpx.Response | None) -> float:
    if answer is None:
        return 1.0
    try:
        return min(10.0, float(answer.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


def work_plan(minutes: float) -> dict[str, list[float]]:
    """When (seconds into the run) each kind of heavier work is submitted."""
    seconds = minutes * 60
    return {
        "csv_profile": [s for s in range(20, int(seconds * 0.9), 30)],
        "wildlife": [s for s in range(60, int(seconds * 0.9), 300)],
        "calls": [s for s in range(90, int(seconds * 0.9), 600)],
        "training": [60.0],  # early: registered (in a child process) before warm-up
    }
