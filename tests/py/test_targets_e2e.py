"""`pagelab run --no-perf` on several targets end to end: qemu-user on a little- and a big-endian
architecture, musl, user-mode Linux, and a wrap: launcher. Every run must be complete and the
comparison and findings written; what the systems do is reported, not asserted. A few areas of
probes keep it short: the whole suite on each of these systems is the conformance tests' job."""
import json
import os
import shutil
import subprocess
import sys

import pytest

TARGETS = ("qemu-user:aarch64", "qemu-user:s390x", "musl", "uml")
PROBES = ("mmap.*", "brk.*", "madvise.dontfork.*", "madvise.guard_install.access_faults/*", "pagelayer.caps.*",
          "refalloc.guard_after_large_object")
NEEDS = ("qemu-aarch64-static", "qemu-s390x-static", "aarch64-linux-gnu-gcc", "s390x-linux-gnu-gcc", "musl-gcc",
         "linux.uml")


def pagelab(repo_root, *args, timeout=1800):
    return subprocess.run([sys.executable, os.path.join(repo_root, "runners", "pagelab")] + list(args),
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def several(repo_root, build_dir, tmp_path_factory):
    missing = [n for n in NEEDS if not shutil.which(n)]
    if missing:
        pytest.skip("not installed: %s (tools/install-deps.sh check installs them)" % ", ".join(missing))
    out = tmp_path_factory.mktemp("targets")
    args = ["run", "--no-perf", "--build", build_dir, "--out", str(out)]
    for t in TARGETS:
        args += ["--target", t]
    for p in PROBES:
        args += ["--probes", p]
    return out, pagelab(repo_root, *args)


def runs_of(out):
    return {json.loads((d / "manifest.json").read_text())["target"]["spec"]: d
            for d in out.iterdir() if (d / "manifest.json").exists()}


def test_every_target_gives_a_complete_run(several):
    out, res = several
    assert "Traceback" not in res.stderr
    runs = runs_of(out)
    assert sorted(runs) == sorted(TARGETS), res.stderr[-3000:]
    for spec, d in runs.items():
        m = json.loads((d / "manifest.json").read_text())
        assert m["complete"] is True, (spec, m["state"])
        conf = json.loads((d / "conformance.json").read_text())
        summary = conf["summary"]
        print("%-20s %s isolation=%s page_size=%s" % (spec, summary, conf.get("isolation"),
                                                       conf["env"].get("page_size")))
        assert summary["total"] == len(conf["results"]) > 40
    assert res.returncode == 0


def test_each_target_reports_its_own_system(several):
    out, _ = several
    runs = runs_of(out)
    envs = {spec: json.loads((d / "env.json").read_text()) for spec, d in runs.items()}
    assert envs["qemu-user:s390x"]["arch"] == "s390x" and envs["qemu-user:s390x"]["byte_order"] == "big"
    assert envs["qemu-user:aarch64"]["arch"] == "aarch64"
    assert envs["musl"]["libc"].startswith("musl")
    assert envs["uml"]["emulation"] == "user-mode-linux" and envs["uml"]["kernel"].startswith("6.")


def test_comparison_and_findings_are_written(several):
    out, _ = several
    (cmp_dir,) = [d for d in out.iterdir() if d.name.startswith("compare-")]
    md = (cmp_dir / "report.md").read_text()
    for spec in TARGETS:
        assert spec.replace(":", "-") in md or spec in md
    assert "## Findings" in md
    findings = json.loads((cmp_dir / "findings.json").read_text())
    assert findings["schema"] == "pagelab.findings/1"
    assert sorted(s["target"] for s in findings["systems"]) == sorted(TARGETS)
    html = (cmp_dir / "report.html").read_text()
    assert "id=findings" in html


@pytest.mark.skipif(not shutil.which("sh"), reason="needs sh")
def test_wrap_runs_the_suite_under_a_launcher(repo_root, build_dir, tmp_path):
    launcher = tmp_path / "launch"
    launcher.write_text("#!/bin/sh\n# a trivial launcher: count the runs, then run the command\n"
                        "echo run >> \"$(dirname \"$0\")/launched\"\nexec \"$@\"\n")
    launcher.chmod(0o755)
    out = tmp_path / "run"
    res = pagelab(repo_root, "run", "--no-perf", "--probes", "mmap.anon.*", "--build", build_dir,
                  "--target", "wrap:%s" % launcher, "--out", str(out), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads((out / "manifest.json").read_text())
    assert m["complete"] is True and m["target"]["spec"] == "wrap:%s" % launcher
    assert m["parts"]["conformance"]["command"][0] == str(launcher)
    assert json.loads((out / "env.json").read_text())["launcher"] == str(launcher)
    assert (tmp_path / "launched").read_text().count("run") >= 1


def _results(out, spec):
    conf = json.loads((runs_of(out)[spec] / "conformance.json").read_text())
    return conf, {r["id"]: r for r in conf["results"]}


def test_no_probe_ends_in_a_launcher_error(several):
    """Isolation stays inside every launcher: no probe is lost to how it was started."""
    out, _ = several
    for spec in TARGETS:
        conf, results = _results(out, spec)
        lost = [(k, r["reason"]) for k, r in results.items() if r.get("class") == "harness"]
        assert not lost, (spec, lost[:5])
        if conf["isolation"] == "fork":
            assert conf.get("isolation_note"), spec  # a fallback always says why


def test_qemu_user_claims_not_honoured_are_findings(several):
    """qemu-user answers MADV_GUARD_INSTALL with success and installs nothing: the page layer finds
    that at start and falls back, so refalloc's guard pages still fault, and probes report it."""
    out, _ = several
    for spec in ("qemu-user:aarch64", "qemu-user:s390x"):
        conf, results = _results(out, spec)
        guard = conf["capabilities"]["guard"]
        if guard["verified"] != "not_honoured":
            continue  # a qemu that honours the advice: nothing to find
        honoured = results["pagelayer.caps.claims_honoured"]
        assert honoured["status"] == "fail" and "MADV_GUARD_INSTALL" in honoured["reason"], spec
        assert results["refalloc.guard_after_large_object"]["status"] == "pass", spec
        assert results["madvise.guard_install.access_faults/private_anon"]["status"] == "fail", spec
        assert "expected SIGSEGV, observed none" in results["madvise.guard_install.access_faults/private_anon"]["reason"]
