"""What runs on an ssh target: POSIX shell scripts, sent on the session's standard input.

Every script is run as `sh -s`, so the remote login shell (sh, bash, csh,
fish...) only ever parses those two words. Nothing but a POSIX shell and a few
POSIX utilities (uname, mktemp or mkdir, cat, rm, kill, sleep) is needed; the
suite's static binaries are pushed into a private directory.

The guardian owns that directory: it makes it, says where it is, then reads
commands from its standard input until end of file. End of file comes when
the controller closes the session, or when the controller or the network
dies; either way the guardian stops any part still running and removes the
directory, so the host is left as it was found.

Markers share the grammar of the guest console protocol: `=== pagelab-KIND NAME NUM`.
"""
import shlex

DIR_MARK = "=== pagelab-dir "
STATUS_MARK = "=== pagelab-status "

# One line (the shell reads the whole list before the loop's `read` takes the next lines).
GUARDIAN = " ".join("""
umask 077; d=;
for b in "${TMPDIR:-/tmp}" /tmp /var/tmp "$HOME"; do
  [ -n "$b" ] && [ -d "$b" ] && [ -w "$b" ] || continue;
  d=$(mktemp -d "$b/pagelab.XXXXXX" 2>/dev/null) || { d="$b/pagelab.$$"; mkdir "$d" 2>/dev/null || { d=; continue; }; };
  printf '#!/bin/sh\\nexit 0\\n' > "$d/.x" && chmod 700 "$d/.x" && "$d/.x" 2>/dev/null && rm -f "$d/.x" && break;
  rm -rf "$d"; d=;
done;
[ -n "$d" ] || { echo "=== pagelab-error nodir 1"; exit 1; };
echo "=== pagelab-dir $d";
while read -r c a; do
  case $c in stop) [ -f "$d/$a.pid" ] && kill -TERM "$(cat "$d/$a.pid")" 2>/dev/null;; esac;
done;
for f in "$d"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null; done;
n=0; while [ $n -lt 10 ] && ls "$d"/*.pid >/dev/null 2>&1; do sleep 1; n=$((n+1)); done;
for f in "$d"/*.pid; do [ -f "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null; done;
cd / && rm -rf "$d"
""".split()) + "\n"

# What the target is: printed as key=value lines. Keys follow the host's own environment record.
# Files are read with cat: a shell's byte-wise read of /proc/sys files stops after one byte (the
# second read at a non-zero offset returns end of file).
DESCRIBE = r"""
v() { [ -n "$2" ] && printf '%s=%s\n' "$1" "$2"; }
first() { [ -r "$1" ] && l=$(cat "$1" 2>/dev/null) && printf '%s' "${l%%
*}"; }
choice() { l=$(first "$1") || return; case $l in *\[*\]*) l=${l#*[}; printf '%s' "${l%%]*}";; *) printf '%s' "$l";; esac; }
v os "$(uname -s)"; v kernel "$(uname -r)"; v kernel_version "$(uname -v)"; v arch "$(uname -m)"
v hostname "$(uname -n)"
v page_size "$(getconf PAGESIZE 2>/dev/null || getconf PAGE_SIZE 2>/dev/null)"
v ncpu "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
if [ -r /proc/cpuinfo ]; then
  cpu=; while IFS=: read -r k val; do
    case $k in "model name"*|"cpu model"*|Processor*|cpu|cpu[[:cntrl:]]*) [ -z "$cpu" ] && cpu=${val# };; esac
  done < /proc/cpuinfo
  v cpu_model "$cpu"
fi
if [ -r /proc/meminfo ]; then
  while read -r k val unit; do [ "$k" = MemTotal: ] && v mem_total_kib "$val"; done < /proc/meminfo
fi
v thp "$(choice /sys/kernel/mm/transparent_hugepage/enabled)"
v thp_defrag "$(choice /sys/kernel/mm/transparent_hugepage/defrag)"
v aslr "$(first /proc/sys/kernel/randomize_va_space)"
v perf_event_paranoid "$(first /proc/sys/kernel/perf_event_paranoid)"
v governor "$(first /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor)"
if [ -r /proc/swaps ]; then n=0; while read -r l; do n=$((n+1)); done < /proc/swaps; [ $n -gt 1 ] && v swap yes || v swap no; fi
command -v systemd-detect-virt >/dev/null 2>&1 && v virtualization "$(systemd-detect-virt 2>/dev/null)"
v libc "$(getconf GNU_LIBC_VERSION 2>/dev/null)"
:
"""


def run_part(directory, name, argv):
    """Run one part in the guardian's directory: its PID in NAME.pid for `stop`, its exit status on stderr."""
    q = shlex.quote
    cmd = " ".join(q(a) for a in argv)
    pid = q("%s/%s.pid" % (directory, name))
    return ("cd %s || exit 125; %s </dev/null & p=$!; echo $p > %s; wait $p; s=$?; rm -f %s; "
            "echo \"%s%s $s\" >&2; exit $s\n" % (q(directory), cmd, pid, pid, STATUS_MARK, name))


def write_file(path, mode):
    """A command (not a script: standard input carries the data) that stores standard input in PATH.

    The transfer of last resort, for hosts with neither an sftp nor an scp server."""
    q = shlex.quote
    return "cat > %s && chmod %o %s" % (q(path), mode, q(path))


def read_file(path):
    return "cat %s" % shlex.quote(path)
