"""Container-image backends (DESIGN §5, §6).

buildah, skopeo and umoci are the real Debian tools (scripts/system-deps.sh installs them). The
buildx backend cannot run here (no Docker daemon, no buildx plugin), so its tests point
python-on-whales at a small fake `docker` executable written into tmp_path: it records its argv
and, for `buildx build`, writes an OCI tar (made with dkb's own tarball helpers) to the `dest` of
`--output`. Those tests check the exact docker command line and the import of its output; they
do not prove that a real BuildKit accepts it.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dkbuild.oci.backends import (BackendUnavailable, BadImageRequest, BaseImageUnavailable, ImageBuildFailed,
                                  ImageRequest, choose_backend)
from dkbuild.oci.backends.assemble import AssembleBackend, merged_env, parse_base_ref, rfc3339
from dkbuild.oci.backends.buildah import BuildahBackend
from dkbuild.oci.backends.buildx import BuildxBackend
from dkbuild.oci.jsoncanon import canonical_bytes, descriptor, sha256_digest
from dkbuild.oci.layout import OciLayout
from dkbuild.oci.tarball import Entry, gzip_bytes, tar_bytes

EPOCH = 1_700_000_000
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())

needs_buildah = pytest.mark.skipif(shutil.which("buildah") is None, reason="buildah is not on PATH "
                                   "(scripts/system-deps.sh installs it)")

PACKAGE = {
    "dk.yaml": "kind: Transform\n",
    "Dockerfile": "FROM scratch\nCOPY src/ /app/src/\n",
    "src/audience/__init__.py": "",
    "src/audience/main.py": "print('export')\n",
    "src/audience/run.sh": "#!/bin/sh\nexec python -m audience.main\n",
}
IGNORED = {"src/audience/secret.env": "TOKEN=do-not-ship\n"}


# --- helpers --------------------------------------------------------------------------------------


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is required to validate images; run scripts/system-deps.sh")
    return path


def write_package(root: Path, files: dict[str, str], mtime: int | None = None) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if rel.endswith(".sh"):
            path.chmod(path.stat().st_mode | 0o111)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
    return root


def request_for(package_dir: Path, files: dict[str, str], dockerfile: str | None = "Dockerfile",
                **overrides) -> ImageRequest:
    fields = dict(label="//pipelines/audience-export", package_dir=package_dir,
                  files={rel: sha256_digest(text.encode()) for rel, text in files.items()},
                  dockerfile=dockerfile, build_args={}, command=[], env={}, base_image=None,
                  workspace_root=package_dir.parent, source_date_epoch=EPOCH)
    fields.update(overrides)
    return ImageRequest(**fields)


def skopeo_inspect(layout_dir: Path, ref: str) -> dict:
    out = subprocess.run([tool("skopeo"), "inspect", f"oci:{layout_dir}:{ref}"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def umoci_unpack(layout_dir: Path, ref: str, bundle: Path) -> Path:
    argv = [tool("umoci"), "unpack"] + (["--rootless"] if os.geteuid() != 0 else [])
    subprocess.run(argv + ["--image", f"{layout_dir}:{ref}", str(bundle)], capture_output=True, text=True, check=True)
    return bundle / "rootfs"


def image_parts(layout: OciLayout, digest: str) -> tuple[dict, dict]:
    manifest = json.loads(layout.get_blob(digest))
    return manifest, json.loads(layout.get_blob(manifest["config"]["digest"]))


def make_image(files: dict[str, bytes], config_extra: dict | None = None) -> tuple[dict[str, bytes], str]:
    """A one-layer image as {digest: bytes} blobs, built with dkb's helpers; returns (blobs, manifest digest)."""
    layer_tar = tar_bytes([Entry(path, data) for path, data in files.items()], mtime=0)
    layer = gzip_bytes(layer_tar)
    config = {"architecture": HOST_ARCH, "os": "linux",
              "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"], "Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]},
              "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "test base"}],
              **(config_extra or {})}
    config_bytes = canonical_bytes(config)
    manifest = canonical_bytes({"schemaVersion": 2, "mediaType": MANIFEST,
                                "config": descriptor("application/vnd.oci.image.config.v1+json", config_bytes),
                                "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)]})
    blobs = {sha256_digest(b): b for b in (layer, config_bytes, manifest)}
    return blobs, sha256_digest(manifest)


def make_base_layout(root: Path) -> str:
    blobs, digest = make_image({"etc/base-release": b"tiny base 1\n"})
    layout = OciLayout(root)
    for data in blobs.values():
        layout.put_blob(data)
    layout.tag("base", descriptor(MANIFEST, blobs[digest]))
    return digest


def make_oci_tar(path: Path) -> str:
    """An OCI image layout as a tar, the shape `buildx build --output type=oci` writes."""
    blobs, digest = make_image({"app/src/hello.py": b"print('hi')\n"})
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{**descriptor(MANIFEST, blobs[digest]),
                            "annotations": {"io.containerd.image.name": "docker.io/library/x:latest"}}]}
    entries = [Entry("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), Entry("index.json", json.dumps(index).encode())]
    entries += [Entry("blobs/sha256/" + d.removeprefix("sha256:"), data) for d, data in blobs.items()]
    path.write_bytes(tar_bytes(entries, mtime=EPOCH))
    return digest


FAKE_DOCKER = '''#!{python}
"""Fake docker CLI for tests: records argv, answers info/buildx, writes an OCI tar on buildx build."""
import json, os, shutil, sys
argv = sys.argv[1:]
entry = {{"argv": argv}}
mode = {mode!r}
if argv[:2] == ["buildx", "build"]:
    context = argv[-1]
    entry["context_files"] = sorted(os.path.relpath(os.path.join(d, f), context)
                                    for d, _, fs in os.walk(context) for f in fs)
with open({record!r}, "a") as fh:
    fh.write(json.dumps(entry) + "\\n")
if argv[:2] == ["system", "info"]:
    if mode == "no-daemon":
        sys.stderr.write("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
                         "Is the docker daemon running?\\n")
        sys.exit(1)
    print(json.dumps({{"ServerVersion": "27.3.1", "OSType": "linux"}}))
elif argv[:2] == ["buildx", "version"]:
    if mode == "no-buildx":
        sys.stderr.write("docker: unknown command: docker buildx\\n")
        sys.exit(1)
    print("github.com/docker/buildx v0.17.1 8bd1b7c")
elif argv[:2] == ["buildx", "inspect"]:
    print("Name:   " + argv[2] + "\\nDriver: remote\\n")
elif argv[:2] == ["buildx", "ls"]:
    print(json.dumps({{"Name": "remote-bk", "Driver": "remote"}}))
elif argv[:2] == ["buildx", "build"]:
    if mode == "fail":
        sys.stderr.write("#5 ERROR: failed to solve: dockerfile parse error on line 2\\n")
        sys.exit(1)
    options = dict(item.split("=", 1) for item in argv[argv.index("--output") + 1].split(","))
    shutil.copyfile({tar!r}, options["dest"])
else:
    sys.exit(2)
'''


@pytest.fixture
def fake_docker(tmp_path):
    """make(mode) -> (executable path, record file, manifest digest of the tar it writes)."""
    tar = tmp_path / "fake-output.tar"
    digest = make_oci_tar(tar)

    def make(mode: str = "ok") -> tuple[Path, Path, str]:
        record = tmp_path / f"docker-argv-{mode}.jsonl"
        exe = tmp_path / f"docker-{mode}"
        exe.write_text(FAKE_DOCKER.format(python=sys.executable, mode=mode, record=str(record), tar=str(tar)))
        exe.chmod(0o755)
        return exe, record, digest
    return make


def recorded(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


# --- buildah (real) -------------------------------------------------------------------------------


@needs_buildah
def test_buildah_builds_reproducibly_from_exactly_the_listed_files(tmp_path):
    layout_dir = tmp_path / "store"
    layout = OciLayout(layout_dir)
    first = write_package(tmp_path / "a" / "audience-export", {**PACKAGE, **IGNORED})
    digests = []
    for _ in range(2):
        result = BuildahBackend().build(request_for(first, PACKAGE), layout)
        digests.append(result.descriptor["digest"])

    # Another checkout: other directory, other mtimes, a restrictive umask for files and build.
    old_umask = os.umask(0o077)
    try:
        second = write_package(tmp_path / "b" / "audience-export", {**PACKAGE, **IGNORED}, mtime=1_234_567_890)
        result = BuildahBackend().build(request_for(second, PACKAGE), layout)
    finally:
        os.umask(old_umask)
    digests.append(result.descriptor["digest"])
    assert len(set(digests)) == 1, digests

    assert result.backend == "buildah"
    assert result.descriptor["mediaType"] == MANIFEST
    assert result.blobs[0] == result.descriptor["digest"]
    assert all(layout.verify_blob(d) for d in result.blobs)
    manifest, config = image_parts(layout, result.descriptor["digest"])
    assert set(result.blobs) == {result.descriptor["digest"], manifest["config"]["digest"],
                                 *(layer["digest"] for layer in manifest["layers"])}
    assert config["created"] == rfc3339(EPOCH)
    assert "io.buildah.version" not in (config["config"].get("Labels") or {})

    layout.tag("audience-export", result.descriptor)
    inspected = skopeo_inspect(layout_dir, "audience-export")
    assert inspected["Digest"] == result.descriptor["digest"]
    rootfs = umoci_unpack(layout_dir, "audience-export", tmp_path / "bundle")
    assert (rootfs / "app/src/audience/main.py").read_text() == "print('export')\n"
    assert (rootfs / "app/src/audience/run.sh").stat().st_mode & 0o111
    assert not (rootfs / "app/src/audience/main.py").stat().st_mode & 0o111
    assert not (rootfs / "app/src/audience/secret.env").exists()
    assert not list(rootfs.rglob("secret.env"))


@needs_buildah
def test_buildah_failure_carries_stderr_and_dockerfile(tmp_path):
    files = {"build/Dockerfile": "FROM scratch\nCOPY missing/ /app/\n", "src/x.py": ""}
    package = write_package(tmp_path / "pkg", files)
    with pytest.raises(ImageBuildFailed) as caught:
        BuildahBackend().build(request_for(package, files, dockerfile="build/Dockerfile"), OciLayout(tmp_path / "s"))
    assert "build/Dockerfile" in caught.value.message
    assert "//pipelines/audience-export" in caught.value.message
    assert "missing" in caught.value.stderr_tail


def test_dockerfile_must_be_an_input_file(tmp_path):
    package = write_package(tmp_path / "pkg", PACKAGE)
    files = {k: v for k, v in PACKAGE.items() if k != "Dockerfile"}
    with pytest.raises(BadImageRequest, match="Dockerfile is not among the package's input files"):
        BuildahBackend().build(request_for(package, files), OciLayout(tmp_path / "s"))


def test_context_paths_must_stay_inside_the_package(tmp_path):
    package = write_package(tmp_path / "pkg", PACKAGE)
    request = request_for(package, {**PACKAGE, "../outside.txt": "x"})
    with pytest.raises(BadImageRequest, match="not a plain path inside the package"):
        BuildahBackend().build(request, OciLayout(tmp_path / "s"))


# --- buildx (fake docker CLI) ---------------------------------------------------------------------


def test_buildx_command_line_and_import(tmp_path, fake_docker):
    exe, record, digest = fake_docker("ok")
    package = write_package(tmp_path / "pkg", {**PACKAGE, **IGNORED})
    request = request_for(package, PACKAGE, build_args={"PYTHON_VERSION": "3.11", "A": "1"})
    backend = BuildxBackend(builder="remote-bk", platforms=["linux/amd64", "linux/arm64"], client_call=[str(exe)])
    layout = OciLayout(tmp_path / "store")

    result = backend.build(request, layout)

    (call,) = recorded(record)
    context = call["argv"][-1]
    dest = call["argv"][call["argv"].index("--output") + 1].split(",")[1].removeprefix("dest=")
    assert Path(context).name == "context" and Path(dest).name == "image.tar"
    assert call["argv"] == [
        "buildx", "build",
        "--build-arg", "A=1", "--build-arg", "PYTHON_VERSION=3.11", "--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}",
        "--builder", "remote-bk",
        "--provenance=false",
        "--file", f"{context}/Dockerfile",
        "--output", f"type=oci,dest={dest},rewrite-timestamp=true",
        "--platform", "linux/amd64,linux/arm64",
        context,
    ]
    assert call["context_files"] == sorted(PACKAGE)          # secret.env never reached the context
    assert not Path(context).exists()                        # temp context removed

    assert result.backend == "buildx"
    assert result.descriptor == {"mediaType": MANIFEST, "digest": digest, "size": result.descriptor["size"]}
    assert result.blobs[0] == digest and len(result.blobs) == 3
    assert all(layout.verify_blob(d) for d in result.blobs)
    layout.tag("x", result.descriptor)
    assert skopeo_inspect(tmp_path / "store", "x")["Digest"] == digest


def test_buildx_rejects_output_whose_blobs_do_not_verify(tmp_path, fake_docker):
    exe, _, _ = fake_docker("ok")
    tar = tmp_path / "fake-output.tar"
    data = tar.read_bytes()
    blobs, _ = make_image({"app/src/hello.py": b"print('hi')\n"})
    layer = next(b for d, b in blobs.items() if b[:2] == b"\x1f\x8b")
    tar.write_bytes(data.replace(layer, layer[:-1] + bytes([layer[-1] ^ 1])))
    package = write_package(tmp_path / "pkg", PACKAGE)
    with pytest.raises(ImageBuildFailed, match="does not match its digest"):
        BuildxBackend(client_call=[str(exe)]).build(request_for(package, PACKAGE), OciLayout(tmp_path / "s"))


def test_buildx_failure_carries_stderr(tmp_path, fake_docker):
    exe, _, _ = fake_docker("fail")
    package = write_package(tmp_path / "pkg", PACKAGE)
    with pytest.raises(ImageBuildFailed) as caught:
        BuildxBackend(client_call=[str(exe)]).build(request_for(package, PACKAGE), OciLayout(tmp_path / "s"))
    assert "docker buildx build of Dockerfile failed (exit 1)" in caught.value.message
    assert "dockerfile parse error on line 2" in caught.value.stderr_tail


def test_buildx_availability(tmp_path, fake_docker, monkeypatch):
    ok, record, _ = fake_docker("ok")
    assert BuildxBackend(client_call=[str(ok)]).available() is None
    assert [c["argv"][:2] for c in recorded(record)] == [["system", "info"], ["buildx", "version"]]
    # A named (remote) builder needs no local daemon: it is inspected instead.
    assert BuildxBackend(builder="remote-bk", client_call=[str(ok)]).available() is None
    assert ["buildx", "inspect", "remote-bk"] in [c["argv"] for c in recorded(record)]

    no_daemon, _, _ = fake_docker("no-daemon")
    reason = BuildxBackend(client_call=[str(no_daemon)]).available()
    assert reason.startswith("docker daemon not reachable (Cannot connect to the Docker daemon")
    no_buildx, _, _ = fake_docker("no-buildx")
    assert "docker buildx is not available" in BuildxBackend(client_call=[str(no_buildx)]).available()

    missing = BuildxBackend(client_call=[str(tmp_path / "no-such-docker")])
    assert "not found on PATH" in missing.available()
    assert "install Docker with the buildx plugin" in missing.available()
    package = write_package(tmp_path / "pkg", PACKAGE)
    with pytest.raises(BackendUnavailable, match="docker CLI .* not found on PATH"):
        missing.build(request_for(package, PACKAGE), OciLayout(tmp_path / "s"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert "not found on PATH" in BuildxBackend().available()


# --- pure-Python assembly -------------------------------------------------------------------------


ASSEMBLED = {"dk.yaml": "kind: Transform\n", "src/audience/__init__.py": "",
             "src/audience/main.py": "print('export')\n", "bin/run.sh": "#!/bin/sh\n"}


def test_assembled_image_is_reproducible_and_valid(tmp_path):
    workspace = tmp_path / "ws"
    base_digest = make_base_layout(workspace / "images" / "base")
    package = write_package(workspace / "pipelines" / "audience-export", ASSEMBLED)
    request = request_for(package, ASSEMBLED, dockerfile=None, workspace_root=workspace,
                          base_image=f"oci:images/base@{base_digest}", command=["python", "-m", "audience.main"],
                          env={"LOG_LEVEL": "info", "LANG": "en_US.UTF-8"})
    layout_dir = tmp_path / "store"
    layout = OciLayout(layout_dir)
    first = AssembleBackend().build(request, layout)

    # Another checkout: other mtimes, another absolute workspace path given as an absolute ref.
    other = write_package(tmp_path / "ws2" / "pipelines" / "audience-export", ASSEMBLED, mtime=1_234_567_890)
    again = AssembleBackend().build(
        request_for(other, ASSEMBLED, dockerfile=None, workspace_root=tmp_path / "ws2",
                    base_image=f"oci:{workspace / 'images' / 'base'}@{base_digest}",
                    command=["python", "-m", "audience.main"], env={"LANG": "en_US.UTF-8", "LOG_LEVEL": "info"}),
        OciLayout(tmp_path / "store2"))
    assert first.descriptor == again.descriptor
    assert first.backend == "assemble" and first.blobs[0] == first.descriptor["digest"]

    manifest, config = image_parts(layout, first.descriptor["digest"])
    assert len(manifest["layers"]) == 2 and len(first.blobs) == 4
    assert manifest["annotations"] == {"org.opencontainers.image.base.digest": base_digest}
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["Env"] == ["PATH=/usr/local/bin:/usr/bin:/bin", "LANG=en_US.UTF-8",
                                       "PYTHONPATH=/app/src", "LOG_LEVEL=info"]
    assert config["config"]["Entrypoint"] == ["python", "-m", "audience.main"]
    assert "Cmd" not in config["config"]
    assert config["created"] == rfc3339(EPOCH) == "2023-11-14T22:13:20Z"
    assert config["history"][-1] == {"created": "2023-11-14T22:13:20Z", "created_by": "dkb assemble"}
    assert len(config["rootfs"]["diff_ids"]) == 2
    assert layout.get_blob(manifest["config"]["digest"]) == canonical_bytes(config)

    layout.tag("audience-export", first.descriptor)
    inspected = skopeo_inspect(layout_dir, "audience-export")
    assert inspected["Digest"] == first.descriptor["digest"]
    assert "PYTHONPATH=/app/src" in inspected["Env"]
    rootfs = umoci_unpack(layout_dir, "audience-export", tmp_path / "bundle")
    assert (rootfs / "etc/base-release").read_text() == "tiny base 1\n"
    assert (rootfs / "app/src/audience/main.py").read_text() == "print('export')\n"
    assert (rootfs / "app/dk.yaml").exists()
    assert (rootfs / "app/bin/run.sh").stat().st_mode & 0o111
    runtime = json.loads((tmp_path / "bundle" / "config.json").read_text())
    assert runtime["process"]["cwd"] == "/app"
    assert runtime["process"]["args"] == ["python", "-m", "audience.main"]


def test_assembly_without_command_keeps_the_base_entrypoint(tmp_path):
    base_digest = make_base_layout(tmp_path / "base")
    package = write_package(tmp_path / "pkg", ASSEMBLED)
    request = request_for(package, ASSEMBLED, dockerfile=None, base_image=f"oci:{tmp_path / 'base'}@{base_digest}")
    layout = OciLayout(tmp_path / "store")
    _, config = image_parts(layout, AssembleBackend().build(request, layout).descriptor["digest"])
    assert config["config"]["Cmd"] == ["sh"] and "Entrypoint" not in config["config"]


def test_assembly_depends_on_files_env_and_command(tmp_path):
    base_digest = make_base_layout(tmp_path / "base")
    package = write_package(tmp_path / "pkg", ASSEMBLED)
    base = f"oci:{tmp_path / 'base'}@{base_digest}"
    layout = OciLayout(tmp_path / "store")

    def digest(**overrides) -> str:
        fields = dict(dockerfile=None, base_image=base)
        fields.update(overrides)
        return AssembleBackend().build(request_for(package, ASSEMBLED, **fields), layout).descriptor["digest"]
    plain = digest()
    assert plain == digest()
    assert plain != digest(env={"A": "1"})
    assert plain != digest(command=["python"])
    assert plain != digest(source_date_epoch=0)
    (package / "src/audience/main.py").write_text("print('changed')\n")
    assert plain != digest()


def test_base_image_must_be_pinned_and_present(tmp_path):
    base_dir = tmp_path / "base"
    base_digest = make_base_layout(base_dir)
    package = write_package(tmp_path / "pkg", ASSEMBLED)
    layout = OciLayout(tmp_path / "store")

    def build(base_image: str):
        return AssembleBackend().build(request_for(package, ASSEMBLED, dockerfile=None, base_image=base_image), layout)

    with pytest.raises(BadImageRequest, match="not pinned by digest"):
        build(f"oci:{base_dir}")
    with pytest.raises(BadImageRequest, match="not pinned by digest"):
        build(f"oci:{base_dir}:base")
    with pytest.raises(BadImageRequest, match="is not pinned"):
        build("python:3.11-slim")
    with pytest.raises(BadImageRequest, match="not a sha256 digest"):
        build(f"oci:{base_dir}@sha256:1234")
    absent = "sha256:" + "0" * 64
    with pytest.raises(BadImageRequest, match=f"manifest {absent} is not in the OCI layout {base_dir}"):
        build(f"oci:{base_dir}@{absent}")
    with pytest.raises(BadImageRequest, match="is not an OCI image layout"):
        build(f"oci:{tmp_path / 'nowhere'}@{base_digest}")
    # A registry base is pulled; an unreachable registry is a clear error naming the base.
    with pytest.raises(BaseImageUnavailable, match="registry.example/python@sha256:.*could not be pulled"):
        build(f"registry.example/python@{base_digest}")
    # The base layout is only read: nothing was written into it.
    index = json.loads((base_dir / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == ["base"]


def test_corrupt_base_layer_is_refused(tmp_path):
    base_dir = tmp_path / "base"
    base_digest = make_base_layout(base_dir)
    manifest = json.loads((base_dir / "blobs/sha256" / base_digest.removeprefix("sha256:")).read_bytes())
    layer_path = base_dir / "blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")
    layer_path.write_bytes(layer_path.read_bytes() + b"x")
    package = write_package(tmp_path / "pkg", ASSEMBLED)
    request = request_for(package, ASSEMBLED, dockerfile=None, base_image=f"oci:{base_dir}@{base_digest}")
    with pytest.raises(BadImageRequest, match="is corrupt"):
        AssembleBackend().build(request, OciLayout(tmp_path / "store"))


def test_base_index_selects_this_platform(tmp_path):
    base_dir = tmp_path / "base"
    digest = make_base_layout(base_dir)
    layout = OciLayout(base_dir)
    entry = {**descriptor(MANIFEST, layout.get_blob(digest)), "platform": {"os": "linux", "architecture": HOST_ARCH}}
    other = {**entry, "platform": {"os": "linux", "architecture": "s390x-not-this-one"}}
    index = canonical_bytes({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": [other, entry]})
    index_digest = layout.put_blob(index)
    package = write_package(tmp_path / "pkg", ASSEMBLED)
    request = request_for(package, ASSEMBLED, dockerfile=None, base_image=f"oci:{base_dir}@{index_digest}")
    store = OciLayout(tmp_path / "store")
    manifest, _ = image_parts(store, AssembleBackend().build(request, store).descriptor["digest"])
    assert manifest["layers"][0] == json.loads(layout.get_blob(digest))["layers"][0]


def test_env_merge_and_base_ref_parsing(tmp_path):
    assert merged_env(["PATH=/bin", "PYTHONPATH=/opt/lib"], {}) == ["PATH=/bin", "PYTHONPATH=/app/src:/opt/lib"]
    assert merged_env(["PATH=/bin"], {"PYTHONPATH": "/mine", "B": "2", "A": "1"}) == [
        "PATH=/bin", "A=1", "B=2", "PYTHONPATH=/mine"]
    assert merged_env(["PATH=/bin", "X=old"], {"X": "new"}) == ["PATH=/bin", "X=new", "PYTHONPATH=/app/src"]
    digest = "sha256:" + "a" * 64
    assert parse_base_ref(f"oci:images/base@{digest}", tmp_path) == (tmp_path / "images/base", digest)
    assert parse_base_ref(f"oci:/abs/base@{digest}", tmp_path) == (Path("/abs/base"), digest)
    assert rfc3339(0) == "1970-01-01T00:00:00Z"


# --- choosing a backend ---------------------------------------------------------------------------


def _fake_buildah_on_path(tmp_path: Path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "buildah").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "buildah").chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_choose_backend(tmp_path, fake_docker, monkeypatch):
    package = write_package(tmp_path / "pkg", PACKAGE)
    docker_ok, _, _ = fake_docker("ok")
    no_docker = [str(tmp_path / "no-such-docker")]
    dockerfile_request = request_for(package, PACKAGE)
    assembly_request = request_for(package, PACKAGE, dockerfile=None, base_image="oci:x@sha256:" + "a" * 64)

    # No Dockerfile: the assembler, whatever the preference.
    for preference in ("auto", "buildx", "buildah"):
        assert choose_backend(assembly_request, preference).name == "assemble"
    with pytest.raises(BadImageRequest, match="no Dockerfile and no base image"):
        choose_backend(request_for(package, PACKAGE, dockerfile=None))

    _fake_buildah_on_path(tmp_path, monkeypatch)
    chosen = choose_backend(dockerfile_request, builder="remote-bk", docker_client_call=[str(docker_ok)])
    assert chosen.name == "buildx" and chosen.builder == "remote-bk"
    assert choose_backend(dockerfile_request, docker_client_call=no_docker).name == "buildah"
    docker_down, _, _ = fake_docker("no-daemon")
    assert choose_backend(dockerfile_request, docker_client_call=[str(docker_down)]).name == "buildah"
    assert choose_backend(dockerfile_request, "buildah", docker_client_call=[str(docker_ok)]).name == "buildah"
    assert choose_backend(dockerfile_request, "buildx", docker_client_call=[str(docker_ok)]).name == "buildx"
    with pytest.raises(BackendUnavailable, match="buildx was requested but cannot run: docker CLI"):
        choose_backend(dockerfile_request, "buildx", docker_client_call=no_docker)
    with pytest.raises(BadImageRequest, match="unknown image backend"):
        choose_backend(dockerfile_request, "kaniko")

    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(BackendUnavailable) as caught:
        choose_backend(dockerfile_request, docker_client_call=no_docker)
    assert "buildx: docker CLI" in str(caught.value) and "buildah: buildah not found on PATH" in str(caught.value)
    with pytest.raises(BackendUnavailable, match="apt-get install buildah"):
        choose_backend(dockerfile_request, "buildah")


def test_backends_package_does_not_import_python_on_whales():
    code = ("import sys, dkbuild.oci.backends, dkbuild.oci.backends.buildx, dkbuild.oci.backends.buildah, "
            "dkbuild.oci.backends.assemble; print('python_on_whales' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_buildx_probe_skips_docker_when_there_is_no_daemon(monkeypatch, tmp_path) -> None:
    """No DOCKER_HOST, no context, no socket: answered without python-on-whales or `docker info`."""
    import sys
    from pathlib import Path

    from dkbuild.oci.backends.buildx import BuildxBackend

    if Path("/var/run/docker.sock").exists() or not __import__("shutil").which("docker"):
        pytest.skip("needs a docker CLI without a local daemon")
    for var in ("DOCKER_HOST", "DOCKER_CONTEXT", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    sys.modules.pop("python_on_whales", None)
    reason = BuildxBackend().available()
    assert reason and "not reachable" in reason
    assert "python_on_whales" not in sys.modules
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")          # then the real probe runs
    assert "not reachable" in (BuildxBackend().available() or "")
