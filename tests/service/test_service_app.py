"""service.app in-process: the endpoint contract, and a short JSON 4xx for every bad request."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.app import create_app
from service.bodies import DOCUMENT_BODY_LIMIT
from service.config import ChurnConfig, ServiceConfig
from service.payloads import CONTENT_TYPES, PayloadStream

with warnings.catch_warnings():  # starlette would rather have httpx2; httpx is what we have
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

CONFIG = ServiceConfig(
    churn=ChurnConfig(
        live_buffers=100,
        initial_buffers=10,
        max_bytes=8192,
        alloc_per_call=4,
        long_lived_share=0.5,
        short_lifetime_s=0.05,
    )
)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(CONFIG)) as test_client:
        yield test_client


def _assert_error(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert list(body) == ["error"] and 0 < len(body["error"]) < 300


def test_a_worker_starts_with_only_its_start_up_buffers(client: TestClient) -> None:
    stats = client.get("/stats").json()
    assert stats["pid"] == os.getpid()
    assert stats["live_count"] == stats["long_count"] == 10 and stats["short_count"] == 0
    assert 10 * 4096 <= stats["live_bytes"] <= 10 * 8192
    assert stats["pss_anon_bytes"] > 0 and stats["rss_anon_bytes"] > 0
    assert stats["malloc_library"].startswith("/")
    assert stats["pythonmalloc"] in ("pymalloc", "malloc")
    assert stats["config"]["churn"]["live_buffers"] == 100
    assert isinstance(stats["worker"], int)


def test_churn_grows_the_live_set_to_its_bound_and_says_so_in_headers(
    client: TestClient,
) -> None:
    calls = client.get("/stats").json()["churn_calls"]
    counts = []
    for _ in range(80):
        response = client.post("/churn")
        answer = response.json()
        assert answer["allocated"] == 4
        assert answer["live_count"] <= 100
        assert response.headers["x-worker-pid"] == str(os.getpid())
        assert response.headers["x-live-bytes"] == str(answer["live_bytes"])
        counts.append(answer["live_count"])
    assert counts[0] < counts[30] and max(counts) >= 95  # grows, then stays at its bound
    assert client.post("/churn", content=b"{}").json()["calls"] == calls + 81
    assert client.get("/stats").json()["churn_calls"] == calls + 81


def test_health_answers(client: TestClient) -> None:
    body = {"status": "ok", "pid": os.getpid(), "allocator_calls": 0}
    assert client.get("/health").json() == body


def test_health_makes_the_idle_probes_allocator_calls_the_config_asks_for() -> None:
    config = ServiceConfig.from_dict({"idle_probe": {"blocks": 300, "block_bytes": 70_000}})
    assert (config.idle_probe_blocks, config.idle_probe_block_bytes) == (300, 70_000)
    with TestClient(create_app(config)) as probed:
        assert probed.get("/health").json()["allocator_calls"] == 300
        assert probed.post("/churn", content=b"").status_code == 200  # only the probe calls


@pytest.mark.parametrize("kind", ["json", "xml"])
def test_documents_get_a_summary_of_similar_size(client: TestClient, kind: str) -> None:
    stream = PayloadStream(5)
    for _ in range(5):
        body = stream.body(kind)
        response = client.post(
            f"/{kind}", content=body, headers={"content-type": CONTENT_TYPES[kind]}
        )
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(CONTENT_TYPES[kind])
        assert 0.4 < len(response.content) / len(body) < 2.5


def test_text_xml_and_charset_parameters_are_accepted(client: TestClient) -> None:
    body = PayloadStream(1).body("xml")
    assert client.post("/xml", content=body, headers={"content-type": "text/xml"}).is_success
    body = PayloadStream(1).body("json")
    headers = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/json", content=body, headers=headers).is_success


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("/json", None),
        ("/json", "text/plain"),
        ("/json", "application/xml"),
        ("/xml", "application/json"),
        ("/xml", "multipart/form-data; boundary=x"),
    ],
)
def test_a_wrong_content_type_is_a_415(
    client: TestClient, path: str, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    _assert_error(client.post(path, content=b"{}", headers=headers), 415)


@pytest.mark.parametrize("kind", ["json", "xml"])
def test_a_body_over_the_limit_is_a_413_declared_or_streamed(client: TestClient, kind: str) -> None:
    big = b" " * (DOCUMENT_BODY_LIMIT + 1)
    headers = {"content-type": CONTENT_TYPES[kind]}
    _assert_error(client.post(f"/{kind}", content=big, headers=headers), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(DOCUMENT_BODY_LIMIT // 65536 + 2):
            yield b" " * 65536

    _assert_error(client.post(f"/{kind}", content=chunks(), headers=headers), 413)
    _assert_error(client.post("/churn", content=b"x" * 5000), 413)


@pytest.mark.parametrize(
    "path, method, status",
    [
        ("/nowhere", "GET", 404),
        ("/churn", "GET", 405),
        ("/json", "GET", 405),
        ("/stats", "POST", 405),
    ],
)
def test_unknown_routes_and_methods_answer_in_json(
    client: TestClient, path: str, method: str, status: int
) -> None:
    _assert_error(client.request(method, path), status)


@pytest.mark.parametrize(
    "kind, body, status",
    [
        ("json", b"{", 400),
        ("json", b"[" * 100_000, 400),
        ("json", b'{"order_id": 1}', 422),
        ("xml", b"<order", 400),
        ("xml", b'<!DOCTYPE o [<!ENTITY x SYSTEM "file:///etc/passwd">]><o>&x;</o>', 400),
        ("xml", b"<order/>", 422),
    ],
)
def test_broken_documents_are_4xx_and_the_worker_carries_on(
    client: TestClient, kind: str, body: bytes, status: int
) -> None:
    response = client.post(f"/{kind}", content=body, headers={"content-type": CONTENT_TYPES[kind]})
    _assert_error(response, status)
    assert "root:" not in response.text
    assert client.get("/health").status_code == 200


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(kind=st.sampled_from(["json", "xml"]), body=st.binary(max_size=600))
def test_any_body_gets_a_200_or_a_json_4xx(client: TestClient, kind: str, body: bytes) -> None:
    response = client.post(f"/{kind}", content=body, headers={"content-type": CONTENT_TYPES[kind]})
    if response.status_code != 200:
        _assert_error(response, response.status_code)
        assert 400 <= response.status_code < 500
