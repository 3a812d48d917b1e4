"""ssh test hosts made of network namespaces, each with its own sshd.

Every host is a network namespace joined to this machine by a veth pair on a
/30 of 198.18.0.0/15 (the range reserved for benchmarking networks, so the
addresses exist only here). Each runs its own /usr/sbin/sshd with its own host
key; clients log in as root with a key made for the fixture. Host kinds:

  debian   the machine's own file system, sftp-server as the sftp subsystem
  busybox  a chroot holding only busybox (no Python, no sftp or scp server):
           sshd's ChrootDirectory puts each session there

The fixture writes an ssh client configuration (aliases, key, known_hosts),
so tools are pointed at it with `ssh -F`. Teardown kills every process in the
namespaces by PID and deletes the namespaces, which removes their links.

usage: nshosts.py up DIR [KIND...]   (default: debian debian busybox)
       nshosts.py down DIR
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself and insists on an absolute path
SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PREFIX = "fleet"
SSHD_WAIT_S = 10


class FixtureError(Exception):
    """The machine cannot host the fixture (not root, a tool missing, a command failed)."""


def _run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise FixtureError("%s: %s" % (" ".join(cmd), (res.stderr or res.stdout).strip()))
    return res.stdout


def missing_prerequisites():
    """Why the fixture cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "unshare", "ss", "ssh", "ssh-keygen", "scp"):
        if not shutil.which(tool):
            return "%s is not installed" % tool
    for path, pkg in ((SSHD, "openssh-server"), (SFTP_SERVER, "openssh-sftp-server"), ("/bin/busybox", "busybox-static")):
        if not os.access(path, os.X_OK):
            return "%s is missing (Debian package %s)" % (path, pkg)
    return None


def _free_subnet():
    """A third octet of 198.18.X.0/24 that no interface here uses yet."""
    used = _run(["ip", "-4", "-o", "addr", "show"])
    for _ in range(100):
        octet = random.randrange(256)
        if " 198.18.%d." % octet not in used:
            return octet
    raise FixtureError("no free /24 in 198.18.0.0/16")


def _keygen(path, comment):
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path])
    with open(path + ".pub", encoding="ascii") as f:
        return f.read().strip()


def _busybox_root(root):
    """A minimal system: busybox, its applets, and root's login shell (sshd runs it inside the chroot)."""
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(root, "bin", "busybox"))
    applets = _run(["/bin/busybox", "--list"]).split()
    for name in applets:
        link = os.path.join(root, "bin", name)
        if name != "busybox" and not os.path.lexists(link):
            os.symlink("busybox", link)
    for dev in ("null", "zero", "urandom"):
        open(os.path.join(root, "dev", dev), "w").close()
    login_shell = _root_shell()
    if login_shell != "/bin/sh":
        shim = os.path.join(root, login_shell.lstrip("/"))
        os.makedirs(os.path.dirname(shim), exist_ok=True)
        if not os.path.lexists(shim):
            with open(shim, "w", encoding="ascii") as f:
                f.write("#!/bin/sh\nexec /bin/sh \"$@\"\n")
            os.chmod(shim, 0o755)


def _root_shell():
    with open("/etc/passwd", encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(":")
            if fields[0] == "root" and len(fields) > 6:
                return fields[6] or "/bin/sh"
    return "/bin/sh"


def _mounts(h):
    """Mounts made inside the host's own mount namespace (ip netns exec unshares it): gone with its processes.

    Every host has its own /tmp, so what a run leaves there is seen on that host alone."""
    if h.kind != "busybox":
        return ["mount -t tmpfs -o mode=1777 tmpfs /tmp"]
    root = h.root
    cmds = ["mount -t proc proc %s/proc" % root, "mount -t sysfs sysfs %s/sys" % root,
            "mount -t tmpfs -o mode=1777 tmpfs %s/tmp" % root]
    return cmds + ["mount --bind /dev/%s %s/dev/%s" % (d, root, d) for d in ("null", "zero", "urandom")]


class Host:
    def __init__(self, name, kind, addr, peer, port, netns, link, home):
        self.name, self.kind, self.addr, self.peer, self.port = name, kind, addr, peer, port
        self.netns, self.link, self.home = netns, link, home
        self.pid = None

    def as_dict(self):
        return dict(vars(self))


def _safe_for_sshd(path):
    """sshd's StrictModes and ChrootDirectory want every directory above root-owned and writable by root only."""
    path = os.path.abspath(path)
    while True:
        st = os.stat(path) if os.path.exists(path) else None
        if st is not None and (st.st_uid != 0 or st.st_mode & 0o022):
            return False
        if path == "/":
            return True
        path = os.path.dirname(path)


class Fleet:
    """Hosts under DIR: up() brings them up, down() removes every trace (also after a crash, from DIR/state.json).

    DIR must satisfy sshd's checks on the key and chroot paths; when a directory above it is writable by
    others (a checkout under /tmp, say), the hosts live in a directory of their own under /var/lib instead."""

    def __init__(self, base):
        self.base = os.path.abspath(base)
        self.hosts = []
        self.tag = None

    @property
    def ssh_config(self):
        return os.path.join(self.base, "client", "ssh_config")

    @property
    def known_hosts(self):
        return os.path.join(self.base, "client", "known_hosts")

    def up(self, kinds=("debian", "debian", "busybox")):
        why = missing_prerequisites()
        if why:
            raise FixtureError(why)
        if not _safe_for_sshd(self.base):
            self.base = tempfile.mkdtemp(prefix="pagelab-fleet-", dir="/var/lib")
        os.makedirs(os.path.join(self.base, "client"), mode=0o755, exist_ok=True)
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        self.tag = "%04x" % random.randrange(0x10000)
        octet = _free_subnet()
        client_pub = _keygen(os.path.join(self.base, "client", "id_ed25519"), "pagelab fleet client")
        with open(os.path.join(self.base, "authorized_keys"), "w", encoding="ascii") as f:
            f.write(client_pub + "\n")
        for i, kind in enumerate(kinds, 1):
            name = "%s-h%d" % (PREFIX, i)
            self.hosts.append(Host(name, kind, "198.18.%d.%d" % (octet, 4 * i + 2), "198.18.%d.%d" % (octet, 4 * i + 1),
                                   22 if i % 2 else 2200 + i, "%s-%s-h%d" % (PREFIX, self.tag, i),
                                   "fl%s-h%d" % (self.tag, i), os.path.join(self.base, name)))
        self._save()
        try:
            for h in self.hosts:
                self._network(h)
                self._start(h)
            self._write_client_config()
            for h in self.hosts:
                self._wait_listening(h)
        except BaseException:
            self.down()
            raise
        return self

    def _network(self, h):
        _run(["ip", "netns", "add", h.netns])
        _run(["ip", "link", "add", h.link, "type", "veth", "peer", "name", "eth0", "netns", h.netns])
        _run(["ip", "addr", "add", "%s/30" % h.peer, "dev", h.link])
        _run(["ip", "link", "set", h.link, "up"])
        for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "eth0", "up"],
                    ["ip", "addr", "add", "%s/30" % h.addr, "dev", "eth0"]):
            _run(["ip", "netns", "exec", h.netns] + cmd)

    def _sshd_config(self, h):
        os.makedirs(h.home, mode=0o755, exist_ok=True)
        key = os.path.join(h.home, "ssh_host_ed25519_key")
        h.hostkey = _keygen(key, h.name)
        lines = ["Port %d" % h.port, "ListenAddress %s" % h.addr, "HostKey %s" % key, "PidFile none",
                 "AuthorizedKeysFile %s" % os.path.join(self.base, "authorized_keys"),
                 "PermitRootLogin prohibit-password", "PasswordAuthentication no",
                 "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes yes", "LogLevel INFO"]
        if h.kind == "busybox":
            h.root = os.path.join(h.home, "root")
            _busybox_root(h.root)
            lines.append("ChrootDirectory %s" % h.root)
        else:
            lines.append("Subsystem sftp %s" % SFTP_SERVER)
        path = os.path.join(h.home, "sshd_config")
        with open(path, "w", encoding="ascii") as f:
            f.write("\n".join(lines) + "\n")
        return path

    def _start(self, h):
        config = self._sshd_config(h)
        script = " && ".join(_mounts(h) + ["hostname %s" % h.name, "exec %s -D -e -f %s" % (SSHD, config)])
        log = open(os.path.join(h.home, "sshd.log"), "ab")
        try:
            # Its own UTS namespace too: each host has its own name.
            proc = subprocess.Popen(["ip", "netns", "exec", h.netns, "unshare", "--uts", "sh", "-c", script],
                                    stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        finally:
            log.close()
        h.pid = proc.pid
        self._save()

    def _wait_listening(self, h):
        deadline = time.monotonic() + SSHD_WAIT_S
        while time.monotonic() < deadline:
            res = subprocess.run(["ip", "netns", "exec", h.netns, "ss", "-Hltn", "sport = :%d" % h.port],
                                 capture_output=True, text=True)
            if res.stdout.strip():
                return
            if not _alive(h.pid):
                break
            time.sleep(0.05)
        with open(os.path.join(h.home, "sshd.log"), encoding="utf-8", errors="replace") as f:
            tail = f.read().strip().splitlines()[-3:]
        raise FixtureError("%s: sshd did not start listening: %s" % (h.name, " | ".join(tail) or "no output"))

    def _write_client_config(self):
        with open(self.known_hosts, "w", encoding="ascii") as f:
            for h in self.hosts:
                f.write("%s %s\n" % (h.addr if h.port == 22 else "[%s]:%d" % (h.addr, h.port),
                                     " ".join(h.hostkey.split()[:2])))
        first = self.hosts[0]
        blocks = ["Host %s\n  HostName %s\n  Port %d\n" % (h.name, h.addr, h.port) for h in self.hosts]
        # Reachable sshd, host key never recorded: must be refused with advice, never accepted.
        blocks.append("Host %s-stranger\n  HostName %s\n  Port %d\n  HostKeyAlias %s-stranger\n"
                      % (PREFIX, first.addr, first.port, PREFIX))
        # An address that exists here with nothing listening: connection refused at once.
        blocks.append("Host %s-down\n  HostName %s\n  Port 9\n" % (PREFIX, first.addr))
        blocks.append("Host *\n  User root\n  IdentityFile %s\n  IdentitiesOnly yes\n  UserKnownHostsFile %s\n"
                      "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  ConnectTimeout 10\n"
                      % (os.path.join(self.base, "client", "id_ed25519"), self.known_hosts))
        with open(self.ssh_config, "w", encoding="ascii") as f:
            f.write("\n".join(blocks))

    def tmp_of(self, h):
        """The host's /tmp as this machine sees it (through its sshd's mount namespace)."""
        root = "/proc/%d/root" % h.pid
        return os.path.join(root, h.root.lstrip("/"), "tmp") if h.kind == "busybox" else root + "/tmp"

    def kill_host(self, h, sig=signal.SIGKILL):
        """Every process in the host's namespace, by PID: the machine dies as a whole."""
        for pid in namespace_pids(h.netns):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def down(self):
        for h in self.hosts:
            self.kill_host(h)
            if h.pid:
                _reap(h.pid)
            subprocess.run(["ip", "netns", "del", h.netns], capture_output=True)
            subprocess.run(["ip", "link", "del", h.link], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def _save(self):
        with open(os.path.join(self.base, "state.json"), "w", encoding="utf-8") as f:
            json.dump({"tag": self.tag, "hosts": [h.as_dict() for h in self.hosts]}, f, indent=1)

    @classmethod
    def load(cls, base):
        fleet = cls(base)
        with open(os.path.join(fleet.base, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
        fleet.tag = state["tag"]
        for d in state["hosts"]:
            h = Host(d["name"], d["kind"], d["addr"], d["peer"], d["port"], d["netns"], d["link"], d["home"])
            h.pid, h.root = d.get("pid"), d.get("root")
            fleet.hosts.append(h)
        return fleet


def namespace_pids(netns):
    res = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _reap(pid):
    """Collect our own child; a PID from an earlier process (down after a crash) is only waited for."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                return
        except ChildProcessError:
            if not _alive(pid):
                return
        time.sleep(0.02)


def main(argv):
    if len(argv) < 2 or argv[0] not in ("up", "down"):
        sys.stderr.write(__doc__.split("usage:")[1])
        return 2
    try:
        if argv[0] == "up":
            fleet = Fleet(argv[1]).up(tuple(argv[2:]) or ("debian", "debian", "busybox"))
            for h in fleet.hosts:
                print("ssh:%s\t%s %s:%d pid %d" % (h.name, h.kind, h.addr, h.port, h.pid))
            print("ssh config: %s (PAGELAB_SSH_CONFIG=%s); down: nshosts.py down %s"
                  % (fleet.ssh_config, fleet.ssh_config, fleet.base))
        else:
            Fleet.load(argv[1]).down()
    except (FixtureError, OSError) as e:
        sys.stderr.write("nshosts: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
