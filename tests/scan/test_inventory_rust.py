"""Rust programs built with cargo auditable: a program built here by rustc, given its
`.dep-v0` section by binutils' objcopy (the section cargo auditable's linker step writes:
zlib-compressed JSON), read as it streams past in a layer; the ELF section lookup on
crafted 32-bit and big-endian files; the stream several detectors share; and matching a
crate found that way against an OSV crates.io record."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import tarfile
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.vulndb import SqlVulnerabilities
from portside.scan.inventory import go_binaries, rust_binaries, take_inventory
from portside.scan.inventory.elf import ElfError, find_section, header
from portside.scan.inventory.rewind import Rewindable
from portside.scan.inventory.rust_audit import excerpt, parse
from portside.scan.match import match
from portside.scan.model import Ecosystem, Inventory, Package
from portside.scan.vulndb.update import import_path
from tests.scan.layers_builder import file, file_layer, layer_of

needs_rustc = pytest.mark.skipif(
    shutil.which("rustc") is None or shutil.which("objcopy") is None,
    reason="rustc and binutils' objcopy (apt: rustc binutils) build the Rust program",
)

# The dependency list of a program `hello` (a path crate, the root) as cargo auditable
# writes it: runtime crates from crates.io (kind omitted or "runtime"), a build dependency,
# crates from git, another registry and a local path.
AUDIT = {
    "format": 1,
    "packages": [
        {"name": "cc", "version": "1.0.83", "source": "crates.io", "kind": "build"},
        {"name": "hello", "version": "0.1.0", "source": "local", "dependencies": [0, 2, 3, 4, 5, 6], "root": True},
        {"name": "libc", "version": "0.2.150", "source": "crates.io", "kind": "runtime"},
        {"name": "mylib", "version": "0.3.0", "source": "local"},
        {"name": "patched", "version": "2.0.0", "source": "git"},
        {"name": "internal", "version": "1.1.0", "source": "registry"},
        {"name": "smallvec", "version": "1.6.0", "source": "crates.io"},
    ],
}
EXPECTED = {("libc", "0.2.150"), ("smallvec", "1.6.0")}

# An OSV record of RustSec's RUSTSEC-2021-0003: its ids and affected ranges (smallvec from
# 0.6.3 up to 0.6.14, and from 1.0.0 up to 1.6.1); the rest is written here.
RUSTSEC_2021_0003 = {
    "id": "RUSTSEC-2021-0003",
    "modified": "2021-10-19T22:14:35Z",
    "aliases": ["CVE-2021-25900", "GHSA-43w2-9j62-hq99"],
    "summary": "Buffer overflow in SmallVec::insert_many",
    "details": "A bug in the SmallVec::insert_many method caused it to allocate a buffer that was smaller than needed.",
    "affected": [
        {
            "package": {"ecosystem": "crates.io", "name": "smallvec", "purl": "pkg:cargo/smallvec"},
            "ranges": [
                {
                    "type": "SEMVER",
                    "events": [
                        {"introduced": "0.6.3"},
                        {"fixed": "0.6.14"},
                        {"introduced": "1.0.0"},
                        {"fixed": "1.6.1"},
                    ],
                }
            ],
        }
    ],
    "references": [{"type": "ADVISORY", "url": "https://rustsec.org/advisories/RUSTSEC-2021-0003.html"}],
}


def compressed(document: Any) -> bytes:
    return zlib.compress(json.dumps(document).encode())


def with_section(binary: Path, content: bytes, out: Path, name: str = ".dep-v0") -> Path:
    section = out.with_suffix(".section")
    section.write_bytes(content)
    subprocess.run(["objcopy", "--add-section", f"{name}={section}", str(binary), str(out)], check=True)
    return out


@pytest.fixture(scope="module")
def hello(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Rust program built here by rustc, without audit data."""
    if shutil.which("rustc") is None or shutil.which("objcopy") is None:
        pytest.skip("rustc or objcopy is not installed (apt: rustc binutils)")
    work = tmp_path_factory.mktemp("rust")
    (work / "main.rs").write_text('fn main() {\n    println!("hello");\n}\n')
    subprocess.run(["rustc", "-O", "-o", str(work / "hello"), str(work / "main.rs")], check=True, capture_output=True)
    return work / "hello"


@pytest.fixture(scope="module")
def auditable(hello: Path) -> Path:
    """The program with the audit data cargo auditable would have given it."""
    return with_section(hello, compressed(AUDIT), hello.parent / "hello-auditable")


def tar_of(path: Path, binaries: dict[str, Path], mode: int = 0o755) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, source in binaries.items():
            info = tar.gettarinfo(str(source), arcname=name.lstrip("/"))
            info.mtime, info.uid, info.gid, info.mode = 1_700_000_000, 0, 0, mode
            with source.open("rb") as handle:
                tar.addfile(info, handle)
    return path


def crates(inventory: Inventory) -> list[Package]:
    return [p for p in inventory.packages if p.ecosystem is Ecosystem.CRATES]


# -- the program built here ---------------------------------------------------------------


@needs_rustc
def test_the_section_found_is_the_one_objcopy_dumps(auditable: Path, tmp_path: Path):
    dumped = tmp_path / "dumped"
    subprocess.run(["objcopy", f"--dump-section=.dep-v0={dumped}", str(auditable), str(tmp_path / "copy")], check=True)
    with auditable.open("rb") as handle:
        blob = excerpt(handle, auditable.stat().st_size)
    assert blob == dumped.read_bytes() == compressed(AUDIT)
    found, unnamed = parse(blob)
    assert unnamed == 0 and len(found) == len(AUDIT["packages"])


@needs_rustc
async def test_the_crates_io_crates_of_a_program_are_found_and_the_rest_left_out(auditable: Path, tmp_path: Path):
    image = file_layer(tar_of(tmp_path / "layer.tar", {"/usr/local/bin/hello": auditable}))
    inventory = await take_inventory([image])
    found = crates(inventory)
    assert {(p.name, p.version) for p in found} == EXPECTED  # not cc (build), hello, mylib, patched, internal
    smallvec = next(p for p in found if p.name == "smallvec")
    assert (smallvec.purl, smallvec.path, smallvec.layer) == (
        "pkg:cargo/smallvec@1.6.0",
        "/usr/local/bin/hello",
        image.digest,
    )
    assert inventory.packages == tuple(found) and inventory.notes == ()


@needs_rustc
async def test_a_program_without_audit_data_and_a_file_that_is_not_executable_give_nothing(
    hello: Path, auditable: Path, tmp_path: Path
):
    plain = file_layer(tar_of(tmp_path / "plain.tar", {"/usr/bin/hello": hello}))
    assert (await take_inventory([plain])).packages == ()
    # cargo auditable writes the list into programs; a file no one may run is no program.
    data = file_layer(tar_of(tmp_path / "data.tar", {"/usr/share/hello.bin": auditable}, mode=0o644))
    assert (await take_inventory([data])).packages == ()


@needs_rustc
@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"not zlib at all", "not zlib data"),
        (compressed(AUDIT)[:40], "truncated"),
        (zlib.compress(b"{not json"), "not JSON"),
        (compressed({"crates": []}), 'no "packages" list'),
        (b"", "empty"),
    ],
    ids=["garbage", "truncated", "not-json", "no-packages", "empty"],
)
async def test_a_section_that_cannot_be_decoded_is_noted(hello: Path, tmp_path: Path, content: bytes, says: str):
    broken = with_section(hello, content, tmp_path / "broken")
    inventory = await take_inventory([file_layer(tar_of(tmp_path / "layer.tar", {"/usr/bin/broken": broken}))])
    assert inventory.packages == ()
    [note] = inventory.notes
    assert note.startswith("the cargo auditable data of /usr/bin/broken could not be read") and says in note


@needs_rustc
async def test_entries_without_name_or_version_are_counted_not_fatal(hello: Path, tmp_path: Path):
    document = {"packages": [{"name": "smallvec", "version": "1.6.0", "source": "crates.io"}, {"source": "local"}, 7]}
    odd = with_section(hello, compressed(document), tmp_path / "odd")
    inventory = await take_inventory([file_layer(tar_of(tmp_path / "layer.tar", {"/usr/bin/odd": odd}))])
    assert [(p.name, p.version) for p in inventory.packages] == [("smallvec", "1.6.0")]
    assert inventory.notes == ("2 entries of the cargo auditable data of /usr/bin/odd name no crate and version",)


@needs_rustc
async def test_a_go_program_with_audit_data_is_read_by_both_detectors(auditable: Path, tmp_path: Path):
    if shutil.which("go") is None:
        pytest.skip("golang-go is not installed")
    work = tmp_path / "go"
    work.mkdir()
    (work / "go.mod").write_text("module example.com/both\n\ngo 1.19\n")
    (work / "main.go").write_text('package main\n\nfunc main() { println("both") }\n')
    subprocess.run(
        ["go", "build", "-o", "both", "."],
        cwd=work,
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(work), "GOPROXY": "off", "GOCACHE": str(work / "cache")},
    )
    both = with_section(work / "both", compressed(AUDIT), tmp_path / "both")
    layer = file_layer(tar_of(tmp_path / "layer.tar", {"/usr/bin/both": both, "/usr/bin/hello": auditable}))
    inventory = await take_inventory([layer])
    by_path = {(p.path, p.ecosystem, p.name) for p in inventory.packages}
    assert ("/usr/bin/both", Ecosystem.GO, "stdlib") in by_path
    assert {(path, name) for path, eco, name in by_path if eco is Ecosystem.CRATES} == {
        (path, name) for path in ("/usr/bin/both", "/usr/bin/hello") for name in ("libc", "smallvec")
    }
    # Each detector alone reads the file as it did.
    alone = await take_inventory([layer], detectors=(go_binaries.DETECTOR,))
    assert {p.name for p in alone.packages} == {"stdlib"}
    alone = await take_inventory([layer], detectors=(rust_binaries.DETECTOR,))
    assert len(alone.packages) == 4


@needs_rustc
async def test_a_large_program_is_read_in_bounded_memory(hello: Path, tmp_path: Path):
    # 96 MiB of section data before the audit data: recorded on disk past the memory bound.
    padding = tmp_path / "padding"
    with padding.open("wb") as handle:
        for _ in range(96):
            handle.write(bytes(range(256)) * 4096)
    padded = tmp_path / "padded"
    subprocess.run(["objcopy", "--add-section", f".pad={padding}", str(hello), str(padded)], check=True)
    big = with_section(padded, compressed(AUDIT), tmp_path / "big")
    padding.unlink()
    layer = file_layer(tar_of(tmp_path / "layer.tar", {"/usr/bin/big": big}))
    tracemalloc.start()
    try:
        inventory = await take_inventory([layer])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert {(p.name, p.version) for p in crates(inventory)} == EXPECTED
    assert peak < 48 << 20, f"peak {peak >> 20} MiB"


@needs_rustc
async def test_a_crate_found_in_a_program_matches_its_rustsec_advisory(auditable: Path, tmp_path: Path):
    records = tmp_path / "osv"
    records.mkdir()
    (records / "RUSTSEC-2021-0003.json").write_text(json.dumps(RUSTSEC_2021_0003))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    try:
        await upgrade(engine)
        store = SqlVulnerabilities(engine)
        await import_path(store, records)
        inventory = await take_inventory([file_layer(tar_of(tmp_path / "layer.tar", {"/app/hello": auditable}))])
        findings = await match(inventory, store)
    finally:
        await engine.dispose()
    [finding] = findings
    assert (finding.package.name, finding.package.version, finding.package.purl) == (
        "smallvec",
        "1.6.0",
        "pkg:cargo/smallvec@1.6.0",
    )
    assert finding.fixed_version == "1.6.1"
    assert {finding.vulnerability_id, finding.advisory_id, *finding.aliases} >= {
        "CVE-2021-25900",
        "RUSTSEC-2021-0003",
        "GHSA-43w2-9j62-hq99",
    }


# -- ELF files crafted here ----------------------------------------------------------------


def elf(bits: int, order: str, sections: list[tuple[bytes, bytes]], *, extended: bool = False) -> bytes:
    """A minimal ELF file: header, the sections' data, their name table, then the section
    header table (where linkers put it). `extended` puts the section count and the name
    table's index in section 0, as files with very many sections do."""
    ident = b"\x7fELF" + bytes([1 if bits == 32 else 2, 1 if order == "<" else 2, 1]) + bytes(9)
    ehsize, shentsize = (52, 40) if bits == 32 else (64, 64)
    names = b"\0"
    name_at = []
    for name, _ in [*sections, (b".shstrtab", b"")]:
        name_at.append(len(names))
        names += name + b"\0"
    body = b""
    placed = []
    for (_, data), at in zip([*sections, (b"", names)], name_at, strict=True):
        placed.append((at, ehsize + len(body), len(data)))
        body += data
    shoff = ehsize + len(body)
    count = len(placed) + 1
    index = count - 1
    layout = order + ("IIIIIIIIII" if bits == 32 else "IIQQQQIIQQ")
    table = struct.pack(layout, 0, 0, 0, 0, 0, count if extended else 0, index if extended else 0, 0, 0, 0)
    for at, offset, size in placed:
        table += struct.pack(layout, at, 1, 0, 0, offset, size, 0, 0, 1, 0)
    head = struct.pack(
        order + ("HHIIIIIHHHHHH" if bits == 32 else "HHIQQQIHHHHHH"),
        2,  # ET_EXEC
        20 if order == ">" else 3,  # PowerPC, i386
        1,
        0,
        0,
        shoff,
        0,
        ehsize,
        0,
        0,
        shentsize,
        0 if extended else count,
        0xFFFF if extended else index,
    )
    return ident + head + body + table


@pytest.mark.parametrize(("bits", "order"), [(32, "<"), (32, ">"), (64, "<"), (64, ">")])
@pytest.mark.parametrize("extended", [False, True], ids=["counted", "extended"])
def test_crafted_headers_of_each_class_and_byte_order_are_read(bits: int, order: str, extended: bool):
    content = compressed(AUDIT)
    data = elf(
        bits, order, [(b".text", b"\x90" * 100), (b".dep-v0", content), (b".comment", b"x\0")], extended=extended
    )
    head = header(data[:64])
    assert head is not None and (head.bits, head.byte_order, head.shoff) == (
        bits,
        order,
        len(data) - 5 * head.shentsize,
    )
    assert find_section(io.BytesIO(data), len(data), b".dep-v0", 1 << 20) == content
    assert find_section(io.BytesIO(data), len(data), b".dep", 1 << 20) is None  # a prefix is not the name
    assert find_section(io.BytesIO(data), len(data), b".dep-v0", 16) == b""  # over the limit: present, not kept
    found, _ = parse(excerpt(io.BytesIO(data), len(data)) or b"")
    assert {(c.name, c.version) for c in found if c.source == "crates.io" and not c.build_only} == EXPECTED


def test_headers_that_do_not_hold_together_are_errors_and_other_files_are_none():
    data = elf(64, "<", [(b".dep-v0", b"abc")])
    assert find_section(io.BytesIO(b"#!/bin/sh\n"), 10, b".dep-v0", 1 << 20) is None
    assert header(b"\x7fELF\x03\x01" + bytes(58)) is None  # no such class
    truncated = data[:-10]
    with pytest.raises(ElfError):
        find_section(io.BytesIO(truncated), len(truncated), b".dep-v0", 1 << 20)
    assert excerpt(io.BytesIO(truncated), len(truncated)) is None  # no well-formed ELF: nothing to report
    no_table = data[:40] + bytes(8) + data[48:]  # e_shoff 0
    assert find_section(io.BytesIO(no_table), len(no_table), b".dep-v0", 1 << 20) is None


class Counting(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.given = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.given += len(data)
        return data


def test_a_file_that_is_not_elf_is_given_up_after_its_first_bytes():
    source = Counting(b"#!/bin/sh\n" + b"x" * (8 << 20))
    with Rewindable(source, len(source.getvalue())) as shared:
        assert excerpt(shared, 0) is None
        shared.seek(0)
        assert go_binaries.DETECTOR.read(shared, 0, "") is None
    assert source.given <= 4096  # one small buffer of an 8 MiB file


def test_a_rewindable_stream_replays_what_passed_from_memory_and_disk():
    data = bytes(range(256)) * 64  # 16 KiB
    source = Counting(data)
    with Rewindable(source, len(data), memory_limit=1000) as shared:
        assert shared.read(4) == data[:4]
        shared.seek(10_000)  # lazily: nothing read yet
        assert source.given < 10_000
        assert shared.read(100) == data[10_000:10_100]
        shared.seek(900)  # across the memory bound into the recording on disk
        assert shared.read(300) == data[900:1200]
        shared.seek(-16, io.SEEK_END)
        assert shared.read() == data[-16:]
        shared.seek(0)
        assert shared.read() == data
    assert source.given == len(data)  # every byte read from the source once


async def test_an_executable_script_still_reaches_no_detector_and_costs_nothing():
    image = layer_of(file("/usr/bin/script", "#!/bin/sh\necho hi\n", mode=0o755))
    inventory = await take_inventory([image])
    assert inventory.packages == () and inventory.notes == ()


@needs_rustc
async def test_a_hard_link_to_a_program_shares_what_every_detector_kept(auditable: Path, tmp_path: Path):
    path = tmp_path / "layer.tar"
    tar_of(path, {"/usr/bin/hello": auditable})
    with tarfile.open(path, "a") as tar:
        link = tarfile.TarInfo("usr/bin/hello-again")
        link.type, link.linkname, link.mode = tarfile.LNKTYPE, "usr/bin/hello", 0o755
        tar.addfile(link)
    inventory = await take_inventory([file_layer(path)])
    assert {(p.path, p.name) for p in crates(inventory)} == {
        (where, name) for where in ("/usr/bin/hello", "/usr/bin/hello-again") for name in ("libc", "smallvec")
    }
