"""refalloc pattern init as an unprivileged user: without a full userfaultfd
(root, vm.unprivileged_userfaultfd=1 or /dev/userfaultfd) only a user-mode
one is left, whose faults inside system calls fail with EFAULT, so refalloc
must write the pattern itself and say why."""
import os
import shutil
import subprocess
import tempfile

import pytest

from test_refalloc_programs import PY, shim_path

NOBODY = 65534

READ_INTO_FRESH = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.read.restype = ctypes.c_ssize_t
r, w = os.pipe()
os.write(w, b"z" * 4096)
p = libc.malloc(8 << 20)
n = libc.read(r, p + (4 << 20), 4096)
if n != 4096:
    sys.exit("read into fresh pattern memory: " + os.strerror(ctypes.get_errno()))
if ctypes.string_at(p + (4 << 20), 4096) != b"z" * 4096:
    sys.exit("read(2) data missing")
if ctypes.string_at(p, 4096) != b"\xaa" * 4096 or ctypes.string_at(p + (6 << 20), 4096) != b"\xaa" * 4096:
    sys.exit("fresh memory does not read the pattern 0xaa")
"""


def test_read_into_pattern_memory_as_nobody(build_dir):
    shim = shim_path(build_dir)
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not installed: cannot drop to an unprivileged user")
    if os.geteuid() != 0:
        pytest.skip("not root: cannot switch to uid 65534")
    d = tempfile.mkdtemp(prefix="refalloc-nobody-")
    try:
        os.chmod(d, 0o755)
        lib = os.path.join(d, "librefalloc.so")
        shutil.copy(shim, lib)
        os.chmod(lib, 0o755)
        env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": lib, "REFALLOC_INIT": "pattern",
               "REFALLOC_PATTERN_VIA": "refpage", "REFALLOC_PATTERN": "0xAA", "REFALLOC_STATS": "1"}
        # The shim is preloaded after the switch: setpriv itself runs on the C library's malloc.
        cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/env", "-i"]
        cmd += [f"{k}={v}" for k, v in env.items()] + [PY, "-c", READ_INTO_FRESH]
        r = subprocess.run(cmd, capture_output=True, timeout=120, cwd=d)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 0, err[-800:]
    stats = [line for line in err.splitlines() if line.startswith("refalloc: release=")]
    assert stats, err[-800:]
    if " pattern=none " in stats[-1]:
        assert "pattern_note=" in stats[-1], stats[-1]
