"""Real programs from Debian packages under LD_PRELOAD=build/librefalloc.so:
the output must be identical to the same program on the C library's malloc.
The shim cannot be tested in a sanitizer build: ASan replaces malloc itself,
and an ASan-instrumented shim preloaded into an uninstrumented program aborts
before main (the ASan runtime must come first in the link map)."""
import hashlib
import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import patterninit  # noqa: E402  (the PDF generator is shared with the workload driver)

PY = "/usr/bin/python3"

THREADS_WORKLOAD = r"""
import hashlib, json, os, threading
from concurrent.futures import ThreadPoolExecutor
def work(seed):
    h = hashlib.sha256()
    d = {}
    for i in range(60000):
        k = (i * 7919 + seed) % 5000
        d[k] = ("x" * ((i % 300) + 1)) + str(i)
        if i % 3 == 0:
            d.pop((k * 31) % 5000, None)
        if i % 1000 == 0:
            blob = bytearray(((i // 1000) % 40 + 1) * 65536)
            blob[-1] = seed & 255
            h.update(bytes(blob[-16:]))
    h.update(json.dumps(sorted(d.items())).encode())
    return h.hexdigest()
with ThreadPoolExecutor(8) as ex:
    results = list(ex.map(work, range(16)))
pid = os.fork()
if pid == 0:
    os._exit(0 if work(99) == work(99) else 1)
_, status = os.waitpid(pid, 0)
print(json.dumps({"results": results, "child": os.waitstatus_to_exitcode(status)}))
"""

SQL = """
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL, grp INTEGER);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000)
INSERT INTO t SELECT i, printf('row-%08d-%x', i, i * 2654435761 % 4294967296), i * 0.5, i % 97 FROM c;
CREATE INDEX t_grp ON t(grp, name);
SELECT count(*), sum(v), min(name), max(name) FROM t;
SELECT grp, count(*), group_concat(substr(name, 1, 12), ',') FROM (SELECT * FROM t WHERE id % 1000 = 0 ORDER BY id) GROUP BY grp ORDER BY grp LIMIT 20;
SELECT name FROM t WHERE grp = 13 ORDER BY name DESC LIMIT 5;
"""


def shim_path(build_dir):
    path = os.path.join(build_dir, "librefalloc.so")
    if not os.path.exists(path):
        pytest.skip(f"{path} not built (static or sanitizer build)")
    key = os.path.join(build_dir, "config.key")
    if os.path.exists(key) and "-fsanitize" in open(key).read():
        pytest.skip("sanitizer build: ASan replaces malloc itself and must be first in the link map, "
                    "so the malloc shim cannot be preloaded; the allocator is tested through tests/c instead")
    return path


def run(cmd, preload=None, extra_env=None, **kw):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFALLOC_") and k != "LD_PRELOAD"}
    if preload:
        env["LD_PRELOAD"] = preload
    env.update(extra_env or {})
    r = subprocess.run(cmd, env=env, capture_output=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd[0]} exited {r.returncode}: {r.stderr.decode(errors='replace')[-500:]}"
    return r


@pytest.fixture(scope="module")
def shim(build_dir):
    return shim_path(build_dir)


@pytest.mark.parametrize("policy", ["release_zero", "none", "release", "reusable", "decommit"])
def test_python_threads_and_fork(shim, policy):
    base = run([PY, "-c", THREADS_WORKLOAD]).stdout
    got = run([PY, "-c", THREADS_WORKLOAD], shim,
              {"REFALLOC_RELEASE": policy, "REFALLOC_RETAIN": "0", "REFALLOC_STATS": "1"})
    assert got.stdout == base
    assert b"refalloc: release=" + policy.encode() in got.stderr  # the shim really served it


@pytest.mark.parametrize("via", ["memset", "refpage"])
def test_python_pattern_init(shim, via):
    base = run([PY, "-c", THREADS_WORKLOAD]).stdout
    got = run([PY, "-c", THREADS_WORKLOAD], shim, {"REFALLOC_INIT": "pattern", "REFALLOC_PATTERN_VIA": via})
    assert got.stdout == base


def test_python_malloc_usable_size(shim):
    code = ("import ctypes; c = ctypes.CDLL(None); c.malloc.restype = ctypes.c_void_p; "
            "c.malloc_usable_size.argtypes = [ctypes.c_void_p]; c.free.argtypes = [ctypes.c_void_p]; "
            "ps = [c.malloc(n) for n in (1, 100, 5000, 70000, 3 << 20)]; "
            "print(all(c.malloc_usable_size(p) >= n for p, n in zip(ps, (1, 100, 5000, 70000, 3 << 20)))); "
            "[c.free(p) for p in ps]")
    assert run([PY, "-c", code], shim).stdout.strip() == b"True"


@pytest.mark.skipif(not shutil.which("sqlite3"), reason="sqlite3 not installed (Debian: sqlite3)")
def test_sqlite3_100k_rows(shim, tmp_path):
    outs = []
    for preload in (None, shim):
        db = tmp_path / ("shim.db" if preload else "libc.db")
        outs.append(run(["sqlite3", str(db)], preload, input=SQL.encode()).stdout)
    assert b"100000|" in outs[0]
    assert outs[1] == outs[0]


def digest_dir(path):
    h = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        h.update(name.encode())
        h.update((path / name).read_bytes())
    return h.hexdigest()


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="pdftoppm not installed (Debian: poppler-utils)")
@pytest.mark.parametrize("init", ["none", "pattern"])
def test_pdftoppm_multipage(shim, tmp_path, init):
    try:
        pdf = patterninit.make_pdf(str(tmp_path / "doc.pdf"), 12)
    except patterninit.Failure as e:
        pytest.skip(str(e))
    digests = []
    for preload in (None, shim):
        out = tmp_path / ("shim" if preload else "libc")
        out.mkdir()
        run(["pdftoppm", "-r", "60", pdf, str(out / "p")], preload, {"REFALLOC_INIT": init})
        assert len(os.listdir(out)) == 12
        digests.append(digest_dir(out))
    assert digests[1] == digests[0]


def test_patterninit_rejects_bad_input(tmp_path):
    r = subprocess.run([PY, os.path.join(REPO, "tools", "patterninit.py"), "--lib", str(tmp_path / "missing.so")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.startswith("patterninit: ") and "Traceback" not in r.stderr
