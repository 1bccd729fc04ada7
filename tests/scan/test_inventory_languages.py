"""Language package detectors on real files from this machine: Python distributions, npm's
own node_modules, Go binaries (one built here by Debian's Go, and Go programs installed
here), and jars from the local Maven repository."""

from __future__ import annotations

import importlib.metadata
import io
import json
import random
import shutil
import subprocess
import tarfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.scan.inventory import take_inventory
from portside.scan.inventory.go_buildinfo import excerpt, parse
from portside.scan.model import Ecosystem, Inventory, Package
from tests.scan.layers_builder import file, file_layer, layer_of, streamed_layer

VENV_SITE = Path(importlib.metadata.distribution("packageurl-python")._path).parent  # type: ignore[attr-defined]
NPM_ROOT = Path("/usr/lib/node_modules/npm")
MAVEN_REPOSITORY = Path.home() / ".m2" / "repository"


def of(inventory: Inventory, ecosystem: Ecosystem) -> list[Package]:
    return [p for p in inventory.packages if p.ecosystem is ecosystem]


# -- Python --------------------------------------------------------------------------------


async def test_python_dist_info_and_egg_info_as_installed_here():
    names = ["packageurl-python", "univers", "cyclonedx-python-lib"]
    entries = []
    for name in names:
        dist = importlib.metadata.distribution(name)
        metadata = Path(dist._path) / "METADATA"  # type: ignore[attr-defined]
        entries.append(
            file(f"/usr/local/lib/python3.11/site-packages/{metadata.parent.name}/METADATA", metadata.read_bytes())
        )
    egg = Path("/usr/lib/python3/dist-packages/PyJWT-2.6.0.egg-info/PKG-INFO")
    if egg.exists():
        entries.append(file(f"/usr/lib/python3/dist-packages/{egg.parent.name}/PKG-INFO", egg.read_bytes()))
    image = layer_of(*entries)
    found = {(p.name, p.version) for p in of(await take_inventory([image]), Ecosystem.PYPI)}
    expected = {(name, importlib.metadata.version(name)) for name in names}
    if egg.exists():
        expected.add(("pyjwt", "2.6.0"))  # PEP 503: PyJWT is pyjwt
    assert found == expected


async def test_python_purl_uses_the_normalised_name_and_licence_is_read():
    metadata = "Metadata-Version: 2.1\nName: Zope.Interface_Extra\nVersion: 6.0\nLicense: ZPL-2.1\n\nlong text\n"
    image = layer_of(file("/app/lib/python3.12/site-packages/Zope.Interface_Extra-6.0.dist-info/METADATA", metadata))
    [package] = (await take_inventory([image])).packages
    assert (package.name, package.purl, package.licenses) == (
        "zope-interface-extra",
        "pkg:pypi/zope-interface-extra@6.0",
        ("ZPL-2.1",),
    )


# -- npm -------------------------------------------------------------------------------------


@pytest.mark.skipif(not NPM_ROOT.is_dir() or shutil.which("npm") is None, reason="npm is not installed here")
async def test_npm_packages_of_npms_own_tree_match_npm_ls():
    manifests = sorted(NPM_ROOT.rglob("package.json"))
    image = layer_of(*(file(str(path), path.read_bytes()) for path in manifests), compress=True)
    listed = subprocess.run(
        ["npm", "ls", "--all", "--parseable", "--long"], cwd=NPM_ROOT, capture_output=True, text=True
    ).stdout.splitlines()
    expected = set()
    for line in listed:
        directory, _, spec = line.partition(":")
        name, _, version = spec.rpartition("@")
        if name and version:
            expected.add((name, version, f"{directory}/package.json"))
    packages = of(await take_inventory([image]), Ecosystem.NPM)
    assert {(p.name, p.version, p.path) for p in packages} == expected
    assert len(expected) > 100
    scoped = next(p for p in packages if p.name.startswith("@npmcli/"))
    assert scoped.purl.startswith("pkg:npm/%40npmcli/")


async def test_npm_skips_manifests_without_name_and_version_and_files_inside_packages():
    image = layer_of(
        file(
            "/app/node_modules/left-pad/package.json",
            json.dumps({"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}),
        ),
        file("/app/node_modules/left-pad/dist/esm/package.json", json.dumps({"type": "module"})),
        file(
            "/app/node_modules/left-pad/test/fixture/package.json", json.dumps({"name": "fixture", "version": "0.0.1"})
        ),
        file("/app/node_modules/private/package.json", json.dumps({"name": "private"})),
    )
    packages = (await take_inventory([image])).packages
    assert [(p.name, p.version, p.licenses, p.purl) for p in packages] == [
        ("left-pad", "1.3.0", ("WTFPL",), "pkg:npm/left-pad@1.3.0")
    ]


# -- Go --------------------------------------------------------------------------------------


def go_version_m(binary: Path) -> list[list[str]]:
    out = subprocess.run(["go", "version", "-m", str(binary)], capture_output=True, text=True, check=True).stdout
    return [line.strip("\t").split("\t") for line in out.splitlines()[1:]]


def expected_modules(binary: Path) -> set[tuple[str, str]]:
    """Modules as `go version -m` lists them, the replacement (when it has a version) standing
    for what it replaces."""
    modules: list[tuple[str, str]] = []
    for fields in go_version_m(binary):
        if fields[0] == "dep":
            modules.append((fields[1], fields[2]))
        elif fields[0] == "mod" and fields[2] != "(devel)":
            modules.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) > 2 and fields[2] not in ("", "(devel)") and modules:
            modules[-1] = (fields[1], fields[2])
    return set(modules)


def toolchain(binary: Path) -> str:
    out = subprocess.run(["go", "version", str(binary)], capture_output=True, text=True, check=True).stdout
    return out.split(": ", 1)[1].split()[0].removeprefix("go")


needs_go = pytest.mark.skipif(shutil.which("go") is None, reason="the Go toolchain (apt: golang-go) is the oracle")


@pytest.fixture(scope="module")
def hello_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A program built here by Debian's Go, with a dependency replaced by a local directory."""
    if shutil.which("go") is None:
        pytest.skip("golang-go is not installed")
    work = tmp_path_factory.mktemp("go")
    (work / "greet").mkdir()
    (work / "greet" / "go.mod").write_text("module example.com/greet\n\ngo 1.19\n")
    (work / "greet" / "greet.go").write_text('package greet\n\nfunc Hello() string { return "hello" }\n')
    (work / "go.mod").write_text(
        "module example.com/hello\n\ngo 1.19\n\n"
        "require example.com/greet v1.0.0\n\nreplace example.com/greet => ./greet\n"
    )
    (work / "main.go").write_text(
        'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/greet"\n)\n\nfunc main() { fmt.Println(greet.Hello()) }\n'
    )
    subprocess.run(
        ["go", "build", "-o", "hello", "."],
        cwd=work,
        check=True,
        capture_output=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(work),
            "GOPROXY": "off",
            "GOFLAGS": "-mod=mod",
            "GOCACHE": str(work / "cache"),
        },
    )
    return work / "hello"


def tar_of(path: Path, binaries: dict[str, Path]) -> Path:
    """A layer tar on disk (Go binaries run to tens of MiB: streamed, not built in memory)."""
    with tarfile.open(path, "w") as tar:
        for name, source in binaries.items():
            info = tar.gettarinfo(str(source), arcname=name.lstrip("/"))
            info.mtime, info.uid, info.gid = 1_700_000_000, 0, 0
            with source.open("rb") as handle:
                tar.addfile(info, handle)
    return path


@needs_go
async def test_a_go_binary_built_here_gives_stdlib_and_its_dependency(hello_binary, tmp_path):
    image = file_layer(tar_of(tmp_path / "layer.tar", {"/usr/local/bin/hello": hello_binary}))
    inventory = await take_inventory([image])
    found = {(p.name, p.version) for p in of(inventory, Ecosystem.GO)}
    assert found == {("stdlib", toolchain(hello_binary))} | expected_modules(hello_binary)
    assert ("example.com/greet", "v1.0.0") in found  # replaced by a local directory: the requirement stands
    stdlib = next(p for p in inventory.packages if p.name == "stdlib")
    assert (stdlib.path, stdlib.layer, stdlib.purl) == (
        "/usr/local/bin/hello",
        image.digest,
        f"pkg:golang/stdlib@{stdlib.version}",
    )


INSTALLED_GO_PROGRAMS = [Path("/usr/bin/skopeo"), Path("/usr/bin/cbt")]


@needs_go
@pytest.mark.parametrize("binary", [p for p in INSTALLED_GO_PROGRAMS if p.exists()], ids=lambda p: p.name)
async def test_go_programs_installed_here_match_go_version_m(binary, tmp_path):
    real = binary.resolve()
    image = file_layer(tar_of(tmp_path / "layer.tar", {f"/usr/bin/{binary.name}": real}))
    inventory = await take_inventory([image])
    found = {(p.name, p.version) for p in of(inventory, Ecosystem.GO)}
    assert found == {("stdlib", toolchain(real))} | expected_modules(real)
    assert inventory.notes == ()


ANTHOSCLI = Path("/usr/bin/anthoscli")


@needs_go
@pytest.mark.skipif(not ANTHOSCLI.exists(), reason="no installed Go program with versioned replacements")
def test_replacements_with_a_version_stand_for_the_module_they_replace():
    real = ANTHOSCLI.resolve()
    assert any(fields[0] == "=>" for fields in go_version_m(real))
    with real.open("rb") as handle:
        blob = excerpt(handle, real.stat().st_size)
    assert blob is not None and len(blob) < 1 << 20  # the excerpt, not the 100 MiB binary
    info = parse(blob)
    main = {(info.main.path, info.main.version)} if info.main and info.main.version != "(devel)" else set()
    assert {(m.path, m.version) for m in info.deps} | main == expected_modules(real)
    assert info.go_version == "go" + toolchain(real)


async def test_files_that_only_look_like_elf_or_go_are_ignored():
    fake = b"\x7fELF" + b"\0" * 100 + b"\xff Go buildinf:" + b"\x09\x07" + b"\0" * 64
    image = layer_of(
        file("/usr/bin/fake", fake, mode=0o755), file("/usr/bin/script", "#!/bin/sh\necho hi\n", mode=0o755)
    )
    inventory = await take_inventory([image])
    assert inventory.packages == () and inventory.notes == ()


# -- Java ------------------------------------------------------------------------------------


def maven_jars(limit: int = 12) -> list[tuple[Path, tuple[str, str, str]]]:
    """Jars of the local Maven repository that carry exactly one pom.properties, with the
    coordinates their place in the repository gives (`group/as/dirs/artifact/version/`)."""
    chosen = []
    for jar in sorted(MAVEN_REPOSITORY.rglob("*.jar")):
        relative = jar.relative_to(MAVEN_REPOSITORY).parts
        if len(relative) < 4 or not jar.name.startswith(f"{relative[-3]}-{relative[-2]}"):
            continue
        with zipfile.ZipFile(jar) as archive:
            poms = [n for n in archive.namelist() if n.startswith("META-INF/maven/") and n.endswith("/pom.properties")]
        if len(poms) == 1 and jar.name == f"{relative[-3]}-{relative[-2]}.jar":
            chosen.append((jar, (".".join(relative[:-3]), relative[-3], relative[-2])))
        if len(chosen) == limit:
            break
    return chosen


needs_maven = pytest.mark.skipif(not maven_jars(1), reason="no jars in the local Maven repository")


@needs_maven
async def test_jars_from_the_local_maven_repository_have_their_repository_coordinates():
    jars = maven_jars()
    image = layer_of(*(file(f"/opt/app/lib/{jar.name}", jar.read_bytes()) for jar, _ in jars))
    packages = of(await take_inventory([image]), Ecosystem.MAVEN)
    assert {(p.name, p.version, p.path) for p in packages} == {
        (f"{g}:{a}", v, f"/opt/app/lib/{jar.name}") for jar, (g, a, v) in jars
    }
    g, a, v = jars[0][1]
    assert next(p for p in packages if p.name == f"{g}:{a}").purl == f"pkg:maven/{g}/{a}@{v}"


DEBIAN_JAR = Path("/usr/share/java/commons-lang3.jar")  # apt: libcommons-lang3-java


def debian_upstream_version(package: str) -> str:
    """The upstream part of an installed Debian package's version (`3.12.0-2+deb12u1` -> `3.12.0`)."""
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=True)
    version = out.stdout.split(":", 1)[-1]
    return version.rsplit("-", 1)[0]


@pytest.mark.skipif(not DEBIAN_JAR.is_file(), reason="libcommons-lang3-java is not installed")
async def test_a_jar_debian_ships_has_the_coordinates_and_version_of_its_debian_package():
    image = layer_of(file("/usr/share/java/commons-lang3.jar", DEBIAN_JAR.read_bytes()))
    [package] = of(await take_inventory([image]), Ecosystem.MAVEN)
    version = debian_upstream_version("libcommons-lang3-java")
    assert (package.name, package.version) == ("org.apache.commons:commons-lang3", version)
    assert package.purl == f"pkg:maven/org.apache.commons/commons-lang3@{version}"


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


@needs_maven
async def test_a_spring_boot_jar_and_a_war_are_read_with_their_nested_jars():
    (inner, (g, a, v)), *_ = maven_jars(1)
    boot = zip_bytes(
        {
            "META-INF/MANIFEST.MF": (
                b"Manifest-Version: 1.0\r\nMain-Class: org.springframework.boot.loader.JarLauncher\r\n\r\n"
            ),
            "META-INF/maven/com.example/shop/pom.properties": (
                b"#Generated by Maven\ngroupId=com.example\nartifactId=shop\nversion=2.4.1\n"
            ),
            f"BOOT-INF/lib/{inner.name}": inner.read_bytes(),
        }
    )
    manifest_only = zip_bytes(
        {
            "META-INF/MANIFEST.MF": (
                b"Manifest-Version: 1.0\r\nImplementation-Title: legacy-util\r\nImplementation-Version: 0.9.1\r\n"
                b"Implementation-Vendor-Id: org.example.legacy\r\n\r\n"
            )
        }
    )
    war = zip_bytes({"WEB-INF/lib/legacy-util-0.9.1.jar": manifest_only, "WEB-INF/web.xml": b"<web-app/>"})
    image = layer_of(file("/app/shop.jar", boot), file("/srv/tomcat/webapps/legacy.war", war))
    packages = of(await take_inventory([image]), Ecosystem.MAVEN)
    assert {(p.name, p.version, p.path) for p in packages} == {
        ("com.example:shop", "2.4.1", "/app/shop.jar"),
        (f"{g}:{a}", v, "/app/shop.jar"),
        ("org.example.legacy:legacy-util", "0.9.1", "/srv/tomcat/webapps/legacy.war"),
    }


async def test_a_jar_that_is_not_a_zip_is_noted():
    inventory = await take_inventory([layer_of(file("/app/broken.jar", b"not a zip at all"))])
    assert inventory.packages == ()
    assert [note for note in inventory.notes if "/app/broken.jar" in note]


async def test_jars_are_summarised_one_at_a_time_not_all_held():
    """Forty 4 MiB jars (160 MiB) stream past; only their coordinates are kept."""
    rng = random.Random(7)
    filler = rng.randbytes(4 << 20)  # stored, not deflated: the jar really is 4 MiB

    def jar(index: int) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(
                f"META-INF/maven/org.example/lib{index}/pom.properties",
                f"groupId=org.example\nartifactId=lib{index}\nversion=1.0.{index}\n",
            )
            archive.writestr("lib/blob.bin", filler)
        return buffer.getvalue()

    def produce() -> Iterator[bytes]:
        for index in range(40):
            data = jar(index)
            info = tarfile.TarInfo(f"opt/app/lib/lib{index}-1.0.{index}.jar")
            info.size, info.mtime = len(data), 1_700_000_000
            yield info.tobuf(tarfile.PAX_FORMAT)
            yield data + b"\0" * (-len(data) % tarfile.BLOCKSIZE)
        yield b"\0" * tarfile.RECORDSIZE

    blob = streamed_layer("sha256:" + "7" * 64, 40 * (4 << 20), produce)
    tracemalloc.start()
    try:
        inventory = await take_inventory([blob])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sorted(p.name for p in inventory.packages) == sorted(f"org.example:lib{i}" for i in range(40))
    # One jar in the pipe, one being read, one being summarised: far below 160 MiB.
    assert peak < 32 << 20, f"peak {peak >> 20} MiB"
