"""Uploads as a client sends them: streamed, probed, limited, and never left half-stored."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conveyor.api.app import create_app
from conveyor.auth.service import create_token

BOUNDARY = "test-boundary"


@pytest.fixture
def client(installation):  # type: ignore[no-untyped-def]
    installation.settings.pipelines = [*installation.settings.pipelines, "support.upload_pipelines"]
    with installation.sessions.begin() as session:
        token = create_token(session, "uploads", "operator")
    client = TestClient(create_app(installation, auth_required=True))
    client.headers["Authorization"] = f"Bearer {token}"
    client.installation = installation  # type: ignore[attr-defined]
    return client


def _wave_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(rate)
        audio.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def _form(*parts: bytes, closed: bool = True) -> bytes:
    return b"".join(parts) + (f"--{BOUNDARY}--\r\n".encode() if closed else b"")


def _post(client: TestClient, body: bytes | Iterator[bytes], **headers: str):  # type: ignore[no-untyped-def]
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", **headers}
    return client.post("/api/v1/items", content=body, headers=headers)


def _work_dirs(client: TestClient) -> list[str]:
    return client.installation.storage.list_work_dirs()  # type: ignore[attr-defined]


def test_content_is_probed_not_the_name(client) -> None:  # type: ignore[no-untyped-def]
    files = {"file": ("call.wav", b"just some text, not audio\n")}
    text = client.post("/api/v1/items", files=files, data={"pipeline": "wave_duration"})
    assert text.status_code == 422
    assert text.json()["error"]["code"] == "input_rejected"
    assert "'call.wav' is not WAV audio" in text.json()["error"]["message"]
    assert _work_dirs(client) == []
    audio = {"file": ("recording.bin", _wave_bytes())}
    accepted = client.post("/api/v1/items", files=audio, data={"pipeline": "wave_duration"})
    assert accepted.status_code == 201, accepted.text


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(client) -> None:  # type: ignore[no-untyped-def]
    client.installation.settings.max_upload_bytes = 1000

    def chunked() -> Iterator[bytes]:  # no Content-Length: only the count can stop it
        yield _part("pipeline", b"sizes")
        yield f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '.encode()
        yield b'filename="big.bin"\r\n\r\n'
        for _ in range(100):
            yield b"x" * 1000
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    streamed = _post(client, chunked())
    assert streamed.status_code == 413, streamed.text
    assert streamed.json()["error"]["code"] == "too_large"
    assert "limit of 1000 bytes" in streamed.json()["error"]["message"]
    declared = _post(client, b"", **{"Content-Length": str(10**9)})
    assert declared.status_code == 413
    assert _work_dirs(client) == []
    just_fits = _form(_part("pipeline", b"sizes"), _part("file", b"y" * 1000, "fits.bin"))
    assert _post(client, just_fits).status_code == 201


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (_form(_part("file", b"a", "a.txt")), None, 422, "needs a 'pipeline' field"),
        (_form(_part("pipeline", b"sizes")), None, 422, "needs a 'file' part"),
        (
            _form(_part("pipeline", b"sizes"), _part("file", b"a", "a"), _part("file", b"b", "b")),
            None,
            422,
            "one file per request",
        ),
        (
            _form(_part("pipeline", b"sizes"), _part("other", b"a", "a.txt")),
            None,
            422,
            "only the 'file' part may hold a file",
        ),
        (_form(_part("pipeline", b"x" * 2000)), None, 422, "longer than 1024 bytes"),
        (
            _form(_part("pipeline", b"sizes"), _part("file", b"abc", "a.txt"), closed=False),
            None,
            422,
            "ended before its closing boundary",
        ),
        (_form(_part("file", b"a", "a")), "multipart/form-data", 422, "needs a boundary"),
        (
            _form(_part("pipeline", b"nope"), _part("file", b"a", "a.txt")),
            None,
            404,
            "no pipeline named 'nope'",
        ),
        (
            _form(_part("pipeline", b"noop"), _part("file", b"a", "a.txt")),
            None,
            422,
            "takes record inputs, not files",
        ),
    ],
)
def test_bad_forms_are_refused_clearly_and_leave_nothing(  # type: ignore[no-untyped-def]
    client, body: bytes, content_type: str | None, status: int, message: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = _post(client, body, **headers)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert _work_dirs(client) == []


def test_field_order_empty_files_long_names_and_force(client) -> None:  # type: ignore[no-untyped-def]
    file_first = _post(client, _form(_part("file", b"data", "a.txt"), _part("pipeline", b"sizes")))
    assert file_first.status_code == 201, file_first.text
    empty = _post(client, _form(_part("pipeline", b"sizes"), _part("file", b"", "empty.txt")))
    assert empty.status_code == 201
    item = client.get(f"/api/v1/items/{empty.json()['item_id']}").json()
    assert item["input_size"] == 0 and item["artifacts"] == ["empty.txt"]
    long_name = "n" * 3000 + ".txt"
    named = _post(client, _form(_part("pipeline", b"sizes"), _part("file", b"x", long_name)))
    assert named.status_code == 201
    assert len(named.json()["input"]) == 1024
    again = _form(_part("pipeline", b"sizes"), _part("file", b"data", "b.txt"))
    assert _post(client, again).json()["duplicate"] is True
    forced = _form(
        _part("pipeline", b"sizes"), _part("force", b"true"), _part("file", b"data", "c")
    )
    response = _post(client, forced)
    assert response.status_code == 201 and response.json()["duplicate"] is False
