"""The meta-plugin's verbs: ADD, DEL, CHECK, STATUS, GC over its delegates.

`MetaPlugin` is a `jaring.cni.plugin.Plugin`: `skel` calls it for the
`jaring` binary, the node daemon calls it in-process. ADD runs the plan's
delegates one at a time with the cache written first and rollback on
failure; DEL, CHECK and GC work from the cache (DESIGN.md "How one pod gets
its networks"; SPECS.md NPWG runtime rules; LESSONS #1, #2, #13, #16).
"""

from __future__ import annotations

import _thread  # not `threading`: see `in_background`
import os
import time

from jaring.cni import invoke, jsoncodec, version
from jaring.cni.errors import CniError, Code
from jaring.cni.ids import ContainerID, IfName, NadName, Namespace, PodName, PodUID
from jaring.cni.invoke import Executor, Runtime
from jaring.cni.logs import get_logger
from jaring.cni.netconf import NetworkConfig
from jaring.cni.plugin import Request
from jaring.cni.records import field, record, replace
from jaring.cni.types import Result, Route

from . import devices
from . import plan as planning
from . import status as netstatus
from .config import MetaConfig, parse_config
from .podroutes import LinkProbe, NsenterLinkProbe, NsenterRouteEditor, RouteEditor
from .sources import NadInfo, PodInfo, Source
from .statecache import CachedAttachment, CacheEntry, StateCache

# `typing` costs the binary ~4 ms a call: the type checker alone reads it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from .networks import NadLookup

log = get_logger(__name__)

VALID_ATTACHMENTS_KEYS = ("cni.dev/valid-attachments", "cni.dev/attachments")


def _default_source(cfg: MetaConfig) -> Source | None:
    # Imported here: the binary only pays for the source it uses.
    if cfg.manifest_dir:
        from pathlib import Path

        from .sources import LocalSource

        return LocalSource(Path(cfg.manifest_dir))
    if cfg.kubeconfig:
        from .kubeclient import KubeClient, KubeConfig
        from .sources import ApiSource

        return ApiSource(KubeClient(KubeConfig.load(cfg.kubeconfig)))
    return None


def _default_executor(cfg: MetaConfig | None) -> Executor:
    if cfg is None:  # DEL with an unreadable config still cleans up
        return StandaloneExecutor()
    return StandaloneExecutor(exec_types=cfg.exec_types, native_types=cfg.native_types)


class _Rollback:
    """`with _Rollback(undo) as track:` on any failure in the block, `undo` the
    last entry tracked (DEL of every attachment made so far, in reverse), then
    raise the failure as a CniError (999 for anything else). A class rather
    than @contextmanager: `contextlib` loads `collections` and `functools`,
    ~2 ms of each call of the binary."""

    def __init__(self, undo: Callable[[CacheEntry], None]) -> None:
        self._undo = undo
        self._made: CacheEntry | None = None

    def _track(self, entry: CacheEntry) -> None:
        self._made = entry

    def __enter__(self) -> Callable[[CacheEntry], None]:
        return self._track

    def __exit__(self, kind: object, exc: BaseException | None, trace: object) -> None:
        if exc is None:
            return
        if self._made is not None:
            try:
                self._undo(self._made)
            except CniError as cleanup:
                log.error("rollback incomplete, DEL will retry: %s", cleanup)
        if isinstance(exc, CniError):
            return  # raised on as it is
        log.exception("ADD failed")
        raise CniError(Code.OTHER, "ADD failed", f"{type(exc).__name__}: {exc}") from None


def in_background(job: Callable[[], None]) -> Callable[[], BaseException | None]:
    """Start `job` in a thread; the call returned waits for it and gives its
    failure, if any. Run in place when no thread can be started. `_thread`:
    on the binary's hot path `threading` is one more module to load."""
    done = _thread.allocate_lock()
    done.acquire()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            job()
        except BaseException as exc:  # handed to whoever waits
            failure.append(exc)
        finally:
            done.release()

    try:
        _thread.start_new_thread(run, ())
    except RuntimeError:  # can't start new thread
        run()

    def wait() -> BaseException | None:
        with done:
            return failure[0] if failure else None

    return wait


class StandaloneExecutor:
    """Exec a delegate's binary when CNI_PATH has one, else run it natively.

    In a short-lived process the Python delegates' imports cost more than an
    exec, so they run here only when no binary is found or the type is listed
    in `nativeTypes` (DESIGN.md "Standalone"). `execTypes` and types without
    a native plugin are `NativeExecutor`'s own rule: always exec'd.
    """

    def __init__(
        self,
        *,
        exec_types: frozenset[str] = frozenset(),
        native_types: frozenset[str] = frozenset(),
        binary: Executor | None = None,
    ) -> None:
        self.binary = binary or invoke.BinaryExecutor()
        self.native = invoke.NativeExecutor(fallback=self.binary, exec_types=exec_types)
        self.native_types = native_types

    def __call__(
        self, command: str, plugin_type: str, stdin: bytes, runtime: Runtime
    ) -> dict[str, Any] | None:
        if plugin_type not in self.native_types and any(
            os.access(os.path.join(d, plugin_type), os.X_OK) for d in runtime.path
        ):
            return self.binary(command, plugin_type, stdin, runtime)
        return self.native(command, plugin_type, stdin, runtime)


@record()
class Environment:
    """The side effects the meta-plugin needs, with production defaults."""

    make_source: Callable[[MetaConfig], Source | None] = _default_source
    make_executor: Callable[[MetaConfig | None], Executor] = _default_executor
    routes: RouteEditor = field(default_factory=NsenterRouteEditor)
    links: LinkProbe = field(default_factory=NsenterLinkProbe)
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    status_retries: int = 3
    # ADD caches its results while it writes network-status (`in_background`).
    in_background: Callable[[Callable[[], None]], Callable[[], BaseException | None]] = (
        in_background
    )
    # Events are best effort: the `jaring` binary posts them after it has
    # answered the runtime (see `MetaPlugin.run_deferred`), off the hot path.
    defer_events: bool = False


@record(frozen=True)
class PodIdentity:
    namespace: Namespace
    name: PodName
    uid: PodUID

    @classmethod
    def from_request(cls, req: Request) -> PodIdentity | None:
        namespace, name = req.arg("K8S_POD_NAMESPACE"), req.arg("K8S_POD_NAME")
        if not namespace or not name:
            return None
        return cls(Namespace(namespace), PodName(name), PodUID(req.arg("K8S_POD_UID") or ""))


class MetaPlugin:
    """jaring's CNI plugin object (one per call, or one per daemon)."""

    supported_versions = version.SUPPORTED

    def __init__(self, env: Environment | None = None) -> None:
        self.env = env or Environment()
        self.deferred: list[Callable[[], None]] = []

    def _event(self, source: Source, **event: Any) -> None:
        """Post an Event now, or after the answer when events are deferred."""
        if self.env.defer_events:
            self.deferred.append(lambda: source.post_event(**event))
        else:
            source.post_event(**event)

    def run_deferred(self) -> None:
        """Post the Events held back by `defer_events` (never raises)."""
        jobs, self.deferred = self.deferred, []
        for job in jobs:
            try:
                job()
            except Exception:  # post_event must not raise; a bad one must not stop the rest
                log.exception("deferred event failed")

    # -- ADD -------------------------------------------------------------

    def add(self, req: Request) -> Result:
        cfg = parse_config(req.config)
        self._wait_ready(cfg)
        pod_id = PodIdentity.from_request(req)
        source = self.env.make_source(cfg)
        pod = self._read_pod(source, pod_id)
        try:
            return self._add(req, cfg, pod_id, source, pod)
        except CniError as exc:
            if source is not None and pod_id is not None and cfg.events:
                self._event(
                    source,
                    namespace=pod_id.namespace,
                    name=pod_id.name,
                    uid=pod.uid if pod is not None else pod_id.uid,
                    reason="NetworkAttachFailed",
                    message=f"pod networks not attached, nothing left behind: {exc}",
                    warning=True,
                )
            raise

    def _add(
        self,
        req: Request,
        cfg: MetaConfig,
        pod_id: PodIdentity | None,
        source: Source | None,
        pod: PodInfo | None,
    ) -> Result:
        lookup = _lookup(source)
        runtime_config = req.config.get("runtimeConfig")
        steps = planning.build_plan(
            cfg,
            pod=pod,
            cluster_ifname=IfName(req.ifname),
            runtime_config=runtime_config if isinstance(runtime_config, dict) else None,
            lookup=lookup,
            container_id=req.container_id,
            pod_devices=lambda: devices.load_pod_devices(
                cfg.kubelet_checkpoint,
                pod_uid=(pod.uid if pod else "") or req.arg("K8S_POD_UID") or "",
            ),
        )
        executor = self.env.make_executor(cfg)
        cache = StateCache(cfg.cache_dir)
        entry = CacheEntry(
            container_id=ContainerID(req.container_id),
            netns=req.netns,
            pod_namespace=pod_id.namespace if pod_id else Namespace(""),
            pod_name=pod_id.name if pod_id else PodName(""),
            pod_uid=(pod.uid if pod else pod_id.uid) if pod_id else PodUID(""),
            cni_args=req.args,
            cni_version=cfg.cni_version,
        )
        results: list[Result] = []
        planned = [
            CachedAttachment(
                network=step.network,
                ifname=step.ifname,
                config=step.config.to_json(),
                runtime_config=dict(step.runtime_config),
                default=step.default,
                device_info_file=step.device_info_file,
            )
            for step in steps
        ]
        with _Rollback(lambda made: self._delete_entry(cache, made, req, executor)) as track:
            # LESSONS #1: the whole plan is on disk, synced, before any delegate
            # touches anything; a crash at any point leaves DEL all it needs.
            # One fsync per ADD instead of two per delegate.
            cache.save(replace(entry, attachments=tuple(planned)))
            track(entry)  # for rollback: only what was attempted
            for step, attachment in zip(steps, planned, strict=True):
                entry = entry.with_attachment(attachment)
                track(entry)
                try:
                    result = invoke.add_network(
                        step.config,
                        self._runtime(req, step.ifname),
                        executor,
                        runtime_config=step.runtime_config,
                    )
                except CniError as exc:
                    raise CniError(
                        exc.code, f"{step.network} ({step.ifname}): {exc.msg}", exc.details
                    ) from None
                entry = entry.with_attachment(replace(attachment, result=result.to_json()))
                track(entry)
                results.append(result)
            # The results make CHECK and DEL's prevResult exact; losing them only
            # costs DEL its prevResult (the plan above is on disk), so no fsync,
            # and they are written while the status is: the disk and the API
            # server are not waited for in turn.
            final = entry
            results_saved = self.env.in_background(lambda: cache.save(final, durable=False))
            try:
                results = self._apply_default_route(req, steps, results)
                status_text = netstatus.status_annotation(
                    netstatus.build_status(
                        [
                            netstatus.status_entry(
                                network=step.network,
                                result=result,
                                default=step.default,
                                default_route=step.default_route,
                                device_info=_device_info(step.device_info_file),
                            )
                            for step, result in zip(steps, results, strict=True)
                        ]
                    )
                )
                if source is not None and pod_id is not None:
                    self._write_status(cfg, source, pod_id, status_text)
            finally:
                # Before any rollback removes the cache: nothing may land after it.
                unsaved = results_saved()
            if unsaved is not None:
                log.warning("results not cached, DEL will run without them: %s", unsaved)
        if source is not None and pod_id is not None and cfg.events:
            for step, result in zip(steps, results, strict=True):
                addresses = ", ".join(ip.address for ip in result.ips)
                self._event(
                    source,
                    namespace=pod_id.namespace,
                    name=pod_id.name,
                    uid=entry.pod_uid,
                    reason="AddedInterface",
                    message=f"Add {step.ifname} [{addresses}] from {step.network}",
                )
        return results[0]

    def _wait_ready(self, cfg: MetaConfig) -> None:
        """LESSONS #3: never attach before the cluster network is ready."""
        if not cfg.readiness_file:
            return
        deadline = self.env.monotonic() + cfg.readiness_timeout
        while not os.path.exists(cfg.readiness_file):
            if self.env.monotonic() >= deadline:
                raise CniError(
                    Code.TRY_AGAIN_LATER,
                    "cluster network is not ready",
                    f"readiness indicator file {cfg.readiness_file} does not exist",
                )
            self.env.sleep(0.1)

    def _read_pod(self, source: Source | None, pod_id: PodIdentity | None) -> PodInfo | None:
        if source is None or pod_id is None:
            return None
        pod = source.get_pod(namespace=pod_id.namespace, name=pod_id.name)
        if pod_id.uid and pod.uid and pod_id.uid != pod.uid:
            raise CniError(
                Code.CONTAINER_UNKNOWN,
                "pod UID mismatch: the pod was replaced",
                f"{pod_id.namespace}/{pod_id.name}: runtime says {pod_id.uid}, API says {pod.uid}",
            )
        return pod

    def _write_status(
        self, cfg: MetaConfig, source: Source, pod_id: PodIdentity, status_text: str
    ) -> None:
        """LESSONS #16: retry; then roll back (default) or warn, by config."""
        error: CniError | None = None
        for attempt in range(self.env.status_retries):
            try:
                source.write_status(
                    namespace=pod_id.namespace, name=pod_id.name, status=status_text
                )
                return
            except CniError as exc:
                error = exc
                log.warning("network-status write failed (attempt %d): %s", attempt + 1, exc)
                self.env.sleep(0.05 * (attempt + 1))
        assert error is not None
        if cfg.status_failure == "warn":
            self._event(
                source,
                namespace=pod_id.namespace,
                name=pod_id.name,
                uid=pod_id.uid,
                reason="NetworkStatusNotWritten",
                message=f"networks are up but network-status could not be written: {error}",
                warning=True,
            )
            return
        raise CniError(Code.STATUS_WRITE, "cannot write network-status", str(error))

    def _apply_default_route(
        self, req: Request, steps: Sequence[planning.Step], results: list[Result]
    ) -> list[Result]:
        """NPWG default-route: move the default route(s) to the chosen network."""
        chosen = [i for i, s in enumerate(steps) if s.default_route]
        if not chosen:
            return results
        index = chosen[0]
        step = steps[index]
        self.env.routes.set_default_routes(
            netns=req.netns, ifname=step.ifname, gateways=step.default_route
        )
        families = {4 if ":" not in gw else 6 for gw in step.default_route}
        out = list(results)
        cluster = results[0]
        out[0] = replace(
            cluster,
            routes=tuple(r for r in cluster.routes if not _is_default(r, families)),
        )
        out[index] = replace(
            results[index],
            routes=(
                *results[index].routes,
                *(
                    Route(dst="0.0.0.0/0" if ":" not in gw else "::/0", gw=gw)
                    for gw in step.default_route
                ),
            ),
        )
        return out

    # -- DEL -------------------------------------------------------------

    def delete(self, req: Request) -> None:
        cache = StateCache(_cache_dir(req.config))
        entry = cache.load(ContainerID(req.container_id))
        cfg: MetaConfig | None
        try:
            cfg = parse_config(req.config)
        except CniError as exc:
            if entry is None:
                raise
            log.warning("DEL with an invalid config, working from the cache: %s", exc)
            cfg = None
        executor = self.env.make_executor(cfg)
        if entry is not None:
            self._delete_entry(cache, entry, req, executor)
            return
        assert cfg is not None
        self._delete_without_cache(cfg, req, executor)

    def _delete_entry(
        self, cache: StateCache, entry: CacheEntry, req: Request, executor: Executor
    ) -> None:
        """DEL every cached attachment in reverse; keep the ones that failed."""
        failed: list[str] = []
        done: set[str] = set()
        for attachment in reversed(entry.attachments):
            try:
                net = NetworkConfig.parse(attachment.config)
                prev = Result.from_json(attachment.result) if attachment.result else None
                invoke.del_network(
                    net,
                    self._runtime(req, attachment.ifname, args=req.args or entry.cni_args),
                    executor,
                    runtime_config=attachment.runtime_config,
                    prev_result=prev,
                )
                done.add(attachment.ifname)
            except invoke.PluginNotFoundError as exc:
                if attachment.result is not None:
                    log.error(
                        "DEL of %s (%s) failed: %s", attachment.network, attachment.ifname, exc
                    )
                    failed.append(f"{attachment.network} ({attachment.ifname}): {exc}")
                else:
                    # Its ADD never completed and its plugin cannot even be
                    # found: nothing of it can exist, so it is gone already.
                    log.warning(
                        "DEL of %s (%s): %s; never added",
                        attachment.network,
                        attachment.ifname,
                        exc,
                    )
                    done.add(attachment.ifname)
            except CniError as exc:
                runtime = self._runtime(req, attachment.ifname, args=req.args or entry.cni_args)
                if self._gone_anyway(
                    attachment.config,
                    attachment.runtime_config,
                    netns=req.netns or entry.netns,
                    runtime=runtime,
                    executor=executor,
                    error=exc,
                ):
                    done.add(attachment.ifname)
                else:
                    log.error(
                        "DEL of %s (%s) failed: %s", attachment.network, attachment.ifname, exc
                    )
                    failed.append(f"{attachment.network} ({attachment.ifname}): {exc}")
            if attachment.device_info_file:
                try:  # noqa: SIM105  # contextlib costs the binary ~2 ms a call
                    os.unlink(attachment.device_info_file)
                except FileNotFoundError:
                    pass
        remaining = entry.without(done)
        if remaining.attachments:
            cache.save(remaining)
        else:
            cache.remove(entry.container_id)
        if failed:
            raise CniError(Code.DELEGATE_FAILED, "DEL failed for some networks", "; ".join(failed))

    def _gone_anyway(
        self,
        config: Mapping[str, Any] | NetworkConfig,
        runtime_config: Mapping[str, Any],
        *,
        netns: str,
        runtime: Runtime,
        executor: Executor,
        error: CniError,
    ) -> bool:
        """A delegate's DEL failed: is the attachment gone all the same?

        Some plugins cannot DEL once their host parts are gone (reference
        macvlan 1.1.1 without its master: "Link not found"), which would keep
        the IP lease and fail every later DEL. When the interface is no
        longer in the pod, jaring releases the IPAM of each plugin itself;
        if that works, nothing of the attachment is left and DEL succeeds.
        """
        if self.env.links.exists(netns=netns, ifname=runtime.ifname):
            return False
        try:
            net = config if isinstance(config, NetworkConfig) else NetworkConfig.parse(config)
        except CniError:
            return False
        for index in reversed(range(len(net.plugins))):
            ipam = net.plugins[index].get("ipam")
            ipam_type = ipam.get("type") if isinstance(ipam, dict) else None
            if not isinstance(ipam_type, str) or not ipam_type:
                continue
            conf = net.plugin_config(index, runtime_config=runtime_config)
            try:
                executor("DEL", ipam_type, jsoncodec.dumps(conf).encode(), runtime)
            except CniError as ipam_error:
                log.error(
                    "DEL of %s (%s): IPAM %s release failed too: %s",
                    net.name,
                    runtime.ifname,
                    ipam_type,
                    ipam_error,
                )
                return False
        log.warning(
            "DEL of %s (%s) failed (%s) but its interface is gone and its IPAM released",
            net.name,
            runtime.ifname,
            error,
        )
        return True

    def _delete_without_cache(self, cfg: MetaConfig, req: Request, executor: Executor) -> None:
        """No cache (never added, or it was lost): DEL what can be found."""
        pod_id = PodIdentity.from_request(req)
        steps: Sequence[planning.Step] = ()
        try:
            source = self.env.make_source(cfg)
            pod = self._read_pod(source, pod_id)
            steps = planning.build_plan(
                cfg,
                pod=pod,
                cluster_ifname=IfName(req.ifname),
                runtime_config=None,
                lookup=_lookup(source),
            )
        except CniError as exc:
            log.warning("DEL without cache: pod or networks unavailable (%s)", exc)
            try:
                cluster = planning.cluster_config(cfg, lookup=None)
            except CniError as inner:
                log.warning("DEL without cache: no cluster network either (%s)", inner)
                return
            steps = (
                planning.Step(
                    network=cluster.name,
                    ifname=IfName(req.ifname),
                    config=cluster,
                    runtime_config={},
                    default=True,
                ),
            )
        failed = []
        for step in reversed(steps):
            runtime = self._runtime(req, step.ifname)
            try:
                invoke.del_network(
                    step.config, runtime, executor, runtime_config=step.runtime_config
                )
            except CniError as exc:
                if not self._gone_anyway(
                    step.config,
                    step.runtime_config,
                    netns=req.netns,
                    runtime=runtime,
                    executor=executor,
                    error=exc,
                ):
                    failed.append(f"{step.network} ({step.ifname}): {exc}")
        if failed:
            raise CniError(Code.DELEGATE_FAILED, "DEL failed for some networks", "; ".join(failed))

    # -- CHECK -----------------------------------------------------------

    def check(self, req: Request) -> None:
        cfg = parse_config(req.config)
        entry = StateCache(cfg.cache_dir).load(ContainerID(req.container_id))
        if entry is None or not entry.attachments:
            raise CniError(
                Code.CONTAINER_UNKNOWN, "no attachments cached for this container", req.container_id
            )
        executor = self.env.make_executor(cfg)
        for attachment in entry.attachments:
            if attachment.result is None:
                raise CniError(
                    Code.OTHER,
                    "attachment never completed",
                    f"{attachment.network} ({attachment.ifname})",
                )
            net = NetworkConfig.parse(attachment.config)
            try:
                invoke.check_network(
                    net,
                    self._runtime(req, attachment.ifname),
                    executor,
                    runtime_config=attachment.runtime_config,
                    prev_result=Result.from_json(attachment.result),
                )
            except CniError as exc:
                raise CniError(
                    exc.code, f"{attachment.network} ({attachment.ifname}): {exc.msg}", exc.details
                ) from None

    # -- STATUS ----------------------------------------------------------

    def status(self, req: Request) -> None:
        cfg = parse_config(req.config)
        if cfg.readiness_file and not os.path.exists(cfg.readiness_file):
            raise CniError(
                Code.NOT_AVAILABLE,
                "cluster network is not ready",
                f"readiness indicator file {cfg.readiness_file} does not exist",
            )
        executor = self.env.make_executor(cfg)
        # LESSONS #13: the cluster network and every delegate network in use.
        networks = {}
        cluster = planning.cluster_config(cfg, lookup=_lookup(self.env.make_source(cfg)))
        networks[cluster.name] = cluster
        cache = StateCache(cfg.cache_dir)
        for container_id in cache.container_ids():
            entry = cache.load(container_id)
            for attachment in entry.attachments if entry else ():
                try:
                    net = NetworkConfig.parse(attachment.config)
                except CniError:
                    continue
                networks.setdefault(net.name, net)
        for name, net in networks.items():
            try:
                invoke.status_network(net, executor, path=req.path)
            except CniError as exc:
                raise CniError(
                    exc.code, f"network {name} is not ready: {exc.msg}", exc.details
                ) from None

    # -- GC --------------------------------------------------------------

    def gc(self, req: Request) -> None:
        """LESSONS #2: DEL what the runtime no longer knows, then GC delegates."""
        cfg = parse_config(req.config)
        valid = _valid_attachments(req.config)
        valid_ids = {a["containerID"] for a in valid}
        cache = StateCache(cfg.cache_dir)
        executor = self.env.make_executor(cfg)
        failed: list[str] = []
        networks: dict[str, NetworkConfig] = {}
        keep: dict[str, list[dict[str, str]]] = {}
        for container_id in cache.container_ids():
            entry = cache.load(container_id)
            if entry is None:
                continue
            for attachment in entry.attachments:
                try:
                    net = NetworkConfig.parse(attachment.config)
                except CniError:
                    continue
                networks.setdefault(net.name, net)
                if container_id in valid_ids:
                    keep.setdefault(net.name, []).append(
                        {"containerID": container_id, "ifname": attachment.ifname}
                    )
            if container_id not in valid_ids:
                gone = replace(req, container_id=container_id, netns="", ifname="")
                try:
                    self._delete_entry(cache, entry, gone, executor)
                except CniError as exc:
                    failed.append(f"{container_id}: {exc}")
        try:
            cluster = planning.cluster_config(cfg, lookup=None)
            networks.setdefault(cluster.name, cluster)
        except CniError as exc:
            log.info("GC: cluster network not resolvable without the API: %s", exc)
        for name, net in networks.items():
            try:
                invoke.gc_network(
                    net, executor, path=req.path, valid_attachments=keep.get(name, [])
                )
            except CniError as exc:
                failed.append(f"GC of {name}: {exc}")
        if failed:
            raise CniError(Code.DELEGATE_FAILED, "GC incomplete", "; ".join(failed))

    # -- helpers ---------------------------------------------------------

    @staticmethod
    def _runtime(
        req: Request, ifname: str, *, args: tuple[tuple[str, str], ...] | None = None
    ) -> Runtime:
        chosen = req.args if args is None else args
        # Delegates built on libcni reject CNI_ARGS they do not know unless
        # told to ignore them; runtimes always say so, test harnesses may not.
        if not any(key == "IgnoreUnknown" for key, _ in chosen):
            chosen = (("IgnoreUnknown", "1"), *chosen)
        return Runtime(
            container_id=req.container_id,
            netns=req.netns,
            ifname=ifname,
            args=chosen,
            path=req.path,
        )


def _device_info(path: str) -> dict[str, Any] | None:
    """The device-info a delegate wrote for the status entry; tolerant of junk."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            doc = jsoncodec.loads(handle.read())
    except (OSError, ValueError) as exc:
        log.info("no device-info at %s: %s", path, exc)
        return None
    return doc if isinstance(doc, dict) else None


def _is_default(route: Route, families: set[int]) -> bool:
    if route.dst == "0.0.0.0/0":
        return 4 in families
    if route.dst == "::/0":
        return 6 in families
    return False


def _lookup(source: Source | None) -> NadLookup | None:
    if source is None:
        return None

    def lookup(namespace: Namespace, name: NadName) -> NadInfo | None:
        return source.get_nad(namespace=namespace, name=name)

    return lookup


def _cache_dir(config: Mapping[str, Any]) -> str:
    from .config import DEFAULT_CACHE_DIR

    value = config.get("cniDir")
    return value if isinstance(value, str) and value else DEFAULT_CACHE_DIR


def _valid_attachments(config: Mapping[str, Any]) -> list[dict[str, str]]:
    for key in VALID_ATTACHMENTS_KEYS:
        if key in config:
            raw = config[key]
            break
    else:
        raise CniError(
            Code.INVALID_CONFIG,
            "GC needs the runtime's valid attachments",
            "config has no 'cni.dev/valid-attachments'",
        )
    if not isinstance(raw, list):
        raise CniError(Code.INVALID_CONFIG, "cni.dev/valid-attachments must be a list", repr(raw))
    valid = []
    for index, item in enumerate(raw):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("containerID"), str)
            or not isinstance(item.get("ifname", ""), str)
        ):
            raise CniError(
                Code.INVALID_CONFIG,
                f"cni.dev/valid-attachments[{index}] must have containerID and ifname",
                repr(item)[:200],
            )
        valid.append({"containerID": item["containerID"], "ifname": item.get("ifname", "")})
    return valid
