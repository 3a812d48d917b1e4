"""A target where the suite runs as a command on this machine, maybe behind a launcher."""
import os
import subprocess

from .. import checks
from ..fsutil import atomic_path
from ..plan import listed_names
from ..targetrun import BadRequest
from . import Target


class CommandTarget(Target):
    """Subclasses say how to build (make_variables) and what goes in front of each command (prefix)."""

    def make_variables(self):
        """Variables for make (e.g. CC=musl-gcc STATIC=1); () builds for this machine."""
        return ()

    def prefix(self):
        """The launcher in front of every suite command ([] for none)."""
        return []

    def build_dir(self, ctx):
        return os.path.join(ctx.build_root, "targets", self.label()) if self.make_variables() else ctx.build_root

    def prepare(self, ctx):
        self.binaries = ctx.make(self.build_dir(ctx), self.make_variables())

    def run(self, plan, ctx):
        self.check_selection(plan, ctx)
        for part in plan:
            binary = self.binaries.get(part.binary)
            if not binary or not os.access(binary, os.X_OK):
                ctx.not_run(part, "%s does not exist" % binary, status="not built")
                continue
            outputs = {}

            def out(name, outputs=outputs):
                outputs[name] = atomic_path(ctx.path(name))
                return outputs[name]
            argv = self.prefix() + part.argv(self.binaries.get, out)
            ctx.exec_part(part, argv, outputs, total=self._count(part, binary))

    def check_selection(self, plan, ctx):
        """BadRequest when --probes or --filter selects nothing in this target's own binaries (what the
        check before the run could not tell: no build here yet, or one older than the sources)."""
        for part in plan:
            binary = self.binaries.get(part.binary)
            if not binary or not os.access(binary, os.X_OK):
                continue
            if part.name == "conformance" and ctx.options.probe_filters:
                bad = checks.unmatched_probes(binary, ctx.options.probe_filters, self.prefix())
                if bad:
                    raise BadRequest(checks.probes_message(bad, binary))
            elif part.name == "perf" and ctx.options.bench_filter and part.resume_from is None:
                try:
                    res = subprocess.run(self.prefix() + [binary] + part.listing, capture_output=True, text=True,
                                         timeout=120)
                except (OSError, subprocess.TimeoutExpired):
                    continue
                if res.returncode == 0 and not listed_names(res.stdout):
                    raise BadRequest(checks.filter_message(ctx.options.bench_filter, ctx.options.profile, binary))

    def _count(self, part, binary):
        """How many steps the part will take (for the time left), when it can list them quickly."""
        if not part.listing:
            return None
        try:
            res = subprocess.run(self.prefix() + [binary] + part.listing, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return len(listed_names(res.stdout)) or None if res.returncode == 0 else None
