"""deploy/Dockerfile read instruction by instruction (no container engine needed), and the
NVIDIA node's HAMi-core install script run for real in a scratch directory."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

from deploy_kit import DEFAULT, DEPLOY, ROOT, VENDOR_DIRS, containers, find, render

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined, in its build stage."""

    stage: int
    keyword: str
    args: str


def instructions() -> list[Instruction]:
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        text = pending + line
        pending = ""
        keyword, _, args = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def final_stage() -> list[Instruction]:
    found = instructions()
    last = max(i.stage for i in found)
    return [i for i in found if i.stage == last]


def global_args() -> dict[str, str]:
    out = {}
    for i in instructions():
        if i.stage == -1 and i.keyword == "ARG":
            name, _, default = i.args.partition("=")
            out[name] = default.strip('"')
    return out


def test_entry_point_is_the_hami_command_line() -> None:
    (entry,) = [i for i in final_stage() if i.keyword == "ENTRYPOINT"]
    assert json.loads(entry.args) == ["hami"]


def test_default_vendors_are_every_vendor_distribution() -> None:
    vendors = global_args()["VENDORS"].split()
    assert sorted(vendors) == VENDOR_DIRS


def test_vendors_are_installed_from_their_directories_and_unknown_ones_fail() -> None:
    runs = [i.args for i in instructions() if i.keyword == "RUN" and "pip install" in i.args]
    (install,) = runs
    assert "for vendor in ${VENDORS}" in install
    assert "/src/vendors/hami-${vendor}" in install
    assert "exit 1" in install
    assert "hami vendors" in install  # the build proves the vendors load


def test_the_scheduler_runs_as_an_unprivileged_user() -> None:
    (user,) = [i for i in final_stage() if i.keyword == "USER"]
    uid = user.args.split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    deployment = find(DEFAULT, "Deployment", "hami-scheduler")
    assert containers(deployment)["extender"]["securityContext"]["runAsUser"] == int(uid)


def test_device_plugin_host_paths_are_documented_volumes() -> None:
    (volume,) = [i for i in final_stage() if i.keyword == "VOLUME"]
    declared = set(json.loads(volume.args))
    nvidia_paths = {p.path for p in render.VENDORS["nvidia"].host_paths}
    assert declared == {render.DEVICE_PLUGIN_DIR, *nvidia_paths}
    comments = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"^#\s+/dev\s", comments, re.MULTILINE), "/dev is documented"


def test_hook_path_agrees_with_the_manifests_and_the_nvidia_vendor() -> None:
    from hami_nvidia.settings import DEFAULT_HOOK_PATH

    envs = " ".join(i.args for i in final_stage() if i.keyword == "ENV")
    assert f"HOOK_PATH={render.HOOK_PATH}" in envs
    assert render.HOOK_PATH == DEFAULT_HOOK_PATH


def test_hami_core_lands_where_the_install_script_looks() -> None:
    copies = [i.args for i in final_stage() if i.keyword == "COPY"]
    assert "--from=hami-core /out/ /opt/hami-core/" in copies
    builds = [i.args for i in instructions() if i.keyword == "RUN" and "build.sh" in i.args]
    assert builds and "cp build/libvgpu.so /out/libvgpu.so" in builds[0]
    froms = [i.args for i in instructions() if i.keyword == "FROM"]
    assert "hami-core-${HAMI_CORE} AS hami-core" in froms
    assert {"HAMI_CORE", "CUDA_IMAGE", "PYTHON_IMAGE"} <= set(global_args())


def test_copied_sources_exist_and_are_not_ignored() -> None:
    ignored = [
        line.strip().removeprefix("**/")
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for i in instructions():
        if i.keyword != "COPY" or i.args.startswith("--from"):
            continue
        *sources, _dest = shlex.split(i.args)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.rstrip("/") not in ignored, source


def test_python_base_satisfies_requires_python() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    floor = tuple(int(x) for x in project["requires-python"].removeprefix(">=").split("."))
    match = re.match(r"python:(\d+)\.(\d+)", global_args()["PYTHON_IMAGE"])
    assert match is not None
    assert (int(match[1]), int(match[2])) >= floor


def test_every_run_is_valid_shell() -> None:
    for i in instructions():
        if i.keyword == "RUN":
            done = subprocess.run(["sh", "-n", "-c", i.args], capture_output=True, text=True)
            assert done.returncode == 0, f"{i.args}\n{done.stderr}"


def _install_script() -> str:
    daemonset = find(DEFAULT, "DaemonSet", "hami-device-plugin-nvidia")
    (init,) = daemonset["spec"]["template"]["spec"]["initContainers"]
    script: str = init["command"][-1]
    return script


def test_hami_core_install_puts_library_and_preload_on_the_node(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    (image / "libvgpu.so").write_bytes(b"\x7fELF new")
    host = tmp_path / "host"
    (host / "vgpu").mkdir(parents=True)
    (host / "vgpu" / "libvgpu.so").write_bytes(b"\x7fELF old")
    old_inode = (host / "vgpu" / "libvgpu.so").stat().st_ino
    script = _install_script().replace("/opt/hami-core", str(image))
    done = subprocess.run(
        ["sh", "-c", script], env={"HOOK_PATH": str(host), "PATH": "/usr/bin:/bin"}, check=False
    )
    assert done.returncode == 0
    library = host / "vgpu" / "libvgpu.so"
    assert library.read_bytes() == b"\x7fELF new"
    assert library.stat().st_ino != old_inode  # replaced by rename, never rewritten in place
    preload = (host / "vgpu" / "ld.so.preload").read_text(encoding="utf-8")
    assert preload == f"{host}/vgpu/libvgpu.so\n"
    assert (host / "vgpu" / "containers").is_dir()
    assert sorted(p.name for p in (host / "vgpu").iterdir()) == [
        "containers",
        "ld.so.preload",
        "libvgpu.so",
    ]


def test_an_image_without_hami_core_leaves_the_node_alone(tmp_path: Path) -> None:
    host = tmp_path / "host"
    script = _install_script().replace("/opt/hami-core", str(tmp_path / "absent"))
    done = subprocess.run(
        ["sh", "-c", script],
        env={"HOOK_PATH": str(host), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "carries no HAMi-core" in done.stderr
    assert not (host / "vgpu" / "libvgpu.so").exists()
