"""The trust policy editor in a real browser: an administrator opens a project's settings,
trusts a Notation certificate and a keyless identity, imports the trusted root from its
file and sees each listed; then does the same on the system's trust page, reached from the
administration's navigation. Every page is watched for CSP violations (conftest.py), and
axe-core finds nothing blocking in the editor holding all of it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import ADMIN, Watcher, api, new_project, open_context, sign_in
from tests.browser.test_accessibility import blocking_violations
from tests.servers import Portside
from tests.trust.fixtures import SIGNED

E2E_CERTIFICATE = SIGNED / "notation-e2e-valid-signature" / "e2e.crt"
KEYLESS_ROOT = SIGNED / "cosign-conforma-keyless-testimage" / "trusted_root.json"
ISSUER = "https://kubernetes.default.svc.cluster.local"
SUBJECT = "https://kubernetes.io/namespaces/default/serviceaccounts/default"


def trust_a_certificate_and_an_identity(page: Page) -> None:
    page.get_by_text("Add a Notation certificate").click()
    page.get_by_label("Certificate name").fill("e2e")
    page.get_by_label("Trust store type").select_option("ca")
    page.get_by_label("Certificate (PEM; a chain may hold several)").fill(E2E_CERTIFICATE.read_text())
    page.get_by_role("button", name="Trust this certificate").click()
    expect(page.get_by_text("Certificate trusted.")).to_be_visible()
    certificates = page.locator("table.trust-certificates tbody tr")
    expect(certificates).to_have_count(1)
    expect(certificates.first).to_contain_text("CN=e2e,O=Notary,L=Seattle,ST=WA,C=US")
    expect(certificates.first).to_contain_text("2122-12-19")

    page.get_by_text("Add a keyless identity").click()
    page.get_by_label("OIDC issuer").fill(ISSUER)
    page.get_by_label("Subject (the certificate's identity)").fill(SUBJECT)
    page.get_by_role("button", name="Trust this identity").click()
    expect(page.get_by_text("Keyless identity trusted.")).to_be_visible()
    identities = page.locator("table.trust-identities tbody tr")
    expect(identities).to_have_count(1)
    expect(identities.first).to_contain_text(ISSUER)
    expect(identities.first).to_contain_text(SUBJECT)
    expect(identities.first).to_contain_text("exactly")


def test_a_project_trusts_a_notation_certificate_and_a_keyless_identity(signed_in: Page, server: Portside) -> None:
    page = signed_in
    project = new_project(server)
    page.goto(f"/projects/{project}/settings")
    trust_a_certificate_and_an_identity(page)

    page.get_by_label("trusted_root.json file").set_input_files(KEYLESS_ROOT)
    page.get_by_role("button", name="Import this trusted root").click()
    expect(page.get_by_text("Trusted root imported.")).to_be_visible()
    expect(page.locator("table.trust-root tbody tr")).to_have_count(4)
    expect(page.get_by_text("Replace the trusted root")).to_be_visible()  # its form now folded away

    trust = api(server, "GET", f"/projects/{project}/trust").json()
    assert [c["name"] for c in trust["notation"]["certificates"]] == ["e2e"]
    assert trust["keyless"]["identities"] == [{"issuer": ISSUER, "subject": SUBJECT, "subject_regexp": False}]
    assert trust["trusted_root"]["mediaType"].startswith("application/vnd.dev.sigstore.trustedroot")

    # A pattern the service cannot read is refused beside its form, opened, as typed.
    page.get_by_text("Add a keyless identity").click()
    page.get_by_label("OIDC issuer").fill(ISSUER)
    page.get_by_label("Subject (the certificate's identity)").fill("([unclosed")
    page.get_by_label("The subject is a regular expression").check()
    page.get_by_role("button", name="Trust this identity").click()
    expect(page.locator("#identity-error")).to_contain_text("is not a regular expression")
    expect(page.get_by_label("Subject (the certificate's identity)")).to_have_value("([unclosed")


def test_the_system_trust_page_is_reached_from_the_navigation(signed_in: Page, server: Portside) -> None:
    page = signed_in
    page.goto("/admin/users")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Trust policy").click()
    expect(page).to_have_url(re.compile(r"/admin/trust$"))
    expect(page.get_by_role("heading", name="Trust policy", level=1)).to_be_visible()
    trust_a_certificate_and_an_identity(page)
    system = api(server, "GET", "/system/trust").json()
    assert [c["name"] for c in system["notation"]["certificates"]] == ["e2e"]
    assert system["keyless"]["identities"] == [{"issuer": ISSUER, "subject": SUBJECT, "subject_regexp": False}]


@pytest.fixture(params=["light", "dark"])
def axe_context(request: pytest.FixtureRequest, browser: Browser, server: Portside) -> Iterator[BrowserContext]:
    # As in test_accessibility: axe is a script of its own, which the pages' CSP refuses.
    opened = open_context(browser, server, Watcher(), bypass_csp=True, color_scheme=request.param)
    yield opened
    opened.close()


def test_axe_finds_nothing_in_the_editor_holding_all_of_it(axe_context: BrowserContext, server: Portside) -> None:
    project = new_project(server)
    document = {
        "keyless": {"identities": [{"issuer": ISSUER, "subject": SUBJECT, "subject_regexp": False}]},
        "trusted_root": json.loads(KEYLESS_ROOT.read_text()),
        "notation": {"certificates": [{"name": "e2e", "type": "ca", "certificate": E2E_CERTIFICATE.read_text()}]},
    }
    assert api(server, "PUT", f"/projects/{project}/trust", json=document).status_code == 200
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    problems = []
    for path in (f"/projects/{project}/settings", "/admin/trust"):
        page.goto(path)
        problems += [f"{path}: {v}" for v in blocking_violations(page)]
    page.goto(f"/projects/{project}/settings")
    page.get_by_text("Add a Notation certificate").click()
    page.get_by_label("Certificate name").fill("broken")
    page.get_by_label("Certificate (PEM; a chain may hold several)").fill("-----BEGIN CERTIFICATE-----")
    page.get_by_role("button", name="Trust this certificate").click()
    expect(page.locator("#certificate-error")).to_contain_text("is not a PEM certificate")
    problems += [f"with the form's error: {v}" for v in blocking_violations(page)]
    assert not problems, problems
