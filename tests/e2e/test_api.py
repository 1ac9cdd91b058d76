#!/usr/bin/python3
"""The JSON API (/api/v1), accounts and permissions end to end: the real
`tidings serve` on a free loopback port against a temporary database.

- login (JSON and form), the session cookie's flags, /api/v1/me, logout;
  CSRF: a cookie-authenticated change without the token (or with a wrong
  one) is 403 and changes nothing; expired sessions and forged, unknown,
  revoked and expired Bearer tokens are 401;
- the login rate limit: per account (5 failures) and per address (20),
  then 429 with Retry-After, even with the right password;
- permissions: every role x action x own / same-team / other-team object
  through the real API, checked against the rules as the issue states
  them; a refusal is 403 and the database (and its audit log) is unchanged;
- every JSON route with malformed, truncated and non-object JSON, the wrong
  content type, each field of the documented schema with a wrong type, each
  required field missing; a 100 MB body (413 unread), a body over the cap;
- XSS payloads in every stored text field come back intact as JSON strings
  and escaped in HTML pages; SQL metacharacters are data; path traversal
  is 404; unknown methods 405 with Allow;
- pagination (stable, by id, with the total), imports, the campaign life
  cycle, relays, DKIM keys (never the private key), users, teams;
- the OpenAPI document: each documented route exists and each route used
  here is documented.
"""
import http.client
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest
import urllib.parse

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = os.environ.get("TIDINGS_BIN") or os.path.join(ROOT, "tidings")
PW = "correct horse battery"
XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "'';!--\"<XSS>=&{()}",
       "javascript:alert(1)//\u2028"]
SQLI = ["x'); DROP TABLE subscribers;--", "1 OR 1=1", "\" OR \"\"=\"", "%' --"]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    """A database made by `tidings init` and `tidings serve` on it."""

    def __init__(self, tc, public_url="http://127.0.0.1:8080"):
        self.tc = tc
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-api-")
        self.db = os.path.join(self.tmp.name, "t.db")
        self.pwfile = os.path.join(self.tmp.name, "pw")
        with open(self.pwfile, "w") as f:
            f.write(PW + "\n")
        self.port = free_port()
        self.ok("init", "--public-url", public_url, "--admin-email", "admin@example.com",
                "--admin-password-file", self.pwfile)
        self.srv = None

    def cmd(self, *args):
        return subprocess.run([BIN, *args, "--db", self.db], capture_output=True, text=True,
                              timeout=120)

    def ok(self, *args):
        p = self.cmd(*args)
        self.tc.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p.stdout

    def q(self, sql, *params):
        c = sqlite3.connect(self.db, timeout=10)
        try:
            r = c.execute(sql, params).fetchall()
            c.commit()
            return r
        finally:
            c.close()

    def start(self):
        self.srv = subprocess.Popen([BIN, "serve", "--db", self.db, "--listen",
                                     "127.0.0.1:%d" % self.port, "--log-level", "warn"],
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError("serve did not answer /healthz")

    def stop(self):
        if self.srv and self.srv.poll() is None:
            self.srv.send_signal(signal.SIGTERM)
            rc = self.srv.wait(60)
            err = self.srv.stderr.read()
            self.srv.stderr.close()
            self.tc.assertEqual(rc, 0, err)
            self.tc.assertNotIn("[error]", err)
        self.tmp.cleanup()

    def request(self, method, path, body=None, headers=None, length=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            if body is not None or length is not None:
                c.putheader("Content-Length", str(length if length is not None else len(body)))
            c.endheaders(body)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def api(self, method, path, body=None, token=None, session=None, csrf=True, ctype=None,
            raw=None, headers=None):
        """A call of /api/v1 with a Bearer token or a (cookie, csrf) session;
        returns (status, decoded JSON or None, headers)."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if session:
            h["Cookie"] = "tidings_session=" + session[0]
            if csrf is True:
                h["X-CSRF-Token"] = session[1]
            elif csrf:
                h["X-CSRF-Token"] = csrf
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            h.setdefault("Content-Type", "application/json")
        if ctype:
            h["Content-Type"] = ctype
        st, hd, b = self.request(method, "/api/v1" + path, data, h)
        try:
            js = json.loads(b) if b else None
        except ValueError:
            js = None
        if st >= 400 and path != "/openapi.json":
            # Every error has the one shape.
            self.tc.assertIsInstance(js, dict, (method, path, st, b[:200]))
            self.tc.assertEqual(set(js), {"error"}, js)
            self.tc.assertEqual(set(js["error"]), {"code", "message", "field"}, js)
            self.tc.assertEqual(hd.get("content-type"), "application/json")
        return st, js, hd

    def login(self, email, pw=PW):
        st, hd, b = self.request("POST", "/login", json.dumps({"email": email, "password": pw})
                                 .encode(), {"Content-Type": "application/json"})
        self.tc.assertEqual(st, 200, b)
        cookie = re.match(r"tidings_session=([0-9a-f]{64});", hd["set-cookie"]).group(1)
        return cookie, json.loads(b)["csrf_token"]

    def user(self, email, role, team=None):
        args = ["user", "add", email, "--role", role, "--password-file", self.pwfile]
        if team:
            args += ["--team", team]
        uid = int(self.ok(*args).strip())
        tok = self.ok("token", "create", "--user", email).strip()
        return uid, tok


class Api(unittest.TestCase):
    """One server for the tests that do not trip the rate limit."""

    @classmethod
    def setUpClass(cls):
        cls.S = Server(unittest.TestCase())
        s = cls.S
        s.ok("team", "add", "T1")
        s.ok("team", "add", "T2")
        cls.t1 = s.q("SELECT id FROM teams WHERE name = 'T1'")[0][0]
        cls.t2 = s.q("SELECT id FROM teams WHERE name = 'T2'")[0][0]
        cls.admin_id = 1
        cls.admin = s.ok("token", "create", "--user", "admin@example.com").strip()
        cls.people = {}
        for role in ("director", "designer", "operator", "seller", "responder"):
            cls.people[role] = s.user(role + "@example.com", role, "T1")
        cls.people["admin"] = (cls.admin_id, cls.admin)
        # The owners of the same-team and other-team objects.
        cls.mate = s.user("mate@example.com", "seller", "T1")
        cls.stranger = s.user("stranger@example.com", "seller", "T2")
        s.start()

    @classmethod
    def tearDownClass(cls):
        cls.S.stop()

    def a(self, *args, **kw):
        return self.S.api(*args, **kw)

    def admin_call(self, method, path, body=None, want=None):
        st, js, _ = self.a(method, path, body, token=self.admin)
        if want:
            self.assertEqual(st, want, (method, path, js))
        return js

    # ---- accounts --------------------------------------------------------------------

    def test_login_session_and_logout(self):
        st, hd, b = self.S.request("POST", "/login", json.dumps(
            {"email": "admin@EXAMPLE.com", "password": PW}).encode(),
            {"Content-Type": "application/json"})
        self.assertEqual(st, 200, b)
        ck = hd["set-cookie"]
        self.assertIn("HttpOnly", ck)
        self.assertIn("SameSite=Lax", ck)
        self.assertIn("Path=/", ck)
        self.assertNotIn("Secure", ck)  # the public URL is http here
        cookie = re.match(r"tidings_session=([0-9a-f]{64});", ck).group(1)
        # Only the hash is stored.
        self.assertEqual(self.S.q("SELECT count(*) FROM sessions WHERE token_hash = ?",
                                  cookie), [(0,)])
        st, me, _ = self.a("GET", "/me", session=(cookie, None), csrf=False)
        self.assertEqual(st, 200)
        self.assertEqual(me["email"], "admin@example.com")
        self.assertEqual(me["auth"], "session")
        sess = (cookie, me["csrf_token"])
        # Logout needs the CSRF token.
        st, _, b = self.S.request("POST", "/logout", b"", {"Cookie": "tidings_session=" + cookie})
        self.assertEqual(st, 403)
        st, hd, b = self.S.request("POST", "/logout", b"", {
            "Cookie": "tidings_session=" + cookie, "X-CSRF-Token": sess[1]})
        self.assertEqual(st, 200, b)
        self.assertIn("Max-Age=0", hd["set-cookie"])
        self.assertEqual(self.a("GET", "/me", session=sess)[0], 401)
        actions = [r[0] for r in self.S.q("SELECT action FROM audit_log WHERE actor = "
                                          "'admin@example.com' AND action LIKE 'auth.%'")]
        self.assertIn("auth.login", actions)
        self.assertIn("auth.logout", actions)

    def test_login_form_and_html_escaping(self):
        uid, _ = self.S.user("xss-person@example.com", "seller", "T1")
        self.S.q("UPDATE users SET name = ? WHERE id = ?", XSS[0], uid)
        st, hd, b = self.S.request("GET", "/login")
        self.assertEqual(st, 200)
        self.assertIn(b'name="password"', b)
        body = urllib.parse.urlencode({"email": "xss-person@example.com", "password": PW})
        st, hd, b = self.S.request("POST", "/login", body.encode(),
                                   {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, b)
        self.assertNotIn(b"<script>", b)
        self.assertIn(b"&lt;script&gt;alert(1)&lt;/script&gt;", b)
        cookie = re.match(r"tidings_session=([0-9a-f]{64});", hd["set-cookie"]).group(1)
        csrf = re.search(rb'name="csrf_token" value="([0-9a-f]{64})"', b).group(1).decode()
        # The page's logout form works with its field.
        st, _, b = self.S.request("POST", "/logout", urllib.parse.urlencode(
            {"csrf_token": csrf}).encode(), {"Cookie": "tidings_session=" + cookie,
                                            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, b)
        # Wrong password on the form: 401 page, the address escaped.
        body = urllib.parse.urlencode({"email": XSS[1], "password": "nope"})
        st, _, b = self.S.request("POST", "/login", body.encode(),
                                  {"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 401)
        self.assertNotIn(b"<img", b)

    def test_csrf(self):
        sess = self.S.login("operator@example.com")
        n = self.S.q("SELECT count(*) FROM lists")[0][0]
        audit = self.S.q("SELECT count(*) FROM audit_log")[0][0]
        for csrf in (False, "0" * 64, sess[1][:-1], sess[1].upper(), ""):
            st, js, _ = self.a("POST", "/lists", {"name": "csrf-%r" % csrf}, session=sess,
                               csrf=csrf)
            self.assertEqual(st, 403, js)
            self.assertEqual(js["error"]["code"], "csrf")
        self.assertEqual(self.S.q("SELECT count(*) FROM lists")[0][0], n)
        self.assertEqual(self.S.q("SELECT count(*) FROM audit_log")[0][0], audit)
        # A GET needs none; a change with it works.
        self.assertEqual(self.a("GET", "/lists", session=sess, csrf=False)[0], 200)
        st, js, _ = self.a("POST", "/lists", {"name": "csrf-ok"}, session=sess)
        self.assertEqual(st, 201, js)
        # A token of another session is refused too.
        other = self.S.login("seller@example.com")
        st, _, _ = self.a("DELETE", "/lists/%d" % js["id"], session=sess, csrf=other[1])
        self.assertEqual(st, 403)

    def test_expired_session(self):
        sess = self.S.login("seller@example.com")
        self.assertEqual(self.a("GET", "/me", session=sess)[0], 200)
        from hashlib import sha256
        h = sha256(sess[0].encode()).hexdigest()
        self.S.q("UPDATE sessions SET expires_at = ? WHERE token_hash = ?", int(time.time()) - 1, h)
        st, js, _ = self.a("GET", "/me", session=sess)
        self.assertEqual(st, 401)
        self.assertIn("expired", js["error"]["message"])
        st, js, _ = self.a("POST", "/lists", {"name": "late"}, session=sess)
        self.assertEqual(st, 401)
        # Unknown, forged and malformed cookies.
        for c in ("0" * 64, sess[0][:-1] + "0", "../../etc/passwd", "x" * 5000):
            self.assertEqual(self.a("GET", "/me", session=(c, ""))[0], 401, c)
        self.assertEqual(self.a("GET", "/me")[0], 401)

    def test_bearer_tokens(self):
        for bad in ("td_" + "0" * 64, "td_" + "g" * 64, "td_", "", self.admin[:-1],
                    self.admin + "0", "' OR 1=1 --", "td_" + "a" * 10000):
            st, js, _ = self.a("GET", "/me", token=bad or " ")
            self.assertEqual(st, 401, bad)
        st, js, _ = self.a("GET", "/me", headers={"Authorization": "Basic YTpi"})
        self.assertEqual(st, 401)
        # Made through the API, shown once, listed without the secret, revoked.
        _, tok = self.people["seller"]
        st, js, _ = self.a("POST", "/tokens", {"name": XSS[0], "expires_in": 3600}, token=tok)
        self.assertEqual(st, 201, js)
        new = js["token"]
        self.assertEqual(js["name"], XSS[0])
        self.assertEqual(self.a("GET", "/me", token=new)[1]["email"], "seller@example.com")
        st, js, _ = self.a("GET", "/tokens", token=new)
        self.assertEqual(st, 200)
        self.assertNotIn(new, json.dumps(js))
        self.assertTrue(all(t["user_id"] == self.people["seller"][0] for t in js["data"]))
        # Another user's token: 403, and it still works.
        tid = [t["id"] for t in js["data"] if t["name"] == XSS[0]][0]
        self.assertEqual(self.a("DELETE", "/tokens/%d" % tid,
                                token=self.people["operator"][1])[0], 403)
        self.assertEqual(self.a("GET", "/me", token=new)[0], 200)
        self.assertEqual(self.a("DELETE", "/tokens/%d" % tid, token=new)[0], 204)
        self.assertEqual(self.a("GET", "/me", token=new)[0], 401)
        # An expired token.
        st, js, _ = self.a("POST", "/tokens", {"name": "short", "expires_in": 60}, token=tok)
        self.S.q("UPDATE api_tokens SET expires_at = ? WHERE id = ?", int(time.time()) - 1,
                 js["id"])
        st, js2, _ = self.a("GET", "/me", token=js["token"])
        self.assertEqual(st, 401)
        self.assertIn("expired", js2["error"]["message"])
        # Revoked from the command line.
        t = self.S.ok("token", "create", "--user", "seller@example.com", "--name", "cli").strip()
        tid = json.loads(self.S.ok("token", "ls", "--user", "seller@example.com", "--json")
                         .splitlines()[-1])["id"]
        self.assertEqual(self.a("GET", "/me", token=t)[0], 200)
        self.S.ok("token", "revoke", str(tid))
        self.assertEqual(self.a("GET", "/me", token=t)[0], 401)

    # ---- permissions: the whole matrix --------------------------------------------------

    def make(self, kind, owner, team):
        """An object of kind owned by owner in team, made by the admin."""
        n = "%s-%d-%d" % (kind, owner, time.monotonic_ns())
        if kind == "subscriber":
            return self.admin_call("POST", "/subscribers", {
                "email": n + "@example.org", "owner_id": owner, "team_id": team}, 201)["id"]
        if kind == "list":
            return self.admin_call("POST", "/lists", {"name": n, "owner_id": owner,
                                                      "team_id": team}, 201)["id"]
        if kind == "template":
            self.admin_call("POST", "/templates", {
                "name": n, "kind": "article", "title": "T", "body": "b", "owner_id": owner,
                "team_id": team}, 201)
            return n
        if kind == "campaign":
            lid = self.make("list", owner, team)
            return self.admin_call("POST", "/campaigns", {
                "name": n, "subject": "S", "from": "a@example.com", "text": "t",
                "lists": [lid], "owner_id": owner, "team_id": team}, 201)["id"]
        raise ValueError(kind)

    # (kind, action, method, path, body) — {o} is the object.
    ACTIONS = [
        ("subscriber", "read", "GET", "/subscribers/{o}", None),
        ("subscriber", "update", "PATCH", "/subscribers/{o}", {"name": "changed"}),
        ("subscriber", "delete", "DELETE", "/subscribers/{o}", None),
        ("list", "read", "GET", "/lists/{o}", None),
        ("list", "update", "POST", "/lists/{o}/import", "email\nimported-{u}@example.org\n"),
        ("list", "delete", "DELETE", "/lists/{o}", None),
        ("template", "read", "GET", "/templates/{o}", None),
        ("template", "update", "PUT", "/templates/{o}", {"kind": "product", "title": "X",
                                                          "body": "y"}),
        ("template", "delete", "DELETE", "/templates/{o}", None),
        ("campaign", "read", "GET", "/campaigns/{o}", None),
        ("campaign", "read", "GET", "/campaigns/{o}/stats", None),
        ("campaign", "update", "PATCH", "/campaigns/{o}", {"subject": "changed"}),
        ("campaign", "send", "POST", "/campaigns/{o}/cancel", None),
    ]

    @staticmethod
    def expected(role, kind, action, whose):
        """The rules as issue #5 words them (not perm.c's table)."""
        if role == "admin":
            return True
        if role == "director":
            return action == "read" or (kind == "campaign" and action == "send")
        if role == "designer":
            return kind == "template" or (kind == "campaign" and action == "read")
        if role == "operator":
            return whose in ("own", "team")
        if role == "seller":
            return whose == "own"
        return False  # responder

    def snapshot(self):
        tabs = ("subscribers", "lists", "memberships", "content_blocks", "campaigns",
                "campaign_lists", "audit_log", "users", "teams", "relays", "dkim_keys",
                "api_tokens")
        return {t: self.S.q("SELECT * FROM %s ORDER BY 1, 2" % t) for t in tabs}

    def test_permission_matrix(self):
        checked = 0
        for role in ("admin", "director", "designer", "operator", "seller", "responder"):
            uid, tok = self.people[role]
            owners = {"own": (uid, self.t1), "team": (self.mate[0], self.t1),
                      "other": (self.stranger[0], self.t2)}
            for kind, action, method, path, body in self.ACTIONS:
                for whose, (owner, team) in owners.items():
                    o = self.make(kind, owner, team)
                    p = path.format(o=o)
                    before = self.snapshot()
                    if isinstance(body, str):
                        st, js, _ = self.a(method, p, raw=body.format(u=checked).encode(),
                                           token=tok, ctype="text/csv")
                    else:
                        st, js, _ = self.a(method, p, body, token=tok)
                    want = self.expected(role, kind, action, whose)
                    what = (role, kind, action, whose, st, js)
                    if want:
                        self.assertIn(st, (200, 201, 204), what)
                    else:
                        self.assertEqual(st, 403, what)
                        self.assertEqual(js["error"]["code"], "forbidden", what)
                        self.assertEqual(self.snapshot(), before, what)
                    checked += 1
            # Creation: for oneself (and one's team), and for someone else.
            for kind, path, body in (
                    ("subscriber", "/subscribers", lambda n: {"email": n + "@example.org"}),
                    ("list", "/lists", lambda n: {"name": n}),
                    ("template", "/templates", lambda n: {"name": n, "kind": "article",
                                                          "title": "t", "body": "b"})):
                for whose, (owner, team) in (("own", (uid, self.t1)),
                                             ("other", (self.stranger[0], self.t2))):
                    n = "new-%s-%d" % (role, checked)
                    b = body(n)
                    if whose == "other":
                        b.update(owner_id=owner, team_id=team)
                    before = self.snapshot()
                    st, js, _ = self.a("POST", path, b, token=tok)
                    # Creating for oneself is an "own" object in one's team.
                    want = self.expected(role, kind, "create", whose) and not (
                        role == "director")
                    if role == "designer":
                        want = kind == "template"
                    if want:
                        self.assertEqual(st, 201, (role, kind, whose, js))
                    else:
                        self.assertEqual(st, 403, (role, kind, whose, js))
                        self.assertEqual(self.snapshot(), before, (role, kind, whose))
                    checked += 1
            # Admin-only kinds: relays, DKIM keys, users, teams.
            for method, path, body in (
                    ("POST", "/relays", {"url": "maildir:/tmp/tidings-api-md-%d" % checked}),
                    ("GET", "/relays", None),
                    ("POST", "/dkim-keys", {"domain": "example.net", "selector": "s%d" % checked,
                                            "algo": "ed25519"}),
                    ("GET", "/dkim-keys", None),
                    ("POST", "/users", {"email": "u%d@example.com" % checked, "role": "seller",
                                        "password": PW}),
                    ("POST", "/teams", {"name": "team-%d" % checked})):
                before = self.snapshot()
                st, js, _ = self.a(method, path, body, token=tok)
                if role == "admin":
                    self.assertIn(st, (200, 201), (path, js))
                else:
                    self.assertEqual(st, 403, (role, path, js))
                    self.assertEqual(self.snapshot(), before)
                checked += 1
            # Replies: a responder reads their team's, a designer none.
            st, js, _ = self.a("GET", "/replies", token=tok)
            self.assertEqual(st, 403 if role == "designer" else 200, (role, js))
        self.assertGreater(checked, 6 * 13 * 3)

    def test_listings_follow_the_rules(self):
        # Each role sees in a listing exactly what it may GET.
        own = {r: self.make("list", self.people[r][0], self.t1) for r in ("seller", "operator")}
        mate = self.make("list", self.mate[0], self.t1)
        other = self.make("list", self.stranger[0], self.t2)

        def ids(tok):
            out, after = [], 0
            while True:
                st, js, _ = self.a("GET", "/lists?limit=500&after=%d" % after, token=tok)
                self.assertEqual(st, 200, js)
                out += [x["id"] for x in js["data"]]
                if not js["next_after"]:
                    return set(out)
                after = js["next_after"]
        s = ids(self.people["seller"][1])
        self.assertIn(own["seller"], s)
        self.assertNotIn(mate, s)
        self.assertNotIn(other, s)
        o = ids(self.people["operator"][1])
        self.assertTrue({own["seller"], own["operator"], mate} <= o)
        self.assertNotIn(other, o)
        d = ids(self.people["director"][1])
        self.assertTrue({mate, other} <= d)
        self.assertEqual(self.a("GET", "/lists", token=self.people["responder"][1])[0], 403)
        # Subscribers likewise, paged in SQL.
        mine = self.make("subscriber", self.people["seller"][0], self.t1)
        theirs = self.make("subscriber", self.stranger[0], self.t2)
        st, js, _ = self.a("GET", "/subscribers?limit=500", token=self.people["seller"][1])
        got = {x["id"] for x in js["data"]}
        self.assertIn(mine, got)
        self.assertNotIn(theirs, got)
        self.assertEqual(js["total"], len(got))
        # Replies: by team for a responder.
        now = int(time.time())
        self.S.q("INSERT INTO replies (sender, subject, body, team_id, received_at) VALUES "
                 "('r@x.org', ?, 'b', ?, ?)", XSS[0], self.t1, now)
        self.S.q("INSERT INTO replies (sender, subject, body, team_id, received_at) VALUES "
                 "('r@x.org', 'other team', 'b', ?, ?)", self.t2, now)
        st, js, _ = self.a("GET", "/replies", token=self.people["responder"][1])
        self.assertEqual([r["subject"] for r in js["data"]], [XSS[0]])
        st, js, _ = self.a("GET", "/replies", token=self.admin)
        self.assertEqual(js["total"], 2)

    # ---- bad input ----------------------------------------------------------------------

    def fixtures(self):
        """Ids for the paths of every route."""
        lid = self.make("list", 1, 0)
        return {
            "id": {"subscribers": self.make("subscriber", 1, 0), "lists": lid,
                   "campaigns": self.make("campaign", 1, 0), "tokens": 999999,
                   "relays": 999999, "users": 1, "teams": self.t1},
            "name": self.make("template", 1, 0),
        }

    # A valid body per schema, so that one field at a time can be broken.
    VALID = {
        "TokenIn": {"name": "n"},
        "SubscriberIn": {"email": "valid-{n}@example.org"},
        "SubscriberPatch": {"name": "x"},
        "ListIn": {"name": "valid-{n}"},
        "TemplateIn": {"name": "valid-{n}", "kind": "article", "title": "t", "body": "b"},
        "TemplatePut": {"kind": "article", "title": "t", "body": "b"},
        "CampaignIn": {"name": "c", "subject": "s", "from": "a@example.com", "text": "t",
                       "lists": [1]},
        "CampaignPatch": {"name": "c"},
        "Schedule": {"send_at": 4102444800},
        "RelayIn": {"url": "maildir:/tmp/tidings-api-valid-{n}"},
        "DkimIn": {"domain": "example.org", "selector": "v{n}", "algo": "ed25519"},
        "UserIn": {"email": "valid-{n}@example.com", "role": "seller"},
        "TeamIn": {"name": "valid-{n}"},
    }
    WRONG = {"string": 12345, "integer": "12", "number": "1.5", "boolean": "yes",
             "array": {"a": 1}, "object": ["x"]}

    def openapi(self):
        st, hd, b = self.S.request("GET", "/api/v1/openapi.json")
        self.assertEqual(st, 200)
        self.assertEqual(hd["content-type"], "application/json")
        return json.loads(b)

    def routes(self, doc, fx):
        for path, item in doc["paths"].items():
            if not path.startswith("/api/v1/"):
                continue
            for method, op in item.items():
                p = path.replace("{name}", fx["name"])
                if "{id}" in p:
                    coll = p.split("/")[3]
                    p = p.replace("{id}", str(fx["id"][coll]))
                yield method.upper(), path, p[len("/api/v1"):], op

    def resolve(self, doc, op):
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = ref.rsplit("/", 1)[1]
        return name, doc["components"]["schemas"][name]

    def test_bad_json_everywhere(self):
        doc = self.openapi()
        fx = self.fixtures()
        n = 0
        for method, path, p, op in self.routes(doc, fx):
            body = op.get("requestBody", {}).get("content", {})
            if "application/json" not in body:
                continue
            name, schema = self.resolve(doc, op)
            before = self.snapshot()
            for raw, code in ((b'{"name": ', "bad_json"), (b'{"name": "x', "bad_json"),
                              (b"", "bad_json"), (b"{'a': 1}", "bad_json"),
                              (b'{"a":1,"a":2}', "bad_json"), (b"\xff\xfe{}", "bad_json"),
                              (b'{"name":"\\u0000"}', "bad_json"),
                              (b"[" * 100000, "bad_json"), (b"[1,2]", "wrong_type"),
                              (b'"str"', "wrong_type"), (b"null", "wrong_type")):
                st, js, _ = self.a(method, p, raw=raw, token=self.admin,
                                   ctype="application/json")
                self.assertEqual(st, 400, (method, path, raw[:30], js))
                self.assertEqual(js["error"]["code"], code, (method, path, raw[:30]))
            st, js, _ = self.a(method, p, raw=b"name=x", token=self.admin,
                               ctype="application/x-www-form-urlencoded")
            self.assertEqual(st, 415, (method, path))
            st, js, _ = self.a(method, p, raw=b"{}", token=self.admin)  # no content type
            self.assertEqual(st, 415, (method, path))
            self.assertEqual(self.snapshot(), before, (method, path))
            # Each field with a wrong type: 400 naming the field.
            for field, prop in schema["properties"].items():
                t = prop.get("type") or ("string" if "enum" in prop else None)
                n += 1
                good = json.loads(json.dumps(self.VALID[name]).replace("{n}", str(n)))
                good[field] = self.WRONG[t]
                st, js, _ = self.a(method, p, good, token=self.admin)
                self.assertEqual(st, 400, (method, path, field, js))
                self.assertEqual(js["error"]["code"], "wrong_type")
                self.assertEqual(js["error"]["field"], field)
            # Each required field missing: 422 naming it.
            for field in schema.get("required", []):
                n += 1
                good = json.loads(json.dumps(self.VALID[name]).replace("{n}", str(n)))
                del good[field]
                st, js, _ = self.a(method, p, good, token=self.admin)
                self.assertEqual(st, 422, (method, path, field, js))
                self.assertEqual(js["error"]["field"], field, (method, path))
            # An unknown field: 422.
            good = json.loads(json.dumps(self.VALID[name]).replace("{n}", str(n)))
            good["no_such_field"] = 1
            st, js, _ = self.a(method, p, good, token=self.admin)
            self.assertEqual(st, 422, (method, path, js))
            self.assertEqual(js["error"]["code"], "unknown_field")

    def test_validation(self):
        for path, body, field in (
                ("/subscribers", {"email": "not an address"}, "email"),
                ("/subscribers", {"email": "v1@example.org", "status": "boss"}, "status"),
                ("/subscribers", {"email": "v2@example.org", "timezone": "../../etc/passwd"},
                 "timezone"),
                ("/subscribers", {"email": "v3@example.org", "lists": [999999]}, "lists"),
                ("/subscribers", {"email": "v4@example.org", "name": "a\nb"}, "name"),
                ("/lists", {"name": "x", "optin": "triple"}, "optin"),
                ("/lists", {"name": "x" * 201}, "name"),
                ("/templates", {"name": "../etc", "kind": "article", "title": "t", "body": "b"},
                 "name"),
                ("/templates", {"name": "t-bad", "kind": "article", "title": "t",
                                "body": "{{#x}}"}, "body"),
                ("/users", {"email": "weak@example.com", "role": "seller", "password": "short"},
                 "password"),
                ("/users", {"email": "r@example.com", "role": "root"}, "role"),
                ("/relays", {"url": "ftp://x"}, "url"),
                ("/relays", {"url": "maildir:/tmp/x", "max_conns": 0}, "max_conns"),
                ("/dkim-keys", {"domain": "exa mple.org", "selector": "s"}, "domain"),
                ("/dkim-keys", {"domain": "example.org", "selector": "s", "algo": "dsa"}, "algo"),
                ("/teams", {"name": "t", "model": "anarchy"}, "model")):
            st, js, _ = self.a("POST", path, body, token=self.admin)
            self.assertEqual(st, 422, (path, body, js))
            self.assertEqual(js["error"]["field"], field, (path, body, js))
        # Conflicts.
        self.admin_call("POST", "/subscribers", {"email": "dup@example.org"}, 201)
        st, js, _ = self.a("POST", "/subscribers", {"email": "dup@EXAMPLE.org"}, token=self.admin)
        self.assertEqual(st, 409, js)
        self.admin_call("POST", "/lists", {"name": "dup"}, 201)
        self.assertEqual(self.a("POST", "/lists", {"name": "dup"}, token=self.admin)[0], 409)

    def test_big_bodies(self):
        # Announced: refused before a byte is read.
        for path in ("/api/v1/subscribers", "/api/v1/lists/1/import", "/login"):
            c = http.client.HTTPConnection("127.0.0.1", self.S.port, timeout=30)
            c.putrequest("POST", path)
            c.putheader("Authorization", "Bearer " + self.admin)
            c.putheader("Content-Type", "application/json")
            c.putheader("Content-Length", str(100 * 1000 * 1000))
            c.endheaders()
            r = c.getresponse()
            self.assertEqual(r.status, 413, path)
            c.close()
        # Just over the JSON cap: announced, then chunked (cut off as it grows).
        big = json.dumps({"email": "big@example.org", "name": "x" * (1 << 20)}).encode()
        for chunked in (False, True):
            s = socket.create_connection(("127.0.0.1", self.S.port), timeout=30)
            head = ("POST /api/v1/subscribers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                    "Content-Type: application/json\r\n" % self.admin)
            head += ("Transfer-Encoding: chunked\r\n\r\n" if chunked
                     else "Content-Length: %d\r\n\r\n" % len(big))
            got = b""
            try:
                s.sendall(head.encode())
                if chunked:
                    for i in range(0, len(big), 65536):
                        part = big[i:i + 65536]
                        s.sendall(b"%x\r\n%s\r\n" % (len(part), part))
                    s.sendall(b"0\r\n\r\n")
                while True:
                    d = s.recv(65536)
                    if not d:
                        break
                    got += d
            except (BrokenPipeError, ConnectionResetError):
                pass
            s.close()
            # Answered 413, or cut off: never taken.
            if got:
                self.assertTrue(got.startswith(b"HTTP/1.1 413"), got[:100])
        # Under the cap but over a field's: 422.
        st, js, _ = self.a("POST", "/subscribers", {"email": "big@example.org",
                                                    "name": "x" * 5000}, token=self.admin)
        self.assertEqual(st, 422)
        self.assertEqual(self.S.q("SELECT count(*) FROM subscribers WHERE email LIKE 'big@%'"),
                         [(0,)])
        self.assertEqual(self.S.request("GET", "/healthz")[0], 200)

    def test_xss_and_sql_are_data(self):
        payloads = XSS + SQLI
        for i, x in enumerate(payloads):
            sub = self.admin_call("POST", "/subscribers", {
                "email": "xss%d@example.org" % i, "name": x, "attributes": {x: x, "k": [x]}},
                201)
            got = self.admin_call("GET", "/subscribers/%d" % sub["id"], want=200)
            self.assertEqual(got["name"], x)
            self.assertEqual(got["attributes"][x], x)
            lst = self.admin_call("POST", "/lists", {"name": "L %d %s" % (i, x)}, 201)
            self.assertEqual(self.admin_call("GET", "/lists/%d" % lst["id"])["name"],
                             "L %d %s" % (i, x))
            t = self.admin_call("POST", "/templates", {
                "name": "xss-%d" % i, "kind": "article", "title": x.replace("\u2028", ""),
                "body": "<p>{{title}}</p>" + x.replace("{", ""), "data": {"v": x}}, 201)
            got = self.admin_call("GET", "/templates/xss-%d" % i, want=200)
            self.assertEqual(got["data"]["v"], x)
            self.assertEqual(got["body"], "<p>{{title}}</p>" + x.replace("{", ""))
            c = self.admin_call("POST", "/campaigns", {
                "name": x.replace("\u2028", ""), "subject": x.replace("{", ""),
                "from": "a@example.com", "text": x.replace("{", ""), "lists": [lst["id"]]}, 201)
            got = self.admin_call("GET", "/campaigns/%d" % c["id"], want=200)
            self.assertEqual(got["name"], x.replace("\u2028", ""))
            self.admin_call("POST", "/teams", {"name": "team %d %s" % (i, x.replace(
                "\u2028", ""))}, 201)
            u = self.admin_call("POST", "/users", {"email": "xu%d@example.com" % i,
                                                   "name": x.replace("\u2028", ""),
                                                   "role": "seller"}, 201)
            self.assertEqual(self.admin_call("GET", "/users/%d" % u["id"])["name"],
                             x.replace("\u2028", ""))
            del t
        # "/" is escaped on the wire, so "</script>" never appears raw.
        st, hd, b = self.S.request("GET", "/api/v1/subscribers?limit=500",
                                   headers={"Authorization": "Bearer " + self.admin})
        self.assertNotIn(b"</script>", b)
        self.assertEqual(hd["x-content-type-options"], "nosniff")
        self.assertEqual(self.S.q("SELECT count(*) FROM sqlite_master WHERE name = "
                                  "'subscribers'"), [(1,)])
        # A public list's signup page shows its name escaped.
        self.admin_call("POST", "/lists", {"name": XSS[1], "visibility": "public"}, 201)
        st, _, b = self.S.request("GET", "/s/" + urllib.parse.quote(XSS[1], safe=""))
        self.assertEqual(st, 200)
        self.assertNotIn(b"<img", b)
        self.assertIn(b"&lt;img", b)
        # SQL in the query and the path.
        for q in ("limit=1%20OR%201=1", "after=1'--", "limit=-1", "limit=0", "limit=501",
                  "after=99999999999999999999", "limit=1e3"):
            st, js, _ = self.a("GET", "/subscribers?" + q, token=self.admin)
            self.assertEqual(st, 400, q)
            self.assertEqual(js["error"]["code"], "bad_query")
        for p in ("/subscribers/1%20OR%201=1", "/subscribers/1;DROP", "/subscribers/-1",
                  "/subscribers/0", "/templates/x'--", "/subscribers/99999999999999999999"):
            self.assertEqual(self.a("GET", p, token=self.admin)[0], 404, p)

    def test_path_traversal_and_methods(self):
        for p in ("/api/v1/../../etc/passwd", "/api/v1/templates/..%2F..%2Fetc%2Fpasswd",
                  "/api/v1/templates/%2e%2e", "/api/v1/lists/1/../../users",
                  "/api/v1/%00", "/api/v1/subscribers%00", "/api/v1//subscribers",
                  "/api/v1/subscribers/", "/api/v2/subscribers", "/api/v1"):
            st, _, b = self.S.request("GET", p, headers={"Authorization": "Bearer " + self.admin})
            self.assertEqual(st, 404, p)
            self.assertNotIn(b"root:", b)
        st, js, hd = self.a("PUT", "/subscribers", {}, token=self.admin)
        self.assertEqual(st, 405)
        self.assertEqual(hd["allow"], "GET, POST")
        st, js, hd = self.a("DELETE", "/campaigns/1/start", token=self.admin)
        self.assertEqual(st, 405)
        self.assertEqual(hd["allow"], "POST")
        st, _, b = self.S.request("OPTIONS", "/api/v1/lists")
        self.assertEqual(st, 405)
        st, _, b = self.S.request("TRACE", "/api/v1/lists")
        self.assertEqual(st, 405)
        self.assertEqual(self.a("GET", "/subscribers/999999", token=self.admin)[0], 404)

    # ---- the resources ----------------------------------------------------------------------

    def test_pagination(self):
        _, tok = self.S.user("pager@example.com", "seller", "T2")
        made = []
        for i in range(7):
            st, js, _ = self.a("POST", "/subscribers", {"email": "page%d@example.org" % i},
                               token=tok)
            made.append(js["id"])
        got, after, pages = [], 0, 0
        while True:
            st, js, _ = self.a("GET", "/subscribers?limit=3&after=%d" % after, token=tok)
            self.assertEqual(st, 200)
            self.assertEqual(js["total"], 7)
            self.assertEqual(js["limit"], 3)
            got += [x["id"] for x in js["data"]]
            pages += 1
            if js["next_after"] is None:
                break
            after = js["next_after"]
        self.assertEqual(got, made)
        self.assertEqual(pages, 3)
        # Stable while rows come and go: deleting one already seen skips nothing.
        st, js, _ = self.a("GET", "/subscribers?limit=3", token=tok)
        self.a("DELETE", "/subscribers/%d" % made[0], token=tok)
        st, js, _ = self.a("GET", "/subscribers?limit=3&after=%d" % js["next_after"], token=tok)
        self.assertEqual([x["id"] for x in js["data"]], made[3:6])
        # A collection paged in C likewise.
        for i in range(4):
            self.a("POST", "/lists", {"name": "pager-list-%d" % i}, token=tok)
        st, a, _ = self.a("GET", "/lists?limit=2", token=tok)
        st, b, _ = self.a("GET", "/lists?limit=2&after=%d" % a["next_after"], token=tok)
        self.assertEqual(a["total"], 4)
        self.assertEqual(len({x["id"] for x in a["data"] + b["data"]}), 4)
        self.assertIsNone(b["next_after"])

    def test_subscriber_crud(self):
        lst = self.admin_call("POST", "/lists", {"name": "crud", "optin": "double"}, 201)
        s = self.admin_call("POST", "/subscribers", {
            "email": "Crud@Example.ORG", "name": "C", "attributes": {"b": 1, "a": [1, 2]},
            "timezone": "Asia/Bangkok", "locale": "th-TH", "lists": [lst["id"]]}, 201)
        self.assertEqual(s["email"], "Crud@example.org")
        self.assertEqual(s["lists"], [{"list": "crud", "status": "unconfirmed"}])
        s2 = self.admin_call("PATCH", "/subscribers/%d" % s["id"], {
            "name": "D", "status": "blocklisted", "timezone": ""}, 200)
        self.assertEqual((s2["name"], s2["status"], s2["timezone"]), ("D", "blocklisted", None))
        self.assertEqual(s2["attributes"], {"a": [1, 2], "b": 1})
        self.admin_call("DELETE", "/subscribers/%d" % s["id"], want=204)
        self.assertEqual(self.a("GET", "/subscribers/%d" % s["id"], token=self.admin)[0], 404)
        self.assertEqual(self.a("DELETE", "/subscribers/%d" % s["id"], token=self.admin)[0], 404)
        acts = [r[0] for r in self.S.q("SELECT action FROM audit_log WHERE object_type = "
                                       "'subscriber' AND object_id = ?", s["id"])]
        self.assertEqual(acts, ["subscriber.add", "subscriber.update", "subscriber.delete"])

    def test_import(self):
        lst = self.admin_call("POST", "/lists", {"name": "imp"}, 201)
        csv = "email,name,city\nimp1@example.org,One,Paris\nnot-an-address,Bad,X\n" \
              "imp2@example.org,\"Two, Jr\",Rome\n"
        st, js, _ = self.a("POST", "/lists/%d/import" % lst["id"], raw=csv.encode(),
                           token=self.admin, ctype="text/csv")
        self.assertEqual(st, 200, js)
        self.assertEqual((js["rows"], js["created"], js["invalid"], js["memberships"]),
                         (3, 2, 1, 2))
        self.assertEqual(js["errors"][0]["line"], 3)
        # Again: nothing new.
        st, js, _ = self.a("POST", "/lists/%d/import" % lst["id"], raw=csv.encode(),
                           token=self.admin, ctype="text/csv")
        self.assertEqual((js["created"], js["unchanged"]), (0, 2))
        self.assertEqual(self.admin_call("GET", "/lists/%d" % lst["id"])["members"]["confirmed"],
                         2)
        for raw, ct, want in ((b"name\nx\n", "text/csv", 422), (csv.encode(), "text/plain", 415),
                              (csv.encode(), None, 415)):
            st, js, _ = self.a("POST", "/lists/%d/import" % lst["id"], raw=raw,
                               token=self.admin, ctype=ct)
            self.assertEqual(st, want, js)
        st, js, _ = self.a("POST", "/lists/%d/import?mode=drop" % lst["id"], raw=csv.encode(),
                           token=self.admin, ctype="text/csv")
        self.assertEqual(st, 400)
        self.assertEqual(self.a("POST", "/lists/999999/import", raw=csv.encode(),
                                token=self.admin, ctype="text/csv")[0], 404)
        # A bigger file: past the 64 KiB of other routes, under the import cap.
        rows = "".join("imp-big-%d@example.org,N%d\n" % (i, i) for i in range(6000))
        st, js, _ = self.a("POST", "/lists/%d/import" % lst["id"],
                           raw=("email,name\n" + rows).encode(), token=self.admin,
                           ctype="text/csv")
        self.assertEqual(st, 200, js)
        self.assertEqual(js["created"], 6000)

    def test_campaign_life(self):
        lst = self.admin_call("POST", "/lists", {"name": "camp"}, 201)
        self.admin_call("POST", "/subscribers", {"email": "c1@example.org",
                                                 "lists": [lst["id"]]}, 201)
        c = self.admin_call("POST", "/campaigns", {
            "name": "Spring", "subject": "Hi {{name}}", "from": "News <n@example.com>",
            "html": "<p><a href=\"https://example.com/x\">x</a></p>", "lists": [lst["id"]]}, 201)
        self.assertEqual(c["state"], "draft")
        self.assertIn("{{#track}}", c["html"])
        cid = c["id"]
        n_campaigns = self.S.q("SELECT count(*) FROM campaigns")[0][0]
        c2 = self.admin_call("PATCH", "/campaigns/%d" % cid, {
            "subject": "Hello {{name}}", "track_clicks": False,
            "html": "<p><a href=\"https://example.com/y\">y</a></p>"}, 200)
        self.assertEqual((c2["id"], c2["subject"], c2["track_clicks"]),
                         (cid, "Hello {{name}}", False))
        self.assertNotIn("{{#track}}", c2["html"])
        self.assertEqual(c2["lists"], ["camp"])
        # No leftover row from the update.
        self.assertEqual(self.S.q("SELECT count(*) FROM campaigns")[0][0], n_campaigns)
        st, js, _ = self.a("PATCH", "/campaigns/%d" % cid, {"subject": "{{#unclosed}}"},
                           token=self.admin)
        self.assertEqual(st, 422, js)
        st, js, _ = self.a("POST", "/campaigns/%d/schedule" % cid, {"send_at": 1000},
                           token=self.admin)
        self.assertEqual(st, 422)
        at = int(time.time()) + 86400
        js = self.admin_call("POST", "/campaigns/%d/schedule" % cid, {"send_at": at}, 200)
        self.assertEqual((js["state"], js["send_at"]), ("scheduled", at))
        st, js, _ = self.a("PATCH", "/campaigns/%d" % cid, {"name": "late"}, token=self.admin)
        self.assertEqual(st, 409)
        self.assertEqual(self.a("POST", "/campaigns/%d/pause" % cid, token=self.admin)[0], 409)
        self.admin_call("POST", "/campaigns/%d/cancel" % cid, want=200)
        self.assertEqual(self.a("POST", "/campaigns/%d/start" % cid, token=self.admin)[0], 409)
        # A second one started now (serve delivers it through no relay: it
        # stays queued), paused, resumed, with stats and failures.
        c = self.admin_call("POST", "/campaigns", {
            "name": "Now", "subject": "s", "from": "n@example.com", "text": "t",
            "lists": [lst["id"]]}, 201)
        js = self.admin_call("POST", "/campaigns/%d/start" % c["id"], want=200)
        self.assertIn(js["state"], ("running", "finished"))
        if js["state"] == "running":
            self.assertIn(self.a("POST", "/campaigns/%d/pause" % c["id"], token=self.admin)[0],
                          (200, 409))
        st = self.admin_call("GET", "/campaigns/%d/stats" % c["id"], want=200)
        self.assertEqual(st["deliveries"]["total"], 1)
        f = self.admin_call("GET", "/campaigns/%d/failures" % c["id"], want=200)
        self.assertEqual(f["total"], 0)
        self.admin_call("POST", "/campaigns/%d/retry" % c["id"], want=200)
        self.assertEqual(self.a("POST", "/campaigns/999999/start", token=self.admin)[0], 404)
        acts = {r[0] for r in self.S.q("SELECT action FROM audit_log WHERE object_type = "
                                       "'campaign' AND object_id = ?", cid)}
        self.assertTrue({"campaign.create", "campaign.update", "campaign.schedule",
                         "campaign.cancel"} <= acts, acts)

    def test_relays_dkim_users_teams(self):
        r = self.admin_call("POST", "/relays", {"url": "smtp://user:s3cret@relay.example:2525",
                                                "max_conns": 2, "rate": 5.5}, 201)
        self.assertNotIn("s3cret", json.dumps(r))
        lst = self.admin_call("GET", "/relays", want=200)
        self.assertNotIn("s3cret", json.dumps(lst))
        self.assertEqual(self.a("POST", "/relays", {"url": "smtp://user:s3cret@relay.example:2525"},
                                token=self.admin)[0], 409)
        self.admin_call("DELETE", "/relays/%d" % r["id"], want=204)
        k = self.admin_call("POST", "/dkim-keys", {"domain": "Example.COM", "selector": "Sel1"},
                            201)
        self.assertEqual((k["domain"], k["selector"], k["algo"]), ("example.com", "sel1", "rsa"))
        self.assertEqual(k["dns"]["name"], "sel1._domainkey.example.com")
        self.assertTrue(k["dns"]["value"].startswith("v=DKIM1; k=rsa; p="))
        keys = self.admin_call("GET", "/dkim-keys", want=200)
        self.assertNotIn("PRIVATE", json.dumps(keys))
        self.assertEqual(self.a("POST", "/dkim-keys", {"domain": "example.com",
                                                       "selector": "sel1"},
                                token=self.admin)[0], 409)
        t = self.admin_call("POST", "/teams", {"name": "Sales", "model": "local"}, 201)
        self.assertEqual(self.admin_call("GET", "/teams/%d" % t["id"])["name"], "Sales")
        u = self.admin_call("POST", "/users", {"email": "new.person@example.com", "role": "operator",
                                               "team_id": t["id"], "password": PW}, 201)
        self.assertEqual(u["team_id"], t["id"])
        self.assertNotIn("password", json.dumps(self.admin_call("GET", "/users")))
        # The new user can sign in with that password.
        self.S.login("new.person@example.com")
        self.assertEqual(self.a("POST", "/users", {"email": "x@example.com", "role": "seller",
                                                   "team_id": 999999}, token=self.admin)[0], 422)

    def test_openapi_routes_exist(self):
        doc = self.openapi()
        self.assertEqual(doc["openapi"], "3.0.3")
        fx = self.fixtures()
        seen = set()
        for method, path, p, op in self.routes(doc, fx):
            seen.add((method, path))
            if method in ("DELETE",) or p.endswith(("/start", "/cancel", "/retry", "/pause",
                                                    "/resume", "/schedule")):
                # Asked with the wrong content type, so nothing changes: the
                # answer still shows the route is there.
                st, js, hd = self.a(method, p, raw=b"", token=self.people["responder"][1],
                                    ctype="text/plain")
            else:
                st, js, hd = self.a(method, p, raw=b"{}" if method != "GET" else None,
                                    token=self.people["responder"][1],
                                    ctype="application/json" if method != "GET" else None)
            self.assertNotEqual(st, 405, (method, path))
            if st == 404:
                self.assertNotEqual(js["error"]["message"], "there is no such API path",
                                    (method, path))
        # Every route these tests use is documented.
        used = {("GET", "/api/v1/me"), ("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"),
                ("DELETE", "/api/v1/tokens/{id}")}
        for kind, action, method, path, body in self.ACTIONS:
            used.add((method, "/api/v1" + path.replace("{o}", "{name}" if kind == "template"
                                                       else "{id}")))
        for m, p in (("POST", "/subscribers"), ("GET", "/subscribers"), ("POST", "/lists"),
                     ("GET", "/lists"), ("POST", "/templates"), ("POST", "/campaigns"),
                     ("POST", "/campaigns/{id}/schedule"), ("POST", "/campaigns/{id}/start"),
                     ("POST", "/campaigns/{id}/pause"), ("POST", "/campaigns/{id}/resume"),
                     ("POST", "/campaigns/{id}/retry"), ("GET", "/campaigns/{id}/failures"),
                     ("GET", "/replies"), ("GET", "/relays"), ("POST", "/relays"),
                     ("DELETE", "/relays/{id}"), ("GET", "/dkim-keys"), ("POST", "/dkim-keys"),
                     ("GET", "/users"), ("POST", "/users"), ("GET", "/users/{id}"),
                     ("GET", "/teams"), ("POST", "/teams"), ("GET", "/teams/{id}"),
                     ("GET", "/templates"), ("GET", "/campaigns")):
            used.add((m, "/api/v1" + p))
        self.assertEqual(used - seen, set())
        self.assertIn("post", doc["paths"]["/login"])
        self.assertIn("post", doc["paths"]["/logout"])


class RateLimit(unittest.TestCase):
    """Its own server: the limit it trips would hold up the other tests."""

    def setUp(self):
        self.S = Server(self, public_url="https://tidings.test")
        self.S.user("victim@example.com", "seller")
        for i in range(5):
            self.S.user("u%d@example.com" % i, "seller")
        self.S.start()

    def tearDown(self):
        self.S.stop()

    def login(self, email, pw):
        st, hd, b = self.S.request("POST", "/login", json.dumps(
            {"email": email, "password": pw}).encode(), {"Content-Type": "application/json"})
        return st, hd, json.loads(b)

    def test_per_account_then_per_address(self):
        st, hd, _ = self.login("victim@example.com", PW)
        self.assertEqual(st, 200)
        self.assertIn("Secure", hd["set-cookie"])  # the public URL is https
        for i in range(5):
            self.assertEqual(self.login("victim@example.com", "wrong %d" % i)[0], 401)
        st, hd, js = self.login("Victim@Example.com", PW)  # the right one, too late
        self.assertEqual(st, 429, js)
        self.assertEqual(js["error"]["code"], "rate_limited")
        self.assertEqual(hd["retry-after"], "900")
        self.assertNotIn("set-cookie", hd)
        # Another account from the same address still signs in.
        self.assertEqual(self.login("u0@example.com", PW)[0], 200)
        # Failures for accounts that do not exist count for the address.
        for i in range(15):  # 5 + 15 = 20 for 127.0.0.1
            self.assertEqual(self.login("nobody%d@example.com" % i, "x")[0], 401)
        st, _, js = self.login("u1@example.com", PW)
        self.assertEqual(st, 429, js)
        # Each is in the audit log, with the address, never the password.
        rows = self.S.q("SELECT action, actor, detail FROM audit_log WHERE action LIKE "
                        "'auth.login%'")
        self.assertEqual(sum(1 for r in rows if r[0] == "auth.login_failed"), 20)
        self.assertGreaterEqual(sum(1 for r in rows if r[0] == "auth.login_limited"), 2)
        self.assertTrue(all("wrong" not in (r[2] or "") for r in rows))
        self.assertTrue(all(r[1] == "peer:127.0.0.1" for r in rows if r[0] != "auth.login"))
        # Once the window is past, the account signs in again.
        self.S.q("UPDATE login_failures SET at = at - 901")
        self.assertEqual(self.login("victim@example.com", PW)[0], 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
