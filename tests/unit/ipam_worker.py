"""One process of the host-local concurrency soak (run by test_ipam_hostlocal_concurrent_*).

Usage: ipam_worker.py KIND CONF_JSON WORKER_ID SECONDS OUT_JSONL
KIND is `reference` (exec /usr/lib/cni/host-local), `native` (PLUGIN in this
process) or `native-exec` (the jaring-host-local executable). Until SECONDS pass
it takes two addresses, checks the store names it as their owner, and gives
them back; it writes one JSON line per held address: ip, owner, the monotonic
times it was known held (after ADD returned, before DEL started), and any
violation seen.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from ipam_harness import (
    Runner,
    inprocess_runner,
    native_exec_runner,
    reference_runner,
)


def runner_for(kind: str) -> Runner:
    if kind == "reference":
        return reference_runner("host-local")
    if kind == "native-exec":
        return native_exec_runner("host-local")
    from jaring.delegates.hostlocal import PLUGIN

    return inprocess_runner(PLUGIN)


def main() -> int:
    kind, conf_path, worker, seconds, out_path = sys.argv[1:6]
    conf = json.loads(Path(conf_path).read_text())
    store = Path(conf["ipam"]["dataDir"]) / conf["name"]
    run = runner_for(kind)
    deadline = time.monotonic() + float(seconds)
    n = 0
    with open(out_path, "w", encoding="utf-8") as out:
        while time.monotonic() < deadline:
            held = []
            for slot in ("eth0", "net1"):
                cid = f"{kind}-{worker}-{n}"
                added = run("ADD", conf, container_id=cid, ifname=slot)
                if not added.ok:
                    if "no IP addresses available" not in added.msg:
                        out.write(json.dumps({"error": added.msg, "owner": cid}) + "\n")
                    continue
                address = added.doc["ips"][0]["address"].split("/")[0] if added.doc else ""
                since = time.monotonic()
                owner = (store / address).read_bytes().decode(errors="replace")
                held.append((cid, slot, address, since, owner == f"{cid}\r\n{slot}"))
            for cid, slot, address, since, owned in held:
                until = time.monotonic()
                deleted = run("DEL", conf, container_id=cid, ifname=slot)
                out.write(
                    json.dumps(
                        {
                            "ip": address,
                            "owner": f"{cid}/{slot}",
                            "since": since,
                            "until": until,
                            "owned": owned,
                            "deleted": deleted.ok,
                        }
                    )
                    + "\n"
                )
            n += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
