#!/usr/bin/python3
"""The HTTP server end to end: the real `tidings serve` on a free loopback
port against a temporary database, its tokens taken from real campaign
messages written to a maildir relay.

- the open pixel, the click redirect and their events (stored in batches);
- forged, altered, truncated and wrong-kind tokens: 404, nothing stored;
- path traversal, a 100 MB body (413 without reading it), oversize headers
  and request lines, methods not allowed (405): the server stays fine;
- RFC 8058 one-click unsubscribe exactly as the RFC shows it (POST,
  List-Unsubscribe=One-Click, no cookie), urlencoded and multipart; the
  next campaign leaves those subscribers out;
- signup (single and double opt-in, with the confirmation mail and
  /confirm/), and a name with an XSS payload comes back escaped;
- /healthz and /metrics;
- SIGTERM while requests are in flight loses no answered event.
"""
import email
import email.policy
import glob
import http.client
import os
import re
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = os.environ.get("TIDINGS_BIN") or os.path.join(ROOT, "tidings")
SANITIZED = os.environ.get("TIDINGS_SANITIZED") == "1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Http(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-http-")
        self.dir = self.tmp.name
        self.db = os.path.join(self.dir, "t.db")
        self.port = free_port()
        # The public URL is https, as behind a TLS proxy (RFC 8058 headers
        # need it); the tests talk to the server itself on loopback.
        self.base = "https://tidings.test"
        self.ok("init", "--public-url", self.base)
        self.maildir = os.path.join(self.dir, "md")
        self.ok("relay", "add", "maildir:" + self.maildir)
        self.ok("list", "create", "L")
        self.srv = None

    def tearDown(self):
        if self.srv and self.srv.poll() is None:
            self.srv.kill()
            self.srv.wait(10)
        if self.srv:
            self.srv.stderr.close()
        self.tmp.cleanup()

    def cmd(self, *args, timeout=120):
        return subprocess.run([BIN, *args, "--db", self.db], capture_output=True, timeout=timeout,
                              text=True)

    def ok(self, *args, timeout=120):
        p = self.cmd(*args, timeout=timeout)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p.stdout

    def q(self, sql, *params):
        c = sqlite3.connect(self.db, timeout=10)
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def serve(self, *extra):
        self.srv = subprocess.Popen([BIN, "serve", "--db", self.db, "--listen",
                                     "127.0.0.1:%d" % self.port, "--log-level", "info", *extra],
                                    stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                if self.get("/healthz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.fail("serve did not answer /healthz")

    def stop(self):
        self.srv.send_signal(signal.SIGTERM)
        self.assertEqual(self.srv.wait(60), 0)
        log = self.srv.stderr.read()
        self.assertNotIn("[error]", log)
        self.assertIn("serve: stopped", log)
        return log

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            c.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                c.putheader(k, v)
            if body is not None:
                c.putheader("Content-Length", str(len(body)))
            c.endheaders(body)
            r = c.getresponse()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
        finally:
            c.close()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def events(self, kind=None):
        if kind:
            return self.q("SELECT kind, campaign_id, subscriber_id, list_id, data FROM events"
                          " WHERE kind = ? ORDER BY id", kind)
        return self.q("SELECT kind, campaign_id, subscriber_id, list_id, data FROM events"
                      " ORDER BY id")

    def wait_events(self, kind, n):
        deadline = time.time() + 10
        while time.time() < deadline:
            got = self.events(kind)
            if len(got) >= n:
                return got
            time.sleep(0.05)
        return self.events(kind)

    def audience(self, emails, lst="L"):
        csv = os.path.join(self.dir, "a-%s.csv" % lst)
        with open(csv, "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for e in emails:
                f.write("%s,Name %s\n" % (e, e.split("@")[0]))
        self.ok("import", csv, "--list", lst)

    def send_campaign(self, html, *extra):
        path = os.path.join(self.dir, "t-%d.html" % time.monotonic_ns())
        with open(path, "w", encoding="utf-8") as f:
            f.write(html)
        cid = int(self.ok("campaign", "create", "--name", "C", "--subject", "News", "--from",
                          "News <news@example.com>", "--list", "L", "--template", path, *extra))
        before = set(glob.glob(os.path.join(self.maildir, "new", "*")))
        self.ok("campaign", "start", str(cid), "--wait")
        msgs = {}
        for f in set(glob.glob(os.path.join(self.maildir, "new", "*"))) - before:
            with open(f, "rb") as fh:
                m = email.message_from_binary_file(fh, policy=email.policy.default)
            html_part = m.get_body(("html",))
            msgs[str(m["To"].addresses[0].addr_spec)] = (m, html_part.get_content()
                                                         if html_part else "")
        return cid, msgs

    def urls(self, html, kind):
        return re.findall(re.escape(self.base) + "/" + kind + "/([A-Za-z0-9_-]+)", html)

    # ---- tests ------------------------------------------------------------

    def test_open_click_and_bad_tokens(self):
        self.audience(["a@example.com", "b@example.com"])
        cid, msgs = self.send_campaign(
            '<html><body><p>Hi</p><a href="https://shop.example/item?id=1&amp;x=2">buy</a>'
            '<a href="{{unsubscribe_url}}">unsubscribe</a></body></html>')
        self.assertEqual(len(msgs), 2)
        _, html = msgs["a@example.com"]
        opens, clicks, unsubs = self.urls(html, "o"), self.urls(html, "c"), self.urls(html, "u")
        self.assertEqual((len(opens), len(clicks), len(unsubs)), (1, 1, 1), html)
        self.serve()
        st, h, body = self.get("/o/" + opens[0])
        self.assertEqual(st, 200)
        self.assertEqual(h["content-type"], "image/gif")
        self.assertEqual(len(body), 43)
        self.assertTrue(body.startswith(b"GIF89a"))
        self.assertIn("no-store", h["cache-control"])
        st, h, _ = self.request("HEAD", "/o/" + opens[0])
        self.assertEqual(st, 200)
        st, h, _ = self.get("/c/" + clicks[0])
        self.assertEqual(st, 302)
        self.assertEqual(h["location"], "https://shop.example/item?id=1&x=2")
        sub_a = self.q("SELECT id FROM subscribers WHERE email = 'a@example.com'")[0][0]
        self.assertEqual(self.wait_events("open", 2), [("open", cid, sub_a, None, None)] * 2)
        self.assertEqual(self.wait_events("click", 1),
                         [("click", cid, sub_a, None, "https://shop.example/item?id=1&x=2")])

        # Bad tokens: every one 404, and nothing stored.
        tok = clicks[0]
        flip = lambda t, i: t[:i] + ("A" if t[i] != "A" else "B") + t[i + 1:]
        bad = ["/c/" + flip(tok, 0), "/c/" + flip(tok, len(tok) // 2), "/c/" + flip(tok, -1),
               "/c/" + tok[:-1], "/c/" + tok[:-4], "/c/" + tok[:10], "/c/" + tok + "A",
               "/c/" + tok + "AAAA", "/o/" + flip(opens[0], 3), "/o/" + opens[0][:-2],
               "/c/" + opens[0], "/o/" + clicks[0], "/c/" + unsubs[0], "/u/" + opens[0],
               "/confirm/" + unsubs[0], "/c/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
               "/o/x", "/c/" + tok + "=", "/c/" + tok + "%00", "/c/" + tok + "/x",
               "/c/" + "A" * 9000]
        for path in bad:
            st, _, body = self.get(path)
            self.assertEqual(st, 404, path)
            self.assertNotIn(b"shop.example", body)
        st, _, _ = self.request("POST", "/u/" + flip(unsubs[0], 5),
                                body=b"List-Unsubscribe=One-Click",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 404)
        time.sleep(0.3)  # past the writer's flush interval
        self.assertEqual(len(self.events()), 3)
        self.assertEqual(self.q("SELECT count(*) FROM memberships WHERE status = 'unsubscribed'"),
                         [(0,)])

        # Path traversal, raw (http.client sends the path as given).
        for path in ["/o/../../etc/passwd", "/o/%2e%2e/%2e%2e/etc/passwd", "/o/%2E%2E",
                     "/s/..", "/s/%2e%2e", "/s/%2e%2e%2fetc%2fpasswd", "/../etc/passwd",
                     "/c/..%2f..%2fetc%2fpasswd", "/healthz/../metrics"]:
            st, _, body = self.get(path)
            self.assertEqual(st, 404, path)
            self.assertNotIn(b"root:", body)

        # Methods.
        for method, path in [("DELETE", "/o/" + opens[0]), ("POST", "/c/" + clicks[0]),
                             ("PUT", "/u/" + unsubs[0]), ("POST", "/healthz"),
                             ("PATCH", "/metrics"), ("OPTIONS", "/s/L")]:
            st, h, _ = self.request(method, path, body=b"")
            self.assertEqual(st, 405, (method, path))
            self.assertIn("GET", h["allow"])
        time.sleep(0.3)
        self.assertEqual(len(self.events()), 3)

        # Metrics count them.
        st, h, body = self.get("/metrics")
        self.assertEqual(st, 200)
        m = body.decode()
        self.assertIn('tidings_http_requests_total{route="open",status="200"} 2', m)
        self.assertIn('tidings_http_requests_total{route="click",status="302"} 1', m)
        self.assertIn('tidings_http_requests_total{route="click",status="404"}', m)
        self.assertIn('tidings_http_requests_total{route="open",status="405"} 1', m)
        self.assertIn('tidings_events_total{kind="open"} 2', m)
        self.assertIn('tidings_events_total{kind="click"} 1', m)
        self.assertIn("tidings_messages_sent_total 2", m)
        self.assertIn("tidings_delivery_queue_depth 0", m)
        self.stop()

    def test_caps(self):
        self.serve()
        # 100 MB announced: 413 before the body is read, and the server is fine.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(b"POST /u/abc HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                  b"x-www-form-urlencoded\r\nContent-Length: 104857600\r\n\r\n")
        sent, chunk, t0 = 0, b"A" * 65536, time.time()
        reply = b""
        s.settimeout(0.2)
        try:
            while sent < 104857600 and time.time() - t0 < 20:
                try:
                    sent += s.send(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                try:
                    d = s.recv(4096)
                    if not d:
                        break
                    reply += d
                    break
                except socket.timeout:
                    pass
            s.settimeout(5)
            try:
                while not reply.endswith(b"\n") or b"\r\n\r\n" not in reply:
                    d = s.recv(4096)
                    if not d:
                        break
                    reply += d
            except (socket.timeout, ConnectionResetError):
                pass
        finally:
            s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:100])
        self.assertLess(sent, 104857600 // 2)  # it did not read the body
        # The same body in chunks, no length given: cut off at the cap.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(b"POST /u/abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        reply = b""
        try:
            for _ in range(1600):
                s.sendall(b"10000\r\n" + b"A" * 65536 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            reply = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        self.assertTrue(reply == b"" or reply.startswith(b"HTTP/1.1 413"), reply[:100])
        # Oversize headers and request line.
        st, _, _ = self.get("/healthz", headers={"X-Big": "a" * 100000})
        self.assertIn(st, (413, 431))
        st, _, _ = self.get("/o/" + "a" * 100000)
        self.assertIn(st, (414, 431))
        many = dict(("X-H%d" % i, "v" * 100) for i in range(2000))
        try:
            st, _, _ = self.get("/healthz", headers=many)
            self.assertIn(st, (413, 431))
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            pass
        # Still fine.
        self.assertEqual(self.get("/healthz")[:1], (200,))
        self.assertEqual(self.get("/healthz")[2], b"ok\n")
        self.stop()

    def test_one_click_unsubscribe(self):
        who = ["u1@example.com", "u2@example.com", "u3@example.com", "u4@example.com"]
        self.audience(who)
        cid, msgs = self.send_campaign('<p>Hi</p><a href="{{unsubscribe_url}}">unsubscribe</a>')
        self.assertEqual(sorted(msgs), who)
        m, html = msgs["u1@example.com"]
        # The headers mail providers use (RFC 8058) point at the same page.
        self.assertEqual(m["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        lu = re.search(r"<(http[^>]+)>", str(m["List-Unsubscribe"])).group(1)
        self.assertTrue(lu.startswith(self.base + "/u/"), lu)
        self.serve()
        # The GET page: a form that posts the one-click field back, escaped.
        st, h, body = self.get(urllib.parse.urlsplit(lu).path)
        self.assertEqual(st, 200)
        self.assertIn("text/html", h["content-type"])
        self.assertIn(b'name="List-Unsubscribe" value="One-Click"', body)
        self.assertIn(b"u1@example.com", body)
        # RFC 8058 section 3.2, as a mail provider sends it: a POST with
        # this body and no cookie or other credential.
        st, _, body = self.request("POST", urllib.parse.urlsplit(lu).path,
                                   body=b"List-Unsubscribe=One-Click",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        # Written before the answer: look at once.
        self.assertEqual(self.q("SELECT m.status FROM memberships m JOIN subscribers s ON"
                                " s.id = m.subscriber_id WHERE s.email = 'u1@example.com'"),
                         [("unsubscribed",)])
        self.assertEqual(len(self.events("unsubscribe")), 1)
        # multipart/form-data, as RFC 8058 also allows.
        u2 = self.urls(msgs["u2@example.com"][1], "u")[0]
        bnd = "----tidings%d" % os.getpid()
        mp = ("--%s\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\n"
              "One-Click\r\n--%s--\r\n" % (bnd, bnd)).encode()
        st, _, _ = self.request("POST", "/u/" + u2, body=mp,
                                headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
        self.assertEqual(st, 200)
        # Again: still 200, nothing more changes.
        st, _, _ = self.request("POST", "/u/" + u2, body=mp,
                                headers={"Content-Type": "multipart/form-data; boundary=" + bnd})
        self.assertEqual(st, 200)
        # A POST without the field is refused and changes nothing.
        u3 = self.urls(msgs["u3@example.com"][1], "u")[0]
        for body, ctype in [(b"", "application/x-www-form-urlencoded"),
                            (b"List-Unsubscribe=Yes", "application/x-www-form-urlencoded"),
                            (b"List-Unsubscribe=One-Click", "text/plain")]:
            st, _, _ = self.request("POST", "/u/" + u3, body=body, headers={"Content-Type": ctype})
            self.assertEqual(st, 400, body)
        self.assertEqual(self.q("SELECT s.email FROM memberships m JOIN subscribers s ON"
                                " s.id = m.subscriber_id WHERE m.status = 'unsubscribed'"
                                " ORDER BY s.email"), [("u1@example.com",), ("u2@example.com",)])
        self.stop()
        # The next campaign leaves them out.
        _, msgs2 = self.send_campaign("<p>Second</p>")
        self.assertEqual(sorted(msgs2), ["u3@example.com", "u4@example.com"])

    def test_no_tracking(self):
        self.audience(["n@example.com"])
        _, msgs = self.send_campaign('<body><a href="https://x.example/p">p</a></body>',
                                     "--no-track-opens", "--no-track-clicks")
        html = msgs["n@example.com"][1]
        self.assertIn('href="https://x.example/p"', html)
        self.assertEqual(self.urls(html, "o") + self.urls(html, "c"), [])
        self.assertEqual(self.q("SELECT track_opens, track_clicks FROM campaigns"), [(0, 0)])

    def test_signup(self):
        self.ok("list", "create", "Open", "--visibility", "public")
        self.ok("list", "create", "Double", "--visibility", "public", "--optin", "double")
        self.ok("list", "create", "Hidden")
        self.serve()
        st, h, body = self.get("/s/Open")
        self.assertEqual(st, 200)
        self.assertIn(b'<form method="post" action="/s/Open"', body)
        self.assertEqual(self.get("/s/Hidden")[0], 404)
        self.assertEqual(self.get("/s/Nope")[0], 404)
        xss = '<script>alert("x")</script><img src=x onerror=alert(1)>'
        form = urllib.parse.urlencode({"email": "x@example.com", "name": xss}).encode()
        st, _, body = self.request("POST", "/s/Open", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        self.assertNotIn(b"<script>", body)
        self.assertNotIn(b"<img src=x", body)
        self.assertIn(b"&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;", body)
        self.assertEqual(self.q("SELECT s.name, m.status FROM memberships m JOIN subscribers s"
                                " ON s.id = m.subscriber_id JOIN lists l ON l.id = m.list_id"
                                " WHERE l.name = 'Open'"), [(xss, "confirmed")])
        # A bad address gets the form again, escaped, and changes nothing.
        form = urllib.parse.urlencode({"email": '"><script>x', "name": "n"}).encode()
        st, _, body = self.request("POST", "/s/Open", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 400)
        self.assertNotIn(b"<script>", body)
        # Double opt-in: unconfirmed, a confirmation mail, then /confirm/.
        form = urllib.parse.urlencode({"email": "d@example.com", "name": "ليلى"}).encode()
        st, _, body = self.request("POST", "/s/Double", body=form, headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        self.assertEqual(st, 200, body)
        q = ("SELECT m.status FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id"
             " JOIN lists l ON l.id = m.list_id WHERE l.name = 'Double'")
        self.assertEqual(self.q(q), [("unconfirmed",)])
        mails = glob.glob(os.path.join(self.maildir, "new", "*"))
        self.assertEqual(len(mails), 1)
        with open(mails[0], "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        self.assertEqual(m["To"].addresses[0].addr_spec, "d@example.com")
        text = m.get_body(("plain",)).get_content()
        tok = re.search(re.escape(self.base) + r"/confirm/([A-Za-z0-9_-]+)", text).group(1)
        st, _, body = self.get("/confirm/" + tok)  # a fetch does not confirm
        self.assertEqual(st, 200)
        self.assertEqual(self.q(q), [("unconfirmed",)])
        self.assertEqual(self.request("POST", "/confirm/" + tok[:-1], body=b"")[0], 404)
        st, _, body = self.request("POST", "/confirm/" + tok, body=b"")
        self.assertEqual(st, 200)
        self.assertEqual(self.q(q), [("confirmed",)])
        self.assertEqual([e[0] for e in self.events()], ["signup", "signup", "confirm"])
        self.stop()

    def test_sigterm_in_flight_loses_nothing(self):
        self.audience(["s@example.com"])
        _, msgs = self.send_campaign('<a href="https://x.example/">x</a>')
        html = msgs["s@example.com"][1]
        paths = ["/o/" + self.urls(html, "o")[0], "/c/" + self.urls(html, "c")[0]]
        self.serve()
        answered = [0] * 8
        stop = threading.Event()

        def client(i):
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            n = 0
            try:
                while not stop.is_set():
                    c.request("GET", paths[n % 2])
                    r = c.getresponse()
                    r.read()
                    if r.status in (200, 302):
                        answered[i] += 1
                    n += 1
            except (OSError, http.client.HTTPException):
                pass
            finally:
                c.close()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(1.5 if not SANITIZED else 3)
        self.srv.send_signal(signal.SIGTERM)
        self.assertEqual(self.srv.wait(60), 0)
        stop.set()
        for t in threads:
            t.join(20)
        total = sum(answered)
        self.assertGreater(total, 100)
        stored = self.q("SELECT count(*) FROM events")[0][0]
        # Every answered request's event is stored; at most the ones cut
        # off between their event and their answer (one per connection)
        # more.
        self.assertGreaterEqual(stored, total)
        self.assertLessEqual(stored, total + len(threads))


if __name__ == "__main__":
    unittest.main()
