"""Projects' pull policies, asked before every manifest GET answers (registry/pull_gate.py).

Harbor's vulnerability policy: in a project whose metadata says `prevent_vul`, an image is
refused (412 PROJECTPOLICYVIOLATION) while it has no successful vulnerability scan, and
when it holds a finding of the project's `severity` or worse that the CVE allowlist
governing the project (its own, or the system's with `reuse_sys_cve_allowlist`) does not
name; an expired allowlist names nothing. The message says which rule refused and which
vulnerabilities, so a person knows what would let the pull through.

What is gated is an image: an image manifest whose layers are filesystems, and the blobs
of images: a blob GET is refused when every image of the repository holding it is (a
layer an allowed image shares stays readable). An index
passes (each platform's manifest is asked when it is pulled), as do signatures, SBOMs and
other artifacts, which a scan cannot judge and clients must read. Pulls by the robots made
for external scanners (Harbor's `scanner-pull`) pass: the scan is what the policy waits for.

Cost: a pull from a project without a policy costs one dictionary lookup (each project's
policy is kept while the accounts' generation stands; allowlist writes move it too). A
gated pull costs one more: its verdict is kept while neither that generation nor the
scans' moves (each scan's findings, report and queueing move it), so the findings of an
image are read again only after something about them changed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portside.auth.access import Grant
from portside.auth.authn import ROBOT_PREFIX
from portside.auth.controller import project_of
from portside.auth.policy import robot_active, robot_permits
from portside.errors import PolicyViolation
from portside.meta.accounts import Project, ProjectStore, RobotStore
from portside.meta.allowlists import CveAllowlist
from portside.meta.scans import ScanReport, ScanStore, StoredFinding
from portside.meta.stores import ChangeCounter, ManifestRecord
from portside.mgmt.content_trust import ContentTrust
from portside.mgmt.cve_allowlist import CveAllowlistService
from portside.mgmt.lru import Lru
from portside.mgmt.signatures import SignatureManifest, SignatureService, summary
from portside.mgmt.trust_policy import TrustMaterial, TrustPolicyService
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.registry.manifests import ManifestService
from portside.scan.model import Severity

__all__ = ["SCANNER_PULL", "PullPolicy", "RuleVerdict", "TrustRule", "VulnerabilityRule", "signed_content"]

# Harbor's permission of the robots that pull for a scanner: past the vulnerability policy.
SCANNER_PULL = ("repository", "scanner-pull")
# Harbor's `severity` words, lowest first: "none" blocks every finding, whatever its severity.
_THRESHOLDS = {
    "none": Severity.UNKNOWN,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "high": Severity.HIGH,
    "critical": Severity.CRITICAL,
}
_IMAGE_CONFIGS = frozenset({mt.DOCKER_CONFIG, mt.OCI_CONFIG})
_NAMED = 5  # vulnerabilities named in a refusal; the rest are counted
_RUNNING = ("Pending", "Running")


@dataclass(frozen=True, slots=True)
class VulnerabilityRule:
    """`prevent_vul` as a project has it: the threshold and the allowlist that governs."""

    threshold: Severity
    word: str  # the project's `severity`, as Harbor's message quotes it ("High")
    allowlist: CveAllowlist

    def phrase(self) -> str:
        return f"'Prevent images with vulnerability severity of \"{self.word}\" or higher from running.'"


# Harbor's metadata and Portside's `require_signature`: which kinds of signature satisfy each.
_COSIGN: frozenset[str] = frozenset({"cosign", "cosign-bundle"})
_SIGNATURE_WORDS = {
    "cosign": _COSIGN,
    "notation": frozenset({"notation"}),
    "notary": frozenset({"notary"}),
    "any": frozenset({"cosign", "cosign-bundle", "notation", "notary"}),
}
_KIND_WORDS = {"cosign": "cosign", "cosign-bundle": "cosign", "notation": "Notation", "notary": "Docker Content Trust"}
# Layers of what signs, attests or describes another manifest: never asked to be signed.
_ACCESSORY_LAYERS = frozenset(
    {
        "application/vnd.dev.cosign.simplesigning.v1+json",
        "application/vnd.dsse.envelope.v1+json",
        "application/vnd.in-toto+json",
        "application/vnd.cncf.notary.signature",
        "application/jose+json",
        "application/cose",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    }
)


def signature_kinds(text: str) -> frozenset[str]:
    """The kinds a `require_signature` value names ("cosign,notation", "any"); ValueError
    for a word that is none."""
    kinds: set[str] = set()
    for word in (w.strip().lower() for w in text.split(",")):
        if word not in _SIGNATURE_WORDS:
            raise ValueError(f"{word[:40]!r} is not one of {', '.join(_SIGNATURE_WORDS)}")
        kinds |= _SIGNATURE_WORDS[word]
    return frozenset(kinds)


@dataclass(frozen=True, slots=True)
class TrustRule:
    """The signatures a project asks of what is pulled: each requirement (the metadata that
    makes it, the kinds that satisfy it) must be met by one verified signature."""

    required: tuple[tuple[str, frozenset[str]], ...]
    material: TrustMaterial


@dataclass(frozen=True, slots=True)
class RuleVerdict:
    """A dry run's answer for one rule: whether it is on and why it refuses ("": it does not)."""

    rule: str  # "vulnerability" or "signature"
    enabled: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class _ProjectPolicy:
    project: Project | None  # None: no such project (an open registry's repositories)
    vulnerability: VulnerabilityRule | None
    generation: int | None  # the accounts' generation it was read at
    trust: TrustRule | None = None

    @property
    def on(self) -> bool:
        return self.project is not None and (self.vulnerability is not None or self.trust is not None)


def _requirements(metadata: Mapping[str, str]) -> tuple[tuple[str, frozenset[str]], ...]:
    required: list[tuple[str, frozenset[str]]] = []
    if metadata.get("enable_content_trust_cosign") == "true":
        required.append(("enable_content_trust_cosign", _COSIGN))
    if metadata.get("enable_content_trust") == "true":
        required.append(("enable_content_trust", frozenset({"notation", "notary"})))
    wanted = metadata.get("require_signature", "")
    if wanted:
        try:
            required.append((f"require_signature={wanted}", signature_kinds(wanted)))
        except ValueError:  # checked when written; a value from before that asks for any kind
            required.append((f"require_signature={wanted}", _SIGNATURE_WORDS["any"]))
    return tuple(required)


def _subjectless(record: ManifestRecord) -> dict[str, Any] | None:
    """The manifest's document, unless it is unreadable or the accessory of another one."""
    try:
        document: Any = json.loads(record.payload)
    except ValueError:
        return None
    if not isinstance(document, dict) or "subject" in document:
        return None
    return document


def gated_image(record: ManifestRecord) -> bool:
    """Whether `record` is an image a vulnerability scan judges: an image manifest of an
    image config with filesystem layers, and no accessory of another manifest."""
    document = _subjectless(record) if record.media_type in mt.IMAGE_MANIFESTS else None
    if document is None:
        return False
    config, layers = document.get("config"), document.get("layers")
    if not isinstance(config, dict) or config.get("mediaType") not in _IMAGE_CONFIGS or not isinstance(layers, list):
        return False
    return any(isinstance(layer, dict) and ".tar" in str(layer.get("mediaType", "")) for layer in layers)


def signed_content(record: ManifestRecord) -> bool:
    """Whether a signature policy asks `record` to be signed: an index, or an image manifest
    of content; not what signs, attests or describes another manifest (a `subject`, or only
    signature, attestation and SBOM layers), which clients must read to verify."""
    if record.media_type not in mt.IMAGE_MANIFESTS and record.media_type not in mt.INDEXES:
        return False
    document = _subjectless(record)
    if document is None:
        return False
    if record.media_type in mt.INDEXES:
        return True
    layers = document.get("layers")
    if not isinstance(layers, list) or not layers:
        return False
    for layer in layers:
        media_type = str(layer.get("mediaType", "")) if isinstance(layer, dict) else ""
        if media_type not in _ACCESSORY_LAYERS and "spdx" not in media_type and "cyclonedx" not in media_type:
            return True
    return False


def _trust_refusal(rule: TrustRule, found: list[SignatureManifest], verified: set[str]) -> str:
    for metadata, kinds in rule.required:
        if verified & kinds:
            continue
        words = " or ".join(dict.fromkeys(_KIND_WORDS[k] for k in _KIND_WORDS if k in kinds))
        trusted = "a key or certificate this project trusts"
        relevant = [m for m in found if m.kind in kinds] or found
        return (
            f"The image is not signed by {words} with {trusted} (policy '{metadata}'); {summary(relevant)}. "
            "Sign it with a key the project's trust policy names, or ask a project administrator "
            "to trust the signer."
        )
    return ""


def _ids(finding: StoredFinding) -> set[str]:
    return {finding.vulnerability_id, finding.advisory_id, *finding.aliases}


def _refusal(rule: VulnerabilityRule, blocking: list[StoredFinding]) -> str:
    worst = sorted(blocking, key=lambda f: (-f.severity, f.vulnerability_id))
    named = sorted({f.vulnerability_id: f for f in worst}.values(), key=lambda f: (-f.severity, f.vulnerability_id))
    listed = ", ".join(f"{f.vulnerability_id} ({Severity(f.severity).label}, {f.package})" for f in named[:_NAMED])
    more = f" and {len(named) - _NAMED} more" if len(named) > _NAMED else ""
    return (
        f'current image with "{len(named)} vulnerabilities" cannot be pulled due to configured policy in '
        f"{rule.phrase()} To continue with pull, please contact your project administrator to exempt matched "
        f"vulnerabilities through configuring the CVE allowlist. Found: {listed}{more}."
    )


class PullPolicy:
    def __init__(
        self,
        projects: ProjectStore,
        robots: RobotStore,
        allowlists: CveAllowlistService,
        scans: ScanStore,
        changes: ChangeCounter | None,
        scan_changes: ChangeCounter | None = None,
        manifests: ManifestService | None = None,
        entries: int = 8192,
        *,
        trust: TrustPolicyService | None = None,
        signatures: SignatureService | None = None,
        registry_changes: ChangeCounter | None = None,
        content_trust: ContentTrust | None = None,
    ):
        """`manifests`: where blobs' holders and dry runs' manifests are read (None: blobs
        are not judged and dry runs see no manifest). `trust` and `signatures`: projects'
        trust policies and the signatures they verify (None: no signature rule); their
        verdicts are kept while `registry_changes` (signatures pushed or deleted) and the
        accounts' generation (trust policies written) stand."""
        self._projects = projects
        self._robots = robots
        self._allowlists = allowlists
        self._scans = scans
        self._changes = changes
        self._scan_changes = scan_changes
        self._manifests = manifests
        self._trust = trust
        self._signatures = signatures
        self._registry_changes = registry_changes
        self._content_trust = content_trust
        self._trust_verdicts: Lru[tuple[Any, ...], tuple[tuple[int | None, int | None], str]] = Lru(entries)
        self._policies: Lru[str, _ProjectPolicy] = Lru(entries)
        # (project, repository, digest, allowlist in force) -> ((generations), refusal or "")
        self._verdicts: Lru[tuple[Any, ...], tuple[tuple[int | None, int | None], str]] = Lru(entries)
        self._images: Lru[str, bool] = Lru(entries)
        self._scanners: Lru[tuple[str, int, int | None], bool] = Lru(entries)

    async def check(self, grant: Grant, repository: str, record: ManifestRecord) -> None:
        policy = await self._policy(project_of(repository), grant.generation)
        if not policy.on or await self._scanner_pull(grant, policy):
            return
        refusal = await self._refusal(policy, repository, record)
        if refusal:
            assert policy.project is not None
            raise PolicyViolation(refusal, detail={"project": policy.project.name, "digest": str(record.digest)})

    async def check_blob(self, grant: Grant, repository: str, digest: Digest) -> None:
        policy = await self._policy(project_of(repository), grant.generation)
        if not policy.on or self._manifests is None or await self._scanner_pull(grant, policy):
            return
        refusals = []
        for record in await self._manifests.holding(repository, digest):
            refusal = await self._refusal(policy, repository, record)
            if not refusal:
                return  # held by what the policy lets through (or does not judge)
            refusals.append((str(record.digest), refusal))
        if refusals:  # no holder at all: a blob no image uses yet, nothing to protect
            assert policy.project is not None
            image, why = refusals[0]
            raise PolicyViolation(
                f"{digest} is part of {image}, which this project's policy refuses: {why}",
                detail={"project": policy.project.name, "digest": str(digest), "image": image},
            )

    async def dry_run(self, repository: str, digest: str) -> list[RuleVerdict]:
        """Each rule of the project's pull policy, whether it is on, and why it would refuse
        a pull of `digest` ("" when it would let it through), for anyone it does not exempt."""
        policy = await self._policy(project_of(repository), None)
        vulnerability = RuleVerdict("vulnerability", policy.project is not None and policy.vulnerability is not None)
        trust = RuleVerdict("signature", policy.project is not None and policy.trust is not None)
        if not policy.on or self._manifests is None:
            return [vulnerability, trust]
        record = await self._manifests.get(repository, Digest.parse(digest))
        if vulnerability.enabled and policy.vulnerability is not None and self._gated(record):
            reason = await self._vulnerability_refusal(policy, policy.vulnerability, repository, digest)
            vulnerability = RuleVerdict("vulnerability", True, reason)
        if trust.enabled and policy.trust is not None and signed_content(record):
            reason = await self._signature_refusal(policy, policy.trust, repository, record)
            trust = RuleVerdict("signature", True, reason)
        return [vulnerability, trust]

    async def _refusal(self, policy: _ProjectPolicy, repository: str, record: ManifestRecord) -> str:
        """Why the project's policy refuses `record` ("": it lets it through)."""
        if policy.vulnerability is not None and self._gated(record):
            refusal = await self._vulnerability_refusal(policy, policy.vulnerability, repository, str(record.digest))
            if refusal:
                return refusal
        if policy.trust is not None and self._signed_content(record):
            return await self._signature_refusal(policy, policy.trust, repository, record)
        return ""

    def _signed_content(self, record: ManifestRecord) -> bool:
        key = "s" + str(record.digest)
        known = self._images.get(key)
        if known is None:
            known = signed_content(record)
            self._images.put(key, known)
        return known

    async def _signature_refusal(
        self, policy: _ProjectPolicy, rule: TrustRule, repository: str, record: ManifestRecord
    ) -> str:
        """Why the signature rule refuses `record`, or "". Kept while neither the accounts'
        generation (trust policies, metadata) nor the registry's (signatures pushed or
        deleted anywhere) moves: a pull of a verified image is one lookup."""
        digest = str(record.digest)
        changes = await self._registry_changes.current() if self._registry_changes is not None else None
        project_id = policy.project.project_id if policy.project is not None else None
        key = (project_id, repository, digest)
        kept = policy.generation is not None and changes is not None
        if kept:
            cached = self._trust_verdicts.get(key)
            if cached is not None and cached[0] == (policy.generation, changes):
                return cached[1]
        verdict = await self._judge_signatures(rule, repository, record)
        # Notary's trust data changes without the registry's knowing: a refusal that may rest
        # on it is asked again (ContentTrust keeps Notary's answers a few seconds).
        notary_refusal = (
            bool(verdict) and self._content_trust is not None and any("notary" in kinds for _, kinds in rule.required)
        )
        if kept and not notary_refusal:
            self._trust_verdicts.put(key, ((policy.generation, changes), verdict))
        return verdict

    async def _judge_signatures(self, rule: TrustRule, repository: str, record: ManifestRecord) -> str:
        if self._signatures is None:
            return "This registry cannot read signatures, and the project's policy requires one."
        found = await self._signatures.verify(repository, record.digest, rule.material)
        verified: set[str] = {m.kind for m in found if m.verified}
        if self._content_trust is not None and any("notary" in kinds for _, kinds in rule.required):
            # Docker Content Trust: a tag Notary signs for this repository carries the digest.
            pins = rule.material.notary_pins(repository)
            notary = await self._content_trust.verify(repository, str(record.digest), pinned=pins)
            if notary.verified:
                verified.add("notary")
            else:
                found.append(SignatureManifest("notary", "", str(record.digest), 0, None, (notary,)))
        refusal = _trust_refusal(rule, found, verified)
        if refusal and rule.material.inherit_index_signature and self._manifests is not None:
            # Harbor's inherited signatures: an index's signature covers the platforms it lists.
            for index in await self._manifests.indexes_listing(repository, record.digest):
                inherited = await self._signatures.verify(repository, index.digest, rule.material)
                verified |= {m.kind for m in inherited if m.verified}
                found += inherited
            refusal = _trust_refusal(rule, found, verified)
        return refusal

    def _gated(self, record: ManifestRecord) -> bool:
        digest = str(record.digest)
        image = self._images.get(digest)
        if image is None:
            image = gated_image(record)
            self._images.put(digest, image)
        return image

    async def _policy(self, name: str, generation: int | None) -> _ProjectPolicy:
        """`name`'s policy at the accounts' `generation` (when the caller's grant read it; else
        it is read here)."""
        if generation is None and self._changes is not None:
            generation = await self._changes.current()
        if generation is not None:
            known = self._policies.get(name)
            if known is not None and known.generation == generation:
                return known
        project = await self._projects.get_project(name)
        rule = None
        if project is not None and project.metadata.get("prevent_vul") == "true":
            word = project.metadata.get("severity", "low").lower()
            threshold = _THRESHOLDS.get(word, Severity.LOW)
            allowlist = await self._allowlists.governing(project)
            rule = VulnerabilityRule(threshold, word.capitalize(), allowlist)
        trust = None
        required = _requirements(project.metadata) if project is not None else ()
        if project is not None and required:
            material = await self._trust.material(project) if self._trust is not None else TrustMaterial()
            trust = TrustRule(required, material)
        policy = _ProjectPolicy(project, rule, generation, trust)
        if generation is not None:
            self._policies.put(name, policy)
        return policy

    async def _scanner_pull(self, grant: Grant, policy: _ProjectPolicy) -> bool:
        subject = grant.subject
        if subject is None or not subject.startswith(ROBOT_PREFIX) or policy.project is None:
            return False
        key = (subject, policy.project.project_id, policy.generation)
        known = self._scanners.get(key) if policy.generation is not None else None
        if known is not None:
            return known
        robot = await self._robots.get_robot(subject)
        exempt = robot is not None and robot_active(robot) and robot_permits(robot, policy.project, *SCANNER_PULL)
        if policy.generation is not None:
            self._scanners.put(key, exempt)
        return exempt

    async def _vulnerability_refusal(
        self, policy: _ProjectPolicy, rule: VulnerabilityRule, repository: str, digest: str
    ) -> str:
        """Why the rule refuses `digest`, or "" when it allows it. Judged by what the
        image's last match found (a scan running again does not hold up its pulls); kept
        while neither the scans' nor the policy's generation moves."""
        allowlisted = rule.allowlist.in_force(time.time())
        scans = await self._scan_changes.current() if self._scan_changes is not None else None
        project_id = policy.project.project_id if policy.project is not None else None
        key = (project_id, repository, digest, bool(allowlisted))
        kept = policy.generation is not None and scans is not None
        if kept:
            cached = self._verdicts.get(key)
            if cached is not None and cached[0] == (policy.generation, scans):
                return cached[1]
        verdict = await self._judge(rule, allowlisted, repository, digest)
        if kept:
            self._verdicts.put(key, ((policy.generation, scans), verdict))
        return verdict

    async def _judge(self, rule: VulnerabilityRule, allowlisted: frozenset[str], repository: str, digest: str) -> str:
        summary = await self._scans.summary(digest)
        if summary is None:
            report: ScanReport | None = (await self._scans.latest(repository, [digest], ["vulnerability"])).get(
                (digest, "vulnerability")
            )
            if report is not None and report.status in _RUNNING:
                state = "is being scanned; pull it again once the scan has ended"
            elif report is not None and report.status != "Success":
                state = f"has no successful vulnerability scan (the last one ended {report.status}); scan it again"
            else:
                state = "has not been scanned; scan it, then pull it again"
            return (
                "current image without vulnerability scanning cannot be pulled due to configured policy in "
                f"{rule.phrase()} The image {state}, or contact your project administrator for help."
            )
        if not summary.total or summary.severity < rule.threshold:  # nothing can refuse it
            return ""
        findings = await self._scans.findings(digest)
        blocking = [f for f in findings if f.severity >= rule.threshold and not (_ids(f) & allowlisted)]
        return _refusal(rule, blocking) if blocking else ""
