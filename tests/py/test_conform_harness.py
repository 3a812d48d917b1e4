"""The conformance runner's isolation, outcomes, TAP and JSON, proved with
probes that misbehave on purpose (tests/selftest/probes.c)."""
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PAGELAB_BUILD", ROOT / "build"))
SELFTEST = BUILD / "pagelab-selftest"
CONFORM = BUILD / "pagelab-conform"

pytestmark = pytest.mark.skipif(not SELFTEST.exists(), reason="build/pagelab-selftest not built (run make check)")

EXPECTED = {
    "selftest.pass": ("pass", ""),
    "selftest.segfault": ("fail", "signal 11"),
    "selftest.abort": ("fail", "signal 6"),
    "selftest.hang": ("timeout", "no outcome after 2 s"),
    "selftest.oom": ("fail", "signal 11"),
    "selftest.exit_early": ("error", "exited with status 0 without reporting"),
    "selftest.leave_child": ("pass", ""),
    "selftest.skip": ("skip", "ENOSYS"),
    "selftest.xfail": ("xfail", "known deviation"),
    "selftest.fail": ("fail", "1 + 1 == 3: arithmetic is off by 1"),
    "selftest.no_outcome": ("error", "without an outcome"),
    "feature.brk": ("skip", "absent on purpose"),
    "feature.fork": ("pass", ""),
    "selftest.needs_absent": ("skip", "needs brk, which this system lacks: absent on purpose"),
    "selftest.needs_present": ("pass", ""),
    "selftest.need_feature_inside": ("skip", "needs brk"),
    "selftest.differs": ("differs", "expected 3, saw 2"),
    "selftest.differs_then_fail": ("fail", "then a contract breaks"),
    "selftest.observed": ("observed", "every answer is allowed"),
    "selftest.setup_enosys": ("skip", "ENOSYS: not implemented here"),
}


def run_selftest(tmp_path, *args, env=None):
    out = tmp_path / "r.json"
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(SELFTEST), "--timeout", "2", "--mem-limit", "256", "--json", str(out), *args],
                       capture_output=True, text=True, timeout=120, env=e)
    return p, json.loads(out.read_text())


@pytest.fixture(scope="module")
def exec_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exec")
    t0 = time.monotonic()
    p, data = run_selftest(tmp, "-j", "2")
    return p, data, time.monotonic() - t0


def by_id(data):
    return {r["id"]: r for r in data["results"]}


def test_every_misbehaviour_is_its_own_outcome(exec_run):
    p, data, _ = exec_run
    results = by_id(data)
    for pid, (status, reason) in EXPECTED.items():
        assert results[pid]["status"] == status, (pid, results[pid])
        assert reason in results[pid]["reason"], (pid, results[pid])
    kinds = {k: v for k, v in results.items() if k.startswith("selftest.kinds/")}
    assert {"selftest.kinds/private_anon", "selftest.kinds/private_file", "selftest.kinds/shared_anon",
            "selftest.kinds/shared_file"} <= set(kinds)
    assert all(r["status"] == "pass" and r["observed"]["kind"] == r["id"].split("/")[1] for r in kinds.values())


def test_exit_status_and_summary(exec_run):
    p, data, _ = exec_run
    assert p.returncode == 1
    s = data["summary"]
    nkinds = sum(1 for r in data["results"] if r["id"].startswith("selftest.kinds/"))
    assert s == {"pass": 4 + nkinds, "fail": 5, "differs": 1, "skip": 5, "xfail": 1, "error": 2, "timeout": 1,
                 "observed": 1, "total": 20 + nkinds,
                 "skip_unsupported": 5, "skip_unobservable": 0, "skip_prerequisite": 0}
    assert data["schema"] == "pagelab.conformance/2"
    assert data["isolation"] == "exec"
    assert data["env"]["page_size"] > 0 and data["env"]["kernel"]


def test_verdict_classes_are_recorded(exec_run):
    _, data, _ = exec_run
    r = by_id(data)
    assert r["selftest.skip"]["class"] == "unsupported"
    assert r["selftest.fail"]["class"] == "not_honoured"
    assert r["selftest.segfault"]["class"] == "crashed"
    assert r["selftest.no_outcome"]["class"] == "harness"
    assert "class" not in r["selftest.pass"]
    assert data["summary"]["skip_unsupported"] == 5
    assert r["selftest.differs"]["class"] == "behaviour"
    assert r["selftest.differs"]["observed"]["behaviour_differs"] == "expected 3, saw 2"
    assert r["selftest.needs_absent"]["class"] == "unsupported"
    assert r["selftest.needs_absent"]["feature"] == "brk"
    assert "duration_ms" not in r["selftest.needs_absent"] or r["selftest.needs_absent"]["duration_ms"] == 0


def test_features_run_first_and_are_recorded(exec_run):
    p, data, _ = exec_run
    ids = [r["id"] for r in data["results"]]
    last_feature = max(i for i, x in enumerate(ids) if x.startswith("feature."))
    assert all(not x.startswith("feature.") for x in ids[last_feature + 1:])
    assert all(x.startswith("feature.") for x in ids[:last_feature + 1])
    assert data["features"]["brk"] == {"probe": "feature.brk", "present": False, "class": "unsupported",
                                       "why": "absent on purpose: ENOSYS (feature.brk)"}
    assert data["features"]["fork"] == {"probe": "feature.fork", "present": True}


def test_a_filtered_run_still_proves_features(tmp_path):
    p, data = run_selftest(tmp_path, "-f", "selftest.needs_*")
    results = by_id(data)
    assert set(results) == {"feature.brk", "feature.fork", "selftest.needs_absent", "selftest.needs_present"}
    assert results["selftest.needs_absent"]["status"] == "skip"
    assert results["selftest.needs_present"]["status"] == "pass"
    assert p.returncode == 0


def test_observations_survive_a_crash_and_are_escaped(exec_run):
    _, data, _ = exec_run
    r = by_id(data)
    assert r["selftest.segfault"]["observed"] == {"before_crash": "yes"}
    assert int(r["selftest.oom"]["observed"]["allocated_mib"]) >= 64
    assert r["selftest.pass"]["observed"] == {"answer": "42", "escaped": 'tab here, newline there, "quoted"'}


def test_left_behind_child_neither_hangs_nor_survives(exec_run):
    _, data, elapsed = exec_run
    r = by_id(data)["selftest.leave_child"]
    assert r["duration_ms"] < 1500
    pid = int(r["observed"]["child_pid"])
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
    assert elapsed < 20  # one 2 s timeout, the rest quick


def test_tap_is_well_formed(exec_run):
    p, data, _ = exec_run
    total = len(data["results"])
    lines = p.stdout.splitlines()
    assert lines[0] == "TAP version 13"
    assert lines[1] == "1..%d" % total
    tests = [l for l in lines if re.match(r"(not )?ok \d+ - ", l)]
    assert [int(re.match(r"(?:not )?ok (\d+)", l).group(1)) for l in tests] == list(range(1, total + 1))
    assert any(l.endswith("selftest.skip # SKIP unsupported: feature absent: ENOSYS") and l.startswith("ok ") for l in tests)
    assert any("selftest.xfail # TODO" in l and l.startswith("not ok") for l in tests)
    assert any(l.startswith("not ok") and l.endswith("selftest.segfault") for l in tests)
    assert any(l.startswith("ok ") and "selftest.differs (differs from the usual behaviour: expected 3, saw 2)" in l
               for l in tests)
    summary = [l for l in lines if l.startswith("# pagelab-conform: ")]
    assert summary and summary[0].startswith(
        "# pagelab-conform: %d pass, 5 fail, 1 differs, 5 skip, 1 xfail, 2 error, 1 timeout, 1 observed" % (total - 16))
    assert "# skips: 5 unsupported, 0 unobservable, 0 prerequisite" in lines


def test_fork_isolation_gives_the_same_outcomes(tmp_path):
    p, data = run_selftest(tmp_path, "--isolate=fork")
    assert data["isolation"] == "fork"
    results = by_id(data)
    for pid, (status, _) in EXPECTED.items():
        assert results[pid]["status"] == status, pid


def test_exec_failure_falls_back_to_fork(tmp_path):
    bogus = tmp_path / "not-a-program"
    bogus.write_text("this is no executable format\n")
    bogus.chmod(0o755)
    p, data = run_selftest(tmp_path, "-f", "selftest.pass", "-f", "selftest.segfault",
                           env={"PAGELAB_CONFORM_SELF": str(bogus)})
    assert data["isolation"] == "fork"
    assert "probes isolated with fork" in p.stderr
    assert "re-executing" in data["isolation_note"]
    assert by_id(data)["selftest.pass"]["status"] == "pass"
    assert by_id(data)["selftest.segfault"]["status"] == "fail"


def test_forced_exec_failure_is_reported_not_hidden(tmp_path):
    bogus = tmp_path / "missing"
    p, data = run_selftest(tmp_path, "--isolate=exec", "-f", "selftest.pass", env={"PAGELAB_CONFORM_SELF": str(bogus)})
    assert p.returncode == 1
    assert by_id(data)["selftest.pass"]["status"] == "error"
    assert "cannot start the probe" in by_id(data)["selftest.pass"]["reason"]


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unknown option '--bogus'"),
    (["-f", "nothing.matches.this"], "no probe matches the filters"),
    (["-j", "0"], "--jobs needs a number"),
    (["--timeout", "x"], "--timeout needs a number"),
    (["--isolate=vm"], "--isolate takes exec, fork or auto"),
])
def test_bad_usage_is_one_line_and_exit_2(args, message):
    p = subprocess.run([str(SELFTEST), *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert message in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1
    assert p.stdout == ""


def test_filters_and_list():
    p = subprocess.run([str(SELFTEST), "-l", "-f", "selftest.kinds/*", "-x", "*/shared_*"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0
    ids = [l.split()[0] for l in p.stdout.splitlines()]
    assert ids == ["selftest.kinds/private_anon", "selftest.kinds/private_file"]


def test_json_write_is_atomic_and_errors_are_reported(tmp_path):
    target = tmp_path / "no-such-dir" / "r.json"
    p = subprocess.run([str(SELFTEST), "-q", "-f", "selftest.pass", "--json", str(target)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and p.stdout == ""  # refused before any probe runs
    assert "cannot write" in p.stderr and str(target) in p.stderr
    assert not target.parent.exists()
    good = tmp_path / "r.json"
    subprocess.run([str(SELFTEST), "-q", "-f", "selftest.pass", "--json", str(good)], check=True, timeout=30)
    assert [f.name for f in tmp_path.iterdir() if f.is_file()] == ["r.json"]


def test_interrupt_kills_probes_and_keeps_finished_results(tmp_path):
    import signal
    probe_tmp = tmp_path / "probe-tmp"
    probe_tmp.mkdir()
    out = tmp_path / "r.json"
    p = subprocess.Popen([str(SELFTEST), "-j", "2", "--timeout", "60", "--json", str(out),
                          "-f", "selftest.hang", "-f", "selftest.pass", "-f", "selftest.kinds/*"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, TMPDIR=str(probe_tmp)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(probe_tmp.iterdir()):
        time.sleep(0.05)
    time.sleep(1.0)  # the quick probes finish; the hang keeps running
    p.send_signal(signal.SIGINT)
    stdout, stderr = p.communicate(timeout=30)
    assert p.returncode == 130
    assert "interrupted by signal 2" in stderr
    data = json.loads(out.read_text())
    assert data["interrupted"] is True
    results = by_id(data)
    assert results["selftest.hang"]["status"] == "error"
    assert "interrupted by signal 2 while running" in results["selftest.hang"]["reason"]
    assert results["selftest.pass"]["status"] == "pass"
    assert list(probe_tmp.iterdir()) == []
    left = subprocess.run(["pgrep", "-f", "run-one selftest.hang"], capture_output=True, text=True).stdout
    assert left.strip() == ""


# ---- isolation that stays inside its launcher, and the verdict taxonomy on a fake VM layer ----

TOOLS = BUILD / "testtools"
needs_tools = pytest.mark.skipif(not (TOOLS / "nofollow").exists(), reason="build/testtools not built (run make check)")


def run_conform(tmp_path, *args, env=None):
    out = tmp_path / "c.json"
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(CONFORM), "-j", "2", "--json", str(out), *args], capture_output=True, text=True,
                       timeout=300, env=e)
    return p, json.loads(out.read_text())


def test_a_child_that_exits_before_the_handshake_makes_the_run_fork(tmp_path):
    # What qemu-user without binfmt_misc does: the spawn succeeds, the exec inside it fails with 127.
    launcher = tmp_path / "dies"
    launcher.write_text("#!/bin/sh\nexit 127\n")
    launcher.chmod(0o755)
    p, data = run_selftest(tmp_path, "-j", "2", "-f", "selftest.pass", "-f", "selftest.segfault", "-f", "selftest.skip",
                           env={"PAGELAB_CONFORM_SELF": str(launcher)})
    assert data["isolation"] == "fork"
    assert "ended with status 127 before starting its probe" in data["isolation_note"]
    results = by_id(data)
    assert results["selftest.pass"]["status"] == "pass"
    assert results["selftest.segfault"]["status"] == "fail"
    assert results["selftest.skip"]["status"] == "skip"
    assert not any(r.get("class") == "harness" for r in data["results"])


def test_forced_exec_reports_the_missing_handshake_instead_of_hiding_it(tmp_path):
    launcher = tmp_path / "dies"
    launcher.write_text("#!/bin/sh\nexit 127\n")
    launcher.chmod(0o755)
    p, data = run_selftest(tmp_path, "--isolate=exec", "-f", "selftest.pass", env={"PAGELAB_CONFORM_SELF": str(launcher)})
    r = by_id(data)["selftest.pass"]
    assert r["status"] == "error" and r["class"] == "harness"
    assert "status 127" in r["reason"]
    assert "before starting its probe" in data["isolation_note"] and "kept as asked" in data["isolation_note"]


@needs_tools
def test_a_launcher_that_does_not_follow_children_is_not_escaped(tmp_path):
    # Under a ptrace launcher that does not trace children, a re-executed probe would run outside it.
    out = tmp_path / "c.json"
    p = subprocess.run([str(TOOLS / "nofollow"), str(CONFORM), "-f", "mmap.anon.*", "--json", str(out)],
                       capture_output=True, text=True, timeout=300)
    data = json.loads(out.read_text())
    assert data["isolation"] == "fork", data.get("isolation_note")
    note = data["isolation_note"]
    assert "runs in another world" in note and "traced yes" in note and "traced no" in note
    assert p.returncode == 0 and all(r["status"] == "pass" for r in data["results"] if r["id"].startswith("mmap."))
    assert all(r["status"] in ("pass", "skip") for r in data["results"])


@needs_tools
def test_a_refusal_like_an_unknown_advice_is_unsupported(tmp_path):
    p, data = run_conform(tmp_path, "-f", "madvise.cold.*",
                          env={"LD_PRELOAD": str(TOOLS / "libfakevm.so"), "FAKEVM_REFUSE_ADVICE": "20"})
    cold = [r for r in data["results"] if r["id"].startswith("madvise.cold.")]
    # Kinds this machine cannot map (hugetlb pages not reserved) skip before any advice.
    refused = [r for r in cold if r["class"] != "prerequisite"]
    assert len(refused) >= 5 and all(r["status"] == "skip" for r in cold)
    for r in refused:
        assert r["class"] == "unsupported", r
    # The feature probe holds the evidence; every probe of the advice skips with it, never started.
    feature = by_id(data)["feature.madv_cold"]
    assert feature["status"] == "skip" and feature["class"] == "unsupported"
    assert feature["observed"]["answer"] == "EINVAL" and feature["observed"]["answer_to_unknown_advice"] == "EINVAL"
    assert data["features"]["madv_cold"]["present"] is False
    assert sum(r.get("feature") == "madv_cold" for r in refused) >= 5


@needs_tools
def test_a_lying_channel_makes_its_users_unobservable(tmp_path):
    p, data = run_conform(tmp_path, "-f", "madvise.dontneed.rss_after*",
                          env={"LD_PRELOAD": str(TOOLS / "libfakevm.so"), "FAKEVM_MINCORE_LIES": "1"})
    results = by_id(data)
    assert results["channel.residency.matches_touch"]["status"] == "fail"
    assert data["channels"]["residency"]["trusted"] is False
    for pid, r in results.items():
        if pid.startswith("madvise.dontneed.rss_after/"):
            assert r["status"] == "skip" and r["class"] == "unobservable" and r["channel"] == "residency", r
    assert data["channels"]["rss"]["trusted"] is True


@needs_tools
def test_a_claim_not_honoured_is_a_finding_and_the_emulation_takes_over(tmp_path):
    # MADV_GUARD_INSTALL (102) answered with success and ignored, as qemu-user does.
    p, data = run_conform(tmp_path, "-f", "pagelayer.caps.*", "-f", "pagelayer.guard.*", "-f", "refalloc.guard*",
                          env={"LD_PRELOAD": str(TOOLS / "libfakevm.so"), "FAKEVM_IGNORE_ADVICE": "102"})
    results = by_id(data)
    honoured = results["pagelayer.caps.claims_honoured"]
    assert honoured["status"] == "fail" and "MADV_GUARD_INSTALL" in honoured["reason"]
    assert data["capabilities"]["guard"]["verified"] == "not_honoured"
    assert data["capabilities"]["guard"]["via"] == "mprotect(PROT_NONE)"
    assert results["pagelayer.guard.faults_unguard_zero"]["status"] == "pass"
    assert results["refalloc.guard_after_large_object"]["status"] == "pass"


@needs_tools
def test_zero_page_by_frame_number_where_pagemap_scan_is_missing(tmp_path):
    # Before Linux 6.7 (and on s390, whose zero pages come in colours) the page layer compares frame numbers.
    if os.geteuid() != 0:
        pytest.skip("frame numbers in /proc/self/pagemap need CAP_SYS_ADMIN")
    p, data = run_conform(tmp_path, "-f", "zero_page.read_fault.maps_zero_page/private_anon",
                          env={"LD_PRELOAD": str(TOOLS / "libfakevm.so"), "FAKEVM_NO_PAGEMAP_SCAN": "1"})
    assert data["capabilities"]["zero_page"]["via"] == "/proc/self/pagemap PFN"
    r = by_id(data)["zero_page.read_fault.maps_zero_page/private_anon"]
    assert r["status"] == "pass" and r["observed"]["zero_page"] == "yes", r
