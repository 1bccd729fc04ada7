"""Pages: administration's security hub, `/admin/security`. Every finding of every scanned
artifact of the registry, worst first, as Harbor's `/security/vul` lists them
(`ScanApiService.list_vulnerabilities`), narrowed by a plain GET form (CVE id, severity,
CVSS range, fixed or affected, repository, project, package, tag, digest) that htmx sends
into the results block alone.

The hub is the system administrators' (the service checks `security-hub:read`). The total is
counted up to Harbor's tune_count limit: past it the page says "more than 1,000" and pages on
for as long as pages come back full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, NotFound
from portside.meta.scans import HubFinding
from portside.mgmt.scanning import TUNED_COUNT_LIMIT
from portside.scan.model import Severity
from portside.ui.render import page
from portside.ui.views import common
from portside.ui.views.admin import administration
from portside.ui.views.artifacts import artifact_url, short_digest
from portside.ui.views.robots import q_text
from portside.ui.views.scans import SEVERITIES, first_link, scanning
from portside.ui.visitor import Visitor, management

__all__ = ["routes", "SECURITY"]

SECURITY = "/admin/security"
PAGE_SIZE = 25
STATUSES = (("", "Any"), ("fixed", "Fixed version known"), ("affected", "No fix yet"))
# The text fields of the form: (query key, Harbor's `q` key, how it matches).
_TEXT_FIELDS = (
    ("cve", "cve_id", "exact"),
    ("repository", "repository_name", "exact"),
    ("package", "package", "fuzzy"),
    ("tag", "tag", "exact"),
    ("digest", "digest", "exact"),
)
FIELDS = ("cve", "severity", "cvss_from", "cvss_to", "status", "repository", "project", "package", "tag", "digest")


@dataclass(frozen=True, slots=True)
class HubFilters:
    """What the form asks, as typed (shown back in it)."""

    values: Mapping[str, str]

    @classmethod
    def of(cls, request: Request) -> HubFilters:
        return cls({key: common.query_text(request, key)[:200] for key in FIELDS})

    def get(self, key: str) -> str:
        return self.values.get(key, "")

    @property
    def any(self) -> bool:
        return any(self.values.values())


def _score(text: str, field: str) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 10:
        raise _FieldError(field, f"a CVSS score is a number from 0 to 10, not {text[:20]!r}")
    return value


class _FieldError(BadRequest):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


async def _q(request: Request, who: Visitor, filters: HubFilters) -> str | None:
    """The form as Harbor's `q` (the service reads the words, as the API's)."""
    conditions = []
    for key, harbor_key, kind in _TEXT_FIELDS:
        if cleaned := q_text(filters.get(key)):
            conditions.append(f"{harbor_key}={'~' if kind == 'fuzzy' else ''}{cleaned}")
    severity = filters.get("severity").capitalize()
    if severity:
        if severity not in {s.label for s in SEVERITIES}:
            raise _FieldError("severity", f"unknown severity {severity[:20]!r}")
        conditions.append(f"severity={severity}")
    low, high = _score(filters.get("cvss_from"), "cvss_from"), _score(filters.get("cvss_to"), "cvss_to")
    if low is not None and high is not None and low > high:
        raise _FieldError("cvss_to", "the CVSS range ends below where it starts")
    if low is not None or high is not None:
        conditions.append(f"cvss_score_v3=[{'' if low is None else low}~{'' if high is None else high}]")
    status = filters.get("status")
    if status:
        if status not in {key for key, _ in STATUSES}:
            raise _FieldError("status", "status is fixed or affected")
        conditions.append(f"status={status}")
    if project := filters.get("project"):
        try:
            listed = await management(request).projects.get(who.principal, project)
        except NotFound:
            raise _FieldError("project", f"there is no project named {project[:64]}") from None
        conditions.append(f"project_id={listed.project.project_id}")
    return ",".join(conditions) or None


def _row(item: HubFinding) -> dict[str, Any]:
    finding = item.finding
    project = item.repository.split("/", 1)[0]
    return {
        "id": finding.vulnerability_id,
        "link": first_link(finding.links),
        "severity": Severity(finding.severity).label,
        "cvss": f"{finding.cvss_score:.1f}" if finding.cvss_score is not None else "",
        "package": finding.package,
        "version": finding.version,
        "fixed": finding.fixed_version or "",
        "repository": item.repository,
        "short": short_digest(item.digest),
        "artifact_url": artifact_url(project, item.repository, item.digest),
        "tags": [(tag, artifact_url(project, item.repository, tag)) for tag in item.tags],
    }


async def security(request: Request) -> Response:
    who, nav = await administration(request, "security")
    filters = HubFilters.of(request)
    paging = common.paging(request, PAGE_SIZE)
    context: dict[str, Any] = {
        **nav,
        "filters": filters,
        "severities": [s.label for s in SEVERITIES],
        "statuses": STATUSES,
        "paging": paging,
        "rows": [],
        "total": 0,
        "more_than_limit": False,
        "has_next": False,
        "limit": TUNED_COUNT_LIMIT,
        "errors": {},
    }
    try:
        q = await _q(request, who, filters)
        found, _ = await scanning(request).list_vulnerabilities(
            who.principal, q, paging, tune_count=True, with_tag=True
        )
    except _FieldError as error:
        context["errors"] = {error.field: error.text}
        return await page(request, "admin/security.html", context, status=error.status)
    except BadRequest as error:
        context["errors"] = {"form": error.text}
        return await page(request, "admin/security.html", context, status=error.status)
    more = found.total > TUNED_COUNT_LIMIT
    shown_to = paging.offset + len(found.items)
    context.update(
        {
            "rows": [_row(item) for item in found.items],
            "total": found.total,
            "more_than_limit": more,
            "first": paging.offset + 1,
            "last": shown_to,
            "has_next": shown_to < found.total or (more and len(found.items) == paging.page_size),
        }
    )
    return await page(request, "admin/security.html", context)


routes: list[BaseRoute] = [Route(SECURITY, security, methods=["GET", "HEAD"])]
