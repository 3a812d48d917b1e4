"""What the end of a run says: per target, the outcome counts, the probes that failed, where the
report is and how to open it, and after an interruption the command that finishes the run.

Outcomes are counted from conformance.json as written, in model.STATUSES order; an outcome this
version does not know is counted too (after the known ones), never dropped."""
import os
import shlex
import shutil
import sys
import urllib.parse

from . import model
from .model import read_json

NAMED = 5            # failed probes named, then "and N more"
# Outcomes whose probes are named, with the word that introduces them.
NAMED_OUTCOMES = (("fail", "failed"), ("differs", "differs"), ("error", "errors"), ("timeout", "timed out"))


def counts(results):
    """[(status, count)]: every status present, known ones in model.STATUSES order, then the others."""
    seen = {}
    for r in results:
        st = r.get("status") if isinstance(r, dict) else None
        st = st if isinstance(st, str) and st else "unknown"
        seen[st] = seen.get(st, 0) + 1
    order = [s for s in model.STATUSES if s in seen] + sorted(s for s in seen if s not in model.STATUSES)
    return [(s, seen[s]) for s in order]


def counts_text(results):
    """'296 pass, 2 fail, 3 differs, 13 skip (309 probes)'; 'no fail' is said when nothing failed."""
    c = counts(results)
    words = ["%d %s" % (n, s) for s, n in c]
    if "fail" not in dict(c):
        words.insert(1 if c and c[0][0] == "pass" else 0, "0 fail")
    return "%s (%d probes)" % (", ".join(words), len(results))


def named(ids, limit=NAMED):
    """'a, b, c and 4 more'."""
    head = ", ".join(ids[:limit])
    return head + (" and %d more" % (len(ids) - limit) if len(ids) > limit else "")


def opener(path):
    """The command that opens a file in the desktop's viewer here; on a machine without one (a server
    reached over ssh), the file:// URL to give a browser."""
    tool = "open" if sys.platform == "darwin" else ("start" if os.name == "nt" else "xdg-open")
    if os.name == "nt" or shutil.which(tool):
        return "%s %s" % (tool, shlex.quote(path))
    return "a browser, at file://%s" % urllib.parse.quote(os.path.abspath(path))


def launcher(repo):
    """How to call this pagelab: runners/pagelab relative to the current directory when it is below it."""
    path = os.path.join(repo, "runners", "pagelab")
    rel = os.path.relpath(path)
    if rel.startswith(".."):
        return path
    return rel if os.sep in rel else os.path.join(".", rel)


def shown_path(path):
    rel = os.path.relpath(path)
    return rel if not rel.startswith("..") else os.path.abspath(path)


def resume_command(repo, run_dir):
    return "%s run --resume %s" % (launcher(repo), shlex.quote(shown_path(run_dir)))


def lines(spec, run_dir, manifest, html, repo, interrupted=False):
    """The end-of-run lines for one target."""
    out = []
    state = manifest.get("state") or ("complete" if manifest.get("complete") else "incomplete")
    out.append("%s: %s" % (spec, state))
    path = os.path.join(run_dir, "conformance.json")
    doc, problem = read_json(path) if os.path.exists(path) else (None, None)
    results = doc.get("results") if isinstance(doc, dict) and isinstance(doc.get("results"), list) else None
    if results is not None:
        out.append("  conformance: %s" % counts_text(results))
        for status, word in NAMED_OUTCOMES:
            ids = [r.get("id", "?") for r in results if isinstance(r, dict) and r.get("status") == status]
            if ids:
                out.append("  %s: %s" % (word, named(ids)))
    elif "conformance" in (manifest.get("parts") or {}):
        part = manifest["parts"]["conformance"]
        out.append("  conformance: no results (%s%s)" % (part.get("status"), "; " + part["problem"]
                                                          if part.get("problem") else ""))
    perf = (manifest.get("parts") or {}).get("perf")
    if perf:
        planned, not_run = perf.get("benchmarks_planned"), perf.get("benchmarks_not_run")
        text = perf.get("status") or "?"
        if isinstance(planned, int) and isinstance(not_run, list):
            text += ", %d of %d benchmarks ran" % (planned - len(not_run), planned)
        out.append("  perf: %s" % text)
    fuzz, _ = read_json(os.path.join(run_dir, "fuzz.json")) if os.path.exists(os.path.join(run_dir, "fuzz.json")) \
        else (None, None)
    if isinstance(fuzz, dict):
        found = [f for f in fuzz.get("findings") or [] if isinstance(f, dict)]
        secs = fuzz.get("seconds")
        out.append("  fuzz: %s sequences in %s s, %d minimal reproducer%s%s" % (
            fuzz.get("sequences", "?"), "%.0f" % secs if isinstance(secs, (int, float)) else "?", len(found),
            "" if len(found) == 1 else "s",
            " in %s" % shown_path(os.path.join(run_dir, "fuzz")) if found else ""))
        for f in found[:NAMED]:
            out.append("    %s: %s" % (f.get("signature", "?"), "; ".join(f.get("minimal") or [])))
        if len(found) > NAMED:
            out.append("    and %d more" % (len(found) - NAMED))
    if manifest.get("reason"):
        out.append("  reason: %s" % manifest["reason"])
    if html:
        out.append("  report: %s" % shown_path(html))
        out.append("  open it: %s" % opener(shown_path(html)))
    if interrupted or not manifest.get("complete"):
        out.append("  %s: %s" % ("interrupted; finish it with" if interrupted else "to run what is missing",
                                 resume_command(repo, run_dir)))
    return out
