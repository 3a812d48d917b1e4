"""The build variants the project promises: warning-free with gcc and clang,
a static musl build, a sanitizer build, and the plain-POSIX page layer.
Each variant is built from scratch and runs the conformance suite."""
import json
import os
import shutil
import subprocess

import pytest

BINARIES = ("pagelab-conform", "pagelab-bench", "pagelab-selftest")


def build(repo_root, build_dir, *args, targets=BINARIES):
    r = subprocess.run(["make", "-j2", "BUILD=%s" % build_dir, *args] + ["%s/%s" % (build_dir, t) for t in targets],
                       cwd=repo_root, capture_output=True, text=True, timeout=1200)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-3000:]
    return out


def conform(binary, tmp_path, *args):
    out = tmp_path / "c.json"
    r = subprocess.run([binary, "-q", "-j", "2", "--json", str(out), *args], capture_output=True, text=True,
                       timeout=900)
    doc = json.loads(out.read_text())
    bad = [(x["id"], x["status"], x["reason"]) for x in doc["results"] if x["status"] in ("fail", "error", "timeout")]
    assert r.returncode == 0 and not bad, bad[:10]
    return doc


def warnings(text):
    return [line for line in text.splitlines() if "warning:" in line]


@pytest.mark.parametrize("cc", ["gcc", "clang"])
def test_warning_free(repo_root, tmp_path, cc):
    if not shutil.which(cc):
        pytest.skip("%s is not installed" % cc)
    out = build(repo_root, tmp_path / cc, "CC=%s" % cc)
    assert warnings(out) == []
    conform(str(tmp_path / cc / "pagelab-conform"), tmp_path, "-f", "mmap.*")


def test_static_musl_build_runs_the_suite(repo_root, tmp_path):
    if not shutil.which("musl-gcc"):
        pytest.skip("musl-gcc is not installed (Debian: musl-tools)")
    b = tmp_path / "musl"
    out = build(repo_root, b, "CC=musl-gcc", "STATIC=1")
    assert warnings(out) == []
    file_out = subprocess.run(["file", str(b / "pagelab-conform")], capture_output=True, text=True).stdout \
        if shutil.which("file") else "statically linked"
    assert "statically linked" in file_out or "static-pie" in file_out
    doc = conform(str(b / "pagelab-conform"), tmp_path)
    assert doc["env"]["libc"].startswith("musl")
    assert doc["summary"]["pass"] >= 250
    r = subprocess.run([str(b / "pagelab-bench"), "--benchmark_filter=^harness/", "--benchmark_min_time=0.01"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-1000:]


def test_sanitizer_build_runs_the_suite(repo_root, tmp_path):
    b = tmp_path / "asan"
    build(repo_root, b, "SANITIZE=address,undefined", targets=("pagelab-conform",))
    env = dict(os.environ, UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    out = tmp_path / "a.json"
    r = subprocess.run([str(b / "pagelab-conform"), "-q", "-j", "2", "--json", str(out)], capture_output=True,
                       text=True, timeout=900, env=env)
    doc = json.loads(out.read_text())
    bad = [(x["id"], x["status"], x["reason"], x.get("output", "")[-300:]) for x in doc["results"]
           if x["status"] in ("fail", "error", "timeout")]
    assert r.returncode == 0 and not bad, bad[:5]
    assert not [x for x in doc["results"] if "runtime error" in x.get("output", "")]


def test_generic_posix_page_layer(repo_root, tmp_path):
    b = tmp_path / "generic"
    build(repo_root, b, "PLATFORM=generic")
    doc = conform(str(b / "pagelab-conform"), tmp_path)
    assert doc["env"]["platform"] == "generic"
    caps = doc["capabilities"]
    assert caps["release_zero"] == {"impl": "emulated", "via": "mmap(MAP_FIXED)", "verified": "not_checked",
                                    "how": "POSIX promises no zeroing madvise: map fresh memory over the range"}
    assert caps["zero_page"]["impl"] == "unavailable"
    # What a new OS gets: the page-layer contract probes still pass through the fallbacks.
    by_id = {x["id"]: x for x in doc["results"]}
    assert by_id["pagelayer.release_zero.reads_zero/private_anon"]["status"] == "pass"
    assert by_id["pagelayer.release_zero.reads_zero/private_anon"]["measured"]["implementation"] == "emulated: mmap(MAP_FIXED)"


@pytest.mark.parametrize("os_name", ["freebsd", "darwin"])
def test_a_system_without_its_own_page_layer_builds_the_generic_one(repo_root, tmp_path, os_name):
    """FreeBSD and macOS have no lib/platform file yet: the build says so and takes the generic POSIX layer."""
    r = subprocess.run(["make", "-n", "BUILD=%s" % (tmp_path / os_name), "PLATFORM=%s" % os_name,
                        "%s/%s/pagelab-conform" % (tmp_path, os_name)],
                       cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-2000:]
    assert "no page layer of its own for '%s'" % os_name in r.stdout + r.stderr
    assert "lib/platform/generic.c" in r.stdout and "lib/platform/linux.c" not in r.stdout
    assert "lib/os/self_generic.c" in r.stdout and "abi/generic" in r.stdout
