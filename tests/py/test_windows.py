"""The Windows family under Wine: the build (make TARGET=windows), the conformance suite end
to end, the runner's isolation on Windows (job objects, pipes, exceptions), the benchmark
harness's Windows back-end, and the wine target beside this machine in one comparison.
What the Windows probes observe under Wine is reported, not asserted: where Wine differs
from Windows is a finding. What is asserted is that the suite ran soundly there, that the
page layer keeps its own contract (refalloc's probes pass on it), and that fork and brk
probes exist and skip with their reason."""
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time

import pytest

from pagelab_host.targets import wine
from test_conform_harness import EXPECTED

pytestmark = pytest.mark.skipif(not shutil.which("wine") or not shutil.which("x86_64-w64-mingw32-gcc"),
                                reason="needs wine (Debian: wine wine64) and gcc-mingw-w64-x86-64")

WIN32_AREAS = ("virtualalloc", "virtualfree", "virtualprotect", "discardvirtualmemory", "offervirtualmemory",
               "mapviewoffile", "queryworkingsetex", "virtualunlock", "virtuallock", "virtualalloc2",
               "prefetchvirtualmemory", "getprocessmemoryinfo")
# Wine does not enforce a job's memory limit: the memory-eating probe runs under this cap.
ADDRESS_SPACE_CAP = 2 << 30


@pytest.fixture(scope="module")
def win_build(repo_root, build_dir):
    """The Windows build where the wine target keeps it, so that its own make finds it done."""
    b = os.path.join(build_dir, "targets", "windows")
    names = ["pagelab-conform.exe", "pagelab-bench.exe", "pagelab-selftest.exe"]
    r = subprocess.run(["make", "-j2", "BUILD=%s" % b, "TARGET=windows"] + [os.path.join(b, n) for n in names],
                       cwd=repo_root, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert [ln for ln in (r.stdout + r.stderr).splitlines() if "warning:" in ln] == []
    return b


@pytest.fixture(scope="module")
def wine_cmd():
    return wine.launcher(wine.ensure_prefix(lambda msg: None, 300))


def run_wine(wine_cmd, args, timeout=600, cap=None):
    def limit():
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return subprocess.run(wine_cmd + args, capture_output=True, text=True, timeout=timeout, preexec_fn=limit)


@pytest.fixture(scope="module")
def conformance(win_build, wine_cmd, tmp_path_factory):
    out = tmp_path_factory.mktemp("wine-conform") / "c.json"
    t0 = time.monotonic()
    r = run_wine(wine_cmd, [os.path.join(win_build, "pagelab-conform.exe"), "-q", "-j", "2", "--json", str(out)])
    assert r.returncode in (0, 1), r.stderr[-2000:]
    doc = json.loads(out.read_text())
    doc["_seconds"] = time.monotonic() - t0
    return doc


def by_id(doc):
    return {r["id"]: r for r in doc["results"]}


def test_conformance_runs_soundly_under_wine(conformance):
    assert conformance["schema"] == "pagelab.conformance/2"
    assert conformance["isolation"] == "exec" and "isolation_note" not in conformance
    broken = [(r["id"], r["status"], r["reason"]) for r in conformance["results"] if r["status"] in ("error", "timeout")]
    assert broken == []
    env = conformance["env"]
    assert env["platform"] == "windows" and env["os"] == "Windows"
    assert env["windows_implementation"] == "wine" and env["wine_version"]
    assert re.match(r"\d+\.\d+\.\d+$", env["kernel"])
    assert env["allocation_granularity"] == 65536 and conformance["partial_unmap"] is False
    assert all(r.get("description") for r in conformance["results"])


def test_every_windows_area_reports(conformance):
    areas = {r["id"].split(".")[0] for r in conformance["results"]}
    assert set(WIN32_AREAS) <= areas
    for r in conformance["results"]:
        if r["id"].split(".")[0] in WIN32_AREAS and r["status"] != "pass":
            assert r["reason"], r
            assert r.get("class") in ("not_honoured", "refused", "unsupported", "unobservable", "prerequisite"), r


def test_fork_and_brk_probes_exist_and_skip_with_their_reason(conformance, build_dir):
    listing = subprocess.run([os.path.join(build_dir, "pagelab-conform"), "-l", "-f", "fork_cow.*", "-f", "brk.*"],
                             capture_output=True, text=True, timeout=60).stdout
    native = {ln.split()[0] for ln in listing.splitlines() if ln.strip()}
    results = by_id(conformance)
    assert native and native <= set(results)
    for pid in native:
        r = results[pid]
        assert r["status"] == "skip" and r["reason"], r
        if pid.startswith("fork_cow.") and not pid.endswith(("/thp", "/mthp")) and "hugetlb" not in pid:
            assert r["class"] == "unsupported" and "Windows has no fork" in r["reason"], r


def test_refalloc_contract_holds_on_the_windows_page_layer(conformance):
    refalloc = [r for r in conformance["results"] if r["id"].startswith("refalloc.")]
    assert len(refalloc) >= 18
    for r in refalloc:
        if r["id"] in ("refalloc.fork_child_allocates", "refalloc.pattern_init/refpage"):
            assert r["status"] == "skip" and r["class"] == "unsupported", r
        else:
            assert r["status"] == "pass", r


def test_page_layer_probes_name_the_windows_primitives(conformance):
    r = by_id(conformance)
    assert "VirtualAlloc(MEM_RESET)" in r["pagelayer.release.old_or_zero/private_anon"]["measured"]["implementation"]
    assert "MEM_DECOMMIT" in r["pagelayer.release_zero.reads_zero/private_anon"]["measured"]["implementation"]
    assert "PAGE_NOACCESS" in r["pagelayer.guard.faults_unguard_zero"]["measured"]["implementation"]
    failed = [(x["id"], x["reason"]) for x in conformance["results"] if x["id"].startswith("pagelayer.")
              and x["status"] not in ("pass", "skip")]
    assert failed == []
    caps = conformance["capabilities"]
    assert caps["unmap"]["via"] == "VirtualFree(MEM_RELEASE)"
    assert caps["reusable"]["via"] in ("OfferVirtualMemory(VmOfferPriorityVeryLow)", "VirtualAlloc(MEM_RESET)")


# The POSIX outcomes, but for what a Windows process does instead of dying of a signal.
def program_key(path):
    """The key the Windows page layer gives its start-up checks: the program's Windows path (Wine's Z:
    drive), its size and last-write FILETIME (100 ns since 1601), as lib/platform/windows_check.c makes it."""
    st = os.stat(path)
    filetime = st.st_mtime_ns // 100 + 116444736000000000
    return "Z:%s|%d|%d|%d" % (path.replace("/", "\\"), st.st_size & 0xffffffff, filetime & 0xffffffff, filetime >> 32)


def test_a_check_that_crashed_its_copy_is_reported_and_not_used(win_build, wine_cmd, tmp_path):
    """The checking copy began the Offer/Reclaim check and never reported it (an export that faults inside):
    the process that reads those results must report the claim as not honoured and emulate reusable."""
    exe = os.path.join(win_build, "pagelab-conform.exe")
    results = "\n".join(["mem_reset works x", "decommit works x", "begin offer", "ended exception 0xC0000005 (access violation)"])
    out = tmp_path / "k.json"
    cmd = wine_cmd[:-1] + ["PAGELAB_PAGE_LAYER_CHECKS=%s\n%s\n" % (program_key(exe), results), wine_cmd[-1]]
    subprocess.run(cmd + [exe, "-q", "-f", "pagelayer.caps.claims_honoured", "-f", "reusable.contents_after_reuse/private_anon",
                          "--json", str(out)], capture_output=True, text=True, timeout=120)
    doc = json.loads(out.read_text())
    reusable = doc["capabilities"]["reusable"]
    assert reusable["impl"] == "emulated" and reusable["verified"] == "not_honoured", reusable
    assert "crashed the checking copy" in reusable["claimed"] and "0xC0000005" in reusable["claimed"]
    results = by_id(doc)
    claims = results["pagelayer.caps.claims_honoured"]
    assert claims["status"] == "fail" and "reusable: crashed the checking copy" in claims["reason"], claims
    assert results["reusable.contents_after_reuse/private_anon"]["status"] == "pass"


SELFTEST_EXPECTED = dict(EXPECTED, **{
    "selftest.segfault": ("fail", "exception 0xC0000005 (access violation)"),
    "selftest.abort": ("error", "exited with status 3"),  # abort() in the Windows C runtime: exit status 3
})
del SELFTEST_EXPECTED["selftest.oom"]  # its own test: Wine does not enforce the limit


def test_runner_isolates_on_windows(win_build, wine_cmd, tmp_path):
    out = tmp_path / "s.json"
    t0 = time.monotonic()
    r = run_wine(wine_cmd, [os.path.join(win_build, "pagelab-selftest.exe"), "-j", "2", "--timeout", "2",
                            "-x", "selftest.oom", "--json", str(out)], timeout=180)
    elapsed = time.monotonic() - t0
    assert r.returncode == 1, r.stderr[-2000:]
    results = by_id(json.loads(out.read_text()))
    for pid, (status, reason) in SELFTEST_EXPECTED.items():
        assert results[pid]["status"] == status and reason in results[pid]["reason"], (pid, results[pid])
    assert results["selftest.segfault"]["class"] == "crashed"
    assert results["selftest.segfault"]["observed"] == {"before_crash": "yes"}
    kinds = [x for x in results if x.startswith("selftest.kinds/")]
    assert len(kinds) == 5 and all(results[k]["status"] == "pass" for k in kinds)
    # The job object killed the child the probe left behind, and nothing waited for it.
    left = subprocess.run(["pgrep", "-f", "selftest-sleeper"], capture_output=True, text=True).stdout
    assert left.strip() == "" and results["selftest.leave_child"]["duration_ms"] < 3000
    assert elapsed < 60


def test_failed_reexecution_stays_exec_without_fork(win_build, wine_cmd, tmp_path):
    """Where re-executing fails, POSIX falls back to fork; Windows has none: the probe is an error that
    says why, the run stays isolated by exec, and the note says so."""
    out = tmp_path / "x.json"
    env_cmd = wine_cmd[:-1] + ["PAGELAB_CONFORM_SELF=Z:\\nowhere\\missing.exe", wine_cmd[-1]]
    r = subprocess.run(env_cmd + [os.path.join(win_build, "pagelab-selftest.exe"), "-f", "selftest.pass", "--json",
                                  str(out)], capture_output=True, text=True, timeout=120)
    doc = json.loads(out.read_text())
    assert r.returncode == 1 and doc["isolation"] == "exec" and "has no fork" in doc["isolation_note"]
    result = by_id(doc)["selftest.pass"]
    assert result["status"] == "error" and "cannot start the probe" in result["reason"]


def test_memory_limit_is_checked_and_exhaustion_is_a_crash(win_build, wine_cmd, tmp_path):
    out = tmp_path / "o.json"
    r = run_wine(wine_cmd, [os.path.join(win_build, "pagelab-selftest.exe"), "-f", "selftest.oom", "--timeout", "60",
                            "--mem-limit", "256", "--json", str(out)], timeout=180, cap=ADDRESS_SPACE_CAP)
    oom = by_id(json.loads(out.read_text()))["selftest.oom"]
    assert r.returncode == 1 and oom["status"] == "fail" and oom["class"] == "crashed", oom
    assert "exception 0xC0000005" in oom["reason"]
    allocated = int(oom["observed"]["allocated_mib"])
    # A job's commit limit either holds (Windows) or is found not to hold and said so (Wine).
    assert allocated < 256 or "cannot limit memory: ENOTSUP" in oom["output"], oom


FILTERS = ["^pagelayer/", "release", "^(pagelayer/release/4096|zero/memset/2097152)$", "memset_(cold|dense)",
           "[0-9]{7}$", "/(4096|65536)$", "pattern/(anon|memset)_[a-z]+/", "^harness/(clock|empty)$", "e.p?t",
           "z+ero/memset_cold", "[^/]+/[a-f]+/"]


def bench_names(wine_cmd, win_build, *args):
    r = run_wine(wine_cmd, [os.path.join(win_build, "pagelab-bench.exe"), "--benchmark_list_tests=true",
                            "--profile=full", *args], timeout=120)
    return r, [ln.split()[0] for ln in r.stdout.splitlines() if ln.strip()]


def test_benchmark_filter_matches_posix_extended_regex(win_build, wine_cmd):
    _, everything = bench_names(wine_cmd, win_build)
    assert len(everything) > 20
    for pattern in FILTERS:
        r, got = bench_names(wine_cmd, win_build, "--benchmark_filter=%s" % pattern)
        assert r.returncode == 0, (pattern, r.stderr)
        assert got == [n for n in everything if re.search(pattern, n)], pattern
    _, got = bench_names(wine_cmd, win_build, "--benchmark_filter=-pagelayer")
    assert got == [n for n in everything if "pagelayer" not in n]
    r, _ = bench_names(wine_cmd, win_build, "--benchmark_filter=(unclosed")
    assert r.returncode == 2 and "bad --benchmark_filter regex" in r.stderr


def test_benchmarks_run_with_windows_clock_and_counters(win_build, wine_cmd, tmp_path):
    out = tmp_path / "p.json"
    r = run_wine(wine_cmd, [os.path.join(win_build, "pagelab-bench.exe"), "--profile=quick",
                            "--benchmark_filter=^pagelayer/(release|first_touch)/4096$", "--benchmark_out=%s" % out],
                 timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(out.read_text())
    ctx = doc["context"]
    assert "GetProcessMemoryInfo" in ctx["counter_source"] and "working-set-bytes" in ctx["counters"]
    runs = [b for b in doc["benchmarks"] if b.get("run_type") == "iteration"]
    assert {b["run_name"] for b in runs} == {"pagelayer/release/4096", "pagelayer/first_touch/4096"}
    assert all(b["real_time"] > 0 and not b.get("error_occurred") for b in runs)
    assert all("MEM_RESET" in b["label"] for b in runs if b["run_name"].startswith("pagelayer/release/"))


def test_wine_target_beside_this_machine(repo_root, build_dir, win_build, tmp_path, python_exe):
    r = subprocess.run([python_exe, os.path.join(repo_root, "runners", "pagelab"), "run", "--build", build_dir,
                        "--target", "local", "--target", "wine", "--no-perf", "--probes", "pagelayer.release*",
                        "--probes", "reusable.*", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=900, cwd=repo_root)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    runs = sorted(p for p in os.listdir(tmp_path) if not p.startswith("compare-"))
    wine_run = [p for p in runs if p.endswith("-wine")][0]
    env = json.loads((tmp_path / wine_run / "env.json").read_text())
    assert env["windows_implementation"] == "wine" and env["windows_version"].startswith("Microsoft Windows")
    manifest = json.loads((tmp_path / wine_run / "manifest.json").read_text())
    assert manifest["complete"] and manifest["wine"]["windows_version"] == env["windows_version"]
    report = [p for p in os.listdir(tmp_path) if p.startswith("compare-")][0]
    rows = [ln for ln in (tmp_path / report / "report.md").read_text().splitlines()
            if ln.startswith("| ▶ pagelayer.release.old_or_zero/private_anon ")]
    assert rows and "madvise(MADV_FREE)" in rows[0] and "VirtualAlloc(MEM_RESET)" in rows[0]
