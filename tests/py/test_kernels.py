"""`pagelab kernels`: the initramfs, the console protocol, and a real boot of a
Debian kernel under QEMU (TCG here: nested KVM guests fail on this kind of VM,
which the accelerator probe must notice)."""
import base64
import io
import json
import os
import shutil
import subprocess

import pytest

from pagelab_host import kernels


def test_initramfs_is_a_valid_newc_archive(tmp_path):
    bins = {}
    for name in ("init", "conform", "bench"):
        p = tmp_path / name
        p.write_bytes(b"#!" + name.encode() * 7)
        bins[name] = str(p)
    out = tmp_path / "initrd.cpio"
    kernels.make_initramfs(bins, str(out))
    if not shutil.which("cpio"):
        pytest.skip("cpio is not installed to read the archive back")
    listing = subprocess.run(["cpio", "-itv"], input=out.read_bytes(), capture_output=True, check=True).stdout.decode()
    names = [line.split()[-1] for line in listing.splitlines()]
    assert names == ["dev", "proc", "sys", "tmp", "bin", "dev/console", "init", "pagelab-conform", "pagelab-bench"]
    console = [line for line in listing.splitlines() if line.endswith("dev/console")][0]
    assert console.startswith("crw-------") and "5,   1" in console


def test_console_protocol_decodes_files_and_statuses():
    payload = json.dumps({"schema": "pagelab.conformance/1"}).encode() * 10
    lines = ["[    0.1] booting", "=== pagelab-alive run 0", "=== pagelab-status conform 1",
             "=== pagelab-file conformance.json 0"]
    enc = base64.b64encode(payload).decode()
    lines += [enc[i:i + 76] for i in range(0, len(enc), 76)]
    lines += ["=== pagelab-end conformance.json 0", "fault/write_4k/4096  12 ns", "=== pagelab-done all 0"]
    other = []
    con = kernels.Console(io.StringIO())
    for ln in lines:
        con.feed(ln, other.append)
    assert con.alive and con.done
    assert con.status == {"conform": 1}
    assert con.files == {"conformance.json": payload}
    assert other == ["[    0.1] booting", "fault/write_4k/4096  12 ns"]


def test_bad_kernel_spec_is_one_line(repo_root, python_exe):
    p = subprocess.run([python_exe, os.path.join(repo_root, "runners", "pagelab"), "kernels", "/no/such/vmlinuz-x"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.startswith("pagelab: error: kernel /no/such/vmlinuz-x")
    assert "Traceback" not in p.stderr


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or os.uname().machine != "x86_64",
                    reason="needs qemu-system-x86_64 on an x86-64 host")
def test_boot_debian_6_1_and_run_probes(repo_root, python_exe, tmp_path):
    out = tmp_path / "runs"
    p = subprocess.run([python_exe, os.path.join(repo_root, "runners", "pagelab"), "kernels", "6.1", "--no-perf",
                        "--filter", "mmap.*", "--memory", "1G", "--timeout", "900", "--out", str(out),
                        "--cache", str(tmp_path / "cache")],
                       capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr[-2000:]
    (run,) = [d for d in out.iterdir() if "-qemu-6.1." in d.name]
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["complete"] is True
    assert manifest["qemu"]["accel"] in ("kvm", "tcg") and manifest["qemu"]["accel_reason"]
    assert manifest["qemu"]["accel"] in run.name
    conf = json.loads((run / "conformance.json").read_text())
    assert conf["env"]["kernel"].startswith("6.1.")
    assert conf["summary"]["total"] > 10 and conf["summary"]["fail"] == 0
    assert all(r["id"].startswith("mmap.") for r in conf["results"])
    if manifest["qemu"]["accel"] == "tcg":
        assert conf["env"].get("emulation") == "qemu-tcg"
    assert (run / "report.html").exists()
