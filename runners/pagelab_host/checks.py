"""Typos caught before anything runs: a --probes pattern that matches no probe, a --filter that
matches no benchmark, a size QEMU would not take.

Patterns are checked by this machine's own build of the suite (`pagelab-conform -l -f GLOB`,
`pagelab-bench --benchmark_list_tests`), so the rule is the binaries' own, when that build is
there and not older than the sources; otherwise the check is left to the target's run."""
import os
import re
import subprocess

from .errors import UserError

SOURCES = ("suites", "lib", "include", "Makefile")
SIZE = re.compile(r"^[1-9][0-9]*[KMGT]?$", re.IGNORECASE)
# Benchmark instances named by a size scale with the page size: a 16 KiB or 64 KiB target names them
# 4 or 16 times bigger than this machine's build lists them.
PAGE_RATIOS = (4, 16)


def qemu_size(text):
    """argparse type for --memory: a size QEMU takes (1536M, 2G, 2048 = MiB)."""
    if not SIZE.match(text or ""):
        import argparse
        raise argparse.ArgumentTypeError("%r is not a size (e.g. 2G, 1536M, or MiB as a number)" % text)
    return text.upper()


LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,39}$")


def run_label(text):
    """argparse type for --label: a word that can go into a run id and a directory name."""
    if not LABEL.match(text or ""):
        import argparse
        raise argparse.ArgumentTypeError("%r: a label is 1 to 40 letters, digits, ., _, + or - "
                                         "(it goes into the run id)" % text)
    return text


def kernel_args(text):
    """argparse type for --append: boot parameters on one line."""
    if not text.strip() or any(c in text for c in "\n\r\0"):
        import argparse
        raise argparse.ArgumentTypeError("%r: kernel parameters on one line, e.g. 'mitigations=off'" % text)
    return text.strip()


def positive_int(text):
    import argparse
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("%r is not a whole number" % text)
    if n < 1:
        raise argparse.ArgumentTypeError("%r: must be at least 1" % text)
    return n


def _newest_source(repo):
    newest = 0.0
    for top in SOURCES:
        path = os.path.join(repo, top)
        if os.path.isfile(path):
            newest = max(newest, os.path.getmtime(path))
        for root, _, names in os.walk(path):
            for n in names:
                try:
                    newest = max(newest, os.path.getmtime(os.path.join(root, n)))
                except OSError:
                    pass
    return newest


def usable_binary(build, name, repo, no_build):
    """build/name when it can speak for this tree: it exists, runs here, and (unless the run uses what is
    built) no source is newer; else None."""
    path = os.path.join(build, name)
    if not os.access(path, os.X_OK):
        return None
    if not no_build and os.path.getmtime(path) < _newest_source(repo):
        return None
    return path


def unmatched_probes(binary, patterns, prefix=()):
    """The patterns that select no probe of binary, run behind prefix (None: the binary could not tell)."""
    out = []
    for p in patterns:
        try:
            res = subprocess.run(list(prefix) + [binary, "-l", "-f", p], capture_output=True, text=True,
                                 timeout=120)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if res.returncode == 2 and "no probe matches" in res.stderr:
            out.append(p)
        elif res.returncode != 0:
            return None
    return out


def probes_message(patterns, binary):
    return "--probes %s: matches no probe (`%s -l` lists them)" % (", ".join(repr(p) for p in patterns), binary)


def filter_message(regex, profile, binary):
    return "--filter %r: matches no benchmark of the %s profile (`%s --benchmark_list_tests --profile=%s` lists " \
           "them)" % (regex, profile, binary, profile)


def bench_names(binary, profile, regex):
    """Instance names the filter selects ([] for none), or UserError for a regex the binary refuses;
    None when the binary could not tell."""
    try:
        res = subprocess.run([binary, "--benchmark_list_tests=true", "--profile=%s" % profile,
                              "--benchmark_filter=%s" % regex], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode == 2 and "regex" in res.stderr:
        raise UserError("--filter %r: not a valid regular expression" % regex)
    if res.returncode != 0:
        return None
    return [ln.split()[0] for ln in res.stdout.splitlines() if ln.strip()]


def _scaled(name, ratio):
    return "/".join(str(int(w) * ratio) if w.isdigit() else w for w in name.split("/"))


def matches_scaled(binary, profile, regex):
    """Whether the filter selects an instance once sizes are scaled to a bigger page (16 KiB, 64 KiB)."""
    every = bench_names(binary, profile, "") or []
    try:
        rx = re.compile(regex)
    except re.error:
        return True  # the binary's regex dialect (POSIX ERE) took it: no opinion
    return any(rx.search(_scaled(n, r)) for n in every for r in PAGE_RATIOS)


def before_running(args, targets, repo):
    """UserError, one line, for a pattern or filter that selects nothing on these targets."""
    if args.probes and not args.no_conform and all(t.family == "posix" for t in targets):
        binary = usable_binary(args.build, "pagelab-conform", repo, args.no_build)
        bad = unmatched_probes(binary, args.probes) if binary else None
        if bad:
            raise UserError(probes_message(bad, binary))
    if args.filter and not args.no_perf and all(t.family == "posix" for t in targets):
        binary = usable_binary(args.build, "pagelab-bench", repo, args.no_build)
        names = bench_names(binary, args.profile, args.filter) if binary else None
        if names == [] and (all(t.host_page_size for t in targets)
                            or not matches_scaled(binary, args.profile, args.filter)):
            raise UserError(filter_message(args.filter, args.profile, binary))
