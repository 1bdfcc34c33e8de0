"""The API path of the `jaring` binary stays light: reading a kubeconfig, a GET
over plain HTTP and a local status write load neither http.client, ssl,
email nor tempfile (STYLE.md #9; together ~20 ms per CNI call)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("http.client", "ssl", "email", "tempfile", "shutil", "yaml")

PROGRAM = textwrap.dedent(
    """
    import json, socket, sys, threading
    from pathlib import Path
    from jaring.metaplugin.kubeclient import KubeClient, KubeConfig
    from jaring.metaplugin.sources import ApiSource, LocalSource

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    body = json.dumps({"kind": "Pod", "metadata": {"name": "p", "namespace": "ns"}}).encode()

    def answer():
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            head = b"HTTP/1.1 200 OK\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(body)
            conn.sendall(head + body)

    threading.Thread(target=answer, daemon=True).start()
    root = Path(sys.argv[1])
    kc = root / "kubeconfig"
    kc.write_text(json.dumps({
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.getsockname()[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }))
    with KubeClient(KubeConfig.load(str(kc))) as client:
        assert ApiSource(client).get_pod(namespace="ns", name="p").name == "p"
    LocalSource(root / "store").write_status(namespace="ns", name="p", status="[]")
    print(json.dumps(sorted(sys.modules)))
    """
)


def test_api_and_local_paths_load_no_heavy_module(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.strip().strip("[]").replace('"', "").split(", "))
    assert "jaring.metaplugin.kubeclient" in loaded
    assert sorted(m for m in loaded if m.split(".")[0] in HEAVY or m in HEAVY) == []
