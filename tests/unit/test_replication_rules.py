"""Replication's naming rule and filters (mgmt/replication_rules.py), against Harbor's
documented examples of `dest_namespace_replace_count`."""

from __future__ import annotations

import pytest

from portside.errors import BadRequest
from portside.meta.replication import Filter
from portside.mgmt.replication_rules import check_filters, destination, keeps_kind, keeps_repository, kept_tags
from portside.mgmt.replication_runs import Retries


@pytest.mark.parametrize(
    ("count", "expected"),
    [(-1, "n/img"), (0, "n/a/b/c/img"), (1, "n/b/c/img"), (2, "n/c/img"), (3, "n/img")],
)
def test_harbor_examples(count: int, expected: str) -> None:
    assert destination("a/b/c/img", "n", count) == expected


def test_replacing_every_component_is_refused() -> None:
    with pytest.raises(BadRequest):
        destination("a/b/c/img", "n", 4)


def test_no_namespace_keeps_the_name() -> None:
    for count in (-1, 0, 1, 3):
        assert destination("a/b/c/img", "", count) == "a/b/c/img"


def test_a_namespace_of_several_components() -> None:
    assert destination("library/app", "mirror/eu", 1) == "mirror/eu/app"
    assert destination("library/app", "/mirror/", 0) == "mirror/library/app"


def test_name_filter_is_doublestar() -> None:
    filters = check_filters([Filter("name", "library/**")])
    assert keeps_repository(filters, "library/a/b")
    assert keeps_repository(filters, "library/app")
    assert not keeps_repository(filters, "other/app")
    braces = check_filters([Filter("name", "{web,app}/*")])
    assert keeps_repository(braces, "web/x") and keeps_repository(braces, "app/y")
    assert not keeps_repository(braces, "web/x/y")


def test_tag_filters_match_and_exclude() -> None:
    filters = check_filters([Filter("tag", "v*"), Filter("tag", "*-rc*", "excludes")])
    assert filters[0].decoration == "matches"
    assert kept_tags(filters, ["v1", "v2-rc1", "latest", "v2"]) == ["v1", "v2"]
    assert kept_tags((), ["a", "b"]) == ["a", "b"]


def test_resource_filter() -> None:
    images = check_filters([Filter("resource", "image")])
    assert keeps_kind(images, "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.config.v1+json")
    assert keeps_kind(images, "application/vnd.oci.image.index.v1+json", None)
    assert not keeps_kind(
        images, "application/vnd.oci.image.manifest.v1+json", "application/vnd.cncf.helm.config.v1+json"
    )
    assert keeps_kind(check_filters([Filter("resource", "artifact")]), "x", "y")


@pytest.mark.parametrize(
    "bad",
    [
        Filter("colour", "red"),
        Filter("label", ("dev",), "excludes"),
        Filter("name", "a/**", "excludes"),
        Filter("tag", "v*", "sometimes"),
        Filter("resource", "chart"),
    ],
)
def test_bad_filters_are_refused(bad: Filter) -> None:
    with pytest.raises(BadRequest):
        check_filters([bad])


def test_backoff_doubles_and_is_capped() -> None:
    retries = Retries(attempts=5, base_seconds=2.0, max_seconds=10.0)
    assert [retries.delay(n) for n in (1, 2, 3, 4, 5)] == [2.0, 4.0, 8.0, 10.0, 10.0]
