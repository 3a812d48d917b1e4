"""LAVA job definitions that run the suite, and their offline validation.

The job boots a kernel with an initramfs holding the static suite and the
guest init (the same initramfs a kernel target boots). It needs no LAVA
overlay and no shell on the device: `test: monitors:` turns the console into
LAVA test cases. The init relays each part's stdout as
`=== pagelab-out PART LINE`, so every TAP line of the conformance suite is one
LAVA test case (pass, fail, skip; an expected failure counts as pass) and
every benchmark line of the perf suite is one measurement in ns (a skipped
benchmark is a skip). The result files come back through the same console
between markers, base64-encoded, which is all the host needs for a normal
run directory. Only the stable job schema of LAVA 2023.01 is used.

Boot methods: `qemu` (deploy to tmpfs), and for real boards `u-boot` and
`grub` (deploy to tftp; the device dictionary gives the console and addresses).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile

from ..errors import UserError

BOOT_METHODS = ("qemu", "u-boot", "grub")
ALIVE = "=== pagelab-alive run"

# The lookahead captures the result from where it is (a TAP directive, or the line's start) before the
# id is read: LAVA's monitor takes one regular expression with named groups, and Python's re cannot
# name two groups alike. Every pattern ends at a line end, so a line that has half arrived never matches.
CONFORMANCE_PATTERN = (r"=== pagelab-out conformance (?=(?:(?:not )?ok \d+ - \S+ )?(?P<result>not ok|ok|# SKIP|# TODO))"
                       r"(?:not )?ok \d+ - (?P<test_case_id>\S+)[^\r\n]*[\r\n]")
CONFORMANCE_FIXUP = {"ok": "pass", "not ok": "fail", "# SKIP": "skip", "# TODO": "pass"}
# units is "" on a skipped benchmark's line: LAVA stores units in a column that cannot be null.
PERF_PATTERN = (r"=== pagelab-out perf (?P<test_case_id>[a-z][a-z0-9_]*/\S+)\s+"
                r"(?=(?:\d+(?:\.\d+)? )?(?P<units>ns|))(?=(?:(?P<measurement>\d+(?:\.\d+)?) )?(?P<result>ns|SKIPPED))"
                r"[^\r\n]*[\r\n]")
PERF_FIXUP = {"ns": "pass", "SKIPPED": "skip"}
MONITORS = {"conformance": ("pagelab-conformance", CONFORMANCE_PATTERN, CONFORMANCE_FIXUP),
            "perf": ("pagelab-perf", PERF_PATTERN, PERF_FIXUP)}

# Real boards: the qemu-system architecture LAVA's qemu device type knows, per build architecture.
QEMU_CONTEXT = {"amd64": {"arch": "amd64"}, "aarch64": {"arch": "arm64", "cpu": "max,pauth=off", "machine": "virt"}}
QEMU_CONSOLE = {"amd64": "ttyS0", "aarch64": "ttyAMA0"}
KERNEL_TYPES = {"u-boot": {"armhf": "zimage"}, "grub": {}}


def monitors(part_names):
    """One monitor per part: it starts when the init begins the part and ends at its exit status."""
    out = []
    for name in part_names:
        suite, pattern, fixup = MONITORS[name]
        out.append({"name": suite, "start": "=== pagelab-begin %s" % name, "end": "=== pagelab-status %s" % name,
                    "pattern": pattern, "fixupdict": dict(fixup)})
    return out


def check_boot(boot, arch, dtb_url):
    """UserError when a job cannot be written for this boot method and architecture."""
    if boot not in BOOT_METHODS:
        raise UserError("boot method %r: one of %s" % (boot, ", ".join(BOOT_METHODS)))
    if boot == "qemu" and arch not in QEMU_CONTEXT:
        raise UserError("qemu jobs are written for %s, not %s" % (", ".join(QEMU_CONTEXT), arch))
    if boot == "u-boot" and not dtb_url:
        raise UserError("a u-boot job needs the board's device tree (a dtb URL)")


class JobSpec:
    """What a job needs: where it runs, what it boots, how long it may take."""

    def __init__(self, device_type, boot, kernel_url, ramdisk_url, parts, dtb_url=None, arch="amd64",
                 minutes=60, memory_mib=2048, cpus=2, name=None, kernel_args="", tags=(), metadata=None):
        check_boot(boot, arch, dtb_url)
        self.device_type, self.boot, self.arch = device_type, boot, arch
        self.kernel_url, self.ramdisk_url, self.dtb_url = kernel_url, ramdisk_url, dtb_url
        self.parts, self.minutes, self.memory_mib, self.cpus = list(parts), minutes, memory_mib, cpus
        self.name = name or "pagelab %s on %s" % ("+".join(self.parts), device_type)
        self.kernel_args, self.tags, self.metadata = kernel_args, list(tags), dict(metadata or {})


def definition(spec):
    """The job as a dict, in the order LAVA's documentation writes it."""
    job = {"job_name": spec.name, "device_type": spec.device_type, "visibility": "public", "priority": "medium",
           "timeouts": {"job": {"minutes": spec.minutes}, "action": {"minutes": spec.minutes},
                        "connection": {"minutes": 2}}}
    if spec.tags:
        job["tags"] = spec.tags
    if spec.metadata:
        job["metadata"] = {k: str(v) for k, v in spec.metadata.items()}
    if spec.boot == "qemu":
        job["context"] = dict(QEMU_CONTEXT[spec.arch], memory=spec.memory_mib,
                              extra_options=["-smp %d" % spec.cpus])
    else:
        job["context"] = {"extra_kernel_args": _kernel_args(spec)}
    job["actions"] = [{"deploy": _deploy(spec)}, {"boot": _boot(spec)},
                      {"test": {"timeout": {"minutes": spec.minutes}, "monitors": monitors(spec.parts)}}]
    return job


def _kernel_args(spec):
    # loglevel=1 keeps kernel messages from splitting the console lines the host decodes.
    return " ".join(w for w in ("panic=-1 loglevel=1 pagelab.mode=run", spec.kernel_args) if w)


def _deploy(spec):
    if spec.boot == "qemu":
        append = "console=%s %s" % (QEMU_CONSOLE[spec.arch], _kernel_args(spec))
        if '"' in append:
            raise UserError("kernel arguments cannot contain a double quote")
        return {"to": "tmpfs", "timeout": {"minutes": 10},
                "images": {"kernel": {"image_arg": '-kernel {kernel} -append "%s"' % append, "url": spec.kernel_url},
                           "ramdisk": {"image_arg": "-initrd {ramdisk}", "url": spec.ramdisk_url}}}
    kernel = {"url": spec.kernel_url}
    kind = KERNEL_TYPES[spec.boot].get(spec.arch, "image" if spec.boot == "u-boot" else None)
    if kind:
        kernel["type"] = kind
    deploy = {"to": "tftp", "timeout": {"minutes": 10}, "kernel": kernel,
              "ramdisk": {"url": spec.ramdisk_url, "install_modules": False, "install_overlay": False}}
    if spec.dtb_url:
        deploy["dtb"] = {"url": spec.dtb_url}
    return deploy


def _boot(spec):
    boot = {"method": spec.boot, "timeout": {"minutes": 10}, "parameters": {"kernel-start-message": ALIVE}}
    if spec.boot == "qemu":
        boot["media"] = "tmpfs"
    else:
        boot["commands"] = "ramdisk"
    return boot


# ---- YAML (the job's own subset: mappings, lists, strings, numbers, booleans) ----

def to_yaml(obj):
    return "".join(_yaml(obj, 0)) if isinstance(obj, dict) else _scalar(obj) + "\n"


def _yaml(obj, indent):
    pad = " " * indent
    for key, value in obj.items():
        if isinstance(value, dict) and value:
            yield "%s%s:\n" % (pad, _scalar(key))
            yield from _yaml(value, indent + 2)
        elif isinstance(value, list) and value:
            yield "%s%s:\n" % (pad, _scalar(key))
            yield from _yaml_list(value, indent)
        else:
            yield "%s%s: %s\n" % (pad, _scalar(key), _scalar(value))


def _yaml_list(items, indent):
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            lines = list(_yaml(item, indent + 2))
            yield pad + "- " + lines[0][indent + 2:]
            yield from lines[1:]
        else:
            yield "%s- %s\n" % (pad, _scalar(item))


PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.+/-]*$")
RESERVED = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def _scalar(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    text = str(value)
    if PLAIN.match(text) and text.lower() not in RESERVED:
        return text
    return json.dumps(text)      # a JSON string is a YAML double-quoted scalar


# ---- validation ----

def _lava_python():
    """Debian's Python, which sees the Debian packages lava_common and jinja2 come in."""
    return "/usr/bin/python3"


SCHEMA_CHECK = r"""
import json, sys
from lava_common.schemas import validate
from voluptuous import Invalid
try:
    validate(json.load(sys.stdin), strict=True)
except Invalid as e:
    print("%s: %s" % ("/".join(str(p) for p in e.path), e.msg)); sys.exit(1)
"""


def validate_schema(job):
    """None when lava_common's schema (strict) accepts the job, else the problem; UserError without lava_common."""
    res = _run_lava_python(SCHEMA_CHECK, json.dumps(job))
    if res.returncode != 0 and "No module named" in res.stderr:
        raise UserError("validating LAVA jobs needs lava_common (Debian: apt-get install lava-common)")
    return None if res.returncode == 0 else (res.stdout.strip() or res.stderr.strip().splitlines()[-1])


RENDER_DEVICE = r"""
import json, sys
import jinja2, jinja2.sandbox
dirs, template, context = json.load(sys.stdin)
env = jinja2.sandbox.SandboxedEnvironment(loader=jinja2.FileSystemLoader(dirs), autoescape=False, trim_blocks=True)
print(env.get_template(template).render(**context))
"""
DEVICE_TYPE_DIRS = ("/etc/lava-server/dispatcher-config/device-types", "/usr/share/lava-server/device-types")


def render_device(device_dict_text, job):
    """The device configuration a server would give lava-run for this job (its context applied)."""
    with tempfile.TemporaryDirectory(prefix="pagelab-lava-") as d:
        with open(os.path.join(d, "device.jinja2"), "w", encoding="utf-8") as f:
            f.write(device_dict_text)
        dirs = [d] + [p for p in DEVICE_TYPE_DIRS if os.path.isdir(p)]
        res = _run_lava_python(RENDER_DEVICE, json.dumps([dirs, "device.jinja2", job.get("context", {})]))
    if res.returncode != 0:
        raise UserError("rendering the device dictionary failed: %s" % (res.stderr.strip().splitlines() or ["?"])[-1])
    return res.stdout


def stand_in_device(device_type):
    """A device dictionary for validating a job offline: the device type's own template, with this
    machine's /bin/true for the console and power commands (validation checks they exist, never runs them)."""
    if device_type.startswith("qemu"):
        return ("{%% extends '%s.jinja2' %%}\n{%% set no_kvm = True %%}\n{%% set netdevice = 'user,restrict=on' %%}\n"
                % device_type)
    lines = ["{%% extends '%s.jinja2' %%}" % device_type]
    lines += ["{%% set %s = '/bin/true' %%}" % k for k in ("connection_command", "hard_reset_command",
                                                            "power_off_command", "power_on_command")]
    return "\n".join(lines) + "\n"


def validate(job, device_dict=None):
    """(problems, notes): lava_common's schema, then `lava-run --validate` on a rendered device when this
    machine has what that needs (notes say what was not checked and why)."""
    problem = validate_schema(job)
    if problem:
        return ["schema: " + problem], []
    device_type = job["device_type"]
    template = [d for d in DEVICE_TYPE_DIRS if os.path.exists(os.path.join(d, device_type + ".jinja2"))]
    boot = next(iter(job["actions"][1].values()))["method"]
    missing = [] if shutil.which("lava-run") else ["lava-run (lava-dispatcher)"]
    if boot != "qemu":
        missing += [w for w, ok in (("tftpd-hpa", os.path.exists("/etc/default/tftpd-hpa") and
                                     shutil.which("in.tftpd")), ("mkimage (u-boot-tools)", shutil.which("mkimage")))
                    if not ok]
    if not template and not device_dict:
        missing.append("the %s device-type template (lava-server)" % device_type)
    if missing:
        return [], ["lava-run --validate not run: this machine lacks %s" % ", ".join(missing)]
    device = render_device(device_dict or stand_in_device(device_type), job)
    problem = validate_with_lava_run(job, device)
    return (["lava-run --validate: " + problem] if problem else []), []


def _local_artifacts(job, placeholder):
    """The job with every artifact URL that is not file:// pointing at an empty local file: validation
    checks a URL exists, and offline means no request to the lab's file server."""
    copy = json.loads(json.dumps(job))
    for action in copy["actions"]:
        deploy = action.get("deploy", {})
        for image in list(deploy.get("images", {}).values()) + [v for v in deploy.values() if isinstance(v, dict)]:
            if isinstance(image, dict) and "url" in image and not image["url"].startswith("file://"):
                image["url"] = "file://" + placeholder
    return copy


def validate_with_lava_run(job, device_yaml):
    """None when `lava-run --validate` accepts the job on that device, else what it said."""
    with tempfile.TemporaryDirectory(prefix="pagelab-lava-") as d:
        placeholder = os.path.join(d, "artifact")
        open(placeholder, "w").close()
        job_text = to_yaml(_local_artifacts(job, placeholder))
        for name, text in (("job.yaml", job_text), ("device.yaml", device_yaml)):
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        res = subprocess.run(["lava-run", "--validate", "--job-id", "0", "--output-dir", os.path.join(d, "out"),
                              "--device", os.path.join(d, "device.yaml"), os.path.join(d, "job.yaml")],
                             capture_output=True, text=True, timeout=300)
    if res.returncode == 0:
        return None
    return _lava_run_error(res.stdout + res.stderr)


def _lava_run_error(output):
    """What lava-run's JSON log says went wrong: the job result's error_msg, else its error lines."""
    errors = []
    for line in output.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        msg = entry.get("msg") if isinstance(entry, dict) else None
        if isinstance(msg, dict) and msg.get("error_msg"):
            return str(msg["error_msg"]).strip()
        if entry.get("lvl") in ("error", "exception"):
            errors.append(str(msg).strip())
    return "; ".join(errors[-3:]) or (output.strip().splitlines() or ["lava-run failed"])[-1]


def _run_lava_python(code, stdin):
    try:
        return subprocess.run([_lava_python(), "-c", code], input=stdin, capture_output=True, text=True, timeout=120)
    except OSError as e:
        raise UserError("cannot run %s: %s" % (_lava_python(), e.strerror))
