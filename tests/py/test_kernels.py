"""Kernel targets: the initramfs, the spec, Debian's versions and private APT, and a real boot of a
Debian kernel of another architecture under qemu-system (TCG)."""
import json
import os
import shutil
import subprocess

import pytest

from pagelab_host.errors import UserError
from pagelab_host.targets import _debian, _guest, kernel


def test_initramfs_is_a_valid_newc_archive(tmp_path):
    files = {"init": b"#!init" * 7, "pagelab-conform": b"c" * 5, "pagelab-bench": b"b", "plan": b"part x\n"}
    out = tmp_path / "initrd.cpio"
    _guest.make_initramfs(files, str(out))
    if not shutil.which("cpio"):
        pytest.skip("cpio is not installed to read the archive back")
    listing = subprocess.run(["cpio", "-itv"], input=out.read_bytes(), capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] for line in listing.splitlines()]
    assert names == ["dev", "proc", "sys", "tmp", "bin", "dev/console", "init", "pagelab-conform", "pagelab-bench",
                     "plan"]
    console = [line for line in listing.splitlines() if line.endswith("dev/console")][0]
    assert console.startswith("crw-------") and "5,   1" in console
    plan = [line for line in listing.splitlines() if line.endswith(" plan")][0]
    assert plan.startswith("-rw-r--r--")


@pytest.mark.parametrize("arg,kernel_spec,arch", [
    ("6.1/ppc64el", "6.1", "ppc64el"), ("6.12/arm64-16k", "6.12", "arm64-16k"), ("6.1", "6.1", "amd64"),
    ("linux-image-6.1.0-50-s390x/s390x", "linux-image-6.1.0-50-s390x", "s390x")])
def test_kernel_spec_names_the_kernel_and_the_architecture(arg, kernel_spec, arch):
    spec, karch = kernel.split_spec(arg, "kernel:" + arg)
    assert (spec, karch.name) == (kernel_spec, arch)


def test_unknown_kernel_architecture_is_one_line():
    with pytest.raises(UserError, match="unknown architecture 'sparc'"):
        kernel.split_spec("6.1/sparc", "kernel:6.1/sparc")


@pytest.mark.parametrize("a,b,order", [
    ("6.12.117-1", "6.12.95-1~bpo12+1", 1), ("1.0-1", "1.0-1~bpo", 1), ("6.1.176-1", "6.1.176-1", 0),
    ("1:0.1", "2.0", 1), ("2.30-1", "2.4-1", 1), ("1.0a", "1.0", 1), ("1.0~rc1", "1.0", -1)])
def test_debian_versions_order_as_dpkg_does(a, b, order):
    assert _debian.compare_versions(a, b) == order
    assert _debian.compare_versions(b, a) == -order
    if shutil.which("dpkg"):
        op = {1: "gt", 0: "eq", -1: "lt"}[order]
        assert subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


def test_private_apt_never_uses_the_machines_directories(tmp_path, monkeypatch):
    monkeypatch.setenv("PAGELAB_CACHE", str(tmp_path))
    opts = _debian.PrivateApt("ppc64el").options()
    dirs = [o.partition("=") for o in opts[1::2] if o.startswith("Dir::")]
    assert {k for k, _, _ in dirs} >= {"Dir::Etc", "Dir::Etc::SourceList", "Dir::Etc::SourceParts", "Dir::State",
                                       "Dir::State::status", "Dir::Cache"}
    for key, _, value in dirs:
        assert value.startswith(str(tmp_path)) or value == "/dev/null", key
    assert "APT::Architecture=ppc64el" in opts and "APT::Architectures=ppc64el" in opts


def test_meta_package_picks_the_newest_kernel_of_the_series():
    class FakeApt:
        def records(self, meta):
            return {"linux-image-powerpc64le": [
                ("6.12.117-1", "linux-image-6.12.117+deb13-powerpc64le (= 6.12.117-1)"),
                ("6.1.176-1", "linux-image-6.1.0-50-powerpc64le (= 6.1.176-1)"),
                ("6.1.170-1", "linux-image-6.1.0-48-powerpc64le (= 6.1.170-1)")],
                "linux-image-powerpc64le-64k": [
                ("6.12.117-1", "linux-image-6.12.117+deb13-powerpc64le-64k (= 6.12.117-1)")]}.get(meta, [])
    flavours = kernel.KERNEL_ARCHES["ppc64el"].flavours
    assert _debian.image_package(FakeApt(), "6.1", flavours) == ("linux-image-6.1.0-50-powerpc64le", "6.1.176-1")
    assert _debian.image_package(FakeApt(), "6.12", flavours)[0] == "linux-image-6.12.117+deb13-powerpc64le-64k"
    assert _debian.image_package(FakeApt(), "5.10", flavours) == (None, None)


FOREIGN = "kernel:6.1/ppc64el"


@pytest.mark.system
@pytest.mark.skipif(not shutil.which("qemu-system-ppc64") or not shutil.which("powerpc64le-linux-gnu-gcc"),
                    reason="needs qemu-system-ppc and gcc-powerpc64le-linux-gnu")
def test_boot_a_foreign_kernel_and_run_probes(repo_root, python_exe, build_dir, tmp_path):
    out = tmp_path / "run"
    p = subprocess.run([python_exe, os.path.join(repo_root, "runners", "pagelab"), "run", "--target", FOREIGN,
                        "--no-perf", "--probes", "mmap.anon*", "--probes", "brk.syscall.*", "--memory", "1G",
                        "--build", build_dir, "--out", str(out)], capture_output=True, text=True, timeout=1500)
    assert "Traceback" not in p.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True, (manifest["state"], p.stderr[-2000:])
    assert manifest["target"]["spec"] == FOREIGN and manifest["parts"]["boot"]["status"] == "ok"
    conf = json.loads((out / "conformance.json").read_text())
    env = json.loads((out / "env.json").read_text())
    # What the guest reported: Debian's ppc64el 6.1 kernel uses 64 KiB pages.
    assert conf["env"]["kernel"].startswith("6.1.") and conf["env"]["arch"] == "ppc64le"
    assert conf["env"]["page_size"] == 65536 and env["page_size"] == 65536
    assert env["accel"] == "tcg" and env["kernel_package"].startswith("linux-image-6.1.")
    assert conf["summary"]["total"] > 5
    # Channel probes always run: the others need to know which observations to trust.
    # Channel and feature probes always run: the others need to know which observations to trust and what exists.
    assert all(r["id"].startswith(("mmap.anon", "brk.syscall.", "channel.", "feature.")) for r in conf["results"])
    assert (out / "logs" / "console.log").stat().st_size > 0 and (out / "report.html").exists()


PINNED = "kernel:6.1"


@pytest.mark.system
@pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or os.uname().machine != "x86_64",
                    reason="needs qemu-system-x86 on an x86-64 host")
def test_a_pinned_kernel_gives_known_answers(repo_root, python_exe, build_dir, tmp_path):
    """The whole suite in Debian's 6.1 guest, a system with known answers: every probe passes, is an expected
    failure, records an observation, or skips with a reason. A fail there is a defect of ours (or a real
    kernel finding to triage in results/triage.json), never the host's business."""
    out = tmp_path / "run"
    p = subprocess.run([python_exe, os.path.join(repo_root, "runners", "pagelab"), "run", "--target", PINNED,
                        "--no-perf", "--build", build_dir, "--out", str(out)],
                       capture_output=True, text=True, timeout=2400)
    assert "Traceback" not in p.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True, (manifest["state"], p.stderr[-2000:])
    conf = json.loads((out / "conformance.json").read_text())
    assert conf["env"]["kernel"].startswith("6.1.")
    wrong = ["%s: %s: %s" % (r["id"], r["status"], r.get("reason", "")) for r in conf["results"]
             if r["status"] not in ("pass", "xfail", "skip", "observed")]
    assert not wrong, "\n".join(wrong)
    assert all(r.get("reason") for r in conf["results"] if r["status"] == "skip")
    assert conf["summary"]["pass"] > conf["summary"]["total"] / 2
