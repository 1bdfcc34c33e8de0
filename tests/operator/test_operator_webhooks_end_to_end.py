"""On a real cluster, the API server itself calls the operator's webhooks: a bad NAD is
refused at create time with the operator's message, a pod gets its device resources.

Needs JARING_TEST_KUBECONFIG and JARING_TEST_WEBHOOK_HOST, an address of this machine the
API server can reach (e.g. the docker bridge gateway for kind/k3d). The webhook
configurations point at https://<host>:<port>/<webhook> and only match the test namespace.
"""

from __future__ import annotations

import base64
import os
import ssl
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from jaring.operator.kubeapi import ApiError

pytestmark = pytest.mark.api
HOST = os.environ.get("JARING_TEST_WEBHOOK_HOST")
ADMISSION = "/apis/admissionregistration.k8s.io/v1"
Eventually = Callable[..., Awaitable[Any]]


def hook(name: str, *, path: str, url: str, ca: str, namespace: str, rule: dict[str, Any]) -> Any:
    return {
        "name": f"{name}.e2e.jaring.dev",
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": "Fail",
        "timeoutSeconds": 10,
        "clientConfig": {"url": f"{url}/{path}", "caBundle": ca},
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "rules": [{**rule, "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}],
    }


async def test_api_server_calls_the_webhooks(
    api: Any,
    operator_config: Any,
    configure: Any,
    start_operator: Any,
    eventually: Eventually,
) -> None:
    if api.emulator is not None or not HOST:
        pytest.skip("needs JARING_TEST_KUBECONFIG and JARING_TEST_WEBHOOK_HOST")
    config = configure(
        operator_config,
        webhook_host="0.0.0.0",
        extra_hostnames=(*operator_config.extra_hostnames, HOST),
    )
    name = f"jaring-e2e-{uuid.uuid4().hex[:6]}"
    async with start_operator(config):
        ca = base64.b64encode((config.cert_dir / "ca.crt").read_bytes()).decode()
        url = f"https://{HOST}:{config.webhook_port}"
        nad_rule = {
            "apiGroups": ["k8s.cni.cncf.io"],
            "apiVersions": ["v1"],
            "resources": ["network-attachment-definitions"],
        }
        pod_rule = {"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}
        validating = {
            "metadata": {"name": name},
            "webhooks": [
                hook(
                    "nad",
                    path="validate-nad",
                    url=url,
                    ca=ca,
                    namespace=api.namespace,
                    rule=nad_rule,
                ),
                hook(
                    "pod",
                    path="validate-pod",
                    url=url,
                    ca=ca,
                    namespace=api.namespace,
                    rule=pod_rule,
                ),
            ],
        }
        mutating = {
            "metadata": {"name": name},
            "webhooks": [
                hook(
                    "pod", path="mutate-pod", url=url, ca=ca, namespace=api.namespace, rule=pod_rule
                )
            ],
        }
        for kind, body in (
            ("validatingwebhookconfigurations", validating),
            ("mutatingwebhookconfigurations", mutating),
        ):
            await api.call("POST", f"{ADMISSION}/{kind}", body)
            api.cleanups.append(lambda kind=kind: api.call("DELETE", f"{ADMISSION}/{kind}/{name}"))

        bad = {"cniVersion": "1.0.0", "type": "macvlan", "mode": "sideways"}
        with pytest.raises(ApiError) as refused:
            await api.create_nad("refused", bad)
        assert "spec.config.mode: macvlan: 'sideways' is not one of" in str(refused.value)

        annotation = {"k8s.v1.cni.cncf.io/resourceName": "example.com/e2e"}
        await api.create_nad(
            "vfs", {"cniVersion": "1.0.0", "type": "sriov"}, annotations=annotation
        )
        await eventually(lambda: _sees_nads(config))
        with pytest.raises(ApiError) as denied:
            await api.create_pod("bad-annotation", "Not_A_Label")
        assert "DNS-1123" in str(denied.value)
        await api.create_pod("with-vfs", "vfs,vfs@vf1")
        pod = await api.get(f"/api/v1/namespaces/{api.namespace}/pods/with-vfs")
        resources = pod["spec"]["containers"][0]["resources"]
        assert resources["requests"]["example.com/e2e"] == "2"
        assert resources["limits"]["example.com/e2e"] == "2"


async def _sees_nads(config: Any) -> bool:
    context = ssl.create_default_context(cafile=str(config.cert_dir / "ca.crt"))
    url = f"https://localhost:{config.webhook_port}/stats"
    async with aiohttp.ClientSession() as session, session.get(url, ssl=context) as resp:
        return bool((await resp.json())["known_nads"] >= 1)
