"""/api/v2.0/docs loads nothing from another origin: Swagger UI is served from the package."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import Portside

# Every URL the page names: in attributes, and Swagger UI's `url: '…'` (the OpenAPI document).
_REFERENCES = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|\burl\s*:\s*["']([^"']+)["']""")
_EXPECTED_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(data_dir=tmp_path_factory.mktemp("docs") / "data", open_registry=False).start()
    yield running
    running.stop()


def test_the_docs_page_references_only_same_origin_assets_and_each_answers(server: Portside) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/api/v2.0/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "SwaggerUIBundle(" in page.text
        assert not re.search(r"https?://|//[a-z]", page.text, re.IGNORECASE), page.text  # no other origin
        references = [a or b for a, b in _REFERENCES.findall(page.text)]
        assert len(references) == 4, references  # the script, the style sheet, the icon, the document
        for reference in references:
            assert reference.startswith("/") and not reference.startswith("//"), reference
            answer = client.get(reference)
            assert answer.status_code == 200, reference
            suffix = reference[reference.rindex(".") :]
            assert answer.headers["content-type"].split(";")[0] == _EXPECTED_TYPES[suffix], reference
            if reference.startswith("/static/"):
                assert "max-age=31536000" in answer.headers["cache-control"], reference
        bundle = client.get(next(r for r in references if r.endswith(".js")))
        assert "SwaggerUIBundle" in bundle.text and len(bundle.content) > 1_000_000


def test_the_vendored_licences_are_served_and_nothing_else_of_the_package(server: Portside) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/api/v2.0/docs").text
        script = re.search(r'src="(/static/vendor/swagger-ui-dist/[^/"]+)/swagger-ui-bundle\.js"', page)
        assert script is not None, page
        base = script.group(1)
        licence = client.get(f"{base}/LICENSE")
        assert licence.status_code == 200 and "Apache License" in licence.text
        assert licence.headers["content-type"].startswith("text/plain")
        for missing in (f"{base}/package.json", f"{base}/../LICENSE", "/static/vendor/swagger-ui-dist/0.0.0/LICENSE"):
            assert client.get(missing).status_code == 404, missing
