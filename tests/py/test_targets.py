"""Targets without running the suite: resolution, missing tools, the console protocol with noise,
a guest killed mid-run, and a target's environment kept apart from the host's."""
import argparse
import base64
import binascii
import io
import json
import os
import socket
import subprocess
import sys

import pytest

from pagelab_host import hostenv, targets
from pagelab_host.errors import UserError
from pagelab_host.plan import Options, make_plan
from pagelab_host.rundir import RunDir
from pagelab_host.targetrun import TargetFailed, TargetRun
from pagelab_host.targets import _guest


def run_args(**kw):
    ns = argparse.Namespace(memory="1G", cpus=2, accel="tcg")
    ns.__dict__.update(kw)
    return ns


@pytest.mark.parametrize("spec,kind,label", [
    ("local", "local", "local"), ("musl", "musl", "musl"), ("qemu-user:s390x", "qemu-user", "qemu-user-s390x"),
    ("qemu-user:arm64", "qemu-user", "qemu-user-aarch64"), ("kernel:6.1/ppc64el", "kernel", "kernel-6.1-ppc64el"),
    ("uml", "uml", "uml"), ("wrap:setarch -R", "wrap", "wrap-setarch")])
def test_specs_resolve_to_their_kind(spec, kind, label):
    t = targets.resolve(spec, run_args())
    assert (t.kind, t.label()) == (kind, label)


@pytest.mark.parametrize("spec,words", [
    ("vax", "unknown kind 'vax'"), ("qemu-user", "needs an architecture"), ("qemu-user:m68k", "unknown architecture"),
    ("kernel", "needs a kernel"), ("wrap", "needs a command"), ("wrap:'unclosed", "cannot split")])
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(UserError, match=words):
        targets.resolve(spec, run_args())


def test_missing_tool_names_the_debian_package(monkeypatch):
    t = targets.resolve("qemu-user:s390x", run_args())
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(UserError) as e:
        t.check()
    assert str(e.value) == ("target qemu-user:s390x: qemu-s390x-static not found "
                            "(Debian: apt-get install qemu-user-static)")


def test_cli_reports_every_missing_tool_before_running(repo_root, tmp_path):
    env = dict(os.environ, PATH="/usr/bin/nonexistent")
    res = subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab"), "run", "--target", "uml",
                          "--target", "wrap:/no/such/launcher", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    (line,) = res.stderr.strip().splitlines()
    assert "linux.uml not found (Debian: apt-get install user-mode-linux)" in line
    assert "/no/such/launcher not found" in line
    assert not (tmp_path / "o").exists()


def test_targets_command_lists_every_kind_and_its_packages(repo_root):
    res = subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab"), "targets"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for usage in ("local", "musl", "qemu-user:ARCH", "kernel:SPEC[/ARCH]", "uml[:KERNEL]", "wrap:COMMAND"):
        assert any(line.startswith(usage + " ") for line in res.stdout.splitlines()), usage
    for line in res.stdout.splitlines():
        if line.startswith("    ") and "ready" not in line:
            assert "apt-get install" in line


def make_ctx(tmp_path, timeout=60):
    rd = RunDir(str(tmp_path / "run"), ["pagelab"], "quick", {"spec": "t", "kind": "t", "label": "t"}, {})
    return TargetRun(rd, str(tmp_path), Options(perf=False), str(tmp_path / "build"), True, timeout,
                     stream=io.StringIO())


def send(name, data, width=76):
    enc = base64.b64encode(data).decode()
    return (["=== pagelab-file %s" % name] + [enc[i:i + width] for i in range(0, len(enc), width)]
            + ["=== pagelab-end %s %d %d" % (name, len(data), binascii.crc32(data))])


def conformance_doc():
    return json.dumps({"schema": "pagelab.conformance/1", "env": {"page_size": 65536}, "results": [
        {"id": "mmap.x", "status": "pass", "observed": {}}], "summary": {"pass": 1, "total": 1}}).encode()


def test_console_protocol_survives_noise(tmp_path):
    ctx = make_ctx(tmp_path)
    plan = make_plan(ctx.options, 2)
    doc, tap = conformance_doc(), b"TAP version 13\n1..1\nok 1 - mmap.x\n"
    body = send("conformance.json", doc)
    # A kernel message between two base64 lines, and one glued in front of a marker.
    body.insert(2, "[   12.345678] random: crng init done")
    lines = (["OpenSBI v1.2", "[    0.000000] Linux version 6.1.0", "=== pagelab-alive run 0",
              "=== pagelab-begin conformance 0", "=== pagelab-out conformance TAP version 13",
              "=== pagelab-out conformance 1..1", "=== pagelab-out conformance ok 1 - mmap.x"] + body
             + send("conformance.tap", tap) + send("logs/conformance.stderr", b"")
             + ["[   13.0] audit: x=== pagelab-status conformance 0", "=== pagelab-done all 0"])
    con = _guest.Console(ctx, plan, io.StringIO())
    for ln in lines:
        con.feed(ln)
    assert con.alive and con.done and not con.damaged
    assert (tmp_path / "run" / "conformance.json").read_bytes() == doc
    assert (tmp_path / "run" / "conformance.tap").read_bytes() == tap
    assert ctx.rundir.manifest["parts"]["conformance"]["status"] == "ok"
    assert ctx.progress.done == 1
    assert _guest.reason(con, 0, "", None) is None


def test_damaged_transfer_is_named_and_never_stored(tmp_path):
    ctx = make_ctx(tmp_path)
    plan = make_plan(ctx.options, 2)
    body = send("conformance.json", conformance_doc())
    body[1] = body[1][:-4] + "AAAA"    # one line garbled on the way
    con = _guest.Console(ctx, plan, io.StringIO())
    for ln in ["=== pagelab-alive run 0", "=== pagelab-begin conformance 0"] + body + \
              ["=== pagelab-status conformance 0", "=== pagelab-done all 0"]:
        con.feed(ln)
    assert not (tmp_path / "run" / "conformance.json").exists()
    part = ctx.rundir.manifest["parts"]["conformance"]
    assert part["status"] == "died" and "damaged in transfer" in part["note"]


FAKE_GUEST = r'''
import sys, time
print("booting", flush=True)
print("=== pagelab-alive run 0", flush=True)
print("=== pagelab-begin conformance 0", flush=True)
print("=== pagelab-out conformance TAP version 13", flush=True)
print("=== pagelab-out conformance 1..300", flush=True)
print("=== pagelab-out conformance ok 1 - mmap.a", flush=True)
if sys.argv[1] == "panic":
    print("[   9.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x0000000b", flush=True)
    sys.exit(0)
time.sleep(60)
'''


class FakeGuest(_guest.GuestTarget):
    kind = "fake"

    def __init__(self, how):
        super().__init__(how, run_args())

    def make_root(self, ctx, plan_text):
        return "unused"

    def boot_command(self, ctx, root, mode="run"):
        return [sys.executable, "-c", FAKE_GUEST, self.arg]


@pytest.mark.parametrize("how,words", [("hang", "no console output for 2 s (hung)"),
                                       ("panic", "kernel panic: Kernel panic - not syncing: Attempted to kill init!")])
def test_guest_that_hangs_or_panics_leaves_an_incomplete_run(tmp_path, monkeypatch, how, words):
    monkeypatch.setattr(_guest, "SILENCE_S", 2)
    ctx = make_ctx(tmp_path)
    with pytest.raises(TargetFailed) as e:
        FakeGuest(how).run(make_plan(ctx.options, 2), ctx)
    assert words in str(e.value)
    m = ctx.rundir.finish(str(e.value))
    assert m["complete"] is False and words in m["state"] and m["reason"] == str(e.value)
    part = m["parts"]["conformance"]
    assert part["status"] == ("timed out" if how == "hang" else "died")
    assert "Kernel panic" in (tmp_path / "run" / "logs" / "console.log").read_text() or how == "hang"
    assert m["parts"]["boot"]["status"] == "failed"


def test_target_killed_mid_run_keeps_an_incomplete_run(repo_root, tmp_path):
    launcher = tmp_path / "dies"
    # A launcher that runs the suite for a moment, then is killed as a crashing emulator would be.
    launcher.write_text("#!/bin/sh\n\"$@\" & sleep 0.3; kill -KILL $$\n")
    launcher.chmod(0o755)
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab"), "run", "--no-perf",
                          "--no-build", "--target", "wrap:%s" % launcher, "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] is False and m["parts"]["conformance"]["status"] == "died"
    assert m["parts"]["conformance"]["signal"] == "SIGKILL"
    assert (out / "report.html").exists() and (out / "env.json").exists()


def host_values():
    env = hostenv.capture()
    return {k: v for k, v in env.items() if k in ("hostname", "kernel", "kernel_version", "thp", "virtualization",
                                                   "cpu_model") and v}


@pytest.mark.parametrize("spec", ["qemu-user:s390x", "kernel:6.1/ppc64el", "uml", "wrap:env", "musl"])
def test_a_targets_description_never_holds_the_hosts_values(spec):
    desc = targets.resolve(spec, run_args()).describe()
    for key, value in host_values().items():
        assert desc.get(key) != value, (key, value)
    assert socket.gethostname() not in json.dumps(desc)


def test_env_json_is_the_targets_and_the_manifest_keeps_the_host_apart(tmp_path):
    ctx = make_ctx(tmp_path)
    ctx.store("conformance.json", json.dumps({"schema": "pagelab.conformance/1", "env": {
        "kernel": "6.1.0-50-powerpc64le", "thp_enabled": "always", "emulation": "qemu-tcg"}, "results": []}).encode())
    ctx.rundir.manifest["host"] = hostenv.driving_host(str(tmp_path))
    ctx.rundir.write_env({"target": "kernel:6.1/ppc64el", "accel": "tcg"})
    from pagelab_host.model import load_run
    env = load_run(ctx.rundir.path).env()
    assert env["kernel"] == "6.1.0-50-powerpc64le" and env["thp_enabled"] == "always"
    for key, value in host_values().items():
        assert env.get(key) != value, (key, value)


def test_bad_kernel_spec_is_one_line_before_anything_runs(repo_root, tmp_path):
    res = subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab"), "kernels",
                          "/no/such/vmlinuz-x", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == ("pagelab: error: target kernel:/no/such/vmlinuz-x: /no/such/vmlinuz-x is neither "
                                  "a file nor a Debian series (6.1) or image package name")


def test_command_target_that_hangs_is_stopped_at_its_deadline(repo_root, build_dir, tmp_path):
    launcher = tmp_path / "hangs"
    launcher.write_text("#!/bin/sh\nexec sleep 600\n")
    launcher.chmod(0o755)
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab"), "run", "--no-perf",
                          "--no-build", "--build", build_dir, "--timeout", "3", "--target", "wrap:%s" % launcher,
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["parts"]["conformance"]["status"] == "timed out"
    assert m["reason"] == "conformance did not finish within the target's 3 s"
    assert m["complete"] is False and (out / "report.html").exists()
