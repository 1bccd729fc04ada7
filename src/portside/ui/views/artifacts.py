"""Pages: one artifact, by digest or tag, and the changes made to artifacts from the pages
(tags added and deleted, an artifact deleted or copied to another project).

The artifact page shows what the registry holds for it: the manifest's facts and tags, an
index's platforms, an image's config and its layers beside the history that made each,
the annotations, and the tree of referrers (signatures, SBOMs, attestations) whose
subject it is. `ArtifactService.detail` reads all of it with the visitor's principal,
after the check the API's artifact GET makes; each change is the API's own service call.

These pages live under a repository's `/-/` (a repository name cannot hold it), so the
repository module routes them: `repositories.routes` holds every path below a repository.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from portside.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed
from portside.meta.accounts import Project
from portside.meta.artifacts import ArtifactInfo, ChildReference, TagInfo
from portside.mgmt.artifacts import ArtifactDetail, Referrer, repository_path
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.registry.configs import IMAGE_CONFIG_TYPES
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user, visitor

__all__ = [
    "routes",
    "artifact_url",
    "short_digest",
    "kind_of",
    "platform_text",
    "pull_commands",
    "artifact_page",
    "add_tag",
    "delete_tag",
    "delete_artifact",
    "copy_artifact",
]

SHORT_DIGEST = 12  # hex digits of a digest shown in tables; the title and copy field hold all
TAGS_PER_PAGE = 50
_NOP = "/bin/sh -c #(nop) "
_LONG_COMMAND = 100
# cosign's tag scheme: the tag of a signature, attestation or SBOM names its subject's digest.
_COSIGN_TAG = re.compile(r"(sha256|sha512)-([0-9a-f]{64}|[0-9a-f]{128})\.(sig|att|sbom)")
_COSIGN_KINDS = {"sig": "Signature (cosign)", "att": "Attestation (cosign)", "sbom": "SBOM (cosign)"}
_KINDS = {
    "application/vnd.dev.cosign.artifact.sig.v1+json": "Signature (cosign)",
    "application/vnd.dev.cosign.simplesigning.v1+json": "Signature (cosign)",
    "application/vnd.cncf.notary.signature": "Signature (Notation)",
    "application/vnd.dev.sigstore.bundle.v0.3+json": "Signature (Sigstore bundle)",
    "application/vnd.dev.sigstore.bundle+json;version=0.3": "Signature (Sigstore bundle)",
    "application/spdx+json": "SBOM (SPDX)",
    "text/spdx": "SBOM (SPDX)",
    "application/vnd.cyclonedx+json": "SBOM (CycloneDX)",
    "application/vnd.cyclonedx+xml": "SBOM (CycloneDX)",
    "application/vnd.syft+json": "SBOM (Syft)",
    "application/vnd.in-toto+json": "Attestation (in-toto)",
    "application/vnd.dsse.envelope.v1+json": "Attestation (DSSE)",
    "application/vnd.dev.cosign.attestation.v1+json": "Attestation (cosign)",
    "application/vnd.cncf.helm.config.v1+json": "Helm chart",
    "application/vnd.wasm.config.v1+json": "WebAssembly module",
}
# Where a tag's delete button sends the browser back to.
_BACK = ("artifact", "repository", "tags")

routes: list[BaseRoute] = []  # the pages below are routed by `repositories.routes`


def artifact_url(project: str, repository: str, reference: str) -> str:
    """The artifact's page; `repository` is the full name, as `common.repository_url` takes."""
    return f"{common.repository_url(project, repository)}/-/artifacts/{quote(reference, safe=':')}"


def short_digest(digest: str) -> str:
    algorithm, _, digits = digest.partition(":")
    return f"{algorithm}:{digits[:SHORT_DIGEST]}"


def kind_of(
    manifest_media_type: str, artifact_type: str | None, config_media_type: str | None, tags: Iterable[str] = ()
) -> str:
    """What an artifact is, in words: an image, an index, a signature, an SBOM..."""
    for tag in tags:
        scheme = _COSIGN_TAG.fullmatch(tag)
        if scheme:
            return _COSIGN_KINDS[scheme.group(3)]
    declared = artifact_type or config_media_type
    if manifest_media_type in mt.INDEXES:
        return _KINDS.get(declared or "", "Index") if artifact_type else "Multi-platform index"
    if declared in IMAGE_CONFIG_TYPES:
        return "Image"
    if declared and declared.startswith("application/vnd.dev.sigstore.bundle"):
        return "Signature (Sigstore bundle)"
    return _KINDS.get(declared or "", "Artifact")


def _info_kind(info: ArtifactInfo, tags: Iterable[TagInfo] = ()) -> str:
    return kind_of(info.manifest_media_type, info.artifact_type, info.config_media_type, (t.name for t in tags))


def platform_text(platform: Mapping[str, Any] | None) -> str:
    """os/architecture/variant, as clients name platforms (linux/arm64/v8)."""
    if not platform:
        return "unknown platform"
    parts = [str(platform.get(key)) for key in ("os", "architecture", "variant") if platform.get(key)]
    text = "/".join(parts) or "unknown platform"
    if platform.get("os.version"):
        text += f" ({platform['os.version']})"
    return text


def children(project: str, info: ArtifactInfo) -> list[dict[str, Any]]:
    """An index's children, each with its platform and the URL of its own page."""
    return [_child(project, info.repository_name, c) for c in info.references]


def _child(project: str, repository: str, child: ChildReference) -> dict[str, Any]:
    return {
        "digest": child.digest,
        "short": short_digest(child.digest),
        "platform": platform_text(child.platform),
        "url": artifact_url(project, repository, child.digest),
        "annotations": sorted((child.annotations or {}).items()),
    }


def pull_commands(request: Request, repository: str, reference: str) -> list[tuple[str, str]]:
    """How each client pulls `repository` (full name) by `reference`: `:tag` or `@digest`.
    The host is the one the browser asked; a registry served over plain HTTP needs the
    clients' flag for it."""
    host = request.headers.get("host") or request.url.netloc
    target = f"{host}/{repository}{reference}"
    plain = request.url.scheme == "http"
    archive = f"oci-archive:{repository.rsplit('/', 1)[-1]}.tar"
    return [
        ("Docker", f"docker pull {target}"),
        ("Podman", f"podman pull {'--tls-verify=false ' if plain else ''}{target}"),
        ("Skopeo", f"skopeo copy {'--src-tls-verify=false ' if plain else ''}docker://{target} {archive}"),
        ("containerd", f"ctr images pull {'--plain-http ' if plain else ''}{target}"),
        ("ORAS", f"oras pull {'--plain-http ' if plain else ''}{target}"),
    ]


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)] if isinstance(value, str) and value else []


def _keys(value: object) -> list[str]:
    return sorted(str(k) for k in value) if isinstance(value, dict) else []


def _command_line(value: object) -> str:
    """An Entrypoint or Cmd as the image holds it: its exec form, JSON."""
    if isinstance(value, list):
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    return str(value) if isinstance(value, str) else ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def moment(value: object) -> datetime | str:
    """A time an image config or annotation records (RFC 3339, as text): the time, when it
    reads as one, else the text as it is (for the page to show either way)."""
    text = _text(value)[:64]
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return text
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def config_facts(config: Mapping[str, Any]) -> dict[str, Any]:
    """What an image config says about how the image runs, for people to read."""
    found = config.get("config")
    inner: Mapping[str, Any] = found if isinstance(found, dict) else {}
    labels = inner.get("Labels")
    return {
        "platform": platform_text(config),
        "created": moment(config.get("created")) if config.get("created") else "",
        "author": _text(config.get("author")),
        "user": _text(inner.get("User")),
        "working_dir": _text(inner.get("WorkingDir")),
        "entrypoint": _command_line(inner.get("Entrypoint")),
        "cmd": _command_line(inner.get("Cmd")),
        "stop_signal": _text(inner.get("StopSignal")),
        "env": _strings(inner.get("Env")),
        "exposed_ports": _keys(inner.get("ExposedPorts")),
        "volumes": _keys(inner.get("Volumes")),
        "labels": sorted((str(k), str(v)) for k, v in labels.items()) if isinstance(labels, dict) else [],
    }


def _step(entry: Mapping[str, Any]) -> dict[str, Any]:
    full = _text(entry.get("created_by")).strip()
    shown = full[len(_NOP) :].strip() if full.startswith(_NOP) else full
    return {
        "command": shown,
        "full": full,
        "long": len(shown) > _LONG_COMMAND or shown != full,
        "created": moment(entry.get("created")) if entry.get("created") else "",
        "comment": _text(entry.get("comment")),
        "empty": bool(entry.get("empty_layer")),
    }


def layers_with_history(manifest: Mapping[str, Any], config: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The manifest's layers beside the config's history: each history entry that made a
    layer is paired with the next layer in order; those that made none (`empty_layer`)
    stand alone. Layers left over (a config without history) stand alone too."""
    found = manifest.get("layers")
    layers: list[Mapping[str, Any]] = [x for x in found if isinstance(x, dict)] if isinstance(found, list) else []
    history = (config or {}).get("history")
    entries = [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []
    rows: list[dict[str, Any]] = []
    next_layer = 0
    for entry in entries:
        step = _step(entry)
        if step["empty"] or next_layer >= len(layers):
            rows.append({"layer": None, "step": step})
            continue
        rows.append({"layer": _layer(layers[next_layer], next_layer + 1), "step": step})
        next_layer += 1
    rows.extend({"layer": _layer(x, i + 1), "step": None} for i, x in enumerate(layers) if i >= next_layer)
    return rows


def _layer(descriptor: Mapping[str, Any], number: int) -> dict[str, Any]:
    digest = _text(descriptor.get("digest"))
    size = descriptor.get("size")
    annotations = descriptor.get("annotations")
    title = annotations.get("org.opencontainers.image.title") if isinstance(annotations, dict) else None
    return {
        "number": number,
        "digest": digest,
        "short": short_digest(digest),
        "media_type": _text(descriptor.get("mediaType")),
        "size": size if isinstance(size, int) else None,
        "title": title if isinstance(title, str) else "",
    }


def referrer_tree(project: str, repository: str, referrers: Sequence[Referrer]) -> list[dict[str, Any]]:
    out = []
    for r in referrers:
        d = r.descriptor
        annotations = d.annotations or {}
        out.append(
            {
                "digest": str(d.digest),
                "short": short_digest(str(d.digest)),
                "url": artifact_url(project, repository, str(d.digest)),
                "kind": kind_of(d.media_type, d.artifact_type, None),
                "artifact_type": d.artifact_type or "",
                "media_type": d.media_type,
                "size": d.size,
                "created": moment(annotations.get("org.opencontainers.image.created", "")),
                "children": referrer_tree(project, repository, r.referrers),
            }
        )
    return out


def _subject(
    project: str, repository: str, manifest: Mapping[str, Any], tags: Sequence[TagInfo]
) -> dict[str, str] | None:
    """What this artifact refers to: its manifest's `subject`, or the digest its cosign
    scheme tag names."""
    found = manifest.get("subject")
    digest = _text(found.get("digest")) if isinstance(found, dict) else ""
    if not digest:
        for tag in tags:
            scheme = _COSIGN_TAG.fullmatch(tag.name)
            if scheme:
                digest = f"{scheme.group(1)}:{scheme.group(2)}"
                break
    if not digest:
        return None
    return {"digest": digest, "short": short_digest(digest), "url": artifact_url(project, repository, digest)}


async def _signatures(
    request: Request, who: Visitor, project: Project, repository: str, digest: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """Each signature of the artifact with its verdict, and why a pull would be refused."""
    services = management(request)
    rows: list[dict[str, Any]] = []
    if services.signatures is not None and services.trust is not None:
        material = await services.trust.material(project)
        for found in await services.signatures.verify(repository, Digest.parse(digest), material):
            for result in found.results:
                rows.append(
                    {
                        "kind": found.kind,
                        "signer": result.signer,
                        "signed_at": result.signed_at,
                        "verified": result.verified,
                        "reason": result.reason,
                        "short": short_digest(found.digest),
                        "url": artifact_url(project.name, repository, found.digest),
                    }
                )
    refusals: list[str] = []
    if services.scans is not None:
        relative = repository.removeprefix(project.name + "/")
        verdict = await services.scans.pull_verdict(who.principal, project.name, relative, digest)
        refusals = [rule.reason for rule in verdict.rules if rule.reason]
    return rows, refusals


async def _context(
    request: Request,
    who: Visitor,
    repository: str,
    reference: str,
    errors: Mapping[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    services = management(request)
    name = request.path_params["name"]
    detail: ArtifactDetail = await services.artifacts.detail(who.principal, name, repository, reference, tag_limit=0)
    project, info = detail.project, detail.view.info
    paging = common.paging(request, TAGS_PER_PAGE)
    _, tags = await services.artifacts.tags(who.principal, name, repository, info.digest, None, "name", paging)
    held = await common.permissions(request, who, f"/project/{project.project_id}")
    full = info.repository_name
    # Pulled by the tag the page was opened by, else by the artifact's first tag.
    by_tag = reference if not Digest.is_digest(reference) else (tags.items[0].name if tags.items else None)
    scheme = [
        {"tag": tag, "kind": kind_of("", None, None, [tag]), "url": artifact_url(project.name, full, digest)}
        for tag, digest in detail.scheme_tags
    ]
    signatures, refusals = await _signatures(request, who, project, full, info.digest)
    return {
        "signatures": signatures,
        "pull_refusals": refusals,
        "settings_url": common.project_url(project.name, "settings") if ("project", "update") in held else None,
        "project": project,
        "project_url": common.project_url(project.name),
        "repository_url": common.repository_url(project.name, full),
        "repository": full,
        "relative": full.removeprefix(project.name + "/"),
        "url": artifact_url(project.name, full, info.digest),
        "info": info,
        "short": short_digest(info.digest),
        "kind": _info_kind(info, tags.items),
        "is_index": info.manifest_media_type in mt.INDEXES,
        "children": children(project.name, info),
        "tags": tags.items,
        "tag_total": tags.total,
        "paging": paging,
        "commands_by_tag": pull_commands(request, full, f":{by_tag}") if by_tag else [],
        "commands_by_digest": pull_commands(request, full, f"@{info.digest}"),
        "config": config_facts(detail.view.config) if detail.view.config is not None else None,
        "config_problem": detail.config_problem,
        "layers": layers_with_history(detail.manifest, detail.view.config),
        "annotations": sorted(info.annotations.items()),
        "subject": _subject(project.name, full, detail.manifest, tags.items),
        "referrers": referrer_tree(project.name, full, detail.referrers),
        "referrers_cut": detail.referrers_cut,
        "scheme_tags": scheme,
        "may_tag": ("tag", "create") in held,
        "may_untag": ("tag", "delete") in held,
        "may_delete": ("artifact", "delete") in held,
        "may_copy": who.signed_in and ("repository", "pull") in held,
        "scanning": services.scans is not None,
        "tab": "overview",
        "errors": dict(errors or {}),
        "form": dict(form or {}),
    }


async def artifact_page(request: Request, repository: str, reference: str) -> Response:
    who = await visitor(request)
    context = await _context(request, who, repository, reference)
    chosen = common.query_text(request, "platform")
    if chosen:
        # The platform picker's form, sent without JavaScript: go to the chosen child.
        for child in context["children"]:
            if child["digest"] == chosen:
                return redirect(child["url"])
        raise NotFound(f"{chosen[:80]} is not a platform of this index")
    return await page(request, "artifacts/artifact.html", context)


async def _refused(
    request: Request,
    who: Visitor,
    repository: str,
    digest: str,
    field: str,
    error: BadRequest | Conflict | NotFound | Forbidden | PreconditionFailed,
    form: Mapping[str, str] | None = None,
) -> Response:
    """The artifact page again, saying why the change was refused, with the error's status."""
    context = await _context(request, who, repository, digest, {field: error.text}, form)
    return await page(request, "artifacts/artifact.html", context, status=error.status)


async def add_tag(request: Request, repository: str, digest: str) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    tag = form.get("tag", "").strip()
    try:
        if not tag:
            raise BadRequest("the tag is required")
        await management(request).artifacts.add_tag(who.principal, name, repository, digest, tag)
    except (BadRequest, Conflict) as error:
        return await _refused(request, who, repository, digest, "tag", error, {"tag": tag})
    full = repository_path(name, repository)
    return redirect(artifact_url(name, full, digest), notice=f"Tag {tag} added.")


async def delete_tag(request: Request, repository: str, digest: str, tag: str) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    await management(request).artifacts.delete_tag(who.principal, name, repository, digest, tag)
    full = repository_path(name, repository)
    back = form.get("back", "artifact")
    targets = {
        "artifact": artifact_url(name, full, digest),
        "repository": common.repository_url(name, full),
        "tags": common.repository_url(name, full) + "/-/tags",
    }
    return redirect(targets[back if back in _BACK else "artifact"], notice=f"Tag {tag} deleted.")


async def delete_artifact(request: Request, repository: str, digest: str) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    try:
        await management(request).artifacts.delete(who.principal, name, repository, digest)
    except PreconditionFailed as error:
        return await _refused(request, who, repository, digest, "delete", error)
    full = repository_path(name, repository)
    return redirect(common.repository_url(name, full), notice=f"Artifact {short_digest(digest)} deleted.")


async def copy_artifact(request: Request, repository: str, digest: str) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    target_project = form.get("target_project", "").strip()
    target_repository = form.get("target_repository", "").strip()
    kept = {"target_project": target_project, "target_repository": target_repository}
    source = f"{repository_path(name, repository)}@{digest}"
    try:
        if not target_project or not target_repository:
            raise BadRequest("name the project and the repository to copy to")
        project, target, copied = await management(request).artifacts.copy(
            who.principal, target_project, target_repository, source
        )
    except (BadRequest, Conflict, NotFound, Forbidden) as error:
        return await _refused(request, who, repository, digest, "copy", error, kept)
    return redirect(artifact_url(project.name, target, copied), notice=f"Copied to {target}.")
