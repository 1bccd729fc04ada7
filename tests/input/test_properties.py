"""Property-based checks that keep bad input from ever being a server error.

- The management API, driven by schemathesis from its own OpenAPI document (as the
  admin and anonymously, with data that fits the document and data that does not): no
  answer is a 5xx (schemathesis's `not_a_server_error`).
- `/v2`, driven by hypothesis: manifests (JSON of every shape, wrong types, deep nesting,
  odd unicode, NaN, other encodings), references, Content-Range and Range headers and the
  `n`/`last` of listings. No answer is a 5xx, and a manifest is only accepted when it is
  UTF-8 JSON every client can read.

Bounded for CI: a fixed number of examples per operation, generated deterministically
(`derandomize`), no example database; each test takes well under two minutes. Each stack
gets a server of its own, since the admin's examples delete and change what they find.
"""

from __future__ import annotations

import base64
import json
import math
import string
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.api import oci
from tests.input.conftest import ADMIN, API
from tests.servers import Portside
from tests.stacks import Backing

pytestmark = pytest.mark.slow

BOUNDED = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
)


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, stack: str, backing: Backing) -> Iterator[Portside]:
    env = {**backing.env(stack), "PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"}
    server = Portside(data_dir=tmp_path_factory.mktemp(f"properties-{stack}") / "data", env=env, open_registry=False)
    server.start()
    yield server
    server.stop()


# --- the management API ---------------------------------------------------------------------


def _basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


def _server_errors(server: Portside, headers: dict[str, str], mode: GenerationMode, examples: int) -> list[str]:
    """Each operation's first server error, after `examples` generated requests to it."""
    base = f"{server.url}{API}"
    schema = schemathesis.openapi.from_dict(httpx.get(f"{base}/openapi.json", timeout=30).json())
    found: list[str] = []
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()

            @settings(BOUNDED, max_examples=examples)
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=base, session=session, headers=headers, timeout=60)
                case.validate_response(response, checks=[not_a_server_error])

            try:
                call()
            except Unsatisfiable:
                continue  # nothing of this operation can be made to not fit (no parameters)
            except Exception as failure:  # schemathesis's report: the request and the answer
                found.append(f"{operation.label}: {failure}"[:3000])
    return found


@pytest.mark.parametrize("mode, examples", [(GenerationMode.POSITIVE, 15), (GenerationMode.NEGATIVE, 8)])
def test_management_api_as_the_admin(target: Portside, mode: GenerationMode, examples: int) -> None:
    errors = _server_errors(target, _basic(*ADMIN), mode, examples)
    assert not errors, "\n\n".join(errors)
    assert httpx.get(f"{target.url}{API}/users/current", auth=ADMIN).status_code == 200


@pytest.mark.parametrize("mode, examples", [(GenerationMode.POSITIVE, 10), (GenerationMode.NEGATIVE, 5)])
def test_management_api_anonymously(target: Portside, mode: GenerationMode, examples: int) -> None:
    errors = _server_errors(target, {}, mode, examples)
    assert not errors, "\n\n".join(errors)


# --- /v2 -------------------------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.text(st.characters(codec=None, categories=["Cs", "Cc", "Co", "So"]), max_size=5)
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["schemaVersion", "mediaType", "artifactType", "config", "layers", "subject", "annotations", "manifests"]
DESCRIPTOR_FIELDS = ["mediaType", "digest", "size", "urls", "annotations", "platform", "artifactType", "data"]
ENCODINGS = ["utf-8", "utf-8", "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1"]
CONTENT_TYPES = [oci.OCI_MANIFEST, oci.OCI_INDEX, oci.DOCKER_MANIFEST, oci.DOCKER_LIST, "", "application/json"]


@st.composite
def manifests(draw: st.DrawFn, valid: dict[str, Any]) -> tuple[bytes, str]:
    """A pushed manifest's document with some of it replaced, or something else entirely,
    as bytes in some encoding, perhaps cut short or nested deep."""
    doc: Any = json.loads(json.dumps(valid))
    for _ in range(draw(st.integers(0, 3))):
        if not isinstance(doc, dict):
            break
        where = draw(st.sampled_from(["top", "config", "layer", "elsewhere"]))
        value = draw(JSON_VALUES)
        if where == "top":
            doc[draw(st.sampled_from(FIELDS))] = value
        elif where == "config" and isinstance(doc.get("config"), dict):
            doc["config"][draw(st.sampled_from(DESCRIPTOR_FIELDS))] = value
        elif where == "layer" and isinstance(doc.get("layers"), list) and doc["layers"]:
            layer = doc["layers"][0]
            if isinstance(layer, dict):
                layer[draw(st.sampled_from(DESCRIPTOR_FIELDS))] = value
        else:
            doc = value if draw(st.booleans()) else {**doc, draw(st.text(max_size=10)): value}
    text = json.dumps(doc, allow_nan=True, ensure_ascii=draw(st.booleans()))
    depth = draw(st.sampled_from([0, 0, 0, 63, 64, 65, 1000, 100_000]))
    if depth and isinstance(doc, dict):
        text = text[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    encoding = draw(st.sampled_from(ENCODINGS))
    try:  # lone surrogates as they are, where the encoding can hold them
        body = text.encode(encoding, errors="surrogatepass")
    except UnicodeEncodeError:
        body = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return body, draw(st.sampled_from(CONTENT_TYPES))


def _strictly_json(body: bytes) -> Any:
    """What every client parses alike: UTF-8 without a BOM, and no NaN or Infinity."""
    assert not body.startswith(b"\xef\xbb\xbf")

    def refuse(constant: str) -> Any:
        raise AssertionError(f"accepted {constant}")

    return json.loads(body.decode("utf-8"), parse_constant=refuse)


def _no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, oci.error_text(response)


def _v2(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=ADMIN, timeout=60.0)


def test_manifests(target: Portside) -> None:
    repo = f"library/{oci.unique('prop')}"
    with _v2(target) as client:
        valid = oci.image_manifest()
        for blob in valid.blobs:
            oci.push_blob(client, repo, blob)

        @settings(BOUNDED, max_examples=200)
        @given(pushed=manifests(valid.json))
        def push(pushed: tuple[bytes, str]) -> None:
            body, content_type = pushed
            r = client.put(f"/v2/{repo}/manifests/t", content=body, headers={"content-type": content_type})
            _no_server_error(r)
            if r.status_code == 201:
                doc = _strictly_json(body)
                assert isinstance(doc, dict) and _finite(doc)
                served = client.get(f"/v2/{repo}/manifests/{oci.digest(body)}", headers={"accept": oci.ACCEPT_ALL})
                assert served.status_code == 200 and served.content == body, oci.error_text(served)
            else:
                oci.assert_error(r, {400, 404, 413}, "MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "SIZE_INVALID")

        push()


def _finite(value: Any) -> bool:
    """No number in `value` is infinite or past 64 bits (the server must refuse those)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, int) and not isinstance(item, bool) and not -(2**63) <= item < 2**63:
            return False
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return True


REFERENCES = (
    st.from_regex(r"\A[a-zA-Z0-9_][a-zA-Z0-9._-]{0,130}\Z")
    | st.builds(lambda h: f"sha256:{h}", st.text("0123456789abcdefABCDEF", min_size=60, max_size=66))
    | st.builds(lambda a, h: f"{a}:{h}", st.text(string.ascii_lowercase + "0123456789+._-", max_size=8), st.text())
    | st.text(min_size=1, max_size=40)
)


def test_references(target: Portside) -> None:
    repo = f"library/{oci.unique('prop')}"
    with _v2(target) as client:
        valid = oci.push_image(client, repo, "v1")

        @settings(BOUNDED, max_examples=150)
        @given(reference=REFERENCES, method=st.sampled_from(["GET", "HEAD", "DELETE", "PUT"]))
        def use(reference: str, method: str) -> None:
            path = f"/v2/{repo}/manifests/{quote(reference, safe='')}"
            if method == "PUT":
                r = client.put(path, content=valid.body, headers={"content-type": valid.media_type})
            else:
                r = client.request(method, path, headers={"accept": oci.ACCEPT_ALL})
            _no_server_error(r)
            if method in ("GET", "HEAD") and r.status_code != 200:
                assert r.status_code == 404, oci.error_text(r)

        use()


# Numbers as clients write them, and as they should not: other scripts' digits and
# superscripts (which `str.isdigit` takes for digits), and more digits than `int` reads.
LATIN1_DIGITS = st.text(string.digits + "\u00b2\u00b3\u00b9", min_size=1, max_size=8)
DIGITS = LATIN1_DIGITS | st.integers(min_value=0).map(str) | st.just("9" * 5000)
# Header values as HTTP carries them (latin-1, no surrounding blanks).
HEADER_TEXT = (
    st.text(string.digits + "-/*, =\t" + "bytes" + "\u00b2\u00b9\u00bd\u00ff", max_size=30)
    | st.builds(lambda a, b: f"{a}-{b}", DIGITS, DIGITS)
    | st.builds(lambda a: f"-{a}", DIGITS)
    | st.builds(lambda a: f"{a}-", DIGITS)
).map(lambda text: text.strip(" \t"))


def test_content_ranges_of_chunks(target: Portside) -> None:
    repo = f"library/{oci.unique('prop')}"
    with _v2(target) as client:

        @settings(BOUNDED, max_examples=80)
        @given(content_range=HEADER_TEXT, data=st.binary(max_size=16))
        def patch(content_range: str, data: bytes) -> None:
            location = oci.start_upload(client, repo)
            headers = {"content-range": content_range.encode("latin-1"), "content-type": "application/octet-stream"}
            _no_server_error(client.patch(location, content=data, headers=headers))

        patch()


def test_ranges_of_blobs(target: Portside) -> None:
    repo = f"library/{oci.unique('prop')}"
    blob = oci.layer(100)
    with _v2(target) as client:
        oci.push_blob(client, repo, blob)

        @settings(BOUNDED, max_examples=120)
        @given(
            wanted=HEADER_TEXT | st.builds(lambda t: f"bytes={t}", HEADER_TEXT),
            method=st.sampled_from(["GET", "HEAD"]),
        )
        def read(wanted: str, method: str) -> None:
            r = client.request(method, f"/v2/{repo}/blobs/{blob.digest}", headers={"range": wanted.encode("latin-1")})
            _no_server_error(r)
            assert r.status_code in (200, 206, 416), oci.error_text(r)

        read()


def test_listing_queries(target: Portside) -> None:
    """n and last of the tags list and the catalog; last stands for the referrers' artifactType."""
    repo = f"library/{oci.unique('prop')}"
    with _v2(target) as client:
        subject = oci.push_image(client, repo, "v1")
        listings: list[Callable[[dict[str, str]], httpx.Response]] = [
            lambda params: client.get(f"/v2/{repo}/tags/list", params=params),
            lambda params: client.get("/v2/_catalog", params=params),
            lambda params: client.get(
                f"/v2/{repo}/referrers/{subject.digest}", params={"artifactType": params.get("last", "")}
            ),
        ]

        @settings(BOUNDED, max_examples=120)
        @given(
            n=st.none() | DIGITS | st.text("0123456789\u0663\u06f4\u07c0", max_size=6) | st.text(max_size=12),
            last=st.none() | st.text(max_size=30),
            listing=st.sampled_from(listings),
        )
        def list_(n: str | None, last: str | None, listing: Callable[[dict[str, str]], httpx.Response]) -> None:
            params = {key: value for key, value in (("n", n), ("last", last)) if value is not None}
            r = listing(params)
            _no_server_error(r)
            assert r.status_code in (200, 400), oci.error_text(r)

        list_()
