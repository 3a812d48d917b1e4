"""The probes that need what a default host run never sets up (swap, hugetlb pages, KSM running, a memory
cgroup) run inside a kernel target's guest, whose init sets those up: here they must run, not skip."""
import json
import os
import shutil
import subprocess

import pytest

# One probe per privilege the guest provides.
NEEDS = {
    "cow.fork.parent_write_stays_private/base_swapped": "swap",
    "madvise.pageout.resident_after/private_anon": "swap",
    "cow.fork.parent_write_stays_private/hugetlb_pmd": "hugetlb pages",
    "ksm.merge.write_copies": "KSM running",
    "reclaim.free.dropped_under_pressure": "a memory cgroup",
}


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or os.uname().machine != "x86_64",
                    reason="needs qemu-system-x86 on an x86-64 host")
def test_privileged_probes_run_in_the_guest(repo_root, python_exe, build_dir, tmp_path):
    out = tmp_path / "run"
    cmd = [python_exe, os.path.join(repo_root, "runners", "pagelab"), "run", "--target", "kernel:6.1", "--no-perf",
           "--build", build_dir, "--out", str(out)]
    for probe in NEEDS:
        cmd += ["--probes", probe]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert "Traceback" not in p.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] is True, (manifest["state"], p.stderr[-2000:])
    results = {r["id"]: r for r in json.loads((out / "conformance.json").read_text())["results"]}
    ran = {probe: (results[probe]["status"], results[probe]["reason"]) for probe in NEEDS if probe in results}
    assert set(ran) == set(NEEDS), "probes missing from the guest's results: %s" % sorted(set(NEEDS) - set(ran))
    skipped = {probe: "%s (%s)" % (reason, NEEDS[probe]) for probe, (status, reason) in ran.items() if status != "pass"}
    assert not skipped, skipped
