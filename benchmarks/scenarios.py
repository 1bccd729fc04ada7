"""The scenarios. Each declares its rows, sets up what it reads on every registry before the
rounds start (`prepare`: not measured), and in every round measures one column at a time
(`measure`: the runner alternates the columns so machine noise falls on both).

`--only` takes the scenarios' names: push, pull, direct-pull, fronted, base, manifest, head, concurrent,
small-push, listing, auth, ui, memory, limits.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from benchmarks.context import BASE_REPO, BASE_TAG, Bench
from benchmarks.load import ab_head, curl_clients, curl_get, wrk
from benchmarks.pages import Page, check, p50, p95, pages_of, seed, sizes_for, time_pages
from benchmarks.payloads import Payloads, config_blob
from benchmarks.plan import MIB, Plan
from benchmarks.processes import cpu_seconds_between, thread_cpu, tree
from benchmarks.registry import (
    MANIFEST_TYPE,
    Blob,
    RegistryClient,
    basic_auth,
    image_manifest,
    session_cookie,
    token_url,
)
from benchmarks.results import DISTRIBUTION, MACHINE, PORTSIDE, Row
from benchmarks.servers import PASSWORD, PROJECT, USERNAME, Registry

__all__ = ["Scenario", "SCENARIOS", "Sample"]

Sample = tuple[str, float]  # (row key, value)

ACCEPT = {"Accept": MANIFEST_TYPE}
REGISTRIES = (PORTSIDE, DISTRIBUTION)


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n >= MIB and n % MIB == 0 else f"{n // 1024} KiB"


class Scenario:
    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]] = REGISTRIES
    modes: ClassVar[tuple[str, ...]] = ("open",)  # the registries it needs running

    def __init__(self, plan: Plan):
        self.plan = plan

    def rows(self) -> tuple[Row, ...]:
        raise NotImplementedError

    def prepare(self, bench: Bench, registry: Registry) -> None:
        """Set up, on one registry of `modes`, what the measurements read."""

    def measure(self, bench: Bench, column: str) -> Iterable[Sample]:
        raise NotImplementedError

    def finish(self, bench: Bench) -> Iterable[tuple[str, str, float]]:
        """Samples known only at the end of the run: (row key, column, value)."""
        return ()


class BlobPush(Scenario):
    name = "push"

    def rows(self) -> tuple[Row, ...]:
        size, chunk = _size(self.plan.blob_bytes), _size(self.plan.chunk_bytes)
        return (
            Row("push.monolithic", f"blob push, {size}, monolithic (POST + PUT)", "MB/s"),
            Row("push.chunked", f"blob push, {size} in {chunk} PATCHes", "MB/s"),
        )

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        registry = bench.registry(column)
        for key, chunk in (("push.monolithic", None), ("push.chunked", self.plan.chunk_bytes)):
            blob = bench.payloads.fresh_copy()
            with bench.client(registry) as client:
                started = time.perf_counter()
                client.push_blob("bench/push", blob, chunk)
                yield key, blob.size / (time.perf_counter() - started) / 1e6


def _layers(plan: Plan) -> str:
    return " + ".join(_size(b) for b in plan.image_layer_bytes)


def _blob_url(registry: Registry, repo: str, digest: str) -> str:
    return f"{registry.url}/v2/{repo}/blobs/{digest}"


def _middle_half(size: int) -> tuple[int, int]:
    return size // 4, size // 4 + size // 2 - 1


class BlobPull(Scenario):
    name = "pull"

    def rows(self) -> tuple[Row, ...]:
        size = self.plan.blob_bytes
        return (
            Row("pull.full", f"blob pull, {_size(size)} (curl)", "MB/s"),
            Row("pull.range", f"blob pull with Range: the middle {_size(size // 2)}", "MB/s"),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        bench.base_image(registry)

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        url = _blob_url(bench.registry(column), BASE_REPO, bench.payloads.big.digest)
        for _ in range(self.plan.pulls_per_round):
            yield "pull.full", curl_get(url).mb_per_second
            yield "pull.range", curl_get(url, byte_range=_middle_half(self.plan.blob_bytes), expect=206).mb_per_second


class DirectPull(Scenario):
    """One client pulls the big blob straight from each registry, nothing in front, with no
    authentication and with it (Portside: a bearer token; Distribution: Basic credentials),
    several times per round. Beside each rate, the CPU time the server's processes spent on
    the pull: on a machine shared with other work the rate moves with what else runs, and
    the CPU a pull costs is what decides how much of the machine it gets.

    The blob is pulled once, untimed, while setting up: every timed pull reads it from the
    page cache, as a popular layer's pulls do."""

    name = "direct-pull"
    modes = ("open", "auth")

    def rows(self) -> tuple[Row, ...]:
        size = _size(self.plan.blob_bytes)
        return (
            Row("direct.open", f"direct pull, {size}, one client, no auth", "MB/s"),
            Row("direct.open.cpu", "direct pull, no auth: server CPU per pull", "ms", higher_is_better=False),
            Row("direct.token", f"direct pull, {size}, one client, with auth (P token, D Basic)", "MB/s"),
            Row("direct.token.cpu", "direct pull, with auth: server CPU per pull", "ms", higher_is_better=False),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        bench.base_image(registry)
        curl_get(_blob_url(registry, BASE_REPO, bench.payloads.big.digest), registry.client_auth(BASE_REPO))

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        for mode, key in (("open", "direct.open"), ("auth", "direct.token")):
            registry = bench.registry(column, mode)
            url = _blob_url(registry, BASE_REPO, bench.payloads.big.digest)
            headers = registry.client_auth(BASE_REPO)
            processes = list(tree(registry.pid))
            for _ in range(self.plan.direct_pulls):
                before = thread_cpu(processes)
                rate = curl_get(url, headers).mb_per_second
                yield key, rate
                yield f"{key}.cpu", cpu_seconds_between(before, thread_cpu(processes)) * 1e3


class FrontedPull(Scenario):
    """The pulls again, from a Portside behind nginx as deploy/nginx/portside-single.conf
    sets it up: Portside answers each blob GET with headers and X-Accel-Redirect, and nginx
    sends the file. Read against nginx's own sendfile (`limits`) and Distribution's pulls."""

    name = "fronted"
    columns = (PORTSIDE,)
    modes = ("fronted",)

    REPO = "bench/layers"

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self._image: list[Blob] = []

    def rows(self) -> tuple[Row, ...]:
        size, n = self.plan.blob_bytes, self.plan.concurrent_clients
        return (
            Row("fronted.full", f"blob pull, {_size(size)}, Portside behind nginx (X-Accel-Redirect)", "MB/s"),
            Row("fronted.range", f"blob pull with Range, {_size(size // 2)}, behind nginx", "MB/s"),
            Row("fronted.concurrent", f"{n} clients pull a 3-layer image, behind nginx: aggregate rate", "MB/s"),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        bench.base_image(registry)
        # The concurrent scenario's image: the same sizes, bytes of its own.
        config = config_blob("fronted")
        layers = [Payloads.random_blob(size) for size in self.plan.image_layer_bytes]
        with bench.client(registry) as client:
            client.push_image(self.REPO, "latest", config, layers)
        self._image = [config, *layers]

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        registry = bench.registry(column, "fronted")
        url = _blob_url(registry, BASE_REPO, bench.payloads.big.digest)
        for _ in range(self.plan.pulls_per_round):
            yield "fronted.full", curl_get(url).mb_per_second
            ranged = curl_get(url, byte_range=_middle_half(self.plan.blob_bytes), expect=206)
            yield "fronted.range", ranged.mb_per_second
        urls = [f"{registry.url}/v2/{self.REPO}/manifests/latest"]
        urls += [_blob_url(registry, self.REPO, blob.digest) for blob in self._image]
        wall, received = curl_clients(self.plan.concurrent_clients, urls, ACCEPT)
        yield "fronted.concurrent", received / wall / 1e6


class VersionCheck(Scenario):
    """`GET /v2/` touches no storage: its rate is what the HTTP stack alone allows, the
    ceiling for the manifest GET and blob HEAD rates."""

    name = "base"

    def rows(self) -> tuple[Row, ...]:
        return (
            Row("base.version", f"GET /v2/ (no storage: the stack's ceiling), {self.plan.connections} conn", "req/s"),
        )

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        url = f"{bench.registry(column).url}/v2/"
        yield "base.version", wrk(url, self.plan.load_seconds, self.plan.connections).requests_per_second


class ManifestGet(Scenario):
    name = "manifest"

    def rows(self) -> tuple[Row, ...]:
        c = self.plan.connections
        return (
            Row("manifest.tag", f"manifest GET by tag, {c} connections (wrk)", "req/s"),
            Row("manifest.tag.p99", "manifest GET by tag, p99 latency", "ms", higher_is_better=False),
            Row("manifest.digest", f"manifest GET by digest, {c} connections (wrk)", "req/s"),
            Row("manifest.digest.p99", "manifest GET by digest, p99 latency", "ms", higher_is_better=False),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        bench.base_image(registry)

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        registry = bench.registry(column)
        digest = bench.base_digests[(column, "open")]
        for key, reference in (("manifest.tag", BASE_TAG), ("manifest.digest", digest)):
            rate = wrk(
                f"{registry.url}/v2/{BASE_REPO}/manifests/{reference}",
                self.plan.load_seconds,
                self.plan.connections,
                ACCEPT,
            )
            yield key, rate.requests_per_second
            yield f"{key}.p99", rate.p99_ms


class BlobHead(Scenario):
    name = "head"

    def rows(self) -> tuple[Row, ...]:
        return (
            Row("head.blob", f"blob HEAD, {self.plan.connections} connections (ab -k)", "req/s"),
            Row("head.blob.p99", "blob HEAD, p99 latency", "ms", higher_is_better=False),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        bench.base_image(registry)

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        url = _blob_url(bench.registry(column), BASE_REPO, bench.payloads.big.digest)
        rate = ab_head(url, self.plan.load_seconds, self.plan.connections)
        yield "head.blob", rate.requests_per_second
        yield "head.blob.p99", rate.p99_ms


class ConcurrentPulls(Scenario):
    """Many clients pull one image at once: its manifest, config and three layers each."""

    name = "concurrent"
    REPO = "bench/layers"

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self._config: Blob | None = None
        self._layers: list[Blob] = []

    def rows(self) -> tuple[Row, ...]:
        n = self.plan.concurrent_clients
        return (
            Row("concurrent.wall", f"{n} clients pull a 3-layer image ({_layers(self.plan)}): wall time", "s", False),
            Row("concurrent.throughput", f"{n} clients pull a 3-layer image: aggregate rate", "MB/s"),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        if self._config is None:
            self._config = config_blob("layers")
            self._layers = [Payloads.random_blob(size) for size in self.plan.image_layer_bytes]
        with bench.client(registry) as client:
            client.push_image(self.REPO, "latest", self._config, self._layers)

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        assert self._config is not None
        registry = bench.registry(column)
        urls = [f"{registry.url}/v2/{self.REPO}/manifests/latest"]
        urls += [_blob_url(registry, self.REPO, blob.digest) for blob in (self._config, *self._layers)]
        wall, received = curl_clients(self.plan.concurrent_clients, urls, ACCEPT)
        yield "concurrent.wall", wall
        yield "concurrent.throughput", received / wall / 1e6


class SmallPushes(Scenario):
    """One client pushes many small images in a row: config, one small layer, manifest."""

    name = "small-push"

    def rows(self) -> tuple[Row, ...]:
        n, layer = self.plan.small_images, _size(self.plan.small_layer_bytes)
        return (
            Row("small.images", f"{n} small image pushes, one client (config + {layer} layer + manifest)", "images/s"),
        )

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        repo = bench.unique("bench/small")
        images = Payloads.small_images(self.plan.small_images, self.plan.small_layer_bytes, repo + column)
        manifests = [image_manifest(image.config, [image.layer]) for image in images]
        with bench.client(bench.registry(column)) as client:
            started = time.perf_counter()
            for i, (image, manifest) in enumerate(zip(images, manifests, strict=True)):
                client.push_blob(repo, image.config)
                client.push_blob(repo, image.layer)
                client.put_manifest(repo, f"v{i}", manifest)
            yield "small.images", len(images) / (time.perf_counter() - started)


_SEEDING_THREADS = 4


def _in_threads(
    registry: Registry, bench: Bench, items: list[int], work: Callable[[RegistryClient, int], None]
) -> None:
    """Run `work(client, item)` over `items` on a few connections at once (setup only)."""
    slices = [items[i::_SEEDING_THREADS] for i in range(_SEEDING_THREADS)]

    def run(part: list[int]) -> None:
        with bench.client(registry) as client:
            for item in part:
                work(client, item)

    with ThreadPoolExecutor(_SEEDING_THREADS) as pool:
        for done in [pool.submit(run, part) for part in slices]:
            done.result()


class Listings(Scenario):
    """The tags list of a repository with many tags, and a catalog page over many
    repositories: both registries get the same data; the seeding is not measured."""

    name = "listing"
    TAGS_REPO = "bench/tags"

    def rows(self) -> tuple[Row, ...]:
        tags, repos = self.plan.tags, self.plan.repositories
        return (
            Row("listing.tags", f"tags list, {tags:,} tags, median latency (1 connection)", "ms", False),
            Row("listing.catalog", f"catalog, {repos:,} repositories (n={repos}), median latency", "ms", False),
        )

    def _catalog_url(self, registry: Registry) -> str:
        return f"{registry.url}/v2/_catalog?n={self.plan.repositories}"

    def prepare(self, bench: Bench, registry: Registry) -> None:
        config, layer = config_blob("listing"), Blob.of(b"a small layer")
        manifest = image_manifest(config, [layer])
        with bench.client(registry) as client:
            client.push_image(self.TAGS_REPO, "t0", config, [layer])

        def tag(client: RegistryClient, i: int) -> None:
            client.put_manifest(self.TAGS_REPO, f"t{i:05d}", manifest)

        def repository(client: RegistryClient, i: int) -> None:
            repo = f"catalog/r{i:05d}"
            client.mount(repo, config.digest, self.TAGS_REPO)
            client.mount(repo, layer.digest, self.TAGS_REPO)
            client.put_manifest(repo, "latest", manifest)

        _in_threads(registry, bench, list(range(1, self.plan.tags)), tag)
        _in_threads(registry, bench, list(range(self.plan.repositories)), repository)
        # Both registries must answer with the same amount of data.
        with bench.client(registry) as client:
            tags = json.loads(client.get(f"/v2/{self.TAGS_REPO}/tags/list"))["tags"]
            repos = json.loads(client.get(f"/v2/_catalog?n={self.plan.repositories}"))["repositories"]
        if len(tags) != self.plan.tags or len(repos) != self.plan.repositories:
            raise RuntimeError(f"{registry.product} lists {len(tags)} tags and {len(repos)} repositories")

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        registry = bench.registry(column)
        seconds = self.plan.listing_seconds
        yield "listing.tags", wrk(f"{registry.url}/v2/{self.TAGS_REPO}/tags/list", seconds, 1).p50_ms
        yield "listing.catalog", wrk(self._catalog_url(registry), seconds, 1).p50_ms


class WithAuth(Scenario):
    """The pull scenarios again with authentication on: Portside with Docker token auth
    (the client fetches a token, then sends it as Bearer), Distribution with htpasswd (the
    client sends Basic credentials on every request). And signing in itself: tokens issued
    by Portside's /service/token against Basic credentials, beside Distribution's rate of
    requests checked with Basic credentials (it has no token endpoint of its own)."""

    name = "auth"
    modes = ("auth",)

    def rows(self) -> tuple[Row, ...]:
        c = self.plan.connections
        return (
            Row("auth.manifest", f"with auth: manifest GET by tag, {c} connections", "req/s"),
            Row("auth.manifest.p99", "with auth: manifest GET by tag, p99 latency", "ms", False),
            Row("auth.head", f"with auth: blob HEAD, {c} connections", "req/s"),
            Row("auth.head.p99", "with auth: blob HEAD, p99 latency", "ms", False),
            Row("auth.pull", f"with auth: blob pull, {_size(self.plan.blob_bytes)}", "MB/s"),
            Row(
                "auth.signin",
                f"sign-in rate: P token issue, D Basic-checked GET /v2/, {c} connections",
                "req/s",
            ),
        )

    def prepare(self, bench: Bench, registry: Registry) -> None:
        bench.base_image(registry)

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        registry = bench.registry(column, "auth")
        headers = registry.client_auth(BASE_REPO)  # a fresh token per round: it outlives any round
        plan = self.plan
        rate = wrk(
            f"{registry.url}/v2/{BASE_REPO}/manifests/{BASE_TAG}",
            plan.load_seconds,
            plan.connections,
            {**ACCEPT, **headers},
        )
        yield "auth.manifest", rate.requests_per_second
        yield "auth.manifest.p99", rate.p99_ms
        rate = ab_head(
            _blob_url(registry, BASE_REPO, bench.payloads.big.digest), plan.load_seconds, plan.connections, headers
        )
        yield "auth.head", rate.requests_per_second
        yield "auth.head.p99", rate.p99_ms
        yield "auth.pull", curl_get(_blob_url(registry, BASE_REPO, bench.payloads.big.digest), headers).mb_per_second
        if registry.product == PORTSIDE:
            signin = token_url(registry.url, [f"repository:{BASE_REPO}:pull"])
        else:
            signin = f"{registry.url}/v2/"
        yield (
            "auth.signin",
            wrk(signin, plan.load_seconds, plan.connections, basic_auth(USERNAME, PASSWORD)).requests_per_second,
        )


class WebPages(Scenario):
    """The web UI's pages as a signed-in administrator's browser asks for them (pages.py
    sets the data up and times them): the project list, a repository of 10,000 tags (its
    first, second and last pages, a tag filter, its tags view), and an artifact with a
    build history and referrers. Beside each page, the /api/v2.0 call that answers with
    the same data, timed in the same turns, shows what rendering the HTML adds.

    Portside only: Distribution has no UI, and no other registry with one runs here. On
    the registries with authentication, as pages are only of use with it; the session is
    opened by the sign-in endpoint, and every request carries its cookie."""

    name = "ui"
    columns = (PORTSIDE,)
    modes = ("auth",)

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self.sizes = sizes_for(plan)
        self._pages: list[Page] = []
        self._session: dict[str, str] = {}
        self._rounds = 0

    def rows(self) -> tuple[Row, ...]:
        found: list[Row] = []
        for page in pages_of(PROJECT, self.sizes):
            for stat in ("p50", "p95"):
                found.append(Row(f"ui.{page.key}.{stat}", f"UI page: {page.label}, {stat}", "ms", False))
            if page.api is not None:
                for stat in ("p50", "p95"):
                    label = f"  the same as JSON (API: {page.api_label}), {stat}"
                    found.append(Row(f"ui.{page.key}.api.{stat}", label, "ms", False))
        return tuple(found)

    def prepare(self, bench: Bench, registry: Registry) -> None:
        if registry.product != PORTSIDE:
            return
        seeded = seed(registry.url, registry.seeding_auth(), PROJECT, self.sizes)
        self._session = session_cookie(registry.url, USERNAME, PASSWORD)
        self._pages = pages_of(PROJECT, self.sizes, seeded)
        for page in self._pages:
            check(registry.url, self._session, page)

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        timed = {f"ui.{page.key}": page.path for page in self._pages}
        timed.update({f"ui.{page.key}.api": page.api for page in self._pages if page.api is not None})
        targets = list(timed.values())
        # The turns run the other way every other round: no page always follows the same one.
        if self._rounds % 2:
            targets.reverse()
        self._rounds += 1
        url = bench.registry(column, "auth").url
        timings = time_pages(url, self._session, targets, self.sizes.requests, self.sizes.warmup)
        for key, target in timed.items():
            yield f"{key}.p50", p50(timings[target])
            yield f"{key}.p95", p95(timings[target])


class PeakMemoryScenario(Scenario):
    """Peak memory of each server over the whole run (see memory.py)."""

    name = "memory"
    columns = ()
    modes = ()

    def rows(self) -> tuple[Row, ...]:
        return (
            Row("memory.open", "peak RSS, no auth (sum of VmHWM over its processes)", "MiB", False),
            Row("memory.open.pss", "peak PSS, no auth (highest sampled sum)", "MiB", False),
            Row("memory.auth", "peak RSS, with auth (sum of VmHWM over its processes)", "MiB", False),
            Row("memory.auth.pss", "peak PSS, with auth (highest sampled sum)", "MiB", False),
        )

    def finish(self, bench: Bench) -> Iterator[tuple[str, str, float]]:
        for product, mode in bench.registries:
            if mode == "fronted":
                continue  # not watched: its nginx would count too
            yield f"memory.{mode}", product, bench.memory.peak_mib(f"{product}-{mode}")
            yield f"memory.{mode}.pss", product, bench.memory.peak_pss_mib(f"{product}-{mode}")


class MachineLimits(Scenario):
    """What the machine itself does: SHA-256 over the big blob in memory, nginx sending it
    with sendfile (curl), nginx sending the concurrent scenario's image to as many curl
    clients at once (the ceiling beside that scenario's ratio), and writing the big blob to
    disk with an fsync at the end."""

    name = "limits"
    columns = (MACHINE,)
    modes = ()

    def __init__(self, plan: Plan):
        super().__init__(plan)
        self._image: list[str] | None = None

    def rows(self) -> tuple[Row, ...]:
        size = _size(self.plan.blob_bytes)
        n = self.plan.concurrent_clients
        return (
            Row("limits.sha256", f"hashlib sha256 over {size} in memory", "MB/s"),
            Row("limits.nginx", f"nginx sendfile of the {size} blob (curl)", "MB/s"),
            Row("limits.nginx.concurrent", f"nginx sendfile to {n} clients pulling the same image (curl)", "MB/s"),
            Row("limits.fsync", f"disk write of {size}, fsync'ed", "MB/s"),
        )

    def _image_names(self, directory: Path) -> list[str]:
        """The concurrent scenario's image as files nginx serves, in the order a client
        fetches them: manifest, config, layers. Same sizes, its own random bytes."""
        if self._image is None:
            config = config_blob("limits")
            layers = [Payloads.random_blob(size) for size in self.plan.image_layer_bytes]
            files = [("manifest.json", image_manifest(config, layers)), ("config.json", config.body)]
            files += [(f"layer{i}.bin", layer.body) for i, layer in enumerate(layers)]
            directory.mkdir(parents=True, exist_ok=True)
            for name, body in files:
                assert isinstance(body, bytes)
                (directory / name).write_bytes(body)
            self._image = [f"{directory.name}/{name}" for name, _ in files]
        return self._image

    def measure(self, bench: Bench, column: str) -> Iterator[Sample]:
        data = bench.payloads.big_path.read_bytes()
        view = memoryview(data)
        started = time.perf_counter()
        hasher = hashlib.sha256()
        for offset in range(0, len(view), MIB):
            hasher.update(view[offset : offset + MIB])
        yield "limits.sha256", len(data) / (time.perf_counter() - started) / 1e6
        assert bench.nginx is not None
        for _ in range(self.plan.pulls_per_round):
            yield "limits.nginx", curl_get(f"{bench.nginx.url}/{bench.payloads.big_path.name}").mb_per_second
        # The same curl clients as the concurrent scenario's, with the same headers.
        names = self._image_names(bench.payloads.root / "image")
        wall, received = curl_clients(self.plan.concurrent_clients, [f"{bench.nginx.url}/{n}" for n in names], ACCEPT)
        yield "limits.nginx.concurrent", received / wall / 1e6
        target = bench.root / "fsync.bin"
        started = time.perf_counter()
        with open(target, "wb") as f:
            for offset in range(0, len(view), 8 * MIB):
                f.write(view[offset : offset + 8 * MIB])
            f.flush()
            os.fsync(f.fileno())
        yield "limits.fsync", len(data) / (time.perf_counter() - started) / 1e6
        target.unlink()
        del view


SCENARIOS: tuple[type[Scenario], ...] = (
    BlobPush,
    BlobPull,
    DirectPull,
    FrontedPull,
    VersionCheck,
    ManifestGet,
    BlobHead,
    ConcurrentPulls,
    SmallPushes,
    Listings,
    WithAuth,
    WebPages,
    PeakMemoryScenario,
    MachineLimits,
)
