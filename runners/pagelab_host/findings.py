"""The findings view: every fail on every system, with what the contract says, what
the system did, and a one-line reading. The fuzz part's minimal failing sequences
(fuzz.json) are findings too, next to the probes' fails, as "fuzz/<signature>".

The reading comes from results/triage.json when a rule there matches the probe and
the system (a human's triage: the system's non-conformance, or a defect of ours),
else from the verdict class the suite recorded.
"""
import fnmatch
import json
import os
import subprocess

SCHEMA = "pagelab.findings/1"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRIAGE = os.path.join(REPO, "results", "triage.json")
BY_CLASS = {"not_honoured": "accepted the request and did not honour its contract",
            "refused": "refused a request the contract says it must accept",
            "crashed": "the probe's process died of a signal where the contract allows none",
            "fuzz": "found without a probe: the minimal sequence on which the system and the model disagree "
                    "(replay text and standalone C program: fuzz/finding-N.replay and .c, and in fuzz.json)"}
FUZZ_CONTRACT = ("every step of an operation sequence agrees with the model of what the contracts allow "
                 "(pagelab-fuzz: errno, address, the fault each page raises, its contents)")
BEHAVIOUR_READING = ("a behaviour Linux usually has and allocators may rely on, which no contract promises: "
                     "not a failure")
_listing = {}


class Finding:
    def __init__(self, result, contract, reading, verdict):
        self.probe = result["id"]
        self.cls = result.get("class") or ""
        self.contract = contract
        obs = "; ".join("%s: %s" % (k.replace("_", " "), v) for k, v in (result.get("observed") or {}).items())
        self.did = "; ".join(x for x in (result.get("reason") or "", obs) if x) or "failed without a reason"
        self.reading, self.verdict = reading, verdict

    def as_dict(self):
        return {"probe": self.probe, "class": self.cls or None, "contract": self.contract, "did": self.did,
                "reading": self.reading, "verdict": self.verdict}


class System:
    def __init__(self, run, label, items, others, differs=()):
        m = run.manifest or {}
        self.target = (m.get("target") or {}).get("spec") or label
        self.label, self.run_id, self.items, self.others = label, run.id, items, others
        self.differs = list(differs)

    def as_dict(self):
        return {"target": self.target, "label": self.label, "run": self.run_id,
                "fails": [f.as_dict() for f in self.items], "not_judged": self.others,
                "differs": [f.as_dict() for f in self.differs]}


def probe_contracts():
    """{probe id: what it checks}, from `pagelab-conform -l` of this tree's build (when there is one):
    for results written before each carried its description."""
    binary = os.path.join(os.environ.get("PAGELAB_BUILD") or os.path.join(REPO, "build"), "pagelab-conform")
    if binary not in _listing:
        _listing[binary] = {}
        try:
            res = subprocess.run([binary, "-l"], capture_output=True, text=True, timeout=60)
            for line in res.stdout.splitlines():
                pid, _, text = line.partition(" ")
                if pid and text.strip():
                    _listing[binary][pid] = text.strip()
        except (OSError, subprocess.TimeoutExpired):
            pass
    return _listing[binary]


def load_triage(path=TRIAGE):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return []
    return [r for r in doc.get("rules", []) if isinstance(r, dict) and "probe" in r and "reading" in r]


def _matches(rule, pid, env):
    if not fnmatch.fnmatchcase(pid, rule["probe"]):
        return False
    return all(fnmatch.fnmatchcase(str(env.get(k, "")), str(v)) for k, v in (rule.get("when") or {}).items())


def _reading(result, env, rules):
    for rule in rules:
        if _matches(rule, result["id"], env):
            return rule["reading"], rule.get("verdict", "system")
    return BY_CLASS.get(result.get("class"), "not triaged yet (no verdict class recorded)"), "untriaged"


def _contract(result):
    """What the probe checks: the result's own description (schema /2), else this tree's listing."""
    if result.get("description"):
        return result["description"]
    listing = probe_contracts()
    return listing.get(result["id"]) or listing.get(result["id"].split("/")[0]) or ""


def fuzz_results(run):
    """The fuzz part's findings as fails: id fuzz/<signature>, the minimal sequence as what was observed."""
    out = []
    for n, f in enumerate((run.fuzz or {}).get("findings") or [], 1):
        observed = {"minimal sequence": "; ".join(str(op) for op in f["minimal"]),
                    "failing step": f.get("failing_step"), "reproducer": "fuzz/finding-%d.c" % n}
        out.append({"id": "fuzz/%s" % f["signature"], "status": "fail", "class": "fuzz",
                    "description": FUZZ_CONTRACT, "reason": f.get("message") or "", "observed": observed})
    return out


def collect(runs, labels, rules=None):
    """[System]: per run with conformance or fuzz results, its fails and how many errors and timeouts."""
    rules = load_triage() if rules is None else rules
    out = []
    for run, label in zip(runs, labels):
        if not run.conformance and not run.fuzz:
            continue
        env = dict(run.env(), target=((run.manifest or {}).get("target") or {}).get("spec", ""))
        items, others, differs = [], {}, []
        for r in (run.conformance or {}).get("results", []) + fuzz_results(run):
            if r["status"] == "fail":
                reading, verdict = _reading(r, env, rules)
                items.append(Finding(r, _contract(r), reading, verdict))
            elif r["status"] == "differs":
                differs.append(Finding(r, _contract(r), BEHAVIOUR_READING, "behaviour"))
            elif r["status"] in ("error", "timeout"):
                others[r["status"]] = others.get(r["status"], 0) + 1
        out.append(System(run, label, items, others, differs))
    return out


def to_json(systems, generated):
    return {"schema": SCHEMA, "generated": generated, "systems": [s.as_dict() for s in systems]}


def markdown(systems):
    L = ["", "## Findings", "", "Each fail on each system: the probe, what its contract says, what the system did, "
         "and a reading (triaged in results/triage.json, else from the verdict class)."]
    for s in systems:
        L += ["", "### %s (`%s`)" % (s.target, s.run_id), ""]
        if s.others:
            L += ["Not judged: %s (harness or environment; see the matrix)." % ", ".join(
                "%d %s" % (n, k) for k, n in sorted(s.others.items())), ""]
        if not s.items:
            L.append("No fails.")
        else:
            L += ["| probe | contract | what the system did | reading |", "|---|---|---|---|"]
            L += ["| %s | %s | %s | %s |" % tuple(x.replace("|", "\\|") for x in (
                f.probe, f.contract or "—", f.did,
                f.reading + ("" if f.verdict == "untriaged" else " (%s)" % f.verdict))) for f in s.items]
        if s.differs:
            L += ["", "Behaviours that differ (%d): what Linux usually does and this system does not; no contract "
                  "promises them, so they are not failures." % len(s.differs), "",
                  "| probe | expected behaviour | what the system did |", "|---|---|---|"]
            L += ["| %s | %s | %s |" % tuple(x.replace("|", "\\|") for x in (f.probe, f.contract or "—", f.did))
                  for f in s.differs]
    return L
