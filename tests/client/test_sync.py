"""conveyor.client.Client against a real `conveyor up` on SQLite and PostgreSQL: every call,
and every kind of API error mapped to its exception."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas
import pyarrow.parquet as pq
import pytest

from conveyor.client import (
    AuthenticationError,
    Client,
    ConflictError,
    ConveyorConnectionError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
    WaitTimeoutError,
)
from conveyor.pipelines.heart.data import synthetic_rows
from support.up import free_port

HEART_COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang"]
HEART_COLUMNS += ["oldpeak", "slope", "ca", "thal"]


@pytest.fixture(scope="session")
def heart_frame() -> pandas.DataFrame:
    rows = [row[:13] for row in synthetic_rows(5, seed=3, missing_rate=0)]
    return pandas.DataFrame([[float(v) for v in row] for row in rows], columns=HEART_COLUMNS)


@pytest.fixture
def client(server) -> Iterator[Client]:  # type: ignore[no-untyped-def]
    with Client(server.url, server.tokens["operator"], timeout=30) as connected:
        yield connected


@pytest.fixture
def admin(server) -> Iterator[Client]:  # type: ignore[no-untyped-def]
    with Client(server.url, server.tokens["admin"], timeout=30) as connected:
        yield connected


def test_connects_from_the_environment(server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CONVEYOR_URL", server.url + "/api/v1/")
    monkeypatch.setenv("CONVEYOR_TOKEN", server.tokens["viewer"])
    with Client() as client:
        me = client.me()
        assert (me.role, me.kind) == ("viewer", "token")
        assert "noop" in {p.name for p in client.pipelines()}
        assert "token" not in repr(client.connection).replace("token=set", "")


def test_records_round_trip_as_a_dataframe(client: Client) -> None:
    since = datetime.now(UTC)
    sent = pandas.DataFrame({"customer": [1, 2, 3], "score": [0.5, 1.5, None], "tag": list("abc")})
    submissions = client.submit_records("noop", sent, force=True)
    assert len(submissions) == 3 and not any(s.duplicate for s in submissions)
    items = client.wait(submissions)  # with the bar, as a notebook user sees it
    assert [i.status for i in items] == ["succeeded"] * 3
    frame = client.results("noop", created_after=since, status="succeeded").to_pandas()
    frame = frame.set_index("item_id").loc[[s.item_id for s in submissions]]
    got = frame[["result.customer", "result.score", "result.tag"]].reset_index(drop=True)
    expected = sent.rename(columns=lambda c: f"result.{c}")
    pandas.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert str(frame["finished_at"].dt.tz) == "UTC"
    table = client.results("noop", created_after=since).to_arrow()
    assert table.num_rows == 3 and "result.customer" in table.column_names


def test_files_logs_artifacts_and_exports(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("alpha beta gamma\ndelta\n")
    by_path = client.submit_file("text_stats", source, force=True)
    hostile = "<script>alert(1)</script>.txt"
    by_handle = client.submit_file("text_stats", io.BytesIO(b"one two"), filename=hostile)
    again = client.submit_file("text_stats", source)
    assert again.duplicate and again.item_id == by_path.item_id
    done = client.wait([by_path, by_handle.item_id], progress=False)
    assert [d.result["words"] for d in done] == [4, 2]
    assert client.result(by_path.item_id).result["name"] == "notes.txt"
    shown = done[1]._repr_html_() + client.results("text_stats", q="script")._repr_html_()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.txt" in shown and "<script>" not in shown
    assert "words.txt" in client.artifacts(by_path.item_id)
    saved = client.download_artifact(by_path.item_id, "words.txt", tmp_path)
    assert saved.read_text() == "alpha\nbeta\ngamma\ndelta"
    assert client.read_artifact(by_path.item_id, "words.txt") == saved.read_bytes()
    assert "measuring notes.txt" in client.logs(by_path.item_id)
    assert by_path.item_id in {i.item_id for i in client.items("text_stats", limit=500)}
    assert all(i.pipeline == "text_stats" for i in client.iter_items(pipeline="text_stats"))
    export = client.download_results("text_stats", tmp_path / "export.parquet")
    assert by_path.item_id in pq.read_table(export).column("item_id").to_pylist()
    with pytest.raises(NotFoundError) as missing:
        client.download_artifact(by_path.item_id, "nothing.txt", tmp_path / "x")
    assert missing.value.code == "not_found" and not (tmp_path / "x").exists()


def test_cancel_retry_and_wait_timeout(client: Client) -> None:
    slow = client.submit_record("noop", {"sleep_ms": 4000, "n": datetime.now().isoformat()})
    with pytest.raises(WaitTimeoutError) as timed_out:
        client.wait(slow, timeout=0.3, poll_interval=0.1, progress=False)
    assert timed_out.value.unfinished == [slow.item_id]
    cancelling = client.cancel(slow.item_id)  # at once if queued, else when it next looks
    assert cancelling.status == "cancelled" or cancelling.cancel_requested
    [cancelled] = client.wait(slow, progress=False)
    assert cancelled.status == "cancelled"
    with pytest.raises(ConflictError) as conflict:
        client.cancel(slow.item_id)
    assert conflict.value.code == "invalid_state" and conflict.value.status == 409
    assert client.retry(slow.item_id).status == "queued"
    failing = client.submit_record("noop", {"fail": "permanent", "at": slow.item_id})
    [failed] = client.wait(failing, progress=False)
    assert failed.status == "failed" and "permanent failure" in (failed.error or "")
    with pytest.raises(NotFoundError) as no_result:
        client.result(failed.item_id)
    assert no_result.value.code == "no_result"
    assert client.retry_failed("noop") >= 1


def test_api_errors_become_typed_exceptions(server, client: Client) -> None:  # type: ignore[no-untyped-def]
    stranger = Client(server.url, "cvy_not-a-real-token")
    with stranger, pytest.raises(AuthenticationError) as unauthenticated:
        stranger.me()
    assert unauthenticated.value.code == "unauthenticated" and unauthenticated.value.status == 401
    viewer = Client(server.url, server.tokens["viewer"])
    with viewer, pytest.raises(PermissionDeniedError) as forbidden:
        viewer.submit_record("noop", {})
    assert "operator" in forbidden.value.message
    with pytest.raises(NotFoundError) as missing:
        client.item("0123456789abcdef")
    assert missing.value.code == "not_found" and "/items/0123456789abcdef" in missing.value.url
    with pytest.raises(NotFoundError):
        client.submit_record("no_such_pipeline", {})
    with pytest.raises(ValidationError) as invalid:
        client.submit_record("", {"a": 1})
    assert invalid.value.code == "invalid_request"
    assert [f.field for f in invalid.value.fields] == ["pipeline"]
    assert "at least 1 character" in invalid.value.fields[0].problem


def test_unreachable_server_names_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "cvy_x", timeout=5) as client, pytest.raises(ConveyorConnectionError) as error:
        client.me()
    assert url in str(error.value) and "CONVEYOR_URL" in str(error.value)


def test_train_compare_promote_roll_back_and_predict(  # type: ignore[no-untyped-def]
    server, client: Client, admin: Client, heart_frame: pandas.DataFrame
) -> None:
    queued = [client.train("heart"), client.train("heart", {"seed": 7})]  # run side by side
    first, second = sorted(
        (client.wait_for_training(t, timeout=240, progress=False) for t in queued),
        key=lambda training: training.version or 0,
    )
    assert first.item is not None and first.item.succeeded and first.version is not None
    assert second.version == first.version + 1 and second.registration is not None
    assert "heart" in {m.name for m in client.models()}
    model = client.model("heart")
    assert model.aliases["champion"] in (first.version, second.version)
    assert [v.version for v in client.versions("heart")][:2] == [second.version, first.version]
    comparison = client.compare("heart", [first.version, second.version])
    frame = comparison.to_pandas()
    assert list(frame.index) == [first.version, second.version]
    assert comparison.best("heldout_roc_auc").version in (first.version, second.version)
    with pytest.raises(PermissionDeniedError):
        client.promote("heart", first.version)
    promoted = admin.promote("heart", first.version, reason="client test")
    assert (promoted.to_version, promoted.actor) == (first.version, "api:client-admin")
    actions = [c.action for c in client.history("heart")]
    assert actions[-1] == "promote"
    _rollback_until_refused(admin)
    with pytest.raises(NotFoundError):
        client.model("no-such-model")
    with pytest.raises(ValidationError) as invalid:
        admin.promote("heart", 0)
    assert [f.field for f in invalid.value.fields] == ["body.version"]
    _wait_until_served(client, server)
    _predict(client, heart_frame)


def _wait_until_served(client: Client, server, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    """Serving replicas poll the registry every second (docs/serving.md): wait for that poll."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        heart = next(e for e in client.endpoints() if e.name == "heart")
        if any(arm["version"] is not None for arm in heart.arms):
            return
        time.sleep(0.2)
    log = server.up.output()[-6000:]
    pytest.fail(f"heart was not served after {timeout} s; server log:\n{log}")


def _rollback_until_refused(admin: Client) -> None:
    with pytest.raises(ConflictError) as conflict:
        for _ in range(5):
            admin.rollback("heart", reason="client test")
    assert conflict.value.code == "invalid_state"


def _predict(client: Client, heart_frame: pandas.DataFrame) -> None:
    assert "heart" in {e.name for e in client.endpoints()}
    one = client.predict("heart", heart_frame.iloc[0].to_dict())
    assert len(one) == 1 and one[0]["model"] == "heart" and 0 <= one[0]["probability"] <= 1
    many = client.predict("heart", heart_frame).to_pandas()
    assert len(many) == 5 and set(many["label"]) <= {0, 1}
    assert many["probability"].iloc[0] == pytest.approx(one[0]["probability"])
    recorded = client.feedback(one[0]["id"], label=1)
    assert recorded["kind"] == "label"
    with pytest.raises(ValidationError) as invalid:
        client.predict("heart", {"age": 61})
    assert invalid.value.code == "invalid_input"
    assert "chol" in {f.field for f in invalid.value.fields}
    assert {f.record for f in invalid.value.fields} == {0}


def test_routing_experiment_and_events(  # type: ignore[no-untyped-def]
    server, client: Client, admin: Client, heart_frame: pandas.DataFrame
) -> None:
    """After the training test: its two versions side by side in an A/B experiment."""
    versions = sorted(v.version for v in client.versions("heart"))
    if len(versions) < 2:
        client.train("heart", {"seed": 5}, wait=True, timeout=240, progress=False)
        versions = sorted(v.version for v in client.versions("heart"))
    split = {"model": "heart", "arms": [
        {"name": "control", "target": versions[0], "weight": 1},
        {"name": "treatment", "target": versions[-1], "weight": 1},
    ]}  # fmt: skip
    with pytest.raises(PermissionDeniedError):
        client.set_routing("heart", split)
    routed = admin.set_routing("heart", split, timeout=30)
    assert {a["name"]: a["version"] for a in routed.arms} == {
        "control": versions[0],
        "treatment": versions[-1],
    }
    try:
        _experiment(client, heart_frame.iloc[0].to_dict())
    finally:
        champion = {"model": "heart", "arms": [{"name": "champion", "target": "champion"}]}
        client.set_routing("heart", champion, timeout=30)
    assert client.record_events("heart", [{"user_id": 1, "movie_id": 5, "kind": "click"}]) == 1


def _experiment(client: Client, row: dict[str, float]) -> None:
    experiment = client.start_experiment("heart", "older vs newer", "accuracy")
    arms = []
    for user in range(12):
        [answer] = client.predict("heart", row, key=f"user-{user}")
        right = answer["arm"] == "treatment"
        client.feedback(answer["id"], label=answer["label"] if right else 1 - answer["label"])
        arms.append(answer["arm"])
    read = client.experiment(experiment.id)
    assert {r.arm: r.trials for r in read.results or []} == {a: arms.count(a) for a in arms}
    if "treatment" in arms:
        assert read.arm("treatment").value == 1.0 and read.leader == read.arm("treatment")
        assert read.verdict().startswith("accuracy: treatment: 1.000")
    assert read.to_pandas()["trials"].sum() == 12
    assert experiment.id in {e.id for e in client.experiments("heart")}
    assert client.end_experiment(experiment.id).ends_at is not None
    with pytest.raises(ValidationError) as invalid:
        client.start_experiment("heart", "x", "vibes")
    assert "metric" in str(invalid.value)
