"""The trust policy editor on a live server: a project's Signatures card and the
administration's system trust page. Each form changes what the API then shows; what the
service refuses (a bad PEM, pattern or trusted root) is shown next to the form, with what
was typed; a member who may not change the project is offered no form and a forged one is
refused, as is one without the session's CSRF token. Certificates and the trusted root
are real ones from the shared signed-image fixtures."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest

from tests.servers import Portside
from tests.trust.fixtures import SIGNED
from tests.ui.pages import ADMIN, api, unique
from tests.ui.test_projects import Browser, new_project, new_user

E2E_CERTIFICATE = (SIGNED / "notation-e2e-valid-signature" / "e2e.crt").read_text()
E2E_FINGERPRINT = "e38aea13f2b051f7183cca64a51ee676f4d4456f41d9fecf15eb367efc7343b9"
KEYLESS_ROOT = (SIGNED / "cosign-conforma-keyless-testimage" / "trusted_root.json").read_text()
COSIGN_KEY = (SIGNED / "cosign-singularity-hello-world" / "cosign.pub").read_text()
ISSUER = "https://kubernetes.default.svc.cluster.local"
SUBJECT = "https://kubernetes.io/namespaces/default/serviceaccounts/default"
MEMBER_ROLE_DEVELOPER = 2
EDITING_PARTS = (
    "trust-key-add",
    "trust-identity-add",
    "trust-root",
    "trust-certificate-add",
    "trust-notation",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-trust") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def trust_of(server: Portside, project: str) -> dict[str, object]:
    answer = api(server, "GET", f"/projects/{project}/trust")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def error_of(page: str, field: str) -> str:
    found = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def textarea_of(page: str, element_id: str) -> str:
    """What the page's textarea holds, as the browser would show it."""
    found = re.search(rf'<textarea id="{element_id}"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def settings(project: str) -> str:
    return f"/projects/{project}/settings"


def test_a_keyless_identity_is_added_listed_and_removed(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    added = admin.post(
        settings(project),
        {"part": "trust-identity-add", "issuer": ISSUER, "subject": "^https://.*/default$", "subject_regexp": "on"},
    )
    assert added.status_code == 303 and added.headers["location"] == settings(project)
    shown = admin.get(settings(project))
    assert "Keyless identity trusted." in shown.text
    assert ISSUER in shown.text and "regular expression" in shown.text
    keyless = trust_of(server, project)["keyless"]
    assert keyless == {
        "identities": [{"issuer": ISSUER, "subject": "^https://.*/default$", "subject_regexp": True}],
        "require_tlog": True,
    }
    removed = admin.post(
        settings(project),
        {
            "part": "trust-identity-remove",
            "issuer": ISSUER,
            "subject": "^https://.*/default$",
            "subject_regexp": "true",
        },
    )
    assert removed.status_code == 303
    assert trust_of(server, project)["keyless"] == {"identities": [], "require_tlog": True}
    again = admin.post(
        settings(project),
        {
            "part": "trust-identity-remove",
            "issuer": ISSUER,
            "subject": "^https://.*/default$",
            "subject_regexp": "true",
        },
    )
    assert again.status_code == 404 and "no longer trusted" in error_of(again.text, "identities")


def test_a_bad_regular_expression_shows_the_services_reason_and_keeps_the_input(
    server: Portside, admin: Browser
) -> None:
    project = new_project(server, False)
    refused = admin.post(
        settings(project),
        {"part": "trust-identity-add", "issuer": ISSUER, "subject": "([unclosed", "subject_regexp": "on"},
    )
    assert refused.status_code == 400
    assert "keyless.identities[0].subject is not a regular expression" in error_of(refused.text, "identity")
    assert 'value="([unclosed"' in refused.text and f'value="{ISSUER}"' in refused.text
    assert re.search(r'id="trust-subject-regexp" name="subject_regexp" type="checkbox" checked', refused.text)
    assert trust_of(server, project)["keyless"]["identities"] == []  # type: ignore[index]


def test_a_notation_certificate_is_shown_with_what_identifies_it(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    added = admin.post(
        settings(project),
        {
            "part": "trust-certificate-add",
            "certificate_name": "e2e",
            "certificate_type": "ca",
            "certificate": E2E_CERTIFICATE,
        },
    )
    assert added.status_code == 303
    shown = admin.get(settings(project)).text
    assert "Certificate trusted." in shown
    row = re.search(r'<table class="table trust-certificates".*?</table>', shown, re.S)
    assert row, shown
    table = html.unescape(row.group(0))
    assert "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US" in table  # subject and (self-signed) issuer
    assert table.count("CN=e2e,O=Notary") == 2
    assert ">2022-12-19</time> to <time" in table and ">2122-12-19</time>" in table
    assert 'title="2122-12-19 02:43 UTC"' in table
    assert E2E_FINGERPRINT in table
    stored = trust_of(server, project)["notation"]
    certificates = stored["certificates"]  # type: ignore[index]
    assert [(c["name"], c["type"], c["fingerprint"]) for c in certificates] == [("e2e", "ca", E2E_FINGERPRINT)]
    removed = admin.post(
        settings(project),
        {
            "part": "trust-certificate-remove",
            "certificate_type": "ca",
            "certificate_name": "e2e",
            "fingerprint": E2E_FINGERPRINT,
        },
    )
    assert removed.status_code == 303
    assert trust_of(server, project)["notation"]["certificates"] == []  # type: ignore[index]


def test_a_bad_pem_shows_the_services_reason_and_keeps_the_input(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    pem = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
    refused = admin.post(
        settings(project),
        {"part": "trust-certificate-add", "certificate_name": "broken", "certificate_type": "tsa", "certificate": pem},
    )
    assert refused.status_code == 400
    assert "notation.certificates[0].certificate is not a PEM certificate" in error_of(refused.text, "certificate")
    assert textarea_of(refused.text, "trust-certificate-pem") == pem and 'value="broken"' in refused.text
    assert '<option value="tsa" selected>' in refused.text
    key = admin.post(settings(project), {"part": "trust-key-add", "key_name": "ci", "public_key": "not a key"})
    assert key.status_code == 400 and "is not a public key" in error_of(key.text, "public_key")
    assert textarea_of(key.text, "trust-key-pem") == "not a key"


def test_a_cosign_key_is_added_and_removed(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    assert (
        admin.post(settings(project), {"part": "trust-key-add", "key_name": "ci", "public_key": COSIGN_KEY}).status_code
        == 303
    )
    keys = trust_of(server, project)["cosign_keys"]
    assert [k["name"] for k in keys] == ["ci"]  # type: ignore[attr-defined]
    key_id = keys[0]["id"]  # type: ignore[index]
    assert f'value="{key_id}"' in admin.get(settings(project)).text
    assert admin.post(settings(project), {"part": "trust-key-remove", "key_id": key_id}).status_code == 303
    assert trust_of(server, project)["cosign_keys"] == []


def test_the_trusted_root_is_imported_shown_replaced_and_removed(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    imported = admin.post(settings(project), {"part": "trust-root", "trusted_root": KEYLESS_ROOT})
    assert imported.status_code == 303
    shown = admin.get(settings(project)).text
    assert "Trusted root imported." in shown
    counts = dict(re.findall(r"<dt>([^<]+)</dt><dd>(\d+)</dd>", shown))
    assert counts == {
        "Fulcio certificate authorities": "1",
        "Rekor transparency logs": "1",
        "Certificate transparency logs": "1",
        "Timestamp authorities": "1",
    }
    assert "Fulcio CA" in shown and "Timestamp authority" in shown and "Replace the trusted root" in shown
    assert trust_of(server, project)["trusted_root"]["mediaType"].startswith("application/vnd.dev.sigstore")  # type: ignore[index]

    # The file's own bytes, uploaded as a browser sends a file input (multipart).
    uploaded = admin.client.post(
        settings(project),
        data={"part": "trust-root", "trusted_root": "", "csrf_token": admin.csrf},
        files={"trusted_root_file": ("trusted_root.json", KEYLESS_ROOT.encode(), "application/json")},
    )
    assert uploaded.status_code == 303
    assert "Trusted root replaced." in admin.get(settings(project)).text

    assert admin.post(settings(project), {"part": "trust-root-remove"}).status_code == 303
    assert trust_of(server, project)["trusted_root"] is None
    assert "This project holds no trusted root of its own" in admin.get(settings(project)).text


def test_a_bad_trusted_root_shows_the_services_reason_and_keeps_the_input(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    text = '{"mediaType": "application/json", "tlogs": []}'
    refused = admin.post(settings(project), {"part": "trust-root", "trusted_root": text})
    assert refused.status_code == 400
    assert "trusted_root is not a sigstore trusted root" in error_of(refused.text, "trusted_root")
    assert textarea_of(refused.text, "trust-root-text") == text
    empty = admin.post(settings(project), {"part": "trust-root", "trusted_root": "  "})
    assert empty.status_code == 400 and "trusted_root.json" in error_of(empty.text, "trusted_root")


def test_notation_identities_and_level_are_saved_and_a_bad_one_is_refused(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    admin.post(
        settings(project),
        {
            "part": "trust-certificate-add",
            "certificate_name": "e2e",
            "certificate_type": "ca",
            "certificate": E2E_CERTIFICATE,
        },
    )
    identity = "x509.subject: C=US, ST=WA, L=Seattle, O=Notary, CN=e2e"
    saved = admin.post(
        settings(project),
        {"part": "trust-notation", "trusted_identities": identity + "\n\n", "verification_level": "permissive"},
    )
    assert saved.status_code == 303
    notation = trust_of(server, project)["notation"]
    assert notation["trusted_identities"] == [identity] and notation["verification_level"] == "permissive"  # type: ignore[index]
    page = admin.get(settings(project)).text
    assert '<option value="permissive" selected>' in page
    assert textarea_of(page, "trust-notation-identities") == identity
    refused = admin.post(
        settings(project), {"part": "trust-notation", "trusted_identities": "acme", "verification_level": "audit"}
    )
    assert refused.status_code == 400
    assert "'acme' is neither" in error_of(refused.text, "notation")
    assert (
        textarea_of(refused.text, "trust-notation-identities") == "acme"
        and '<option value="audit" selected>' in refused.text
    )
    assert trust_of(server, project)["notation"]["verification_level"] == "permissive"  # type: ignore[index]


def test_the_switches_are_saved(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    saved = admin.post(
        settings(project), {"part": "trust", "inherit_index_signature": "on", "enable_content_trust_cosign": "on"}
    )
    assert saved.status_code == 303
    trust = trust_of(server, project)
    assert trust["inherit_index_signature"] is True and trust["use_system_defaults"] is False
    assert trust["keyless"] == {"identities": [], "require_tlog": False}
    metadata = api(server, "GET", f"/projects/{project}").json()["metadata"]
    assert metadata["enable_content_trust_cosign"] == "true" and metadata["enable_content_trust"] == "false"
    assert metadata["require_signature"] == ""
    page = admin.get(settings(project)).text
    assert re.search(r'name="inherit_index_signature" checked', page)
    assert not re.search(r'name="use_system_defaults" checked', page)

    # Several kinds go as one `require_signature`; a request with a word the service does
    # not know is refused with its reason.
    kinds = admin.client.post(
        settings(project),
        data={"part": "trust", "require_signature": ["cosign", "notation"], "csrf_token": admin.csrf},
    )
    assert kinds.status_code == 303
    assert api(server, "GET", f"/projects/{project}").json()["metadata"]["require_signature"] == "cosign,notation"
    page = admin.get(settings(project)).text
    for word, ticked in (("cosign", True), ("notation", True), ("notary", False)):
        assert bool(re.search(rf'name="require_signature" value="{word}" checked', page)) is ticked, word
    unknown = admin.post(
        settings(project), {"part": "trust", "require_signature": "gpg", "inherit_index_signature": "on"}
    )
    assert unknown.status_code == 400 and "'gpg' is not one of" in error_of(unknown.text, "trust")
    assert trust_of(server, project)["inherit_index_signature"] is False  # nothing was written


def test_a_member_who_may_not_change_the_project_sees_no_editing_and_is_refused(
    server: Portside, admin: Browser
) -> None:
    who = new_user(server)
    project = new_project(server, False, member=who[0])
    admin.post(
        settings(project),
        {
            "part": "trust-certificate-add",
            "certificate_name": "e2e",
            "certificate_type": "ca",
            "certificate": E2E_CERTIFICATE,
        },
    )
    before = trust_of(server, project)
    member = Browser(server, who)
    try:
        page = member.get(settings(project))
        assert page.status_code == 200
        assert E2E_FINGERPRINT in page.text  # what is trusted is shown
        assert "No other kind of signature is required." in page.text
        for part in (*EDITING_PARTS, "trust-certificate-remove"):
            assert f'value="{part}"' not in page.text, part
        forged = member.post(settings(project), {"part": "trust-identity-add", "issuer": ISSUER, "subject": SUBJECT})
        assert forged.status_code == 403
        removal = member.post(
            settings(project),
            {
                "part": "trust-certificate-remove",
                "certificate_type": "ca",
                "certificate_name": "e2e",
                "fingerprint": E2E_FINGERPRINT,
            },
        )
        assert removal.status_code == 403
    finally:
        member.close()
    assert trust_of(server, project) == before


def test_a_change_without_the_csrf_token_is_refused(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    refused = admin.post(
        settings(project), {"part": "trust-identity-add", "issuer": ISSUER, "subject": SUBJECT}, csrf=False
    )
    assert refused.status_code == 403 and "did not come from Portside" in refused.text
    assert trust_of(server, project)["keyless"]["identities"] == []  # type: ignore[index]
    system = admin.post(
        "/admin/trust", {"part": "trust-identity-add", "issuer": ISSUER, "subject": SUBJECT}, csrf=False
    )
    assert system.status_code == 403
    assert SUBJECT not in str(api(server, "GET", "/system/trust").json()["keyless"])


def test_the_system_trust_page_edits_the_defaults(server: Portside, admin: Browser) -> None:
    nav = admin.get("/admin/users").text
    assert '<a href="/admin/trust">Trust policy</a>' in nav
    page = admin.get("/admin/trust")
    assert page.status_code == 200 and 'aria-current="page">Trust policy' in page.text
    assert 'name="use_system_defaults"' not in page.text  # the system takes no one's defaults
    name = unique("root")
    assert (
        admin.post(
            "/admin/trust",
            {
                "part": "trust-certificate-add",
                "certificate_name": name,
                "certificate_type": "ca",
                "certificate": E2E_CERTIFICATE,
            },
        ).status_code
        == 303
    )
    identity = {"part": "trust-identity-add", "issuer": ISSUER, "subject": SUBJECT}
    assert admin.post("/admin/trust", identity).status_code == 303
    assert admin.post("/admin/trust", {"part": "trust-root", "trusted_root": KEYLESS_ROOT}).status_code == 303
    system = api(server, "GET", "/system/trust").json()
    assert name in [c["name"] for c in system["notation"]["certificates"]]
    assert {"issuer": ISSUER, "subject": SUBJECT, "subject_regexp": False} in system["keyless"]["identities"]
    assert system["trusted_root"] is not None
    shown = admin.get("/admin/trust").text
    assert "Trusted root imported." in shown and name in shown and E2E_FINGERPRINT in shown and SUBJECT in shown
    bad = admin.post(
        "/admin/trust",
        {
            "part": "trust-certificate-add",
            "certificate_name": "bad",
            "certificate_type": "ca",
            "certificate": "-----BEGIN nonsense",
        },
    )
    assert bad.status_code == 400 and "is not a PEM certificate" in error_of(bad.text, "certificate")
    assert textarea_of(bad.text, "trust-certificate-pem") == "-----BEGIN nonsense"


def test_the_system_trust_page_is_the_administrators(server: Portside) -> None:
    user = Browser(server, new_user(server))
    try:
        assert "/admin/trust" not in user.get("/projects").text
        refused = user.get("/admin/trust")
        assert refused.status_code == 403 and "may not read system-trust" in refused.text
        forged = user.post("/admin/trust", {"part": "trust-identity-add", "issuer": ISSUER, "subject": SUBJECT})
        assert forged.status_code == 403
    finally:
        user.close()


def test_the_editor_holds_no_inline_script_or_style(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    admin.post(settings(project), {"part": "trust-root", "trusted_root": KEYLESS_ROOT})
    for path in (settings(project), "/admin/trust"):
        text = admin.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert "<style" not in text and " style=" not in text, path


def test_timestamp_rule_and_overrides_are_saved_and_a_bad_override_is_refused(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    certificate = {"certificate_name": "e2e", "certificate_type": "ca", "certificate": E2E_CERTIFICATE}
    assert admin.post(settings(project), {"part": "trust-certificate-add", **certificate}).status_code == 303
    form = {
        "part": "trust-notation",
        "trusted_identities": "",
        "verification_level": "strict",
        "verify_timestamp": "afterCertExpiry",
        "override_expiry": "log",
        "override_revocation": "skip",
        "override_authenticity": "",
    }
    assert admin.post(settings(project), form).status_code == 303
    notation = trust_of(server, project)["notation"]
    assert notation["verify_timestamp"] == "afterCertExpiry"  # type: ignore[index]
    assert notation["verification_override"] == {"expiry": "log", "revocation": "skip"}  # type: ignore[index]
    page = admin.get(settings(project)).text
    assert '<option value="afterCertExpiry" selected>' in page
    assert re.search(r'name="override_expiry">.*?<option value="log" selected>', page, re.S)
    refused = admin.post(settings(project), {**form, "override_authenticity": "skip", "verify_timestamp": "never"})
    assert refused.status_code == 400 and "verify_timestamp" in error_of(refused.text, "notation")
    assert trust_of(server, project)["notation"]["verify_timestamp"] == "afterCertExpiry"  # type: ignore[index]


def test_a_notary_root_is_pinned_replaced_and_unpinned(server: Portside, admin: Browser) -> None:
    project = new_project(server, False)
    pinned = admin.post(
        settings(project), {"part": "trust-notary-add", "notary_repository": "app", "notary_keys": "AB" * 32 + "\n"}
    )
    assert pinned.status_code == 303
    assert trust_of(server, project)["notary"] == {"root_keys": [{"repository": "app", "keys": ["ab" * 32]}]}
    page = admin.get(settings(project)).text
    assert "ab" * 32 in page and "<code>app</code>" in page
    # A PEM key, several lines, is one pin; the same repository again replaces its pin.
    pem = COSIGN_KEY
    assert (
        admin.post(
            settings(project),
            {"part": "trust-notary-add", "notary_repository": "app", "notary_keys": f"{'cd' * 32}\n{pem}"},
        ).status_code
        == 303
    )
    [entry] = trust_of(server, project)["notary"]["root_keys"]  # type: ignore[index]
    assert entry["repository"] == "app" and entry["keys"][0] == "cd" * 32 and "BEGIN PUBLIC KEY" in entry["keys"][1]
    refused = admin.post(
        settings(project), {"part": "trust-notary-add", "notary_repository": "*", "notary_keys": "not a key"}
    )
    assert refused.status_code == 400 and "notary.root_keys[1].keys[0]" in error_of(refused.text, "notary_keys")
    assert textarea_of(refused.text, "trust-notary-keys") == "not a key"
    assert admin.post(settings(project), {"part": "trust-notary-remove", "notary_repository": "app"}).status_code == 303
    assert trust_of(server, project)["notary"] == {"root_keys": []}
    gone = admin.post(settings(project), {"part": "trust-notary-remove", "notary_repository": "app"})
    assert gone.status_code == 404 and "no Notary root is pinned" in error_of(gone.text, "notary")
