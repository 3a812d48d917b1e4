#!/usr/bin/python3
"""make check's run of the conformance suite on this machine: a smoke test of
the suite, not a verdict on the host. It passes when every probe reached an
outcome and the harness itself never failed (no error of class `harness`);
what the host's own VM layer did (fails, behaviours that differ, errors of its
environment) is reported, never asserted: the host is not a system with known
answers (the fault catalogue and the pinned kernel target are).

usage: tools/conform_smoke.py PAGELAB-CONFORM JSON-OUT [conform args...]
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runners"))
from pagelab_host.model import STATUSES  # noqa: E402


def main(argv):
    if len(argv) < 3:
        print("usage: conform_smoke.py PAGELAB-CONFORM JSON-OUT [args...]", file=sys.stderr)
        return 2
    binary, out = argv[1], argv[2]
    res = subprocess.run([binary, "-q", "--json", out] + argv[3:], stdout=subprocess.PIPE, text=True)
    sys.stdout.write(res.stdout)
    if res.returncode not in (0, 1):
        print("conformance smoke: pagelab-conform exited with %d" % res.returncode)
        return 1
    try:
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print("conformance smoke: no valid results file: %s" % e)
        return 1
    results = doc.get("results") or []
    unknown = [r.get("id") for r in results if r.get("status") not in STATUSES]
    harness = [r for r in results if r.get("status") == "error" and r.get("class") == "harness"]
    for r in results:
        if r["status"] in ("fail", "differs", "error", "timeout"):
            print("  host %-8s %s: %s" % (r["status"], r["id"], r.get("reason", "")[:200]))
    missing = [name for name, f in (doc.get("features") or {}).items() if not f.get("present")]
    if missing:
        print("  host features missing: %s" % ", ".join(sorted(missing)))
    for r in harness:
        print("conformance smoke: harness error in %s: %s" % (r["id"], r.get("reason", "")))
    for pid in unknown:
        print("conformance smoke: %s has no known outcome" % pid)
    counts = doc.get("summary") or {}
    print("conformance smoke: %d probes, every one with an outcome: %s; the host's own answers are reported above, "
          "not asserted" % (len(results), ", ".join("%d %s" % (counts.get(s, 0), s) for s in STATUSES)))
    return 1 if harness or unknown or not results else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
