"""What the UI scenario does to Portside: set up the data its pages show, and time the
pages as a browser's requests.

The data, in the benchmarks' project (`bench`):
- projects beside it, so that the project list has pages of them, most with a storage
  limit of their own (a quota meter each);
- a repository, `bench/app`, of builds that a CI pipeline pushed and tagged one by one
  (`build-00000`, `build-00001`, ...): one tag per artifact, so every tag is a row of its
  own that the repository's list has to count, sort and page through. The builds are
  reproducible ones of the same tree, told apart by their manifests' annotations (the
  revision, the time of the build) over the same config and base layers: each is one
  PUT to seed, and the pages read the same rows as they would of builds with their own
  configs (the configs a page shows come from a cache after the first read);
- its newest build, the artifact whose page is timed: an OCI image of 10 layers whose
  config holds a history of 12 steps (the 10 layers, an ENV and a CMD), with two
  referrers, an SPDX SBOM and a Sigstore bundle, pushed by digest as `oras attach` and
  cosign push them.

Seeding goes through the benchmarks' own client on a few connections at once; it is not
timed. `time_pages` is what is timed: one keep-alive connection carrying the web
session's cookie, one request after another, the pages taking turns, each from sending
the request to the last byte of the answer.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from benchmarks.connection import Connection, HttpError
from benchmarks.plan import QUICK, Plan
from benchmarks.registry import Blob, RegistryClient, sha256_digest

__all__ = ["PageSizes", "Page", "Seeded", "sizes_for", "seed", "pages_of", "check", "time_pages", "p50", "p95"]

REPOSITORY = "app"  # in the benchmarks' project; the UI names it relative to the project

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
SPDX = "application/spdx+json"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"

# Portside spends a few milliseconds of CPU on a manifest PUT: more connections than its
# workers keep every one of them busy.
_SEEDING_CONNECTIONS = 8
# Rows a page of each list shows unless asked for more (mgmt/paging.py's DEFAULT_PAGE_SIZE;
# ARTIFACTS_PER_PAGE and TAGS_PER_PAGE in ui/views/repositories.py); the API calls beside
# them ask for as many.
PROJECTS_PER_PAGE = 10
ARTIFACTS_PER_PAGE = 20
TAGS_PER_PAGE = 50
_FIRST_BUILD = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
# What refers to the release (its type, its one layer's content); pushed by digest, each
# is an untagged artifact of the repository too.
_ABOUT_THE_RELEASE: tuple[tuple[str, dict[str, object]], ...] = (
    (SPDX, {"spdxVersion": "SPDX-2.3", "name": "app", "packages": [{"name": "ca-certificates"}]}),
    (SIGSTORE_BUNDLE, {"mediaType": SIGSTORE_BUNDLE, "verificationMaterial": {}, "messageSignature": {}}),
)
REFERRERS = len(_ABOUT_THE_RELEASE)


@dataclass(frozen=True)
class PageSizes:
    projects: int  # in the project list, the benchmarks' own and Harbor's `library` among them
    tags: int  # in the repository
    requests: int  # timed, of each page in each round
    warmup: int  # untimed, of each page before a round's timed ones


FULL_SIZES = PageSizes(projects=200, tags=10_000, requests=40, warmup=3)
QUICK_SIZES = PageSizes(projects=30, tags=300, requests=10, warmup=2)


def sizes_for(plan: Plan) -> PageSizes:
    """The quick sizes for the quick plan (whatever its rounds), else the full ones."""
    return QUICK_SIZES if replace(plan, rounds=QUICK.rounds) == QUICK else FULL_SIZES


@dataclass(frozen=True)
class Page:
    """One page of the UI, and the /api/v2.0 call that answers with the same data (the tags
    view has none: Harbor's API lists tags per artifact only)."""

    key: str
    label: str
    path: str
    shows: tuple[str, ...]  # text the page must hold: one without it would time nothing worth timing
    api: str | None = None
    api_label: str = ""


@dataclass(frozen=True)
class Seeded:
    artifact: str  # the digest of the image with a history and referrers
    referrers: tuple[str, ...]


def tag_name(build: int) -> str:
    return f"build-{build:05d}"


def _timestamp(build: int) -> str:
    """When build `build` ran: one a minute from the first."""
    return (_FIRST_BUILD + timedelta(minutes=build)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()


def _manifest(
    config: Blob,
    layers: Sequence[Blob],
    config_type: str = OCI_CONFIG,
    layer_type: str = OCI_LAYER,
    **fields: object,
) -> bytes:
    """An OCI image manifest; `fields`: its others (annotations, artifactType, subject)."""
    return _json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": layer_type, "digest": b.digest, "size": b.size} for b in layers],
            **fields,
        }
    )


def _config(layers: Sequence[Blob], history: Sequence[dict[str, object]], **config: object) -> Blob:
    return Blob.of(
        _json(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": history[-1]["created"],
                "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], **config},
                # Not the layers' uncompressed digests, which no page checks; distinct, as those are.
                "rootfs": {"type": "layers", "diff_ids": [sha256_digest(b"diff:" + b.digest.encode()) for b in layers]},
                "history": list(history),
            }
        )
    )


_STEPS = (
    "/bin/sh -c #(nop) ADD file:9a3f2b0c4d1e in /",
    "RUN /bin/sh -c apt-get update && apt-get install -y --no-install-recommends ca-certificates curl",
    "RUN /bin/sh -c groupadd -r app && useradd -r -g app app",
    "WORKDIR /srv/app",
    "COPY requirements.txt . # buildkit",
    "RUN /bin/sh -c pip install --no-cache-dir -r requirements.txt # buildkit",
    "COPY src/ ./src/ # buildkit",
    "COPY static/ ./static/ # buildkit",
    "RUN /bin/sh -c python -m compileall -q src # buildkit",
    "COPY entrypoint.sh /usr/local/bin/ # buildkit",
)


def _release(build: int) -> tuple[list[Blob], bytes]:
    """The image whose page is timed: its blobs (config, 10 layers of 1 to 28 KiB) and its
    manifest. The config's history has the 10 steps that made a layer, an ENV and a CMD."""
    created = _timestamp(build)
    layers = [Blob.of(os.urandom(1024 * (1 + 3 * i))) for i in range(len(_STEPS))]
    history: list[dict[str, object]] = [{"created": created, "created_by": step} for step in _STEPS]
    history.insert(3, {"created": created, "created_by": "ENV APP_HOME=/srv/app", "empty_layer": True})
    history.append({"created": created, "created_by": 'CMD ["/usr/local/bin/entrypoint.sh"]', "empty_layer": True})
    config = _config(
        layers,
        history,
        User="app",
        Cmd=["/usr/local/bin/entrypoint.sh"],
        WorkingDir="/srv/app",
        ExposedPorts={"8080/tcp": {}},
        Labels={
            "org.opencontainers.image.revision": f"{build:040x}",
            "org.opencontainers.image.source": "https://git.example.com/team/app",
        },
    )
    annotations = {"org.opencontainers.image.created": created, "org.opencontainers.image.revision": f"{build:040x}"}
    return [config, *layers], _manifest(config, layers, annotations=annotations)


def _referrer(subject: bytes, artifact_type: str, content: bytes, empty: Blob) -> tuple[Blob, bytes]:
    """A manifest about `subject` holding `content`, as `oras attach` writes one: the empty
    config, the type in `artifactType`, the subject's descriptor in `subject`."""
    blob = Blob.of(content)
    manifest = _manifest(
        empty,
        [blob],
        artifactType=artifact_type,
        config_type=OCI_EMPTY,
        layer_type=artifact_type,
        subject={"mediaType": OCI_MANIFEST, "digest": sha256_digest(subject), "size": len(subject)},
        annotations={"org.opencontainers.image.created": "2026-03-01T09:30:00Z"},
    )
    return blob, manifest


def _in_parallel(
    url: str, auth: dict[str, str], items: Sequence[int], work: Callable[[RegistryClient, int], None]
) -> None:
    slices = [items[i::_SEEDING_CONNECTIONS] for i in range(_SEEDING_CONNECTIONS)]

    def run(part: Sequence[int]) -> None:
        with RegistryClient(url, auth) as client:
            for item in part:
                work(client, item)

    with ThreadPoolExecutor(_SEEDING_CONNECTIONS) as pool:
        for done in [pool.submit(run, part) for part in slices]:
            done.result()


def _api_post(client: RegistryClient, target: str, document: object) -> None:
    headers = {**client.auth, "Content-Type": "application/json"}
    client.connection.request("POST", f"/api/v2.0{target}", headers, _json(document)).expect(201, what=f"POST {target}")


def _total(client: RegistryClient, listing: str) -> int:
    answer = client.connection.request("GET", f"/api/v2.0{listing}?page_size=1", client.auth)
    return int(answer.expect(200, what=f"GET {listing}").headers["x-total-count"])


def seed(url: str, auth: dict[str, str], project: str, sizes: PageSizes) -> Seeded:
    """Set up the pages' data in `project`, which exists; `auth`: an administrator's."""
    repo = f"{project}/{REPOSITORY}"

    def create_project(client: RegistryClient, i: int) -> None:
        # A quarter without a limit: the list shows both kinds of meter.
        limit = -1 if i % 4 == 0 else (i % 7 + 1) * 10 * 2**30
        public = str(i % 3 == 0).lower()
        _api_post(
            client,
            "/projects",
            {"project_name": f"team-{i:03d}", "metadata": {"public": public}, "storage_limit": limit},
        )

    with RegistryClient(url, auth) as client:
        there = _total(client, "/projects")
    _in_parallel(url, auth, range(sizes.projects - there), create_project)

    base_layers = [Blob.of(os.urandom(32 * 1024)), Blob.of(os.urandom(8 * 1024))]
    base_history: list[dict[str, object]] = [
        {"created": "2025-12-01T00:00:00Z", "created_by": _STEPS[0]},
        {"created": "2025-12-01T00:00:00Z", "created_by": _STEPS[1]},
    ]
    build_config = _config(base_layers, base_history, Cmd=["/usr/local/bin/app"])
    with RegistryClient(url, auth) as client:
        for blob in (build_config, *base_layers):
            client.push_blob(repo, blob)

    def push_build(client: RegistryClient, build: int) -> None:
        annotations = {
            "org.opencontainers.image.created": _timestamp(build),
            "org.opencontainers.image.revision": f"{build:040x}",
        }
        manifest = _manifest(build_config, base_layers, annotations=annotations)
        client.put_manifest(repo, tag_name(build), manifest, OCI_MANIFEST)

    newest = sizes.tags - 1
    _in_parallel(url, auth, range(newest), push_build)

    blobs, release = _release(newest)
    empty = Blob.of(b"{}")
    referrers = []
    with RegistryClient(url, auth) as client:
        for blob in (*blobs, empty):
            client.push_blob(repo, blob)
        client.put_manifest(repo, tag_name(newest), release, OCI_MANIFEST)
        for artifact_type, content in _ABOUT_THE_RELEASE:
            blob, referrer = _referrer(release, artifact_type, _json(content), empty)
            client.push_blob(repo, blob)
            digest = sha256_digest(referrer)
            client.put_manifest(repo, digest, referrer, OCI_MANIFEST)
            referrers.append(digest)
        tags = len(json.loads(client.get(f"/v2/{repo}/tags/list"))["tags"])
        listed = _total(client, f"/projects/{project}/repositories/{REPOSITORY}/artifacts")
        projects = _total(client, "/projects")
    if (projects, tags, listed) != (sizes.projects, sizes.tags, sizes.tags + REFERRERS):
        raise RuntimeError(f"Portside has {projects} projects, and {tags} tags and {listed} artifacts in {repo}")
    return Seeded(sha256_digest(release), tuple(referrers))


def pages_of(project: str, sizes: PageSizes, seeded: Seeded | None = None) -> list[Page]:
    """The pages timed. Before the data is set up (`seeded` None) only their keys and
    labels are of use: the artifact page's path needs the artifact's digest."""
    tags = sizes.tags
    repository = f"/projects/{project}/repositories/{REPOSITORY}"
    artifacts = f"/api/v2.0/projects/{project}/repositories/{REPOSITORY}/artifacts"
    listing = f"{artifacts}?page_size={ARTIFACTS_PER_PAGE}&with_tag=true"
    pages = math.ceil(sizes.projects / PROJECTS_PER_PAGE)
    last = math.ceil((tags + REFERRERS) / ARTIFACTS_PER_PAGE)
    of_tags = math.ceil(tags / TAGS_PER_PAGE)
    wanted = tag_name(tags // 2)[:-1]  # ten tags: build-05000 to build-05009 of 10,000
    artifact = seeded.artifact if seeded else "sha256:"
    return [
        Page(
            "projects",
            f"project list, {sizes.projects} projects, page 1",
            "/projects",
            (f"Page 1 of {pages} · {sizes.projects} in all",),
            f"/api/v2.0/projects?page=1&page_size={PROJECTS_PER_PAGE}",
            "projects, page 1",
        ),
        Page(
            "repository",
            f"repository of {tags:,} tags, page 1",
            repository,
            (f"Page 1 of {last}", tag_name(tags - 1)),
            f"{listing}&page=1",
            "artifacts with tags, page 1",
        ),
        Page(
            "repository.page2",
            "repository, page 2",
            f"{repository}?page=2",
            (f"Page 2 of {last}", "build-"),
            f"{listing}&page=2",
            "artifacts, page 2",
        ),
        Page(
            "repository.last",
            f"repository, page {last} (the last)",
            f"{repository}?page={last}",
            (f"Page {last} of {last}", "build-"),
            f"{listing}&page={last}",
            f"artifacts, page {last}",
        ),
        Page(
            "repository.filter",
            f"repository, filtered by tag “{wanted}” (10 match)",
            f"{repository}?q={quote(wanted)}",
            (f"{wanted}0", f"{wanted}9"),
            f"{listing}&q={quote(f'tags=~{wanted}')}",
            f"artifacts, q=tags=~{wanted}",
        ),
        Page(
            "repository.tags",
            f"repository's tags view, {tags:,} tags, page 1",
            f"{repository}/-/tags",
            (f"Page 1 of {of_tags}", tag_name(0), tag_name(TAGS_PER_PAGE - 1)),
        ),
        Page(
            "artifact",
            "artifact: 10 layers, history of 12, 2 referrers",
            f"{repository}/-/artifacts/{artifact}",
            (artifact, "pip install", *(seeded.referrers if seeded else ())),
            f"{artifacts}/{artifact}?with_tag=true",
            "the artifact",
        ),
    ]


def check(url: str, headers: dict[str, str], page: Page) -> None:
    """The page answers 200 with HTML that shows what it must, and its API call 200."""
    with Connection.to(url) as connection:
        html = connection.request("GET", page.path, headers).expect(200, what=f"UI page {page.path}")
        if not html.headers.get("content-type", "").startswith("text/html"):
            raise HttpError(f"{page.path}: {html.headers.get('content-type')}, not HTML")
        text = html.body.decode(errors="replace")
        missing = [wanted for wanted in page.shows if wanted not in text]
        if missing:
            raise HttpError(f"{page.path} does not show {missing}")
        if page.api is not None:
            connection.request("GET", page.api, headers).expect(200, what=f"API {page.api}")


def time_pages(
    url: str, headers: dict[str, str], targets: Sequence[str], requests: int, warmup: int
) -> dict[str, list[float]]:
    """GET each of `targets` `warmup` times untimed, then `requests` times timed, taking
    turns (a slow moment of the machine falls on all of them alike), on one keep-alive
    connection: milliseconds from sending each request to the last byte of its answer."""
    timings: dict[str, list[float]] = {target: [] for target in targets}
    with Connection.to(url) as connection:
        for timed in [False] * warmup + [True] * requests:
            for target in targets:
                started = time.perf_counter()
                connection.request("GET", target, headers).expect(200, what=f"GET {target}")
                if timed:
                    timings[target].append((time.perf_counter() - started) * 1e3)
    return timings


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def p95(samples: Sequence[float]) -> float:
    """The nearest-rank 95th percentile: no more than 5% of the samples lie above it."""
    ordered = sorted(samples)
    return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]
