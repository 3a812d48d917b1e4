"""wine: the suite's Windows build (mingw-w64, `make TARGET=windows`) run under Wine, headless.
Wine is an independent implementation of the Windows interface on top of Linux: whatever it does
differently from the documented Windows semantics is a finding. The run directory records the
Windows version Wine reports (`cmd /c ver`, and the suite's own RtlGetVersion) and Wine's version.
Wine runs in a prefix of pagelab's own under the cache (never ~/.wine), made once per Wine version."""
import os
import shutil
import subprocess
import tempfile

from ..errors import UserError
from ..targetrun import TargetFailed, tool_version
from . import Need
from ._arch import build_dir
from ._command import CommandTarget
from ._debian import cache_root

BINARIES = ("pagelab-conform", "pagelab-bench")
PREFIX_DEADLINE = 300  # seconds to create a prefix (the first one takes tens of seconds)
# Headless and quiet: no display, no debug channels, no offer to install Mono or Gecko.
WINE_ENV = ("WINEDEBUG=-all", "WINEDLLOVERRIDES=mscoree,mshtml=")
AEDEBUG = "HKLM\\Software\\Microsoft\\Windows NT\\CurrentVersion\\AeDebug"
PREFIX_READY = "pagelab-prefix-ready"  # written last: a prefix without it is remade


class WineTarget(CommandTarget):
    kind = "wine"
    family = "windows"
    usage = "wine"
    summary = "the Windows build (mingw-w64) under Wine, headless"

    def __init__(self, arg, opts):
        super().__init__(arg, opts)
        if arg:
            raise UserError("target wine takes no argument (got wine:%s)" % arg)
        self.prefix_dir = None
        self.windows_version = None

    def label(self):
        return "wine"

    def needs(self):
        return [Need("wine", "wine wine64", "the Windows loader"),
                Need("x86_64-w64-mingw32-gcc", "gcc-mingw-w64-x86-64", "the Windows cross compiler")]

    def make_variables(self):
        return ("TARGET=windows",)

    def build_dir(self, ctx):
        return build_dir(ctx, "windows")

    def jobs(self):
        return max(1, os.cpu_count() or 1)

    def prepare(self, ctx):
        built = ctx.make(self.build_dir(ctx), self.make_variables(), binaries=tuple(b + ".exe" for b in BINARIES))
        self.binaries = {b: built[b + ".exe"] for b in BINARIES}
        self.prefix_dir = ensure_prefix(ctx.say, ctx.remaining())
        self.windows_version = _windows_version(self.prefix())
        ctx.rundir.manifest.setdefault("wine", {}).update(
            {"prefix": self.prefix_dir, "version": tool_version(["wine"]), "windows_version": self.windows_version})
        ctx.rundir.save()

    def prefix(self):
        return launcher(self.prefix_dir)

    def describe(self):
        info = {"target": self.spec, "os": "Windows", "windows_implementation": "wine",
                "wine_version": tool_version(["wine"]), "build": "make TARGET=windows",
                "compiler": tool_version(["x86_64-w64-mingw32-gcc"])}
        if self.windows_version:
            info["windows_version"] = self.windows_version
        return info


def ensure_prefix(say, seconds):
    """The Wine prefix for this Wine version, made once (in a temporary directory, then renamed into
    place) and set up for unattended runs. say(message) reports progress; TargetFailed when it cannot."""
    version = (tool_version(["wine"]) or "wine").split()[0]
    path = os.path.join(cache_root(), "wine", version)
    if os.path.isfile(os.path.join(path, PREFIX_READY)):
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".%s." % version, dir=os.path.dirname(path))
    say("wine: making a prefix for %s (once)" % version)
    try:
        _run_in(tmp, [shutil.which("wineboot") or "wineboot", "--init"], min(PREFIX_DEADLINE, max(1, seconds)))
        # A crashing program ends at once: no debugger attaches and dumps into its output.
        _run_in(tmp, launcher(tmp) + ["reg", "add", AEDEBUG, "/v", "Debugger", "/t", "REG_SZ", "/d", "", "/f"], 120)
        _run_in(tmp, [shutil.which("wineserver") or "wineserver", "-w"], 60)
        open(os.path.join(tmp, PREFIX_READY), "w").close()
        os.rename(tmp, path)
    except OSError as e:
        if not os.path.isfile(os.path.join(path, PREFIX_READY)):  # another run made it first
            raise TargetFailed("cannot make a Wine prefix: %s" % e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def _run_in(prefix, cmd, seconds):
    env = dict(os.environ, WINEPREFIX=prefix, **dict(v.split("=", 1) for v in WINE_ENV))
    for var in ("DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(var, None)
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise TargetFailed("%s did not finish within %d s" % (os.path.basename(cmd[0]), seconds))
    if res.returncode != 0:
        raise TargetFailed("%s failed (exit status %d): %s" % (" ".join(cmd[-3:]), res.returncode,
                                                              (res.stderr.strip().splitlines() or ["no message"])[-1]))


def launcher(prefix):
    """The command prefix that runs a Windows program in this Wine prefix, headless."""
    return ["env", "-u", "DISPLAY", "-u", "WAYLAND_DISPLAY", "WINEPREFIX=%s" % prefix] + list(WINE_ENV) + \
        [shutil.which("wine") or "wine"]


def _windows_version(prefix):
    """The version Wine says it is: 'Microsoft Windows 6.1.7601' (cmd's ver), or None."""
    try:
        res = subprocess.run(prefix + ["cmd", "/c", "ver"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    return lines[0] if res.returncode == 0 and lines else None


TARGET = WineTarget
