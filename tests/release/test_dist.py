"""dist/, as scripts/release wrote it and scripts/check-release unpacked it
(STOPPER_UNPACKED: one folder per architecture with the zip's bootstrap):
what a team deploys without a toolchain. The end-to-end suite then runs
against those bootstraps (scripts/check-release)."""

import json
import os
import pathlib
import struct
import subprocess
import sys
import tomllib
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import zip_bootstrap  # noqa: E402
DIST = ROOT / "dist"
ARCHS = {"x86_64": 62, "arm64": 183}  # ELF e_machine: EM_X86_64, EM_AARCH64
VERSION = tomllib.loads((ROOT / "Cargo.toml").read_text())["package"]["version"]
LOCKED = {(p["name"], p["version"]) for p in tomllib.loads((ROOT / "Cargo.lock").read_text())["package"]}

if "STOPPER_UNPACKED" not in os.environ:
    pytest.skip("run by scripts/check-release, after scripts/release", allow_module_level=True)
UNPACKED = pathlib.Path(os.environ["STOPPER_UNPACKED"])


def test_dist_holds_the_release_and_nothing_else():
    # What `aws s3 cp --recursive dist/` would upload.
    expected = {f"sagemaker-pipeline-stopper-{arch}.zip" for arch in ARCHS}
    expected |= {"packaged.yaml", "VERSION", "BUILDINFO", "SHA256SUMS"}
    assert {p.name for p in DIST.iterdir()} == expected
    summed = {line.split()[1] for line in (DIST / "SHA256SUMS").read_text().splitlines()}
    assert summed == expected - {"SHA256SUMS"}


def test_the_release_is_of_this_commit_and_version():
    info = dict(line.split(" ", 1) for line in (DIST / "BUILDINFO").read_text().splitlines())
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert info["commit"] == head.stdout.strip()
    assert info["version"] == VERSION == (DIST / "VERSION").read_text().strip()
    assert set(ARCHS) <= set(info), "BUILDINFO names the compiler of each architecture"


def test_the_packaged_template_is_the_committed_one():
    # deploy/packaged.yaml is checked fresh by tests/template/test_packaged.py.
    assert (DIST / "packaged.yaml").read_bytes() == (ROOT / "deploy/packaged.yaml").read_bytes()


@pytest.mark.parametrize("arch", ARCHS)
def test_each_zip_holds_only_an_executable_bootstrap_and_packs_again_to_the_same_bytes(arch, tmp_path):
    shipped = DIST / f"sagemaker-pipeline-stopper-{arch}.zip"
    with zipfile.ZipFile(shipped) as z:
        [entry] = z.infolist()
        assert entry.filename == "bootstrap"
        # Lambda runs the file: it must be recorded executable, on Unix.
        assert (entry.create_system, entry.external_attr >> 16) == (3, 0o100755)
    # Nothing of the moment or the machine in the packing: the same bootstrap
    # packed again (later, elsewhere) is the same zip.
    zip_bootstrap.pack(UNPACKED / arch / "bootstrap", tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == shipped.read_bytes()


def sections(path):
    """{name: size} of an ELF64 little-endian file's sections."""
    data = path.read_bytes()
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    entsize, count, names = struct.unpack_from("<HHH", data, 0x3A)
    headers = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * entsize) for i in range(count)]
    table = headers[names][4]
    return {data[table + h[0]:data.index(b"\0", table + h[0])].decode(): h[5] for h in headers}


@pytest.mark.parametrize("arch", ARCHS)
def test_each_bootstrap_unwinds_panics(arch):
    # Cargo.toml's release profile says panic = "unwind", so that a panic is a
    # failed invocation and the process keeps serving (src/main.rs). cargo-lambda
    # builds with panic = "abort" unless the profile says otherwise; then the
    # binary keeps only the standard library's few KB of landing pads.
    assert sections(UNPACKED / arch / "bootstrap").get(".gcc_except_table", 0) > 64 * 1024


@pytest.mark.parametrize("arch", ARCHS)
def test_each_bootstrap_is_an_elf_executable_for_its_architecture(arch):
    head = (UNPACKED / arch / "bootstrap").read_bytes()[:20]
    assert head[:4] == b"\x7fELF"
    assert int.from_bytes(head[18:20], "little") == ARCHS[arch]


@pytest.mark.parametrize("arch", ARCHS)
def test_each_bootstrap_carries_its_dependency_list(arch):
    # What `cargo audit bin` and scanners read from a deployed binary
    # (cargo-auditable's .dep-v0 section, read back by rust-audit-info).
    out = subprocess.run([os.environ["RUST_AUDIT_INFO"], UNPACKED / arch / "bootstrap"],
                         capture_output=True, text=True, check=True)
    packages = json.loads(out.stdout)["packages"]
    [root] = [p for p in packages if p.get("root")]
    assert (root["name"], root["version"]) == ("sagemaker-pipeline-stopper", VERSION)
    listed = {(p["name"], p["version"]) for p in packages}
    assert listed <= LOCKED, "every listed crate is the version Cargo.lock pins"
    names = {name for name, _ in listed}
    assert {"aws-sdk-sagemaker", "aws-lc-sys", "rustls", "lambda_runtime"} <= names
    # The crates linked in, not every one depended on: no test-only crate.
    assert "aws-smithy-mocks" not in names
