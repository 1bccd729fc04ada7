"""Where the shared reference data lives: `../shared` beside the checkout (fixtures/vulndb,
specs/), used as it is."""

from __future__ import annotations

from pathlib import Path

SHARED = Path(__file__).resolve().parents[3] / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")

VULNDB_FIXTURES = SHARED / "fixtures" / "vulndb"
SPECS = SHARED / "specs"
