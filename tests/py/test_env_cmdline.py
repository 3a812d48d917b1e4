"""env.json keeps the kernel command line whole, however long (it was cut at 255 characters)."""
import json
import os
import shutil
import subprocess

import pytest


def test_kernel_cmdline_is_recorded_whole(build_dir, tmp_path):
    conform = os.path.join(build_dir, "pagelab-conform")
    assert os.access(conform, os.X_OK), "run make first"
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) to show the suite a long /proc/cmdline")
    line = "root=/dev/vda1 " + " ".join("pagelab.opt%03d=%s" % (i, "x" * 20) for i in range(60)) + " last=END"
    fake = tmp_path / "cmdline"
    fake.write_text(line + "\n")
    out = tmp_path / "c.json"
    res = subprocess.run(["unshare", "--mount", "sh", "-c", 'mount --bind "$1" /proc/cmdline && exec "$2" -q '
                          '-f "channel.residency*" --json "$3"', "sh", str(fake), conform, str(out)],
                         capture_output=True, text=True, timeout=120)
    if "mount" in res.stderr and not out.exists():
        pytest.skip("cannot bind-mount over /proc/cmdline here: %s" % res.stderr.strip())
    env = json.loads(out.read_text())["env"]
    assert len(line) > 2000
    assert env["kernel_cmdline"] == line
