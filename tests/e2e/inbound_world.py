"""Shared by the inbound end-to-end tests: a small sent campaign (the
maildir relay's messages give real VERP return paths and Message-IDs) and
a `tidings serve` started on a free port. The Dovecot and message makers
live in test_inbound.py and are imported from there."""
import glob
import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import time

import test_inbound as ti

BIN = ti.BIN
free_port = ti.free_port


class World:
    def __init__(self, dir):
        self.dir = dir
        self.db = os.path.join(dir, "t.db")
        self.srv = None
        self.port = None

    def cmd(self, *args, timeout=300):
        return subprocess.run([BIN, *args, "--db", self.db], capture_output=True,
                              timeout=timeout, text=True)

    def ok(self, *args, timeout=300):
        p = self.cmd(*args, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError((args, p.stdout, p.stderr))
        return p.stdout

    def q(self, sql, *params):
        c = sqlite3.connect(self.db, timeout=10)
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def campaign(self, n=8):
        """A campaign to s0..s{n-1}@example.org on lists L (all) and M (the
        first half), sent to a maildir: returns {email: headers}."""
        self.ok("init", "--public-url", "https://news.example.com")
        self.ok("list", "create", "L")
        self.ok("list", "create", "M")
        csv = os.path.join(self.dir, "subs.csv")
        half = os.path.join(self.dir, "half.csv")
        with open(csv, "w") as f, open(half, "w") as g:
            f.write("email,name\n")
            g.write("email,name\n")
            for i in range(n):
                f.write("s%d@example.org,S %d\n" % (i, i))
                if i < n // 2:
                    g.write("s%d@example.org,S %d\n" % (i, i))
        self.ok("import", csv, "--list", "L")
        self.ok("import", half, "--list", "M")
        html = os.path.join(self.dir, "t.html")
        with open(html, "w") as f:
            f.write('<p>Hi</p><a href="{{unsubscribe_url}}">unsubscribe</a>')
        self.cid = int(self.ok("campaign", "create", "--name", "C", "--subject", "News",
                               "--from", "News <news@example.com>", "--list", "L",
                               "--template", html))
        md = os.path.join(self.dir, "sent")
        self.ok("relay", "add", "maildir:" + md)
        self.ok("campaign", "start", str(self.cid), "--wait")
        sent = {}
        for p in glob.glob(os.path.join(md, "new", "*")):
            with open(p, "rb") as f:
                h, head = ti.headers_of(f.read())
            lines = [l for l in head.split("\n")
                     if not l.lower().startswith(("return-path:", "delivered-to:"))]
            h["_orig"] = "\n".join(lines)
            h["_verp"] = h["return-path"].strip("<>")
            h["_mid"] = h["message-id"].strip("<>")
            sent[h["delivered-to"]] = h
        assert len(sent) == n, sent.keys()
        self.ids = dict(self.q("SELECT email, id FROM subscribers"))
        return sent

    def serve(self):
        self.port = free_port()
        self.srv = subprocess.Popen([BIN, "serve", "--db", self.db, "--listen",
                                     "127.0.0.1:%d" % self.port, "--log-level", "info"],
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

    def request(self, method, path, body=None, headers=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read().decode("utf-8", "replace")
        finally:
            c.close()

    def post_big(self, path, body, headers=None):
        """POSTs body over a raw socket, going on when the server stops
        reading (it answers 413 from the headers): the status."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n" % (path, len(body))
            for k, v in (headers or {}).items():
                head += "%s: %s\r\n" % (k, v)
            s.sendall(head.encode() + b"\r\n")
            try:
                s.sendall(body)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reply = b""
            try:
                while b"\r\n" not in reply:
                    d = s.recv(4096)
                    if not d:
                        break
                    reply += d
            except ConnectionResetError:
                pass
            return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/") else 0
        finally:
            s.close()

    def stop(self):
        """SIGTERM: returns the log; fails unless serve stopped cleanly."""
        if not self.srv:
            return ""
        self.srv.send_signal(signal.SIGTERM)
        rc = self.srv.wait(90)
        log = self.srv.stderr.read()
        self.srv.stderr.close()
        self.srv = None
        if rc != 0 or "serve: stopped" not in log:
            raise AssertionError("serve did not stop cleanly (%d): %s" % (rc, log[-3000:]))
        return log

    def kill(self):
        if self.srv and self.srv.poll() is None:
            self.srv.kill()
            self.srv.wait(10)
        if self.srv:
            self.srv.stderr.close()
        self.srv = None
