"""`jaring-node`: the per-node daemon that runs CNI requests for the `jaring` binary.

Serves the protocol of `forward.py` on a root-only unix socket and runs the
same `MetaPlugin` as standalone, with native delegates in-process
(loaded once), pods and NADs from watch caches (`nodecache`, `nodesource`),
one container's operations serialised and different pods in parallel up to a
bound. `/healthz`, `/readyz`, `/metrics` on a small HTTP port. DESIGN.md
"Node daemon"; issue 6; LESSONS #5, #6, #8, #9.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from jaring.cni import registry, skel
from jaring.cni.errors import CniError
from jaring.cni.ids import PodUID
from jaring.cni.invoke import BinaryExecutor, Executor, NativeExecutor, Runtime
from jaring.cni.plugin import Plugin, parse_cni_args

from . import forward
from .config import DEFAULT_SOCKET, MetaConfig
from .kubeclient import KubeClient, KubeConfig
from .meta import Environment, MetaPlugin
from .metrics import Metrics
from .nodecache import NodeCache
from .nodesource import CachedSource, ClientPool, EventPoster, Lookups
from .sources import LocalSource, Source

log = logging.getLogger("jaring.node")

DEFAULT_HTTP = "127.0.0.1:9390"
REQUEST_READ_TIMEOUT = 30.0
ROOT_ONLY = frozenset({0})


@dataclass(frozen=True)
class Settings:
    """How one daemon runs (flags and environment of `jaring-node`)."""

    socket_path: str = DEFAULT_SOCKET
    http_address: str = DEFAULT_HTTP  # "" disables the HTTP endpoints
    kubeconfig: str = ""  # warmed at start: the path the CNI config's `kubeconfig` names
    node_name: str = ""
    max_parallel: int = 16
    allowed_uids: frozenset[int] = ROOT_ONLY
    preload: bool = True


# -- delegates -------------------------------------------------------------------------


class DaemonExecutor:
    """Native delegates in-process (loaded once), the rest exec'd; failures counted."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        binary: Executor | None = None,
        loader: Callable[[str], Plugin] = registry.load,
    ) -> None:
        self.metrics = metrics
        self.binary = binary or BinaryExecutor()
        self._loader = loader
        self._plugins: dict[str, Plugin | None] = {}
        self._lock = threading.Lock()

    def preload(self) -> None:
        for plugin_type in registry.NATIVE:
            self.native(plugin_type)

    def native(self, plugin_type: str) -> Plugin | None:
        """The in-process plugin for a type, or None (not native, not installed)."""
        if plugin_type in self._plugins:
            return self._plugins[plugin_type]
        with self._lock:
            if plugin_type not in self._plugins:
                plugin: Plugin | None = None
                if registry.has_native(plugin_type):
                    try:
                        plugin = self._loader(plugin_type)
                    except CniError as exc:
                        log.warning("native %s unavailable, will exec it: %s", plugin_type, exc)
                self._plugins[plugin_type] = plugin
        return self._plugins[plugin_type]

    def for_config(self, cfg: MetaConfig | None) -> Executor:
        exec_types = cfg.exec_types if cfg is not None else frozenset()

        def run(
            command: str, plugin_type: str, stdin: bytes, runtime: Runtime
        ) -> dict[str, Any] | None:
            plugin = None if plugin_type in exec_types else self.native(plugin_type)
            try:
                if plugin is None:
                    return self.binary(command, plugin_type, stdin, runtime)
                native = NativeExecutor(fallback=self.binary, loader=lambda _: plugin)
                return native(command, plugin_type, stdin, runtime)
            except CniError:
                self.metrics.inc(
                    "jaring_delegate_failures_total",
                    "Delegate plugin calls that failed, by type and verb",
                    (("type", plugin_type), ("verb", command)),
                )
                raise

        return run


# -- where pods and NADs come from ------------------------------------------------------


@dataclass
class ApiView:
    """One API server's caches and clients (keyed by kubeconfig path)."""

    cache: NodeCache | None
    pool: ClientPool
    events: EventPoster

    def stop(self) -> None:
        if self.cache is not None:
            self.cache.stop()
        self.events.stop()
        self.pool.close()


class Views:
    """API views by kubeconfig path: the daemon's own warmed at start, others on use."""

    def __init__(
        self,
        *,
        node_name: str,
        watch: bool = True,
        default: KubeConfig | None = None,
        default_key: str = "",
        make_client: Callable[[KubeConfig], KubeClient] = KubeClient,
    ) -> None:
        self.node_name = node_name
        self.watch = watch
        self.make_client = make_client
        self.lookups = Lookups()
        self._views: dict[str, ApiView] = {}
        self._lock = threading.Lock()
        if default is not None:
            self._views[default_key] = self._make(default)

    def _make(self, config: KubeConfig) -> ApiView:
        def client() -> KubeClient:
            return self.make_client(config)

        pool = ClientPool(client)
        events = EventPoster(pool, host=self.node_name)
        events.start()
        cache = NodeCache(client, node_name=self.node_name) if self.watch else None
        if cache is not None:
            cache.start()
        return ApiView(cache=cache, pool=pool, events=events)

    def get(self, kubeconfig: str) -> ApiView:
        view = self._views.get(kubeconfig)
        if view is None:
            with self._lock:
                view = self._views.get(kubeconfig)
                if view is None:
                    view = self._make(KubeConfig.load(kubeconfig))
                    self._views[kubeconfig] = view
        return view

    def all(self) -> list[ApiView]:
        return list(self._views.values())

    def synced(self) -> bool:
        return all(v.cache is None or v.cache.synced() for v in self.all())

    def sizes(self) -> dict[tuple[tuple[str, str], ...], float]:
        pods = sum(len(v.cache.pods) for v in self.all() if v.cache is not None)
        nads = sum(len(v.cache.nads) for v in self.all() if v.cache is not None)
        return {(("kind", "pod"),): float(pods), (("kind", "nad"),): float(nads)}

    def stop(self) -> None:
        for view in self.all():
            view.stop()


# -- the daemon ---------------------------------------------------------------------------


@dataclass
class _ContainerLocks:
    """One lock per container ID while someone uses it (never grows unbounded)."""

    _locks: dict[str, tuple[threading.Lock, int]] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    @contextlib.contextmanager
    def hold(self, container_id: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(container_id, (threading.Lock(), 0))
            self._locks[container_id] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[container_id]
                if users <= 1:
                    del self._locks[container_id]
                else:
                    self._locks[container_id] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


def peer_uid(conn: socket.socket) -> int:
    """The connecting process's uid (SO_PEERCRED)."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


class Daemon:
    """Accepts CNI requests on the socket and runs them; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        views: Views,
        executor: DaemonExecutor | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.views = views
        self.metrics = metrics or Metrics()
        self.executor = executor or DaemonExecutor(metrics=self.metrics)
        self._bound = threading.BoundedSemaphore(max(1, settings.max_parallel))
        self._containers = _ContainerLocks()
        self._inflight = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._http: ThreadingHTTPServer | None = None
        self.metrics.gauge("jaring_cache_objects", "Objects in the watch caches", views.sizes)
        self.metrics.gauge(
            "jaring_inflight_requests",
            "CNI requests being handled",
            lambda: {(): float(self._inflight)},
        )
        self.metrics.gauge(
            "jaring_lookups_total",
            kind="counter",
            help_text="Pod and NAD reads by where they were answered (runtime, cache, api)",
            read=lambda: {
                (("kind", kind), ("origin", origin)): float(n)
                for (kind, origin), n in views.lookups.snapshot().items()
            },
        )

    # -- lifecycle

    def listen(self) -> None:
        """Bind the socket (0600) and the HTTP port; refuse if another daemon serves."""
        path = self.settings.socket_path
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.settimeout(1.0)
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale: the previous daemon died
            else:
                raise SystemExit(f"jaring-node: another daemon is serving {path}")
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is born 0600: no window for other users
        try:
            listener.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        listener.listen(128)
        listener.settimeout(0.5)  # the accept loop notices a stop request
        self._listener = listener
        if self.settings.http_address:
            host, _, port = self.settings.http_address.rpartition(":")
            self._http = ThreadingHTTPServer((host or "127.0.0.1", int(port)), _http_handler(self))
            self._http.daemon_threads = True
            threading.Thread(target=self._http.serve_forever, name="http", daemon=True).start()
        log.info("serving", extra={"socket": path, "http": self.http_address})

    @property
    def http_address(self) -> str:
        if self._http is None:
            return ""
        host, port = self._http.server_address[:2]
        return f"{host!s}:{port}"

    def serve(self) -> None:
        """The accept loop, until `stop`; a thread per connection."""
        assert self._listener is not None, "listen() first"
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    break
                raise
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()
        self._close_listener()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM: stop taking requests, finish the ones in flight, keep CNI config."""
        self._stopping.set()
        self._close_listener()
        with self._idle:
            self._idle.wait_for(lambda: self._inflight == 0, timeout)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        self.views.stop()
        log.info("stopped", extra={"inflight": self._inflight})

    def _close_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with contextlib.suppress(OSError):
            # New binaries find no socket and run standalone meanwhile.
            if os.path.exists(self.settings.socket_path):
                os.unlink(self.settings.socket_path)
        listener.close()

    def ready(self) -> bool:
        return self._listener is not None and self.views.synced()

    # -- one connection

    def _connection(self, conn: socket.socket) -> None:
        with self._idle:
            self._inflight += 1
        try:
            with conn:
                uid = peer_uid(conn)
                if uid not in self.settings.allowed_uids:
                    log.warning("refused a connection from uid %d", uid)
                    self.metrics.inc(
                        "jaring_refused_connections_total", "Connections from non-root peers"
                    )
                    return  # no READY: the client cannot send anything
                conn.settimeout(REQUEST_READ_TIMEOUT)
                conn.sendall(forward.READY)
                header, stdin = forward.split_frame(forward.read_all(conn))
                env = header.get("env")
                if not isinstance(env, dict) or not all(
                    isinstance(k, str) and isinstance(v, str) for k, v in env.items()
                ):
                    raise ValueError("env must be an object of strings")
                code, out = self.run(env, stdin)
                conn.sendall(forward.encode_answer(code, out))
        except (OSError, ValueError) as exc:
            log.warning("connection dropped: %s", exc)
        finally:
            with self._idle:
                self._inflight -= 1
                self._idle.notify_all()

    def run(self, env: Mapping[str, str], stdin: bytes) -> tuple[int, bytes]:
        """One CNI request: serialised per container, bounded across pods."""
        command = env.get("CNI_COMMAND", "")
        container = env.get("CNI_CONTAINERID", "")
        start = time.monotonic()
        # The container's lock first: a queue of one container's calls must not
        # hold the slots other pods need.
        with self._containers.hold(container), self._bound:
            code, out = skel.run(self.plugin_for(env), environ=env, stdin=stdin)
        elapsed = time.monotonic() - start
        verb = command if command in ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION") else "?"
        self.metrics.observe(verb, elapsed)
        self.metrics.inc(
            "jaring_requests_total",
            "CNI requests served, by verb and result",
            (("verb", verb), ("result", "ok" if code == 0 else "error")),
        )
        extra: dict[str, Any] = {
            "verb": verb,
            "container": container[:12],
            "ms": round(elapsed * 1000, 1),
            "code": code,
        }
        args = dict(_args(env))
        if "K8S_POD_NAME" in args:
            extra["pod"] = f"{args.get('K8S_POD_NAMESPACE', '')}/{args['K8S_POD_NAME']}"
        if code != 0:
            extra["error"] = out.decode(errors="replace").strip()[:500]
        log.info("request", extra=extra)
        return code, out

    def plugin_for(self, env: Mapping[str, str]) -> MetaPlugin:
        """The meta-plugin for one request: its source knows the pod's UID."""
        uid = PodUID(dict(_args(env)).get("K8S_POD_UID", ""))

        def make_source(cfg: MetaConfig) -> Source | None:
            if cfg.manifest_dir:
                return LocalSource(Path(cfg.manifest_dir))
            if not cfg.kubeconfig:
                return None
            view = self.views.get(cfg.kubeconfig)
            return CachedSource(
                cache=view.cache,
                pool=view.pool,
                events=view.events,
                runtime_config=cfg.runtime_config,
                pod_uid=uid,
                lookups=self.views.lookups,
                host=self.views.node_name,
            )

        return MetaPlugin(
            Environment(make_source=make_source, make_executor=self.executor.for_config)
        )


def _args(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    try:
        return parse_cni_args(env.get("CNI_ARGS", ""))
    except CniError:
        return ()  # skel reports the bad CNI_ARGS


def _http_handler(daemon: Daemon) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._send(200, "ok\n")
            elif self.path == "/readyz":
                ok = daemon.ready()
                self._send(200 if ok else 503, "ok\n" if ok else "caches not synced\n")
            elif self.path == "/metrics":
                self._send(200, daemon.metrics.render(), "text/plain; version=0.0.4")
            else:
                self._send(404, "not found\n")

        def _send(self, status: int, body: str, kind: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler


# -- the command ------------------------------------------------------------------------


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the `extra` fields."""

    _standard = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._standard:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def parse_args(argv: list[str] | None) -> tuple[Settings, str]:
    parser = argparse.ArgumentParser(prog="jaring-node", description=__doc__.split("\n")[0])
    parser.add_argument("--socket", default=DEFAULT_SOCKET, help="unix socket to serve")
    parser.add_argument(
        "--http", default=DEFAULT_HTTP, help="host:port for /healthz /readyz /metrics ('' = off)"
    )
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG", ""),
        help="the kubeconfig the CNI config names, watched from the start (default: $KUBECONFIG)",
    )
    parser.add_argument(
        "--node-name",
        default=os.environ.get("NODE_NAME", "") or os.uname().nodename,
        help="this node (default: $NODE_NAME, else the host name)",
    )
    parser.add_argument("--max-parallel", type=int, default=16, help="CNI requests at once")
    parser.add_argument("--no-preload", action="store_true", help="load native delegates on use")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    opts = parser.parse_args(argv)
    settings = Settings(
        socket_path=opts.socket,
        http_address=opts.http,
        kubeconfig=opts.kubeconfig,
        node_name=opts.node_name,
        max_parallel=opts.max_parallel,
        preload=not opts.no_preload,
    )
    return settings, str(opts.log_level)


def build(settings: Settings) -> Daemon:
    """A daemon with its caches started (not yet listening)."""
    if settings.kubeconfig:
        views = Views(
            node_name=settings.node_name,
            default=KubeConfig.load(settings.kubeconfig),
            default_key=settings.kubeconfig,
        )
    else:
        # Caches start with the first request naming a kubeconfig. The daemon
        # reads the API a request's config names, as standalone would: a
        # fallback to standalone never sees other pods or NADs than the daemon.
        views = Views(node_name=settings.node_name)
    daemon = Daemon(settings, views=views)
    if settings.preload:
        daemon.executor.preload()
    return daemon


def main(argv: list[str] | None = None) -> None:
    settings, level = parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    if os.geteuid() not in settings.allowed_uids:
        log.warning("not running as root: delegates will fail to configure networks")
    try:
        daemon = build(settings)
        daemon.listen()
    except CniError as exc:
        log.error("cannot start: %s", exc)
        raise SystemExit(1) from None

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: finishing in-flight requests", signum)
        # Stopping waits for requests: never inside the signal handler's frame.
        threading.Thread(target=daemon.stop, name="stop").start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    daemon.serve()
    for thread in threading.enumerate():
        if thread.name == "stop":
            thread.join()
    log.info("exit")


if __name__ == "__main__":
    main()
