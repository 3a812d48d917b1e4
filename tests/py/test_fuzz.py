"""pagelab-fuzz: no finding on this host (a finding here is a model bug until shown otherwise); on a fake VM
layer (tests/tools/fakevm.c) that drops an advice's effect, the shrinker reaches the known minimal sequence
exactly, the replay file and the standalone C program reproduce it, and an advice the system refuses the
way it refuses an unknown one is never generated."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("PAGELAB_BUILD", ROOT / "build"))
FUZZ = BUILD / "pagelab-fuzz"
FAKEVM = BUILD / "testtools" / "libfakevm.so"

pytestmark = pytest.mark.skipif(not FUZZ.exists(), reason="build/pagelab-fuzz not built (run make; Linux only)")
needs_fakevm = pytest.mark.skipif(not FAKEVM.exists(), reason="build/testtools not built (run make check)")

# Each fake deviation and the smallest sequence that shows it: nothing shorter fails, no field is simpler.
MINIMAL = {
    "dontneed without effect": ({"FAKEVM_NOOP_ADVICE": "4"}, "madvise dontneed: contents",
                                ["mmap anon-private 0 1 rw fixed", "write 0 0 0x01", "madvise 0 1 dontneed"]),
    "dontneed accepted anywhere": ({"FAKEVM_IGNORE_ADVICE": "4"}, "madvise: errno success where the contract "
                                   "wants ENOMEM", ["madvise 0 1 dontneed"]),
    "dontfork without effect": ({"FAKEVM_NOOP_ADVICE": "10"}, "fork: child-fault",
                                ["mmap anon-private 0 1 rw fixed", "madvise 0 1 dontfork", "fork 0 0 0x01"]),
}


def fuzz(tmp_path, *args, env=None, timeout=300):
    """Run pagelab-fuzz with --json: (process, the JSON document)."""
    out = tmp_path / "fuzz.json"
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([str(FUZZ), "--json", str(out), *args], capture_output=True, text=True, timeout=timeout,
                       env=e)
    assert out.exists(), p.stderr
    return p, json.loads(out.read_text())


def fake(env):
    return dict(env, LD_PRELOAD=str(FAKEVM))


def test_no_finding_on_this_host_in_30_seconds(tmp_path):
    p, doc = fuzz(tmp_path, "--duration", "30", "--seed", "19")
    assert doc["findings"] == [], json.dumps(doc["findings"], indent=1)[:4000]
    assert p.returncode == 0 and doc["sequences"] > 1000 and doc["mode"] == "random"


def test_bounded_exhaustive_depth_2_finds_nothing_on_this_host(tmp_path):
    p, doc = fuzz(tmp_path, "--exhaustive", "2")
    assert p.returncode == 0 and doc["findings"] == [] and doc["mode"] == "exhaustive"
    assert doc["sequences"] > 300


def test_every_line_on_stdout_is_json_with_a_start_and_a_summary(tmp_path):
    p, doc = fuzz(tmp_path, "--count", "50")
    events = [json.loads(line)["event"] for line in p.stdout.splitlines()]
    assert events == ["start", "summary"] and doc["sequences"] == 50


@needs_fakevm
@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_shrinks_to_the_known_minimal_sequence(tmp_path, name):
    env, signature, minimal = MINIMAL[name]
    p, doc = fuzz(tmp_path, "--count", "2000", "--seed", "5", "--max-findings", "1", env=fake(env))
    assert p.returncode == 1, p.stderr
    [f] = doc["findings"]
    assert (f["signature"], f["minimal"]) == (signature, minimal)
    assert f["original_length"] > len(minimal) and f["failing_step"] == len(minimal)


@needs_fakevm
def test_same_seed_same_sequences(tmp_path):
    env = fake(MINIMAL["dontneed without effect"][0])
    runs = [fuzz(tmp_path, "--count", "3000", "--seed", "77", "--no-shrink", "--max-findings", "1", env=env)[1]["findings"]
            for _ in range(2)]
    assert runs[0] and runs[0] == runs[1]
    other = fuzz(tmp_path, "--count", "3000", "--seed", "78", "--no-shrink", "--max-findings", "1", env=env)[1]["findings"]
    assert [f["found_at"] for f in other] != [f["found_at"] for f in runs[0]]


@needs_fakevm
def test_replay_file_fails_on_the_fake_and_passes_here(tmp_path):
    env, signature, minimal = MINIMAL["dontfork without effect"]
    replay = tmp_path / "f.replay"
    replay.write_text("# a comment\n" + "\n".join(minimal) + "\n")
    p, doc = fuzz(tmp_path, "--replay", str(replay), env=fake(env))
    assert p.returncode == 1 and [f["signature"] for f in doc["findings"]] == [signature]
    assert doc["findings"][0]["replay"].splitlines()[2:] == minimal
    p, doc = fuzz(tmp_path, "--replay", str(replay))
    assert p.returncode == 0 and doc["findings"] == []


def test_replay_refuses_a_sequence_the_model_cannot_judge(tmp_path):
    replay = tmp_path / "bad.replay"
    replay.write_text("mmap anon-private 0 2 rw fixed\nmprotect 1 1 r\nmremap move 0 2 4 2\n")
    p = subprocess.run([str(FUZZ), "--replay", str(replay)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "cannot judge" in p.stderr
    replay.write_text("mmap anon-private 0 2 rw sideways\n")
    p = subprocess.run([str(FUZZ), "--replay", str(replay)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "not an operation" in p.stderr


@needs_fakevm
@pytest.mark.skipif(not shutil.which("cc"), reason="no C compiler")
@pytest.mark.parametrize("name", sorted(MINIMAL))
def test_c_reproducer_compiles_alone_and_reproduces(tmp_path, name):
    env, _, _ = MINIMAL[name]
    _, doc = fuzz(tmp_path, "--count", "2000", "--seed", "5", "--max-findings", "1", env=fake(env))
    src = tmp_path / "repro.c"
    src.write_text(doc["findings"][0]["reproducer"])
    assert "pagelab" not in "".join(l for l in src.read_text().splitlines() if l.startswith("#include"))
    exe = tmp_path / "repro"
    cc = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", str(exe), str(src)],
                        capture_output=True, text=True, cwd=tmp_path)
    assert cc.returncode == 0, cc.stderr
    on_fake = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, env=fake(env))
    assert on_fake.returncode == 1 and "REPRODUCED" in on_fake.stderr
    here = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert here.returncode == 0 and "not reproduced" in here.stderr


@needs_fakevm
def test_an_advice_refused_like_an_unknown_one_is_never_generated(tmp_path):
    env = fake({"FAKEVM_REFUSE_ADVICE": "102"})  # MADV_GUARD_INSTALL refused with EINVAL, as 0x7a31 is
    p, doc = fuzz(tmp_path, "--count", "1500", "--seed", "3", env=env)
    assert doc["features"]["madv_guard-install"] is False and doc["features"]["madv_guard-remove"] is True
    assert p.returncode == 0 and doc["findings"] == []
    p, doc = fuzz(tmp_path, "--count", "1", env=fake({"FAKEVM_REFUSE_ADVICE": "1"}))  # MADV_RANDOM: unused
    assert doc["features"]["madv_guard-install"] is True


@needs_fakevm
def test_exhaustive_mode_finds_the_fake_deviation_within_its_depth(tmp_path):
    env, signature, _ = MINIMAL["dontneed without effect"]
    p, doc = fuzz(tmp_path, "--exhaustive", "3", "--max-findings", "1", env=fake(env))
    [f] = doc["findings"]
    assert p.returncode == 1 and f["signature"] == signature and len(f["minimal"]) == 3


# ---- the fuzz part of the plan, and its findings in the run directory and the report ----

def test_fuzz_option_adds_a_part_that_writes_fuzz_json():
    from pagelab_host.plan import Options, make_plan, suite_binaries
    from pagelab_host.runcmd import duration
    assert [duration(t) for t in ("90", "90s", "5m", "1h")] == [90, 90, 300, 3600]
    [part] = make_plan(Options(conform=False, perf=False, fuzz=duration("5m"), fuzz_seed=7), 2)
    argv = part.argv(lambda b: "/t/" + b, lambda name: "/out/" + name)
    assert (part.name, part.results) == ("fuzz", ["fuzz.json"])
    assert argv == ["/t/pagelab-fuzz", "--duration", "300", "--seed", "7", "--json", "/out/fuzz.json"]
    assert "pagelab-fuzz" in suite_binaries(Options(fuzz=60)) and "pagelab-fuzz" not in suite_binaries(Options())
    assert [p.name for p in make_plan(Options(), 2)] == ["conformance", "perf"]


@pytest.mark.parametrize("text", ["0", "-5m", "5 minutes", "m"])
def test_a_bad_fuzz_duration_is_refused(text):
    import argparse
    from pagelab_host.runcmd import duration
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


@needs_fakevm
def test_a_run_with_fuzz_reports_minimal_sequences_as_findings(tmp_path, repo_root):
    env, signature, minimal = MINIMAL["dontfork without effect"]
    launcher = "wrap:env LD_PRELOAD=%s %s" % (FAKEVM, " ".join("%s=%s" % kv for kv in env.items()))
    out = tmp_path / "run"
    p = subprocess.run(["/usr/bin/python3", str(ROOT / "runners" / "pagelab"), "run", "--no-build", "--build",
                        str(BUILD), "--target", launcher, "--no-conform", "--no-perf", "--fuzz", "8s",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parts"]["fuzz"]["status"] == "completed with failures"
    doc = json.loads((out / "fuzz.json").read_text())
    assert minimal in [f["minimal"] for f in doc["findings"] if f["signature"] == signature]
    fails = json.loads((out / "findings.json").read_text())["systems"][0]["fails"]
    mine = [f for f in fails if f["probe"] == "fuzz/" + signature]
    assert mine and "; ".join(minimal) in mine[0]["did"] and mine[0]["class"] == "fuzz"
    assert "fuzz/" + signature in (out / "report.md").read_text()
    files = sorted(p.name for p in (out / "fuzz").iterdir())
    assert files == sorted("finding-%d.%s" % (n, e) for n in range(1, len(doc["findings"]) + 1) for e in ("c", "replay"))
    k = [f["signature"] for f in doc["findings"]].index(signature) + 1
    assert (out / "fuzz" / ("finding-%d.c" % k)).read_text() == doc["findings"][k - 1]["reproducer"]
    assert "fuzz/finding-%d.c" % k in mine[0]["did"]


def test_a_sequence_past_its_deadline_is_killed_and_reported_as_a_hang(tmp_path):
    # No sequence, fork included, ends within 20 microseconds: each is killed at its deadline.
    p, doc = fuzz(tmp_path, "--count", "3", "--timeout", "0.00002", "--no-shrink", timeout=60)
    [f] = doc["findings"]
    assert p.returncode == 1 and f["signature"] == "hang" and f["check"] == "hang" and f["occurrences"] == 3
    assert "did not end within" in f["message"]


# Sequences whose every step the model predicts on a Linux that has the features: they pass here, and a model
# that forgot a rule (EPERM on sealed pages, EINVAL for DONTNEED on locked ones, a shared file's write seen
# through every mapping of it, a fork child's write reaching the parent) would fail them.
SEQUENCES = {
    "sealed": (("mseal",), ["mmap anon-private 0 2 r fixed", "mseal 0 2", "munmap 0 2", "mprotect 0 2 rw",
                            "madvise 0 2 dontneed", "mremap move 0 2 4 2", "mmap anon-private 0 1 rw fixed",
                            "mremap shrink 0 2 0 1", "mseal 4 1", "mmap anon-private 5 1 rw fixed", "mseal 5 2"]),
    "locked": (("mlock",), ["mmap anon-private 0 2 rw fixed", "write 0 1 0x07", "mlock 0 2", "madvise 0 2 dontneed",
                            "madvise 0 1 guard-install", "fork 0 1 0x08", "munlock 0 2", "madvise 0 2 dontneed",
                            "mlock 3 1", "munlock 3 1"]),
    "shared file": ((), ["mmap file-shared 0 2 rw fixed", "write 0 0 0x05", "mremap move 0 2 4 2",
                         "mmap file-shared 0 1 r fixed", "write 4 1 0x09", "fork 4 2 0x0a", "madvise 4 2 dontneed",
                         "madvise 0 1 free", "write 0 3 0x44", "mmap file-shared 0 1 rw fixed"]),
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_sequences_the_model_predicts_pass_here(tmp_path, name):
    needs, ops = SEQUENCES[name]
    _, doc = fuzz(tmp_path, "--count", "0")
    missing = [n for n in needs if not doc["features"][n]]
    if missing:
        pytest.skip("this system has no %s" % ", ".join(missing))
    replay = tmp_path / "s.replay"
    replay.write_text("\n".join(ops) + "\n")
    p, doc = fuzz(tmp_path, "--replay", str(replay))
    assert p.returncode == 0 and doc["findings"] == [], doc["findings"][:1]


# qemu-user's deviations as the fake VM layer imitates them (its modes, tests/tools/fakevm.c): found by random
# sequences without a probe, each shrunk to its known minimal sequence (issue 19: at most 8 operations).
QEMU_LIKE = {
    "FAKEVM_QEMU_MADVISE=1": {
        "madvise unknown: errno": ["madvise 0 1 unknown"],
        "fork: child-fault": ["mmap anon-private 0 1 rw fixed", "madvise 0 1 dontfork", "fork 0 0 0x01"]},
    "FAKEVM_IGNORE_FLAG=fixed_noreplace": {
        "mmap noreplace: errno": ["mmap anon-private 0 1 rw fixed", "mmap anon-private 0 1 rw noreplace"]},
    "FAKEVM_DONTUNMAP_DROPS=1": {
        "mremap dontunmap: fault": ["mmap anon-private 0 1 rw fixed", "mremap dontunmap 0 1 1 1"]},
}


@needs_fakevm
@pytest.mark.parametrize("mode", sorted(QEMU_LIKE))
def test_qemu_user_deviations_are_found_and_shrunk(tmp_path, mode):
    name, value = mode.split("=")
    p, doc = fuzz(tmp_path, "--count", "3000", "--seed", "3", env=fake({name: value}))
    found = {f["signature"]: f["minimal"] for f in doc["findings"]}
    assert p.returncode == 1
    for signature, minimal in QEMU_LIKE[mode].items():
        assert found.get(signature) == minimal, found
    assert all(len(m) <= 8 for m in found.values())
