"""Following Kubernetes jobs from one event loop: one watch of all pods of the deployment, log follows.

The watch lists the pods labelled with this deployment (ACC_INSTANCE) and
then watches them from the list's resourceVersion; when the API server says
the version is too old (410) or the stream drops, it lists again, so an
event missed while nobody listened is seen in the next list. `wait` reads
the job container's end (exit code, OOMKilled) from the latest pod seen, or
the kubelet's reason when it cannot start it (an image it cannot pull);
`started` tells when a pod created by `start` began to run its command (the
worker that created it does not wait for the node).
Each running pod has one log follow through the API server with
timestamps; the timestamp of the last line shipped is the cursor a
restarted supervisor resumes after. Usage comes from the kubelet's summary
(one request per node for all pods). All of it is asyncio
(kubernetes_asyncio, aiohttp): no thread per pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

from backends import kube_manifests as km
from backends.base import NOT_STARTED, Exit
from backends.kubernetes import KubernetesBackend
from backends.watch import Watcher, nanoseconds

log = logging.getLogger(__name__)

_WATCH_SECONDS = 240  # the API server ends a watch after this; we list again and go on
_GONE = 410
_CLOCK_MARGIN = 60  # s added to a log resume window: the node's clock may differ from ours


def _created(pod: dict) -> float:
    stamp = ((pod.get("metadata") or {}).get("creationTimestamp") or "").encode()
    at = nanoseconds(stamp)
    return at / 10**9 if at is not None else time.time()


class KubeWatcher(Watcher):
    def __init__(self, backend: KubernetesBackend):
        self.backend = backend
        self.namespace = backend.namespace
        self.selector = km.selector(backend.instance)
        self.api = None
        self.core = None
        self.pods: dict[str, dict] = {}  # name -> the pod as last seen
        self._changed: dict[str, asyncio.Event] = {}  # name -> set (and dropped) at the pod's next change
        self._started_at: dict[str, float] = {}  # name -> when the watch saw its command start
        self._listed = asyncio.Event()
        self._watch: asyncio.Task | None = None
        self._stops = ThreadPoolExecutor(4, thread_name_prefix="kube-stop")  # exec calls of the sync client
        self._follows: dict[str, object] = {}  # pod name -> its open log follow (a response)
        self._cut: set[str] = set()  # pods whose follow `ended` closed
        self._gave_up: set[str] = set()  # pods that ended their job before its command started

    async def open(self) -> None:
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        if self.backend.kubeconfig:
            await config.load_kube_config(config_file=self.backend.kubeconfig, client_configuration=configuration)
        else:
            config.load_incluster_config(client_configuration=configuration)
        configuration.connection_pool_maxsize = 0  # no limit: one connection per followed log
        self.api = client.ApiClient(configuration=configuration)
        self.core = client.CoreV1Api(self.api)
        self._watch = asyncio.create_task(self._follow_pods())
        # the sync client for stops, connected now: a first cancel must not wait for the kubeconfig to load
        await asyncio.get_running_loop().run_in_executor(self._stops, lambda: self.backend.core)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listed.wait(), 30)

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.api is not None:
            await self.api.close()
        self._stops.shutdown(wait=False)

    # --- the watch ---------------------------------------------------------------------
    async def _follow_pods(self) -> None:
        while True:
            try:
                version = await self._list()
                while version:
                    version = await self._watch_from(version)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("the pod watch dropped; listing again", exc_info=True)
                await asyncio.sleep(1)

    async def _list(self) -> str:
        resp = await self.core.list_namespaced_pod(self.namespace, label_selector=self.selector, _preload_content=False)
        body = json.loads(await resp.read())
        seen = {}
        for pod in body.get("items") or []:
            seen[pod["metadata"]["name"]] = pod
        gone = set(self.pods) - set(seen)
        for name, pod in seen.items():
            self._seen(name, pod)
        self.pods = seen
        for name in gone:
            self._started_at.pop(name, None)
        for name in set(seen) | gone:
            self._wake(name)
        self._listed.set()
        return body["metadata"].get("resourceVersion") or ""

    async def _watch_from(self, version: str) -> str:
        """Apply the watch's events; the version to go on from, or "" to list again."""
        resp = await self.core.list_namespaced_pod(
            self.namespace,
            label_selector=self.selector,
            watch=True,
            resource_version=version,
            timeout_seconds=_WATCH_SECONDS,
            allow_watch_bookmarks=True,
            _preload_content=False,
        )
        async with resp:
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, pod = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    return "" if pod.get("code") == _GONE else version
                version = (pod.get("metadata") or {}).get("resourceVersion") or version
                if kind == "BOOKMARK":
                    continue
                name = pod["metadata"]["name"]
                if kind == "DELETED":
                    self.pods.pop(name, None)
                    self._started_at.pop(name, None)
                else:
                    self._seen(name, pod)
                    self.pods[name] = pod
                self._wake(name)
        return version

    async def _read(self, name: str) -> dict | None:
        from kubernetes_asyncio.client.rest import ApiException

        try:
            resp = await self.core.read_namespaced_pod(name, self.namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        body = json.loads(await resp.read())
        if body.get("kind") == "Status":  # not raised for a raw response: {"kind": "Status", "code": 404, ...}
            if body.get("code") == 404:
                return None
            raise RuntimeError(f"cannot read the pod {name}: {body.get('message') or body}")
        return body

    def _seen(self, name: str, pod: dict) -> None:
        """Note when a pod seen waiting is seen with its command started (the time its job began to run)."""
        before = self.pods.get(name)
        if before is not None and not km.job_started(before) and km.job_started(pod):
            self._started_at.setdefault(name, time.time())

    def _wake(self, name: str) -> None:
        event = self._changed.pop(name, None)
        if event is not None:
            event.set()

    async def _pod(self, name: str) -> tuple[dict | None, asyncio.Event]:
        """The pod as last seen, and an event set at its next change (taken first: no change is missed)."""
        changed = self._changed.setdefault(name, asyncio.Event())
        pod = self.pods.get(name) or await self._read(name)  # the watch may not have told us of it yet
        return pod, changed

    @staticmethod
    async def _until(changed: asyncio.Event, seconds: float = 60.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), max(seconds, 0.1))  # a lost event costs a minute, not the job

    # --- one job -------------------------------------------------------------------
    async def wait(self, state: dict) -> Exit:
        while True:
            pod, changed = await self._pod(state["name"])
            if pod is None:
                return Exit(-1)  # deleted behind our back: it ended, how is lost
            ended = km.job_exit(pod)
            if ended is not None:
                return Exit(ended[0], oom_killed=ended[1])
            problem = km.waiting_problem(pod)
            if problem:
                return Exit(-1, problem=problem)
            left = 60.0
            if not km.job_started(pod):  # waiting for a node with room, or for its images
                left = self.backend.start_timeout - (time.time() - _created(pod))
                if left <= 0:
                    reason = km.pending_reason(pod)
                    return Exit(-1, problem=f"{NOT_STARTED} {self.backend.start_timeout} s ({reason})")
            await self._until(changed, min(left, 60.0))

    async def started(self, state: dict) -> float | None:
        while True:
            pod, changed = await self._pod(state["name"])
            if pod is None or km.waiting_problem(pod):
                return None
            if km.job_started(pod):  # running, or ended already (a short command may never be seen running)
                return self._started_at.pop(state["name"], None)
            await self._until(changed)

    async def logs(self, state: dict, cursor: str) -> AsyncIterator[tuple[bytes, str]]:
        """The job container's log with timestamps; followed again if the stream drops while it runs, and read
        once more after it ended. Lines at or before the cursor (nanoseconds) are skipped."""
        after = [int(cursor) if cursor else 0]
        while True:
            pod, changed = await self._pod(state["name"])
            if pod is not None and not km.job_started(pod) and km.job_exit(pod) is None:
                if km.waiting_problem(pod) or state["name"] in self._gave_up:
                    self._gave_up.discard(state["name"])
                    return  # it will never start: nothing to read
                await self._until(changed)  # nothing to read before the command starts
                continue
            async for piece in self._read_logs(state["name"], after, follow=True):
                yield piece
            pod = self.pods.get(state["name"]) or await self._read(state["name"])
            if pod is None or km.job_exit(pod) is not None:
                async for piece in self._read_logs(state["name"], after, follow=False):
                    yield piece
                return
            await asyncio.sleep(0.5)

    async def _read_logs(self, name: str, after: list[int], *, follow: bool) -> AsyncIterator[tuple[bytes, str]]:
        from kubernetes_asyncio.client.rest import ApiException

        params = {"container": km.JOB_CONTAINER, "follow": follow, "timestamps": True, "_preload_content": False}
        if after[0]:
            params["since_seconds"] = max(1, int(time.time() - after[0] / 10**9) + _CLOCK_MARGIN)
        try:
            resp = await self.core.read_namespaced_pod_log(name, self.namespace, **params)
        except ApiException as exc:
            if exc.status in (400, 404):  # not started yet, or gone
                return
            raise
        if follow:
            self._follows[name] = resp
        try:
            async with resp:
                pending = b""
                async for piece in resp.content.iter_any():
                    pending += piece
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        stamp, _, data = line.partition(b" ")
                        at = nanoseconds(stamp)
                        if at is None:
                            yield line + b"\n", str(after[0])
                            continue
                        if at <= after[0]:
                            continue
                        after[0] = at
                        yield data + b"\n", str(at)
        except Exception:
            if name not in self._cut:
                raise  # cut by `ended`: the read after the end (from the cursor) takes over
        finally:
            if follow:
                self._follows.pop(name, None)
                self._cut.discard(name)

    def ended(self, state: dict) -> None:
        """The job container ended: its follow is closed now (the kubelet would end it only at its next status
        check, up to 5 s later) and `logs` reads what is left from its cursor."""
        pod = self.pods.get(state["name"])
        if pod is not None and not km.job_started(pod):
            self._gave_up.add(state["name"])  # `wait` gave up on its start: its `logs` stops waiting too
            self._wake(state["name"])
        resp = self._follows.get(state["name"])
        if resp is not None:
            self._cut.add(state["name"])
            resp.close()

    async def stop(self, state: dict, *, grace: float, outputs: bool = True) -> None:
        """A job whose outputs are still wanted is stopped inside its pod (which stays for them); otherwise
        the pod is deleted with `grace`: one API call, and the kubelet stops every container at once. A pod
        whose command has not started yet has nothing to end gracefully: it goes at once."""
        loop = asyncio.get_running_loop()
        pod = self.pods.get(state["name"])
        if pod is not None and not km.job_started(pod):
            grace, outputs = 0, False
        if outputs:
            loop.run_in_executor(self._stops, lambda: self.backend.stop(state, grace=grace))
        else:
            loop.run_in_executor(self._stops, lambda: self.backend.delete(state, grace=grace))

    async def usage(self, states: dict[int, dict]) -> dict[int, tuple[float, int]]:
        """From each node's kubelet summary: one request per node for every pod on it."""
        wanted = {state["name"]: job_id for job_id, state in states.items()}
        nodes = {(p.get("spec") or {}).get("nodeName") for n, p in self.pods.items() if n in wanted}
        found: dict[int, tuple[float, int]] = {}
        for node in filter(None, nodes):
            try:
                resp = await self.core.connect_get_node_proxy_with_path(node, "stats/summary", _preload_content=False)
                summary = json.loads(await resp.read())
            except Exception:
                continue
            for pod in summary.get("pods") or []:
                job_id = wanted.get((pod.get("podRef") or {}).get("name"))
                for container in pod.get("containers") or []:
                    if job_id is None or container.get("name") != km.JOB_CONTAINER:
                        continue
                    cpu = ((container.get("cpu") or {}).get("usageCoreNanoSeconds") or 0) / 1e9
                    memory = (container.get("memory") or {}).get("workingSetBytes") or 0
                    found[job_id] = (cpu, int(memory))
        return found
