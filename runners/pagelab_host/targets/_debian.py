"""Debian kernel packages for any architecture, fetched with a private APT configuration.

Each architecture gets its own sources, lists and cache under the pagelab cache
(~/.cache/pagelab/apt/ARCH) and `APT::Architecture`; the machine's own APT setup
is never touched (adding a foreign architecture system-wide breaks `apt-get update`
on mirrors that lack it). A series such as 6.1 is resolved through the flavour's
meta package (linux-image-FLAVOUR, linux-image-SERIES-FLAVOUR) at fetch time,
because point releases rename the image packages.
"""
import fcntl
import functools
import glob
import gzip
import os
import re
import shutil
import subprocess
import tempfile
import time

from ..errors import UserError, warn

SUITES = (("debian", ("bookworm", "bookworm-updates", "bookworm-backports", "trixie", "trixie-updates")),
          ("debian-security", ("bookworm-security", "trixie-security")))
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
LISTS_MAX_AGE_S = 24 * 3600


def cache_root():
    return os.environ.get("PAGELAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "pagelab")


def mirror():
    """The Debian mirror this machine uses (PAGELAB_DEBIAN_MIRROR overrides), else deb.debian.org."""
    if os.environ.get("PAGELAB_DEBIAN_MIRROR"):
        return os.environ["PAGELAB_DEBIAN_MIRROR"].rstrip("/")
    for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
        try:
            text = open(path, encoding="utf-8", errors="replace").read()
        except OSError:
            continue
        m = re.search(r"(?m)^(?:deb\s+(?:\[[^]]*\]\s+)?|URIs:\s*)(\S+/debian)/?\s", text)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


class PrivateApt:
    """apt-get and apt-cache for one Debian architecture, with their own directories."""

    def __init__(self, debian_arch):
        self.arch = debian_arch
        self.root = os.path.join(cache_root(), "apt", debian_arch)
        for d in ("etc/sources.list.d", "etc/preferences.d", "state/lists/partial", "cache/archives/partial"):
            os.makedirs(os.path.join(self.root, d), exist_ok=True)

    def options(self):
        r = self.root
        return ["-o", "Dir::Etc=%s/etc" % r, "-o", "Dir::Etc::SourceList=%s/etc/sources.list" % r,
                "-o", "Dir::Etc::SourceParts=%s/etc/sources.list.d" % r,
                "-o", "Dir::Etc::PreferencesParts=%s/etc/preferences.d" % r,
                "-o", "Dir::State=%s/state" % r, "-o", "Dir::State::status=/dev/null",
                "-o", "Dir::Cache=%s/cache" % r, "-o", "APT::Architecture=%s" % self.arch,
                "-o", "APT::Architectures=%s" % self.arch, "-o", "Acquire::Languages=none",
                "-o", "Debug::NoLocking=true"]

    def _sources(self):
        base = mirror()
        lines = []
        for repo, suites in SUITES:
            url = base if repo == "debian" else re.sub(r"/debian$", "/debian-security", base)
            lines += ["deb [signed-by=%s] %s %s main" % (KEYRING, url, s) for s in suites]
        return "\n".join(lines) + "\n"

    def update(self, force=False):
        """Refresh the lists when older than a day; a failed list is a warning when others are there."""
        sources = os.path.join(self.root, "etc", "sources.list")
        want = self._sources()
        if not os.path.exists(sources) or open(sources).read() != want:
            with open(sources, "w") as f:
                f.write(want)
            force = True
        stamp = os.path.join(self.root, "state", "updated")
        if not force and os.path.exists(stamp) and time.time() - os.path.getmtime(stamp) < LISTS_MAX_AGE_S:
            return
        res = self._run(["apt-get"] + self.options() + ["-q", "update"], 900)
        lists = glob.glob(os.path.join(self.root, "state", "lists", "*_Packages*"))
        if res.returncode != 0:
            errs = [ln for ln in (res.stdout + res.stderr).splitlines() if ln.startswith(("E:", "Err:"))]
            if not lists:
                raise UserError("apt-get update for %s failed: %s" % (self.arch, (errs or ["?"])[0]))
            warn("apt-get update for %s: %s (using the lists that were fetched)" % (self.arch, (errs or ["?"])[0]))
        open(stamp, "w").close()

    def records(self, package):
        """Every available version of package: [(version, depends text)]."""
        res = self._run(["apt-cache"] + self.options() + ["show", package], 120)
        out = []
        for rec in res.stdout.split("\n\n"):
            ver = re.search(r"(?m)^Version: (\S+)", rec)
            dep = re.search(r"(?m)^Depends: (.*)$", rec)
            if ver:
                out.append((ver.group(1), dep.group(1) if dep else ""))
        return out

    def download(self, package, dest_dir):
        """The .deb of package in dest_dir (downloaded once; atomically)."""
        found = glob.glob(os.path.join(dest_dir, package + "_*.deb"))
        if found:
            return found[0]
        os.makedirs(dest_dir, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix=".download-", dir=dest_dir)
        try:
            res = self._run(["apt-get"] + self.options() + ["-q", "download", package], 1800, cwd=tmp)
            debs = glob.glob(os.path.join(tmp, package + "_*.deb"))
            if res.returncode != 0 or not debs:
                last = ((res.stderr or res.stdout).strip().splitlines() or ["?"])[-1]
                raise UserError("apt-get download %s (%s) failed: %s" % (package, self.arch, last))
            final = os.path.join(dest_dir, os.path.basename(debs[0]))
            os.replace(debs[0], final)
            return final
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _run(self, cmd, timeout, cwd=None):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise UserError("%s failed: %s" % (" ".join(cmd[:1] + cmd[-2:]), e))


def _lock(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    f = open(path, "w")
    fcntl.flock(f, fcntl.LOCK_EX)
    return f


def image_package(apt, series, flavours):
    """(image package, version) of the newest kernel of series (e.g. 6.1) in the first flavour that has one."""
    want = re.compile(r"^linux-image-%s[.-]" % re.escape(series))
    for flavour in flavours:
        found = []
        for meta in ("linux-image-%s" % flavour, "linux-image-%s-%s" % (series, flavour)):
            for version, depends in apt.records(meta):
                dep = re.match(r"\s*(linux-image-\S+)", depends)
                if dep and want.match(dep.group(1)) and dep.group(1).endswith("-" + flavour):
                    found.append((version, dep.group(1)))
        if found:
            version, pkg = max(found, key=lambda f: version_key(f[0]))
            return pkg, version
    return None, None


def fetch_kernel(series, debian_arch, flavours):
    """(kernel image path, package file name) for a Debian kernel series; cached under the pagelab cache."""
    apt = PrivateApt(debian_arch)
    with _lock(os.path.join(apt.root, "lock")):
        try:
            apt.update()
            pkg, _ = image_package(apt, series, flavours)
        except UserError as e:
            cached = _cached(series, flavours)
            if not cached:
                raise
            warn("%s; using the cached %s" % (e, os.path.basename(os.path.dirname(os.path.dirname(cached)))))
            return cached, os.path.basename(os.path.dirname(os.path.dirname(cached)))
        if pkg is None:
            raise UserError("no Debian %s kernel %s in flavour %s (looked at %s)" % (
                debian_arch, series, " or ".join(flavours), ", ".join(s for _, ss in SUITES for s in ss)))
        deb = apt.download(pkg, os.path.join(cache_root(), "debs"))
    return extract_image(deb), os.path.basename(deb)


def _cached(series, flavours):
    for flavour in flavours:
        found = sorted(glob.glob(os.path.join(cache_root(), "kernels", "linux-image-%s[.-]*-%s_*" % (series, flavour),
                                              "boot", "vmlinu*")))
        if found:
            return found[-1]
    return None


def extract_image(deb):
    """The kernel image inside a .deb (decompressed when gzip: not every QEMU loader reads gzip)."""
    dest = os.path.join(cache_root(), "kernels", os.path.basename(deb)[:-4])
    found = glob.glob(os.path.join(dest, "boot", "vmlinu*"))
    if found:
        return found[0]
    tmp = tempfile.mkdtemp(prefix=".extract-", dir=os.path.dirname(dest) if os.path.isdir(os.path.dirname(dest))
                           else _mkdir(os.path.dirname(dest)))
    try:
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        res = subprocess.run(["tar", "-x", "-C", tmp, "--wildcards", "./boot/vmlinu*"], stdin=tar.stdout,
                             capture_output=True, text=True)
        tar.stdout.close()
        images = glob.glob(os.path.join(tmp, "boot", "vmlinu*"))
        if tar.wait() != 0 or res.returncode != 0 or not images:
            raise UserError("%s: no kernel image could be unpacked: %s" % (deb, res.stderr.strip() or "no boot/vmlinu*"))
        _gunzip_in_place(images[0])
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return glob.glob(os.path.join(dest, "boot", "vmlinu*"))[0]


def extract_module(deb, path):
    """A kernel module inside a kernel .deb ('drivers/block/brd', with whatever compression it has), unpacked
    under the cache next to the image; None when the package has none."""
    dest = os.path.join(cache_root(), "kernels", os.path.basename(deb)[:-4], "modules")
    # Debian 13 ships modules under /usr/lib/modules, earlier releases under /lib/modules.
    patterns = ["%slib/modules/*/kernel/%s.ko*" % (usr, path) for usr in ("", "usr/")]
    found = [f for p in patterns for f in glob.glob(os.path.join(dest, p))]
    if found or not os.path.isfile(deb):
        return found[0] if found else None
    tmp = tempfile.mkdtemp(prefix=".modules-", dir=_mkdir(os.path.dirname(dest)))
    try:
        tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", tmp, "--wildcards"] + ["./" + p for p in patterns], stdin=tar.stdout,
                       capture_output=True)
        tar.stdout.close()
        tar.wait()
        if any(glob.glob(os.path.join(tmp, p)) for p in patterns):
            os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    found = [f for p in patterns for f in glob.glob(os.path.join(dest, p))]
    return found[0] if found else None


def _mkdir(d):
    os.makedirs(d, exist_ok=True)
    return d


def _gunzip_in_place(path):
    with open(path, "rb") as f:
        if f.read(2) != b"\x1f\x8b":
            return
    with gzip.open(path, "rb") as f:
        data = f.read()
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)


def version_key(v):
    """A sort key that orders Debian version strings as dpkg does."""
    return functools.cmp_to_key(compare_versions)(v)


def compare_versions(a, b):
    """-1, 0 or 1, as `dpkg --compare-versions` orders epoch, upstream version and revision."""
    pa, pb = _split_version(a), _split_version(b)
    if pa[0] != pb[0]:
        return -1 if pa[0] < pb[0] else 1
    return _verrevcmp(pa[1], pb[1]) or _verrevcmp(pa[2], pb[2])


def _split_version(v):
    epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "0")
    return int(epoch or 0), upstream, revision


def _order(c):
    """dpkg's character order: '~' before everything (even the end), letters before the rest."""
    if c == "~":
        return -1
    if c.isdigit() or not c:
        return 0
    return ord(c) if c.isalpha() else ord(c) + 256


def _verrevcmp(a, b):
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            cb = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ca != cb:
                return -1 if ca < cb else 1
            i, j = i + (i < len(a) and not a[i].isdigit()), j + (j < len(b) and not b[j].isdigit())
        da = re.match(r"\d*", a[i:]).group(0)
        db = re.match(r"\d*", b[j:]).group(0)
        i, j = i + len(da), j + len(db)
        if int(da or 0) != int(db or 0):
            return -1 if int(da or 0) < int(db or 0) else 1
    return 0
