"""The run directory's life cycle, the same for every target: created, its manifest
rewritten atomically after every step, finished with the target's environment and a report.

An interrupted run, or one whose target hung or crashed, is kept with
`complete: false`, a `state` naming the parts that did not finish and, when the
target itself failed, a one-line `reason`.
"""
import datetime
import os

from . import MANIFEST_SCHEMA
from .errors import UserError, warn
from .fsutil import atomic_write_bytes, atomic_write_json
from .model import check_fuzz, load_run, read_json
from .plan import VALID

# Parts whose failure leaves the run complete: the results are all there.
OPTIONAL_PARTS = ("topology", "report")
# Keys of the suite's own environment record copied into env.json.
SUITE_ENV_FROM_PERF = ("page_size", "num_cpus", "pagelab_backend", "counter_source", "library_build_type")


def utc():
    return datetime.datetime.now(datetime.timezone.utc)


def stamp(when=None):
    return (when or utc()).strftime("%Y%m%dT%H%M%SZ")


def new_dir(path):
    """Create path, or path-2, path-3 ... when it exists and is not empty; never reuse a run."""
    base, n = path, 2
    while os.path.exists(path) and os.listdir(path):
        path, n = "%s-%d" % (base, n), n + 1
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UserError("%s: cannot create the run directory: %s" % (path, e.strerror))
    return path


class RunDir:
    """One run directory and its manifest."""

    def __init__(self, path, argv, profile, target, host):
        self.path = new_dir(path)
        os.makedirs(os.path.join(self.path, "logs"), exist_ok=True)
        self.manifest = {
            "schema": MANIFEST_SCHEMA, "run_id": os.path.basename(self.path), "profile": profile,
            "command": argv, "started": utc().isoformat(timespec="seconds"), "finished": None,
            "state": "running", "complete": False, "target": target, "host": host, "parts": {}, "files": {},
        }
        self.save()

    @classmethod
    def reopen(cls, path, argv):
        """An existing run directory, to finish what it did not run; the manifest notes the resumption."""
        manifest, problem = read_json(os.path.join(path, "manifest.json"))
        if problem or not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
            raise UserError("%s: not a run directory with a readable manifest (%s)" % (
                path, problem or "schema %r" % (manifest or {}).get("schema")))
        rd = cls.__new__(cls)
        rd.path = path
        rd.manifest = manifest
        os.makedirs(os.path.join(path, "logs"), exist_ok=True)
        manifest.setdefault("resumed", []).append({"at": utc().isoformat(timespec="seconds"), "command": argv})
        manifest.update(state="running", complete=False, finished=None)
        manifest.pop("reason", None)
        rd.save()
        return rd

    def file(self, name):
        return os.path.join(self.path, name)

    def part(self, name, **info):
        self.manifest["parts"].setdefault(name, {}).update(info)
        self.save()

    def save(self):
        files = {}
        for root, _, names in os.walk(self.path):
            for n in names:
                if not n.startswith(".") and n != "manifest.json":
                    rel = os.path.relpath(os.path.join(root, n), self.path)
                    files[rel] = os.path.getsize(os.path.join(root, n))
        self.manifest["files"] = dict(sorted(files.items()))
        atomic_write_json(self.file("manifest.json"), self.manifest)

    def write_env(self, described):
        """env.json: what the target module knows of itself, then what the suite reported from inside it."""
        env = dict(described)
        conf, _ = read_json(self.file("conformance.json")) if os.path.exists(self.file("conformance.json")) \
            else (None, None)
        perf, _ = read_json(self.file("perf.json")) if os.path.exists(self.file("perf.json")) else (None, None)
        ctx = perf.get("context") if isinstance(perf, dict) and isinstance(perf.get("context"), dict) else {}
        env.update({k: ctx[k] for k in SUITE_ENV_FROM_PERF if k in ctx})
        if isinstance(conf, dict) and isinstance(conf.get("env"), dict):
            env.update(conf["env"])
        atomic_write_json(self.file("env.json"), env)

    def write_fuzz_files(self):
        """Each fuzz finding's replay text and C program as files of their own (fuzz/finding-N.replay,
        fuzz/finding-N.c, N as in fuzz.json), for reading, replaying and compiling without tools."""
        path = self.file("fuzz.json")
        doc, problem = read_json(path) if os.path.exists(path) else (None, "none")
        if problem or check_fuzz(doc, path):
            return
        for n, f in enumerate(doc["findings"], 1):
            for key, ext in (("replay", "replay"), ("reproducer", "c")):
                if isinstance(f.get(key), str):
                    os.makedirs(self.file("fuzz"), exist_ok=True)
                    atomic_write_bytes(self.file("fuzz/finding-%d.%s" % (n, ext)), f[key].encode())

    def finish(self, reason=None, interrupted=False):
        """Mark the run complete or incomplete (and why); returns the manifest."""
        try:
            self.write_fuzz_files()
        except OSError as e:
            warn("%s: fuzz findings not written as files: %s" % (self.path, e))
        bad = {k: v["status"] for k, v in self.manifest["parts"].items()
               if k not in OPTIONAL_PARTS and v.get("status") not in VALID}
        complete = not bad and not reason and not interrupted
        state = "complete" if complete else "incomplete: " + ", ".join(
            ["%s %s" % kv for kv in bad.items()] + ([reason] if reason else []) + (["interrupted"] if interrupted
                                                                                  and not bad else []))
        self.manifest.update(finished=utc().isoformat(timespec="seconds"), complete=complete, state=state)
        if reason:
            self.manifest["reason"] = reason
        self.save()
        return self.manifest

    def write_report(self, title):
        from .junit import write_junit
        from .report import write_report
        try:
            run = load_run(self.path)
            html = write_report([run], self.path, title)
            write_junit(run, self.file("junit.xml"))
        except (OSError, ValueError) as e:
            warn("%s: report failed: %s" % (self.path, e))
            html = None
        self.part("report", status="ok" if html else "failed")
        return html
