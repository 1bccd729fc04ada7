"""OS package detectors on real data: Debian's dpkg status, rpm databases made by rpm itself,
a debootstrap-made Debian 12, and apk's database format."""

from __future__ import annotations

import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from packageurl import PackageURL

from portside.scan.inventory import take_inventory
from portside.scan.model import Ecosystem, OperatingSystem
from tests.scan import layers_rpm
from tests.scan.layers_builder import file, file_layer, layer_of, symlink
from tests.scan.shared import VULNDB_FIXTURES

STATUS_FIXTURE = VULNDB_FIXTURES / "debian12-minbase-status.txt"
DEBIAN_OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'
    'VERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n'
)
QUERY_FORMAT = "${Package}\t${Version}\t${source:Package}\t${source:Version}\t${Architecture}\t${db:Status-Abbrev}\n"


def dpkg_query(admindir: Path) -> set[tuple[str, str, str, str, str]]:
    """What dpkg itself says is installed: (name, version, source, source version, arch)."""
    out = subprocess.run(
        ["dpkg-query", f"--admindir={admindir}", "-W", "-f", QUERY_FORMAT], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {(n, v, s, sv, a) for n, v, s, sv, a, status in rows if status.strip() == "ii"}


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg-query is the oracle")
async def test_dpkg_status_of_a_real_debian_12_matches_dpkg_query(tmp_path):
    (tmp_path / "updates").mkdir()
    shutil.copy(STATUS_FIXTURE, tmp_path / "status")
    expected = dpkg_query(tmp_path)
    base = layer_of(
        file("/usr/lib/os-release", DEBIAN_OS_RELEASE),
        symlink("/etc/os-release", "../usr/lib/os-release"),
        file("/var/lib/dpkg/status", STATUS_FIXTURE.read_bytes()),
        compress=True,
    )
    inventory = await take_inventory([base])
    assert inventory.os == OperatingSystem("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")
    found = {(p.name, p.version, p.source_name, p.source_version, p.arch) for p in inventory.packages}
    assert found == expected and len(found) == 88
    assert {p.ecosystem for p in inventory.packages} == {Ecosystem.DEBIAN}
    assert {(p.path, p.layer) for p in inventory.packages} == {("/var/lib/dpkg/status", base.digest)}
    bash = next(p for p in inventory.packages if p.name == "bash")
    assert bash.purl == "pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12"
    parsed = PackageURL.from_string(bash.purl)
    assert (parsed.type, parsed.namespace, parsed.name, parsed.version) == ("deb", "debian", "bash", "5.2.15-2+b13")


async def test_dpkg_skips_packages_not_installed_and_reads_distroless_status_d():
    stanzas = STATUS_FIXTURE.read_text().split("\n\n")
    bash = next(s for s in stanzas if s.startswith("Package: bash\n"))
    libc = next(s for s in stanzas if s.startswith("Package: libc6\n"))
    removed = bash.replace("Status: install ok installed", "Status: deinstall ok config-files")
    # distroless: one stanza per file, no Status field, md5sums beside them.
    distroless = layer_of(
        file("/var/lib/dpkg/status.d/libc6", libc.replace("Status: install ok installed\n", "") + "\n"),
        file("/var/lib/dpkg/status.d/libc6.md5sums", "0123  usr/lib/x\n"),
        file("/var/lib/dpkg/status", removed + "\n"),
        file("/etc/os-release", DEBIAN_OS_RELEASE),
    )
    inventory = await take_inventory([distroless])
    [package] = inventory.packages
    assert (package.name, package.source_name, package.path) == ("libc6", "glibc", "/var/lib/dpkg/status.d/libc6")
    # `Source: glibc` names no version of its own: the source version is the binary's.
    assert (package.version, package.source_version) == ("2.36-9+deb12u14", "2.36-9+deb12u14")


async def test_ubuntu_packages_are_ubuntu_in_ecosystem_and_purl():
    bash = next(s for s in STATUS_FIXTURE.read_text().split("\n\n") if s.startswith("Package: bash\n"))
    ubuntu = layer_of(
        file("/etc/os-release", 'ID=ubuntu\nVERSION_ID="22.04"\nVERSION_CODENAME=jammy\n'),
        file("/var/lib/dpkg/status", bash + "\n"),
    )
    [package] = (await take_inventory([ubuntu])).packages
    assert package.ecosystem is Ecosystem.UBUNTU
    assert package.purl.startswith("pkg:deb/ubuntu/bash@") and package.purl.endswith("distro=ubuntu-22.04")


# The stanza layout of apk-tools' database (`apk_db_write_fdb`: one-letter keys, blank line
# between packages), for packages and versions of Alpine 3.18's main repository. No Alpine
# system is reachable from this machine to copy a database from.
APK_INSTALLED = """\
C:Q1Yl2s5vS3n0xyD6s2+bKIt6Hbnvo=
P:musl
V:1.2.4-r2
A:x86_64
S:383152
I:622592
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1698700000
c:2b8ae3e7e8df4a4f3a6a29e5b5d8ee8a2bd4e6e0
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1

C:Q1Bcq+2ZPHxS1bTSJkRHL4Ww+MWvs=
P:libcrypto3
V:3.1.4-r1
A:x86_64
S:1709876
I:4296704
T:Crypto library from openssl
U:https://www.openssl.org/
L:Apache-2.0
o:openssl
D:so:libc.musl-x86_64.so.1
F:lib
R:libcrypto.so.3
"""


async def test_apk_reads_name_version_origin_arch_and_license():
    alpine = layer_of(
        file("/etc/os-release", 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.18.4\n'),
        file("/lib/apk/db/installed", APK_INSTALLED),
    )
    inventory = await take_inventory([alpine])
    assert inventory.os is not None and (inventory.os.id, inventory.os.version_id) == ("alpine", "3.18.4")
    found = [(p.name, p.version, p.source_name, p.arch, p.licenses) for p in inventory.packages]
    assert found == [
        ("musl", "1.2.4-r2", "musl", "x86_64", ("MIT",)),
        ("libcrypto3", "3.1.4-r1", "openssl", "x86_64", ("Apache-2.0",)),
    ]
    assert inventory.packages[1].purl == "pkg:apk/alpine/libcrypto3@3.1.4-r1?arch=x86_64&distro=alpine-3.18.4"
    assert {p.ecosystem for p in inventory.packages} == {Ecosystem.ALPINE}


@pytest.fixture(scope="module")
def rpm_databases(tmp_path_factory: pytest.TempPathFactory) -> layers_rpm.RpmDatabases:
    if not layers_rpm.tools_present():
        pytest.skip("rpm, rpmbuild and db5.3_load (apt: rpm, db5.3-util) are needed to make real rpm databases")
    return layers_rpm.build(tmp_path_factory.mktemp("rpm"))


def as_query(packages: object) -> list[str]:
    """Our packages in the `rpm -qa --qf` form the oracle prints."""
    rows = []
    for p in packages:  # type: ignore[attr-defined]
        epoch, _, version_release = p.version.rpartition(":")
        version, _, release = version_release.rpartition("-")
        source = f"{p.source_name}-{p.source_version.rpartition(':')[2]}.src.rpm"
        rows.append(f"{p.name}|{epoch or '(none)'}|{version}|{release}|{p.arch}|{source}|{p.licenses[0]}")
    return sorted(rows)


RHEL = 'NAME="Red Hat Enterprise Linux"\nID="rhel"\nVERSION_ID="9.2"\n'


async def test_rpm_sqlite_database_made_by_rpm_matches_rpm_query(rpm_databases):
    image = layer_of(
        file("/etc/os-release", RHEL),
        file("/var/lib/rpm/rpmdb.sqlite", rpm_databases.sqlite.read_bytes()),
        compress=True,
    )
    inventory = await take_inventory([image])
    assert as_query(inventory.packages) == rpm_databases.query
    epoch = next(p for p in inventory.packages if p.name == "portside-epoch")
    assert epoch.version == "2:0.9-1" and epoch.source_version == "2:0.9-1"
    assert epoch.purl == "pkg:rpm/rhel/portside-epoch@0.9-1?arch=noarch&distro=rhel-9.2&epoch=2"
    assert {p.ecosystem for p in inventory.packages} == {Ecosystem.RPM}


async def test_rpm_berkeley_db_with_real_headers_matches_rpm_query(rpm_databases, tmp_path):
    # rpm's own read-only BDB backend reads the file: it is a genuine rpm Packages database.
    (tmp_path / "Packages").write_bytes(rpm_databases.berkeley_db.read_bytes())
    by_rpm = subprocess.run(
        ["rpm", "--dbpath", str(tmp_path), "--define", "_db_backend bdb_ro", "-qa", "--qf", "%{NAME}\\n"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert sorted(by_rpm) == sorted(line.split("|")[0] for line in rpm_databases.query)

    image = layer_of(
        file("/etc/os-release", RHEL), file("/var/lib/rpm/Packages", rpm_databases.berkeley_db.read_bytes())
    )
    inventory = await take_inventory([image])
    assert as_query(inventory.packages) == rpm_databases.query


async def test_a_corrupt_rpm_database_is_a_note_not_a_failure():
    image = layer_of(file("/var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0" + b"\x07" * 4000))
    inventory = await take_inventory([image])
    assert inventory.packages == ()
    assert [note for note in inventory.notes if "/var/lib/rpm/rpmdb.sqlite" in note]


# -- a whole Debian 12 made by debootstrap ------------------------------------------------

DEBOOTSTRAP_CACHE = Path("/tmp/portside-inventory-cache")
ROOTFS = DEBOOTSTRAP_CACHE / "bookworm-minbase"


@pytest.fixture(scope="module")
def debootstrap_layer() -> Path:
    """A debootstrap --variant=minbase bookworm rootfs, tarred as one layer; both are cached
    under /tmp, as making the rootfs takes minutes."""
    if not ROOTFS.is_dir():
        if shutil.which("debootstrap") is None:
            pytest.skip("debootstrap is not installed (apt install debootstrap)")
        partial = DEBOOTSTRAP_CACHE / "bookworm-minbase.partial"
        shutil.rmtree(partial, ignore_errors=True)
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(partial), "http://deb.debian.org/debian"],
            check=True,
            capture_output=True,
        )
        partial.rename(ROOTFS)
    tar_path = DEBOOTSTRAP_CACHE / "bookworm-minbase.tar"
    if not tar_path.exists():
        partial_tar = tar_path.with_suffix(".partial")
        with tarfile.open(partial_tar, "w") as tar:
            for child in sorted(ROOTFS.iterdir()):
                if child.name not in ("proc", "sys", "dev"):
                    tar.add(child, arcname=child.name)
        partial_tar.rename(tar_path)
    return tar_path


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="dpkg-query is the oracle")
async def test_a_debootstrap_debian_12_rootfs_as_a_layer(debootstrap_layer):
    inventory = await take_inventory([file_layer(debootstrap_layer)])
    assert inventory.os is not None and (inventory.os.id, inventory.os.version_id) == ("debian", "12")
    assert inventory.os.codename == "bookworm"
    found = {
        (p.name, p.version, p.source_name, p.source_version, p.arch)
        for p in inventory.packages
        if p.ecosystem is Ecosystem.DEBIAN
    }
    assert found == dpkg_query(ROOTFS / "var/lib/dpkg")
    assert len(found) > 80
