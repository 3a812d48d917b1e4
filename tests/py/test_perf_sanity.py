"""Sanity relations of the fault, madvise and pattern benchmarks: that the
counters they report say the kernel did the work the benchmark claims to
measure (one fault per base page on first touch, none for a zero-page read
scan's RSS, a fault per page after MADV_DONTNEED but not after MADV_COLD),
and that the page state a benchmark starts from matters the way its name
says (the first MADV_FREE of fresh pages costs more than advising them
again). Relations, never absolute times."""
import json
import os
import subprocess

import pytest

MIB = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")  # the benchmarks run on this machine


def run_bench(build_dir, out, pattern):
    exe = os.path.join(build_dir, "pagelab-bench")
    if not os.access(exe, os.X_OK):
        pytest.skip("pagelab-bench not built")
    r = subprocess.run([exe, "--profile=quick", "--benchmark_filter=" + pattern,
                        "--benchmark_repetitions=1", "--benchmark_min_time=0.01",
                        "--benchmark_out=" + str(out), "--benchmark_out_format=json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        doc = json.load(f)
    return {b["name"]: b for b in doc["benchmarks"] if b.get("run_type") == "iteration"}


def ran(runs, name):
    assert name in runs, sorted(runs)
    b = runs[name]
    assert not b.get("error_occurred"), (name, b.get("error_message"))
    assert b["iterations"] >= 1
    return b


def skipped(b, expected):
    """Skip the test with the benchmark's reason when it was skipped for an expected one;
    any other error fails: a regression must not pass as a skip."""
    if not b.get("error_occurred"):
        return
    msg = b.get("error_message") or ""
    assert any(w in msg for w in expected), msg
    pytest.skip(msg)


def counter(b, name):
    """A counter the benchmark leaves out where the platform cannot measure it (RSS)."""
    if name not in b:
        pytest.skip("%s: no %s on this platform" % (b["name"], name))
    return b[name]


def faults_per_page(b):
    if "minor-faults" not in b:
        pytest.skip("no minor-faults counter on this machine")
    return b["minor-faults"] / b["pages"]


@pytest.fixture(scope="module")
def runs(build_dir, tmp_path_factory):
    pattern = (r"^fault/(write|read_zero|write_after_read|cow)/67108864$|^fault/thp/67108864$"
               r"|^madvise/(dontneed|cold|free)(_retouch|_again)?/2097152$"
               r"|^pattern/(anon_zero|memset|uffd)_(dense|sparse)/16777216$")
    return run_bench(build_dir, tmp_path_factory.mktemp("perf") / "perf.json", pattern)


def test_first_touch_write_faults_once_per_base_page(runs):
    b = ran(runs, "fault/write/67108864")
    assert b["pages"] == 64 * MIB // PAGE
    assert 0.9 <= faults_per_page(b) <= 1.1
    # The RSS measure sees written pages, so the zero-page test below can trust it.
    assert counter(b, "rss_growth_bytes") >= 0.9 * 64 * MIB


def test_zero_page_read_scan_does_not_raise_rss(runs):
    b = ran(runs, "fault/read_zero/67108864")
    # The reads did fault (the zero page was mapped) ...
    assert 0.9 <= faults_per_page(b) <= 1.1
    # ... yet the read and a second read-only scan left RSS where it was.
    assert counter(b, "rss_growth_bytes") < 0.05 * 64 * MIB


def test_write_after_read_faults_again_and_raises_rss(runs):
    b = ran(runs, "fault/write_after_read/67108864")
    assert 0.9 <= faults_per_page(b) <= 1.1
    assert counter(b, "rss_growth_bytes") >= 0.9 * 64 * MIB


def test_cow_child_faults_once_per_page(runs):
    b = ran(runs, "fault/cow/67108864")
    # The child's own faults come back through a pipe; a few extra for its stack.
    assert 0.9 <= b["child_minor_faults"] / b["pages"] <= 1.1
    if "minor-faults" in b:
        assert b["minor-faults"] / b["pages"] < 0.1  # the parent's counters stay out of it


def test_thp_faults_once_per_huge_page(runs):
    b = runs["fault/thp/67108864"]
    skipped(b, ("THP", "transparent huge pages"))
    huge = b["pages"] / b["huge_pages"]  # base pages per huge page
    assert b["huge_pages"] * huge * PAGE == 64 * MIB
    assert 0.9 <= faults_per_page(b) * huge <= 1.1
    assert b["thp_retries"] >= 0


def test_dontneed_retouch_faults_once_per_page(runs):
    b = ran(runs, "madvise/dontneed_retouch/2097152")
    assert 0.9 <= faults_per_page(b) <= 1.1


def test_cold_retouch_does_not_fault(runs):
    b = runs["madvise/cold_retouch/2097152"]
    skipped(b, ("MADV_COLD",))
    assert faults_per_page(b) < 0.1


@pytest.mark.parametrize("advice", ["dontneed", "cold", "free"])
def test_the_calls_themselves_do_not_fault(runs, advice):
    b = runs["madvise/%s/2097152" % advice]
    skipped(b, ("MADV_",))
    assert faults_per_page(b) < 0.1


def test_first_free_costs_more_than_free_again(runs):
    """The first MADV_FREE of fresh pages moves them to the lazy-free list; advising
    them again after a rewrite finds them there. A relation on one kernel, not a time."""
    first, again = runs["madvise/free/2097152"], runs["madvise/free_again/2097152"]
    skipped(first, ("MADV_FREE",))
    skipped(again, ("MADV_FREE",))
    assert first["real_time"] > again["real_time"], (first["real_time"], again["real_time"])


def pattern_run(runs, name):
    b = runs[name]
    if b.get("error_occurred"):
        assert "uffd" in name and b["error_message"], b.get("error_message")
        pytest.skip(b["error_message"])
    return b


@pytest.mark.parametrize("mode,dense,sparse", [
    ("anon_zero", (0, 0.05), (0, 0.05)),    # zero page: reads raise nothing
    ("memset", (0.9, 1.1), (0.9, 1.1)),     # everything written up front
    ("uffd", (0.9, 1.1), (0.04, 0.1)),      # only the pages read are filled (1/16)
])
def test_pattern_rss_follows_what_was_filled(runs, mode, dense, sparse):
    for kind, (lo, hi) in (("dense", dense), ("sparse", sparse)):
        b = pattern_run(runs, "pattern/%s_%s/16777216" % (mode, kind))
        frac = counter(b, "rss_bytes") / (16 * MIB)
        assert lo <= frac <= hi, (mode, kind, frac)
