"""Sanity relations of the fork and tlb benchmarks: what their counters say
about the kernel's work (copy-on-write armed per page, resident memory,
shootdown interrupts) and that they skip, with a reason, where cores are
missing; and that refalloc's release policies keep or return memory.
Relations between counters, not absolute times."""
import json
import os
import subprocess

import pytest

MIB = 1 << 20


def run_bench(build_dir, out, pattern, profile="quick", min_time="0.01"):
    exe = os.path.join(build_dir, "pagelab-bench")
    if not os.access(exe, os.X_OK):
        pytest.skip("pagelab-bench not built")
    r = subprocess.run([exe, "--profile=" + profile, "--benchmark_filter=" + pattern,
                        "--benchmark_repetitions=1", "--benchmark_min_time=" + min_time,
                        "--benchmark_out=" + str(out), "--benchmark_out_format=json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    with open(out) as f:
        doc = json.load(f)
    return {b["name"]: b for b in doc["benchmarks"] if b.get("run_type") == "iteration"}


def ran(b):
    assert not b.get("error_occurred"), (b["name"], b.get("error_message"))
    assert b["iterations"] >= 1
    return b


@pytest.fixture(scope="module")
def fork_runs(build_dir, tmp_path_factory):
    pattern = r"^fork/(clean|dirty|thp)/(0|67108864)$|^fork/(vfork_exec|posix_spawn)$"
    return run_bench(build_dir, tmp_path_factory.mktemp("fork") / "fork.json", pattern)


@pytest.fixture(scope="module")
def tlb_runs(build_dir, tmp_path_factory):
    # The full profile asks for 0, 1, 2, 3, 7 and 15 other threads or processes; 2000 iterations each.
    pattern = r"^tlb/munmap_(threads|procs)/[0-9]+$|^tlb/reaccess_warm/1$"
    return run_bench(build_dir, tmp_path_factory.mktemp("tlb") / "tlb.json", pattern, profile="full",
                     min_time="2000x")


def test_fork_write_protects_every_written_page(fork_runs):
    # After fork the parent's first write to each private page faults (copy-on-write armed): 1 per page.
    b = ran(fork_runs["fork/dirty/67108864"])
    assert b["pages"] > 0
    assert 0.9 <= b["rewrite_faults_per_page"] <= 1.1


def test_fork_of_thp_memory_faults_once_per_huge_page(fork_runs):
    b = fork_runs["fork/thp/67108864"]
    if b.get("error_occurred"):
        # A skip for a THP reason is reported as a skip; any other error fails.
        assert b["error_message"].startswith("THP"), b["error_message"]
        pytest.skip(b["error_message"])
    # One write fault per huge page, i.e. 1/512 per page with 4 KiB pages; far below one per page.
    assert 0 < b["rewrite_faults_per_page"] < 0.05


def test_dirty_memory_is_resident_and_clean_memory_is_not(fork_runs):
    dirty = ran(fork_runs["fork/dirty/67108864"])["rss_bytes"] - ran(fork_runs["fork/dirty/0"])["rss_bytes"]
    clean = ran(fork_runs["fork/clean/67108864"])["rss_bytes"] - ran(fork_runs["fork/clean/0"])["rss_bytes"]
    assert dirty >= 0.9 * 64 * MIB
    # Read-only access maps the shared zero page, which RSS does not count.
    assert clean < 8 * MIB


def test_fork_kernel_work_grows_with_dirty_memory(fork_runs):
    # CPU time (fork's page-table copy is kernel time on this thread), loosely: 16384 PTEs vs none.
    assert ran(fork_runs["fork/dirty/67108864"])["cpu_time"] > 1.5 * ran(fork_runs["fork/dirty/0"])["cpu_time"]


def test_spawn_baselines_run(fork_runs):
    for name in ("fork/vfork_exec", "fork/posix_spawn"):
        b = fork_runs[name]
        if b.get("error_occurred"):
            assert "/bin/true" in b["error_message"] or "posix_spawn" in b["error_message"]
        else:
            ran(b)


def usable_cpus():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def test_tlb_skips_thread_counts_beyond_the_cores(tlb_runs):
    cpus = usable_cpus()
    names = [n for n in tlb_runs if n.startswith("tlb/munmap_")]
    assert len(names) == 12
    for name in names:
        b = tlb_runs[name]
        others = int(name.rsplit("/", 1)[1])
        if others > cpus - 1:
            # Cores are at most the CPUs this process may use: more others than that cannot be placed.
            assert b.get("error_occurred"), name
            assert "other core" in b["error_message"], b["error_message"]
        elif b.get("error_occurred"):
            assert "core" in b["error_message"], b["error_message"]
        else:
            assert b["others"] == others


def test_tlb_victim_skips_without_a_second_core(tlb_runs):
    b = tlb_runs["tlb/reaccess_warm/1"]
    if usable_cpus() < 2:
        assert b.get("error_occurred") and "core" in b["error_message"]
    elif b.get("error_occurred"):
        assert "core" in b["error_message"], b["error_message"]
    else:
        assert b["pages"] == 1


def test_tlb_threads_get_shootdowns_and_processes_do_not(tlb_runs):
    threads, procs = tlb_runs["tlb/munmap_threads/1"], tlb_runs["tlb/munmap_procs/1"]
    if threads.get("error_occurred") or procs.get("error_occurred"):
        pytest.skip("no second core to run on: " + (threads.get("error_message") or procs["error_message"]))
    if "tlb_irqs_per_iter" not in threads:
        pytest.skip("this system does not count TLB shootdown interrupts")
    # A thread sharing the mm must be interrupted; a process with its own mm never is.
    assert threads["tlb_irqs_per_iter"] > procs["tlb_irqs_per_iter"]
    assert ran(tlb_runs["tlb/munmap_threads/0"])["tlb_irqs_per_iter"] < threads["tlb_irqs_per_iter"]


@pytest.fixture(scope="module")
def refalloc_runs(build_dir, tmp_path_factory):
    pattern = r"^refalloc/(none|release_zero|decommit)/262144$"
    return run_bench(build_dir, tmp_path_factory.mktemp("refalloc") / "ra.json", pattern)


def test_refalloc_policies_keep_or_return_memory(refalloc_runs):
    # One batch writes 64 blocks of 256 KiB (16 MiB) and frees them all.
    none = ran(refalloc_runs["refalloc/none/262144"])
    pages = none["ops"] * 262144 // os.sysconf("SC_PAGE_SIZE")
    assert none["release_calls_per_iter"] == 0
    assert none["child_faults_per_iter"] < 0.05 * pages  # kept memory is written again without faults
    assert none["rss_growth_bytes"] >= 8 * MIB
    for name in ("refalloc/release_zero/262144", "refalloc/decommit/262144"):
        b = ran(refalloc_runs[name])
        assert b["release_calls_per_iter"] > 0
        assert b["released_bytes_per_iter"] >= 8 * MIB
        assert b["child_faults_per_iter"] >= 0.9 * pages  # every returned page faults when written again
        assert b["rss_growth_bytes"] < none["rss_growth_bytes"] / 2
