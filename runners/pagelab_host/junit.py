"""junit.xml: the conformance results as JUnit XML, for the test views of GitLab, Jenkins and GitHub.

One testcase per probe (classname: pagelab.AREA for the probe id AREA.rest), with the time the probe
took. fail is a <failure>, error and timeout an <error>, skip and xfail a <skipped> (with the class and
the reason); differs passes (no contract is broken) with what differed in <system-out>, observed (a
record that asserts nothing) passes with what was observed there, and an outcome
this version does not know is a <skipped> naming it."""
import xml.etree.ElementTree as ET

from .fsutil import atomic_write_bytes

FAILURE = ("fail",)
ERROR = ("error", "timeout")
SKIPPED = ("skip", "xfail")
PASSED = ("pass", "differs", "observed")


def _text(s):
    """XML 1.0 allows no control characters but tab, newline and carriage return."""
    return "".join(c if c in "\t\n\r" or ord(c) >= 0x20 else "\\x%02x" % ord(c) for c in str(s or ""))


def _observed(r):
    obs = r.get("observed")
    return "; ".join("%s: %s" % (k, v) for k, v in obs.items()) if isinstance(obs, dict) else ""


def document(run):
    """The JUnit XML tree of a run's conformance results (None without them)."""
    if not run.conformance:
        return None
    target = ((run.manifest or {}).get("target") or {}).get("spec") or run.id
    results = [r for r in run.conformance.get("results", []) if isinstance(r, dict)]
    counts = {"tests": len(results), "failures": 0, "errors": 0, "skipped": 0}
    suites = ET.Element("testsuites", name="pagelab conformance")
    suite = ET.SubElement(suites, "testsuite", name="pagelab conformance on %s" % _text(target))
    started = (run.manifest or {}).get("started")
    if isinstance(started, str):
        suite.set("timestamp", started[:19])  # JUnit's: ISO 8601 without a zone
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run", value=_text(run.id))
    ET.SubElement(props, "property", name="target", value=_text(target))
    total_s = 0.0
    for r in results:
        pid, status = _text(r.get("id", "?")), str(r.get("status"))
        ms = r.get("duration_ms")
        secs = ms / 1000.0 if isinstance(ms, (int, float)) and not isinstance(ms, bool) else 0.0
        total_s += secs
        case = ET.SubElement(suite, "testcase", classname="pagelab." + pid.split(".")[0], name=pid,
                             time="%.3f" % secs)
        cls, reason = _text(r.get("class") or ""), _text(r.get("reason") or "")
        message = (cls.replace("_", " ") + ": " if cls else "") + reason if reason or cls else status
        detail = "\n".join(x for x in (reason, _text(_observed(r))) if x)
        if status in FAILURE:
            counts["failures"] += 1
            ET.SubElement(case, "failure", message=message, type=cls or "fail").text = detail or None
        elif status in ERROR:
            counts["errors"] += 1
            ET.SubElement(case, "error", message="%s: %s" % (status, message), type=status).text = detail or None
        elif status in SKIPPED:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message=("expected failure: " if status == "xfail" else "") + message)
        elif status in PASSED:
            if status == "differs":
                ET.SubElement(case, "system-out").text = "differs from what Linux usually does (no contract " \
                                                         "broken): " + (detail or message)
            elif status == "observed":
                ET.SubElement(case, "system-out").text = "observed (asserts nothing): " + (detail or message)
        else:
            counts["skipped"] += 1
            ET.SubElement(case, "skipped", message="outcome %r (not known to this pagelab): %s" % (
                _text(status), message))
    for el in (suites, suite):
        for k, v in counts.items():
            el.set(k, str(v))
        el.set("time", "%.3f" % total_s)
    return ET.ElementTree(suites)


def write_junit(run, path):
    """Write path (atomically) when the run has conformance results; returns whether it did."""
    tree = document(run)
    if tree is None:
        return False
    if hasattr(ET, "indent"):  # Python 3.9
        ET.indent(tree)
    atomic_write_bytes(path, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True) + b"\n")
    return True
