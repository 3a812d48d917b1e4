"""A LAVA instance on this machine, for tests: server, scheduler, worker, one QEMU device.

Debian 12's LAVA (2023.01) runs without systemd: every daemon is started here
by hand and its PID kept. The instance has its own PostgreSQL role and
database, its own device dictionaries, job output and logs under DIR (every
LAVA setting the server reads can come from LAVA_SETTINGS_* variables), so it
never touches an installed instance. The device is the `qemu` device type
with KVM off (nested guests fail on many VMs) and a user-mode network that
reaches nothing. Teardown stops every process it started by PID (each in its
own process group: gunicorn's workers, the worker's lava-run and QEMU) and
drops the role and the database.

usage: lavalab.py up DIR     prints the server URL and an API token
       lavalab.py down DIR
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

PREFIX = "fleet"
DEVICE_TYPE = "qemu"
START_S = 60
POSTGRES_START_S = 60


class LabError(Exception):
    """The instance could not be brought up; one line."""


def missing_prerequisites():
    """Why a LAVA instance cannot run here, or None."""
    if os.geteuid() != 0:
        return "a LAVA instance needs root (it runs QEMU through lava-run and owns a database)"
    for tool, pkg in (("lava-server", "lava-server"), ("lava-worker", "lava-dispatcher"), ("lava-run", "lava-dispatcher"),
                      ("gunicorn3", "gunicorn"), ("pg_lsclusters", "postgresql-common"),
                      ("qemu-system-x86_64", "qemu-system-x86")):
        if not shutil.which(tool):
            return "%s is not installed (Debian package %s)" % (tool, pkg)
    return None


def _run(cmd, env=None, input_text=None, timeout=300):
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, input=input_text, timeout=timeout)
    if res.returncode != 0:
        raise LabError("%s: %s" % (" ".join(cmd[:4]), ((res.stderr or res.stdout).strip().splitlines() or ["?"])[-1]))
    return res.stdout


def _psql(sql):
    return _run(["runuser", "-u", "postgres", "--", "psql", "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_postgres():
    """Start the first PostgreSQL cluster if none runs; returns (version, name) started, or None."""
    clusters = [ln.split() for ln in _run(["pg_lsclusters", "-h"]).splitlines() if ln.strip()]
    if not clusters:
        raise LabError("no PostgreSQL cluster (pg_createcluster 15 main)")
    if any(c[3] == "online" for c in clusters):
        return None
    version, name = clusters[0][0], clusters[0][1]
    _run(["pg_ctlcluster", version, name, "start"], timeout=POSTGRES_START_S)
    return version, name


class Lab:
    def __init__(self, base):
        self.base = os.path.abspath(base)
        self.state = {"pids": {}}

    def path(self, *names):
        return os.path.join(self.base, *names)

    @property
    def url(self):
        return "http://127.0.0.1:%d/" % self.state["port"]

    @property
    def token(self):
        return self.state["token"]

    @property
    def device_type(self):
        return DEVICE_TYPE

    def env(self):
        """LAVA's settings for this instance, as the server reads them from the environment."""
        db = {"default": {"ENGINE": "django.db.backends.postgresql", "NAME": self.state["db"],
                          "USER": self.state["db"], "PASSWORD": self.state["db_password"],
                          "HOST": "127.0.0.1", "PORT": 5432}}
        env = dict(os.environ, LAVA_YAML_SETTINGS_DATABASES=json.dumps(db),
                   LAVA_SETTINGS_DEVICES_PATH=self.path("devices"), LAVA_SETTINGS_MEDIA_ROOT=self.path("media"),
                   LAVA_SETTINGS_DJANGO_LOGFILE=self.path("logs", "django.log"),
                   LAVA_SETTINGS_HEALTH_CHECKS_PATH=self.path("health-checks"))
        return env

    def up(self):
        why = missing_prerequisites()
        if why:
            raise LabError(why)
        for d in ("devices", "media", "health-checks", "logs", "worker"):
            os.makedirs(self.path(d), exist_ok=True)
        tag = secrets.token_hex(3)
        self.state.update(db="%s_lava_%s" % (PREFIX, tag), db_password=secrets.token_hex(16), port=_free_port(),
                          worker="%s-worker-%s" % (PREFIX, tag), device="%s-qemu-%s" % (PREFIX, tag))
        self._save()
        try:
            started = start_postgres()
            if started:
                self.state["postgres_started"] = started
            self._save()
            self._database()
            self._objects()
            self._daemons()
            self._wait_ready()
        except BaseException:
            self.down()
            raise
        return self

    def _database(self):
        db = self.state["db"]
        _psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (db, self.state["db_password"]))
        self.state["role"] = db
        _psql("CREATE DATABASE %s OWNER %s" % (db, db))
        self.state["database"] = db
        self._save()
        _run(["lava-server", "manage", "migrate", "--noinput"], env=self.env(), timeout=600)

    def _objects(self):
        """A user with an API token, the worker, the device type and one device, in one Django start."""
        code = "\n".join([
            "from django.contrib.auth.models import User",
            "from lava_scheduler_app.models import Device, DeviceType, Worker",
            "from linaro_django_xmlrpc.models import AuthToken",
            "u = User.objects.create_superuser('%s-admin', 'root@localhost', None)" % PREFIX,
            "t = AuthToken.objects.create(user=u, description='pagelab tests')",
            "w = Worker.objects.create(hostname='%s', health=Worker.HEALTH_ACTIVE)" % self.state["worker"],
            "dt = DeviceType.objects.create(name='%s')" % DEVICE_TYPE,
            "Device.objects.create(hostname='%s', device_type=dt, worker_host=w, health=Device.HEALTH_GOOD)"
            % self.state["device"],
            "print('TOKEN', t.secret)", "print('WORKER', w.token)"])
        out = _run(["lava-server", "manage", "shell"], env=self.env(), input_text=code)
        words = dict(ln.split(" ", 1) for ln in out.splitlines() if ln.startswith(("TOKEN ", "WORKER ")))
        self.state.update(token=words["TOKEN"], worker_token=words["WORKER"])
        with open(self.path("devices", self.state["device"] + ".jinja2"), "w", encoding="utf-8") as f:
            f.write(device_dictionary())
        self._save()

    def _daemons(self):
        env = self.env()
        self._spawn("gunicorn", ["gunicorn3", "lava_server.wsgi", "--bind", "127.0.0.1:%d" % self.state["port"],
                                 "--workers", "2", "--timeout", "120", "--log-file", self.path("logs", "gunicorn.log")],
                    env)
        self._spawn("scheduler", ["lava-server", "manage", "lava-scheduler", "--level", "DEBUG", "--log-file",
                                  self.path("logs", "scheduler.log")], env)
        # QEMU runs under the worker's lava-run: a lower priority keeps the machine usable. The worker asks for
        # work every 2 s instead of 20: the job starts sooner.
        self._spawn("worker", ["nice", "-n", "10", "lava-worker", "--name", self.state["worker"], "--url", self.url,
                               "--token", self.state["worker_token"], "--worker-dir", self.path("worker"),
                               "--log-file", self.path("logs", "worker.log"), "--level", "DEBUG",
                               "--ping-interval", "2"], env)

    def _spawn(self, name, cmd, env):
        with open(self.path("logs", name + ".out"), "ab") as out:
            proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    start_new_session=True)
        self.state["pids"][name] = proc.pid
        self._save()

    def _wait_ready(self):
        """Until the server answers and the worker has reported in (the device is then schedulable)."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            for name, pid in self.state["pids"].items():
                if _exited(pid):
                    raise LabError("%s exited at start: see %s" % (name, self.path("logs", name + ".out")))
            try:
                with urllib.request.urlopen(self.url + "api/v0.2/workers/%s/" % self.state["worker"], timeout=5) as r:
                    if json.load(r).get("state") == "Online":
                        return
            except (OSError, ValueError):
                pass
            time.sleep(0.5)
        raise LabError("the LAVA worker did not come online within %d s: see %s" % (START_S, self.path("logs")))

    def down(self):
        for name, pid in list(self.state["pids"].items()):
            _stop_group(pid)
            self.state["pids"].pop(name)
        if self.state.get("database"):
            _psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.state["database"])
        if self.state.get("role"):
            _psql("DROP ROLE IF EXISTS %s" % self.state["role"])
        if self.state.get("postgres_started"):
            subprocess.run(["pg_ctlcluster"] + list(self.state["postgres_started"]) + ["stop"], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def _save(self):
        os.makedirs(self.base, exist_ok=True)
        with open(self.path("state.json"), "w", encoding="utf-8") as f:
            json.dump(self.state, f, indent=1)

    @classmethod
    def load(cls, base):
        lab = cls(base)
        with open(lab.path("state.json"), encoding="utf-8") as f:
            lab.state = json.load(f)
        return lab


def device_dictionary():
    """The QEMU device: TCG (no KVM), and a user-mode network that can reach nothing."""
    return ("{% extends 'qemu.jinja2' %}\n{% set no_kvm = True %}\n{% set netdevice = 'user,restrict=on' %}\n"
            "{% set memory = 1024 %}\n")


def _exited(pid):
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == pid
    except ChildProcessError:
        return not os.path.exists("/proc/%d" % pid)


def _stop_group(pid):
    """SIGTERM to the process group the daemon leads, SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _exited(pid) and not _group_alive(pid):
                return
            time.sleep(0.1)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def main(argv):
    if len(argv) != 2 or argv[0] not in ("up", "down"):
        sys.stderr.write(__doc__.split("usage:")[1])
        return 2
    try:
        if argv[0] == "up":
            lab = Lab(argv[1]).up()
            print("url %s\ntoken %s\ndevice_type %s" % (lab.url, lab.token, lab.device_type))
        else:
            Lab.load(argv[1]).down()
    except (LabError, OSError, subprocess.TimeoutExpired) as e:
        sys.stderr.write("lavalab: %s\n" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
