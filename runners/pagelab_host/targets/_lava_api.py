"""A LAVA server's REST API (v0.2): submit a job, follow its state and log, read its results.

The token comes from PAGELAB_LAVA_TOKEN, else from the user's lavacli identity
(~/.config/lavacli.yaml) whose name is given or whose URI is the server's.
"""
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from ..errors import UserError

HTTP_TIMEOUT_S = 60
FINISHED = "Finished"


class LavaError(Exception):
    """The server refused or could not be reached: one line."""


def server_url(text):
    """The server's base URL ('http://host/'), from a base URL or an XML-RPC URI ('.../RPC2')."""
    url = re.sub(r"/RPC2/?$", "/", text.strip())
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError("LAVA server %r: an http:// or https:// URL" % text)
    return url if url.endswith("/") else url + "/"


def lavacli_identities():
    """{name: {uri, username, token...}} from lavacli's configuration file; {} when there is none."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = os.path.join(base, "lavacli.yaml")
    if not os.path.exists(path):
        return {}
    try:
        import yaml
    except ImportError:
        raise UserError("%s: reading lavacli identities needs python3-yaml (Debian: apt-get install python3-yaml)"
                        % path)
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except (OSError, yaml.YAMLError) as e:
        raise UserError("%s: %s" % (path, str(e).splitlines()[0]))
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def connect(server):
    """A Server for 'URL' or a lavacli identity name; the token as the user keeps it."""
    ids = lavacli_identities()
    if "://" not in server:
        if server not in ids or not ids[server].get("uri"):
            raise UserError("LAVA server %r: neither a URL nor a lavacli identity (known: %s)"
                            % (server, ", ".join(sorted(ids)) or "none; see `lavacli identities add`"))
        ident = ids[server]
        url = server_url(ident["uri"])
    else:
        url = server_url(server)
        ident = next((i for i in ids.values() if i.get("uri") and _same_server(server_url(i["uri"]), url)), {})
    token = os.environ.get("PAGELAB_LAVA_TOKEN") or ident.get("token")
    return Server(url, token)


def _same_server(a, b):
    pa, pb = urllib.parse.urlsplit(a), urllib.parse.urlsplit(b)
    return (pa.scheme, pa.netloc, pa.path.rstrip("/")) == (pb.scheme, pb.netloc, pb.path.rstrip("/"))


class Server:
    def __init__(self, url, token):
        self.url, self.token = url, token

    def _request(self, path, data=None, accept_missing=False):
        req = urllib.request.Request(self.url + "api/v0.2/" + path, data=data)
        if self.token:
            req.add_header("Authorization", "Token %s" % self.token)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as res:
                return res.read()
        except urllib.error.HTTPError as e:
            if accept_missing and e.code == 404:
                return None
            raise LavaError("%s: HTTP %d %s%s" % (self.url, e.code, e.reason, _detail(e)))
        except (urllib.error.URLError, OSError) as e:
            raise LavaError("%s: cannot reach the server: %s" % (self.url, getattr(e, "reason", e)))

    def _json(self, path, **kw):
        raw = self._request(path, **kw)
        try:
            return json.loads(raw) if raw is not None else None
        except ValueError:
            raise LavaError("%s: the answer to %s is not JSON" % (self.url, path))

    def submit(self, definition):
        """The new job's id."""
        if not self.token:
            raise LavaError("%s: no token to submit with: set PAGELAB_LAVA_TOKEN or add a lavacli identity "
                            "(lavacli identities add --uri %sRPC2 --username USER --token TOKEN NAME)"
                            % (self.url, self.url))
        ans = self._json("jobs/", data=json.dumps({"definition": definition}).encode())
        ids = ans.get("job_ids") if isinstance(ans, dict) else None
        if not ids:
            raise LavaError("%s: the job was not accepted: %s" % (self.url, ans))
        return ids[0]

    def job(self, job_id):
        return self._json("jobs/%d/" % job_id)

    def cancel(self, job_id):
        """Ask the server to cancel the job: None, or why it could not."""
        try:
            self._request("jobs/%d/cancel/" % job_id)
        except LavaError as e:
            return str(e)
        return None

    def log_lines(self, job_id, start):
        """(log entries from line `start` on as dicts {dt, lvl, msg}, lines read); nothing new yet: ([], 0)."""
        raw = self._request("jobs/%d/logs/?start=%d" % (job_id, start), accept_missing=True)
        text = raw.decode("utf-8", "replace") if raw else ""
        return parse_log(text), len(text.splitlines())

    def _pages(self, path):
        out = []
        while path:
            page = self._json(path)
            out += page.get("results", [])
            nxt = page.get("next")
            path = nxt[len(self.url + "api/v0.2/"):] if nxt and nxt.startswith(self.url) else None
        return out

    def results(self, job_id):
        """Every test case LAVA recorded for the job, each with its suite's name (suite_name)."""
        suites = {s["id"]: s["name"] for s in self._pages("jobs/%d/suites/?limit=100" % job_id)}
        cases = self._pages("jobs/%d/tests/?limit=500" % job_id)
        for c in cases:
            c["suite_name"] = suites.get(c.get("suite"), str(c.get("suite")))
        return cases

    def job_url(self, job_id):
        return "%sscheduler/job/%d" % (self.url, job_id)


def _detail(err):
    try:
        body = err.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return (": " + body.splitlines()[0][:300]) if body else ""


def parse_log(text):
    """LAVA's job log: a YAML list whose every line is one flow mapping written as JSON."""
    entries = []
    for line in text.splitlines():
        if line.startswith("- {"):
            try:
                entries.append(json.loads(line[2:]))
            except ValueError:
                entries.append({"lvl": "unparsed", "msg": line[2:]})
        elif line.strip():
            entries.append({"lvl": "unparsed", "msg": line})
    return entries


def console_line(entry):
    """The device's console line an entry carries (LAVA escapes double quotes there), or None."""
    if entry.get("lvl") not in ("target", "feedback") or not isinstance(entry.get("msg"), str):
        return None
    return entry["msg"].replace('\\"', '"')
