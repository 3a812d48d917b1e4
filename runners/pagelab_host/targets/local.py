"""local: the suite built for this machine and run here (the default target)."""
import os
import subprocess
from shutil import which

from .. import hostenv
from ..fsutil import atomic_path
from ._command import CommandTarget


class LocalTarget(CommandTarget):
    kind = "local"
    host_page_size = True
    usage = "local"
    summary = "this machine, native build (the default)"

    def label(self):
        return "local"

    def jobs(self):
        return max(1, os.cpu_count() or 1)

    def run(self, plan, ctx):
        super().run(plan, ctx)
        if any(p.name == "perf" for p in plan) and not os.path.exists(ctx.path("topology.xml")):
            _lstopo(ctx)

    def describe(self):
        return hostenv.capture()


def _lstopo(ctx):
    """Topology from hwloc's own tool when the benchmark binary did not write it (this machine only)."""
    tool = which("lstopo-no-graphics") or which("lstopo")
    if not tool:
        ctx.rundir.part("topology", status="not recorded", note="pagelab-bench wrote none and no lstopo (hwloc)")
        return
    out = ctx.path("topology.xml")
    try:
        res = subprocess.run([tool, "--of", "xml", atomic_path(out)], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        ctx.rundir.part("topology", status="not recorded", note=str(e))
        return
    if res.returncode == 0 and os.path.exists(atomic_path(out)):
        os.replace(atomic_path(out), out)
        ctx.rundir.part("topology", status="recorded", via=tool)
    else:
        ctx.rundir.part("topology", status="not recorded", via=tool, note="exit status %d" % res.returncode)


TARGET = LocalTarget
