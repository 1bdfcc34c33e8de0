"""KubeClient retries 5xx, 429, refused and timed-out calls with a short backoff, then
gives up with TRY_AGAIN_LATER; other refusals fail at once with the API's message.
The framing and connection-loss cases run over plain HTTP and over TLS (the
client's own stream on `_ssl`)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from jaring.cni.errors import CniError, Code
from jaring.metaplugin.kubeclient import KubeClient, KubeConfig

from .cluster import kubeconfig_doc
from .scripted import Answer, Pki, Script, refused_port, serve, silent_listener

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}
PATH = "/api/v1/namespaces/ns/pods/p"


def status(code: int, message: str) -> Answer:
    return Answer.json(code, {"kind": "Status", "code": code, "message": message})


def config(tmp_path: Path, url: str, **cluster: object) -> KubeConfig:
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(kubeconfig_doc(url, token="t", **cluster)))
    return KubeConfig.load(str(path))


class Transport:
    """Serve a script and configure a client over http, or https with a test CA."""

    def __init__(self, pki: Pki | None) -> None:
        self.pki = pki

    def serve(self, script: Script) -> AbstractContextManager[str]:
        return serve(script, tls=self.pki.server_context() if self.pki else None)

    def config(self, tmp_path: Path, url: str) -> KubeConfig:
        if self.pki is None:
            return config(tmp_path, url)
        return config(tmp_path, url, **{"certificate-authority": str(self.pki.ca)})


@pytest.fixture(params=["http", "https"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    yield Transport(request.getfixturevalue("pki") if request.param == "https" else None)


@pytest.mark.parametrize("code", [500, 502, 503, 504, 429])
def test_transient_answers_are_retried_until_success(tmp_path: Path, code: int) -> None:
    script = Script().then(status(code, "busy"), status(code, "busy"), Answer.json(200, POD))
    slept: list[float] = []
    with serve(script) as url, KubeClient(config(tmp_path, url), sleep=slept.append) as client:
        assert client.get(PATH) == POD
    assert [s.path for s in script.seen] == [PATH] * 3
    assert len(slept) == 2
    assert all(0 < s <= 1.0 for s in slept)
    assert slept[1] > slept[0]  # backing off


def test_retry_after_is_honoured_up_to_a_second(tmp_path: Path) -> None:
    script = Script().then(
        Answer.json(429, {"message": "slow down"}, ("Retry-After", "0.3")),
        Answer.json(429, {"message": "slow down"}, ("Retry-After", "120")),
        Answer.json(200, POD),
    )
    slept: list[float] = []
    with serve(script) as url, KubeClient(config(tmp_path, url), sleep=slept.append) as client:
        assert client.get(PATH) == POD
    assert slept == [0.3, 1.0]


def test_persistent_5xx_is_try_again_later_with_the_api_message(tmp_path: Path) -> None:
    script = Script(default=status(503, "etcdserver: leader changed"))
    slept: list[float] = []
    with (
        serve(script) as url,
        KubeClient(config(tmp_path, url), retries=2, sleep=slept.append) as client,
        pytest.raises(CniError) as info,
    ):
        client.patch(PATH, {"metadata": {"annotations": {"a": "b"}}})
    assert info.value.code == Code.TRY_AGAIN_LATER
    assert f"PATCH {url}{PATH}" in info.value.details
    assert "503 etcdserver: leader changed" in info.value.details
    assert "after 3 attempts" in info.value.details
    assert len(script.seen) == 3
    assert len(slept) == 2


@pytest.mark.parametrize("code", [400, 401, 403, 409, 422])
def test_other_refusals_fail_at_once_with_io(tmp_path: Path, code: int) -> None:
    script = Script().then(status(code, f"refused with {code}"))
    with (
        serve(script) as url,
        KubeClient(config(tmp_path, url)) as client,
        pytest.raises(CniError) as info,
    ):
        client.post("/api/v1/namespaces/ns/events", {"kind": "Event"})
    assert info.value.code == Code.IO
    assert f"POST {url}/api/v1/namespaces/ns/events: {code} refused with {code}" == (
        info.value.details
    )
    assert len(script.seen) == 1


def test_not_found_is_none_for_get_and_an_error_for_patch(tmp_path: Path) -> None:
    script = Script(default=status(404, 'pods "p" not found'))
    with serve(script) as url, KubeClient(config(tmp_path, url)) as client:
        assert client.get(PATH) is None
        assert client.delete(PATH) is None
        with pytest.raises(CniError) as info:
            client.patch(PATH, {})
    assert info.value.code == Code.IO
    assert 'pods "p" not found' in info.value.details
    assert len(script.seen) == 3


def test_answer_that_is_not_a_json_object_is_a_decode_error(tmp_path: Path) -> None:
    script = Script().then(Answer(200, b"<html>proxy</html>"), Answer(200, b"[1]"))
    with serve(script) as url, KubeClient(config(tmp_path, url)) as client:
        for _ in range(2):
            with pytest.raises(CniError) as info:
                client.get(PATH)
            assert info.value.code == Code.DECODE
            assert PATH in info.value.details


def test_connection_refused_is_try_again_later_after_retries(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{refused_port()}"
    slept: list[float] = []
    with (
        KubeClient(config(tmp_path, url), retries=3, sleep=slept.append) as client,
        pytest.raises(CniError) as info,
    ):
        client.get(PATH)
    assert info.value.code == Code.TRY_AGAIN_LATER
    assert "ConnectionRefusedError" in info.value.details
    assert f"GET {url}{PATH}" in info.value.details
    assert len(slept) == 3


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_timeout_is_try_again_later_after_retries(tmp_path: Path, scheme: str) -> None:
    # over https the TLS handshake is what waits
    slept: list[float] = []
    with silent_listener() as port:
        cfg = config(
            tmp_path,
            f"{scheme}://127.0.0.1:{port}",
            **({"insecure-skip-tls-verify": True} if scheme == "https" else {}),
        )
        with (
            KubeClient(cfg, timeout=0.2, retries=1, sleep=slept.append) as client,
            pytest.raises(CniError) as info,
        ):
            client.get(PATH)
    assert info.value.code == Code.TRY_AGAIN_LATER
    assert "TimeoutError" in info.value.details
    assert len(slept) == 1


def test_one_connection_serves_consecutive_calls(tmp_path: Path) -> None:
    script = Script(default=Answer.json(200, POD))
    with serve(script) as url, KubeClient(config(tmp_path, url)) as client:
        for _ in range(3):
            assert client.get(PATH) == POD
        client.patch(PATH, {"metadata": {"annotations": {"k": "v"}}})
    assert len(script.seen) == 4
    patch = script.seen[-1]
    assert patch.method == "PATCH"
    assert patch.headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patch.body) == {"metadata": {"annotations": {"k": "v"}}}


def test_server_path_prefix_is_kept(tmp_path: Path) -> None:
    script = Script(default=Answer.json(200, POD))
    with serve(script) as url, KubeClient(config(tmp_path, url + "/k8s/clusters/c1")) as client:
        client.get(PATH)
    assert script.seen[0].path == "/k8s/clusters/c1" + PATH


def test_a_kept_connection_the_server_dropped_is_reopened_without_a_retry(
    tmp_path: Path, transport: Transport
) -> None:
    script = Script(default=Answer.json(200, POD), idle_timeout=0.1)
    slept: list[float] = []
    with (
        transport.serve(script) as url,
        KubeClient(transport.config(tmp_path, url), retries=0, sleep=slept.append) as c,
    ):
        assert c.get(PATH) == POD
        deadline = time.monotonic() + 10
        while script.closed < 1:  # the server timed the idle connection out
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert c.get(PATH) == POD
    assert script.connections == 2
    assert slept == []


@pytest.mark.parametrize("framing", ["length", "chunked", "close"])
def test_answer_bodies_in_every_http_framing(
    tmp_path: Path, framing: str, transport: Transport
) -> None:
    big = POD | {"spec": {"pad": "x" * 100_000}}
    script = Script(default=Answer(200, json.dumps(big).encode(), framing=framing))
    with (
        transport.serve(script) as url,
        KubeClient(transport.config(tmp_path, url)) as client,
    ):
        for _ in range(3):
            assert client.get(PATH) == big
    assert len(script.seen) == 3
    assert script.connections == (3 if framing == "close" else 1)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(200, json.dumps(POD).encode(), framing="cut"),
        Answer(body=b"SPDY/3 200 OK\r\n\r\n", framing="raw"),
        Answer(body=b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", framing="raw"),
        Answer(body=b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", framing="raw"),
    ],
    ids=["cut-body", "not-http", "bad-header", "bad-length"],
)
def test_broken_answers_are_retried_then_try_again_later(
    tmp_path: Path, answer: Answer, transport: Transport
) -> None:
    script = Script(default=answer)
    slept: list[float] = []
    with (
        transport.serve(script) as url,
        KubeClient(transport.config(tmp_path, url), retries=1, sleep=slept.append) as client,
        pytest.raises(CniError) as info,
    ):
        client.get(PATH)
    assert info.value.code == Code.TRY_AGAIN_LATER
    assert len(script.seen) == 2
    assert len(slept) == 1
