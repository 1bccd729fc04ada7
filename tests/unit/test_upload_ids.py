"""Upload ids that prove themselves: issued for one repository, unforgeable, expiring."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from portside.registry.uploadids import UploadIds

SECRET = b"a secret of thirty-two bytes or more"


def test_an_issued_id_proves_its_repository_and_time() -> None:
    ids = UploadIds(SECRET, 3600)
    before = datetime.now(UTC).replace(microsecond=0)
    upload_id, issued = ids.issue("library/app")
    assert len(upload_id) == 64 and set(upload_id) <= set("0123456789abcdef")
    assert before <= issued <= datetime.now(UTC)
    assert ids.issued_at("library/app", upload_id) == issued
    assert not ids.refuses("library/app", upload_id)
    assert ids.refuses("library/other", upload_id)
    assert ids.issue("library/app")[0] != upload_id


def test_an_id_is_nothing_elsewhere_or_altered_or_under_another_secret() -> None:
    ids = UploadIds(SECRET, 3600)
    upload_id, _ = ids.issue("library/app")
    assert ids.issued_at("library/other", upload_id) is None
    assert ids.issued_at("library/app/sub", upload_id) is None
    for position in (0, 35, 63):  # the nonce, the time, the MAC
        flipped = "1" if upload_id[position] == "0" else "0"
        altered = upload_id[:position] + flipped + upload_id[position + 1 :]
        assert ids.issued_at("library/app", altered) is None
    assert UploadIds(SECRET + b"!", 3600).issued_at("library/app", upload_id) is None
    assert ids.issued_at("library/app", upload_id.upper()) is None


@pytest.mark.parametrize("upload_id", ["", "..", "a" * 63, "g" * 64, "0" * 65, "00000000-0000-4000-8000-000000000000"])
def test_ids_of_other_shapes_are_refused(upload_id: str) -> None:
    assert UploadIds(SECRET, 3600).refuses("r", upload_id)


def test_sessions_made_before_these_ids_keep_their_shape() -> None:
    assert not UploadIds(SECRET, 3600).refuses("r", "0123456789abcdef0123456789abcdef")  # its row decides
    assert UploadIds(SECRET, 3600).issued_at("r", "0123456789abcdef0123456789abcdef") is None


def test_ids_expire_after_the_idle_limit() -> None:
    ids = UploadIds(SECRET, 60)
    _, issued = ids.issue("r")
    assert not ids.expired(issued)
    assert not ids.expired(datetime.fromtimestamp(time.time() - 59, UTC))
    assert ids.expired(issued - timedelta(seconds=61))


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        UploadIds(b"short", 60)
