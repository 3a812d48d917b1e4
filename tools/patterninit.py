#!/usr/bin/python3
"""Pattern-initialisation workload: pdftoppm renders a generated multi-page PDF
under several allocators, the way the MAP_REFPAGE proposal measured pdfium
(anonymous baseline vs memset vs reference pages): real time, CPU time and
max RSS, median of N interleaved runs. Also measures what the userfaultfd
emulation of reference pages costs per page. Writes JSON atomically.

usage: tools/patterninit.py [--lib build/librefalloc.so] [--runs 5] [--pages 100]
                            [--dpi 100] [--out results/patterninit-HOST.json]
"""
import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

WORDS = ("allocator page fault kernel memory release zero pattern guard region span "
         "thread cache reference mapping userfaultfd resident").split()
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
SYSTEM_LIBS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib")


class Failure(Exception):
    """A one-line error for the user."""


def make_pdf(path, pages, seed=1):
    """A deterministic text-and-figure document of `pages` pages (groff -> ps2pdf)."""
    for tool in ("groff", "ps2pdf"):
        if not shutil.which(tool):
            raise Failure(f"{tool} not found (Debian: groff-base, ghostscript)")
    rng = random.Random(seed)
    body = []
    for p in range(pages):
        body.append(".bp" if p else ".LP")
        body.append(f".ps 16\n.ft B\nPage {p + 1}\n.ft R\n.ps 10\n.sp")
        for _ in range(4):
            body.append(" ".join(rng.choice(WORDS) for _ in range(70)))
            body.append(".sp")
        body.append('.PS\nbox "A"; arrow; circle "B"; arrow; ellipse "C"; arrow; box "D"\n.PE')
    src = path + ".ms"
    with open(src, "w") as f:
        f.write("\n".join(body) + "\n")
    ps = path + ".ps"
    with open(ps, "wb") as out:
        r = subprocess.run(["groff", "-p", "-ms", "-Tps", src], stdout=out, stderr=subprocess.PIPE)
    if r.returncode != 0:
        raise Failure("groff failed: " + r.stderr.decode(errors="replace").strip()[:200])
    r = subprocess.run(["ps2pdf", ps, path], stderr=subprocess.PIPE)
    if r.returncode != 0 or not os.path.exists(path):
        raise Failure("ps2pdf failed: " + r.stderr.decode(errors="replace").strip()[:200])
    os.unlink(src)
    os.unlink(ps)
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", path], capture_output=True, text=True).stdout
        got = next((ln.split()[1] for ln in info.splitlines() if ln.startswith("Pages:")), "?")
        if got != str(pages):
            raise Failure(f"generated PDF has {got} pages, wanted {pages}")
    return path


def find_system_lib(name):
    for d in SYSTEM_LIBS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


def configs(lib):
    """(name, environment additions) for every allocator measured here."""
    ra = {"LD_PRELOAD": lib, "REFALLOC_RELEASE": "release_zero"}
    out = [
        ("glibc", {}),
        ("refalloc-none", dict(ra, REFALLOC_INIT="none")),
        ("refalloc-pattern-memset", dict(ra, REFALLOC_INIT="pattern", REFALLOC_PATTERN_VIA="memset")),
        ("refalloc-pattern-refpage", dict(ra, REFALLOC_INIT="pattern", REFALLOC_PATTERN_VIA="refpage")),
    ]
    for name, so in (("jemalloc", "libjemalloc.so.2"), ("mimalloc", "libmimalloc.so.2")):
        path = find_system_lib(so)
        if path:
            out.append((name, {"LD_PRELOAD": path}))
    return out


def run_once(cmd, env_add, outdir, stdin_path=None):
    """Real seconds, CPU seconds and max RSS (KiB) of one run of cmd. GNU time
    launches it when installed: a child forked from this Python process would
    report Python's own peak RSS as its maximum (Linux keeps the peak across exec)."""
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("REFALLOC_") or k == "LD_PRELOAD":
            del env[k]
    env.update(env_add)
    os.makedirs(outdir, exist_ok=True)
    report = os.path.join(outdir, ".time")
    timed = [GNU_TIME, "-f", "%U %S %M", "-o", report] + cmd if GNU_TIME else cmd
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    stdout = open(os.path.join(outdir, "stdout"), "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(timed, env=env, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(proc.pid, 0)
    real = time.perf_counter() - t0
    stdout.close()
    if stdin_path:
        stdin.close()
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace").strip()
    proc.stderr.close()
    if code != 0:
        raise Failure(f"{cmd[0]} exited {code} with {env_add}: {err[:200]}")
    if not GNU_TIME:
        return real, ru.ru_utime + ru.ru_stime, ru.ru_maxrss
    with open(report) as f:
        user, sys_s, rss = f.read().split()[-3:]
    os.unlink(report)
    return real, float(user) + float(sys_s), int(rss)


def digest(outdir):
    h = hashlib.sha256()
    for name in sorted(n for n in os.listdir(outdir) if not n.startswith(".")):
        h.update(name.encode())
        with open(os.path.join(outdir, name), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


SQL = """PRAGMA cache_size=-65536;
CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL, grp INTEGER);
WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 100000)
INSERT INTO t SELECT i, printf('row-%08d-%x', i, i * 2654435761 % 4294967296), i * 0.5, i % 97 FROM c;
CREATE INDEX t_grp ON t(grp, name);
SELECT count(*), sum(v), min(name), max(name) FROM t;
SELECT grp, count(*) FROM t GROUP BY grp ORDER BY grp LIMIT 5;
"""


def workload_cmd(workload, outdir, pdf, dpi, scratch):
    """The command line and stdin file of one run of a workload."""
    if workload == "pdftoppm":
        return ["pdftoppm", "-r", str(dpi), pdf, os.path.join(outdir, "p")], None
    sql = os.path.join(scratch, "workload.sql")
    if not os.path.exists(sql):
        with open(sql, "w") as f:
            f.write(SQL)
    return ["sqlite3", os.path.join(outdir, "db.sqlite")], sql


def measure(workload, pdf, lib, runs, dpi, scratch):
    cfgs = configs(lib)
    samples = {name: [] for name, _ in cfgs}
    digests = {}
    for i in range(runs):
        order = cfgs[:]
        random.Random(i).shuffle(order)  # interleaved, so drift does not favour one allocator
        for name, env_add in order:
            outdir = os.path.join(scratch, name)
            shutil.rmtree(outdir, ignore_errors=True)
            os.makedirs(outdir)
            cmd, stdin_path = workload_cmd(workload, outdir, pdf, dpi, scratch)
            samples[name].append(run_once(cmd, env_add, outdir, stdin_path))
            if workload == "sqlite3":
                os.unlink(os.path.join(outdir, "db.sqlite"))  # file layout may differ; the answers may not
            if name not in digests:
                digests[name] = digest(outdir)
            shutil.rmtree(outdir, ignore_errors=True)
        print(f"patterninit: {workload} run {i + 1}/{runs} done", file=sys.stderr)
    base = digests["glibc"]
    bad = [n for n, d in digests.items() if d != base]
    if bad:
        raise Failure(f"{workload} output differs from glibc's under: " + ", ".join(bad))
    results = []
    for name, env_add in cfgs:
        s = samples[name]
        results.append({
            "name": name,
            "environment": env_add,
            "n": len(s),
            "real_s": summary([x[0] for x in s]),
            "cpu_s": summary([x[1] for x in s]),
            "max_rss_kib": summary([x[2] for x in s]),
        })
    return results


COST_SCRIPT = r"""
import ctypes, sys, time
lib = ctypes.CDLL(None)
lib.ra_malloc.restype = ctypes.c_void_p
lib.ra_malloc.argtypes = [ctypes.c_size_t]
lib.ra_free.argtypes = [ctypes.c_void_p]
lib.ra_pattern_mode.restype = ctypes.c_char_p
size = int(sys.argv[1])
best = None
for _ in range(5):
    p = lib.ra_malloc(size)
    t0 = time.perf_counter()
    ctypes.memset(p, 1, size)
    t = time.perf_counter() - t0
    best = t if best is None else min(best, t)
    lib.ra_free(p)
print(best, lib.ra_pattern_mode().decode())
"""


def fault_cost(lib, mib=256):
    """Per-page time to first-write fresh large objects: demand-zero vs uffd pattern pages."""
    size = mib << 20
    out = {}
    for name, init in (("anon", "none"), ("refpage", "pattern")):
        env = {"LD_PRELOAD": lib, "REFALLOC_INIT": init, "REFALLOC_PATTERN_VIA": "refpage",
               "REFALLOC_RELEASE": "release_zero", "REFALLOC_RETAIN": "0"}
        r = subprocess.run([sys.executable, "-c", COST_SCRIPT, str(size)], env=dict(os.environ, **env),
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Failure("fault-cost run failed: " + r.stderr.strip()[:200])
        secs, mode = r.stdout.split()
        out[name] = {"us_per_page": float(secs) * 1e6 / (size // os.sysconf("SC_PAGE_SIZE")), "mode": mode}
    out["uffd_extra_us_per_page"] = out["refpage"]["us_per_page"] - out["anon"]["us_per_page"]
    out["mib"] = mib
    return out


def write_atomic(path, data):
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".patterninit.", dir=d)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def table(results, cost):
    lines = []
    if results:
        lines += table_rows(results)
    if cost:
        lines.append(f"first write per page: anon {cost['anon']['us_per_page']:.3f} us, "
                     f"uffd pattern page {cost['refpage']['us_per_page']:.3f} us "
                     f"(+{cost['uffd_extra_us_per_page']:.3f} us, mode {cost['refpage']['mode']})")
    return "\n".join(lines)


def table_rows(results):
    base = next(r for r in results if r["name"] == "glibc")
    lines = [f"{'allocator':26} {'real s (min-max)':>22} {'cpu s':>7} {'max RSS MiB':>12} {'time x':>7} {'RSS x':>6}"]
    for r in results:
        rt, rss = r["real_s"], r["max_rss_kib"]["median"]
        lines.append(f"{r['name']:26} {rt['median']:7.2f} ({rt['min']:5.2f}-{rt['max']:5.2f}) "
                     f"{r['cpu_s']['median']:7.2f} {rss / 1024:12.1f} "
                     f"{rt['median'] / base['real_s']['median']:7.3f} {rss / base['max_rss_kib']['median']:6.3f}")
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default="build/librefalloc.so")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--dpi", type=int, default=100)
    ap.add_argument("--out", default=os.path.join("results", f"patterninit-{platform.node() or 'host'}.json"))
    ap.add_argument("--workload", choices=("pdftoppm", "sqlite3", "both"), default="both",
                    help="pdftoppm (the proposal's measurement, on poppler), sqlite3 (100k rows, 64 MiB page cache)")
    ap.add_argument("--no-fault-cost", action="store_true")
    a = ap.parse_args(argv)
    try:
        if a.runs < 1 or a.pages < 1 or a.dpi < 1:
            raise Failure("--runs, --pages and --dpi must be positive")
        if not os.path.exists(a.lib):
            raise Failure(f"{a.lib} not found (run make first)")
        workloads = ["pdftoppm", "sqlite3"] if a.workload == "both" else [a.workload]
        for w, pkg in (("pdftoppm", "poppler-utils"), ("sqlite3", "sqlite3")):
            if w in workloads and not shutil.which(w):
                raise Failure(f"{w} not found (Debian: {pkg})")
        lib = os.path.abspath(a.lib)
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        with tempfile.TemporaryDirectory(prefix="patterninit.", dir=shm) as scratch:
            pdf = make_pdf(os.path.join(scratch, "doc.pdf"), a.pages) if "pdftoppm" in workloads else None
            results = {w: measure(w, pdf, lib, a.runs, a.dpi, scratch) for w in workloads}
        cost = None if a.no_fault_cost else fault_cost(lib)
        data = {
            "schema": "pagelab.patterninit/1",
            "workload": {"program": "pdftoppm", "pages": a.pages, "dpi": a.dpi, "runs": a.runs,
                                      "output": "identical to glibc's for every allocator (sha256 of all pages)",
                         "max_rss_from": "GNU time" if GNU_TIME else
                         "wait4 (includes the launching Python's peak: install GNU time for exact values)"},
            "machine": {"node": platform.node(), "kernel": platform.release(), "machine": platform.machine()},
            "results": results,
            "fault_cost": cost,
        }
        write_atomic(a.out, data)
        for w in workloads:
            print(f"== {w}")
            print(table(results[w], None))
        if cost:
            print(table([], cost))
        print(f"patterninit: wrote {a.out}")
        return 0
    except Failure as e:
        print(f"patterninit: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
