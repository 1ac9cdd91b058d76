#!/usr/bin/python3
"""The LMTP listener end to end: `tidings serve --lmtp` on a free loopback
port, after a real campaign to a maildir relay, talked to by Python's
smtplib.LMTP (a client we did not write) as a mail server would:

- a bounce to a message's VERP return path suppresses that address, a
  complaint unsubscribes and suppresses, and each gets its 250 only after
  that is stored; the same message sent again (its 250 lost) changes
  nothing more;
- one answer per recipient after DATA (RFC 2033), in their order;
- bad commands, a line over the limit, HELO instead of LHLO, DATA with no
  recipient, an unparsable message (kept as `other`, never lost), and a
  connection cut in the middle of DATA (nothing taken, the mail server
  sends it again);
- SIGTERM stops serve cleanly.
"""
import os
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
import unittest

import inbound_world as iw
import test_inbound as ti


class Lmtp(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-lmtp-")
        self.w = iw.World(self.tmp.name)
        self.sent = self.w.campaign(6)
        self.port = iw.free_port()
        self.w.port = iw.free_port()
        self.w.srv = subprocess.Popen(
            [iw.BIN, "serve", "--db", self.w.db, "--listen", "127.0.0.1:%d" % self.w.port,
             "--lmtp", "127.0.0.1:%d" % self.port, "--log-level", "info"],
            stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.5).close()
                break
            except OSError:
                time.sleep(0.05)

    def tearDown(self):
        self.w.kill()
        self.tmp.cleanup()

    def lmtp(self):
        c = smtplib.LMTP("127.0.0.1", self.port, timeout=60)
        c.ehlo_or_helo_if_needed = lambda: None  # LMTP says LHLO (connect did it)
        code, _ = c.docmd("LHLO", "mx.example.net")
        self.assertEqual(code, 250)
        c.does_esmtp = True
        return c

    def raw(self, lines):
        """Sends lines over a plain socket; returns the server's whole answer."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        try:
            s.sendall(b"".join(l + b"\r\n" for l in lines))
            s.shutdown(socket.SHUT_WR)
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
            return out.decode("utf-8", "replace")
        finally:
            s.close()

    def test_bounce_complaint_and_replay(self):
        a, b = self.sent["s0@example.org"], self.sent["s1@example.org"]
        bounce = ti.dsn(a["_verp"], "s0@example.org", "5.1.1", a["_orig"])
        c = self.lmtp()
        # sendmail: one reply per recipient; smtplib raises on any refusal
        refused = c.sendmail("", [a["_verp"]], bounce.encode())
        self.assertEqual(refused, {})
        self.assertEqual(self.w.q("SELECT address FROM suppressions"), [("s0@example.org",)])
        self.assertEqual(self.w.q("SELECT kind, subscriber_id FROM events WHERE kind = 'bounce'"),
                         [("bounce", self.w.ids["s0@example.org"])])
        # The same message again (as if the 250 had been lost): nothing more.
        self.assertEqual(c.sendmail("", [a["_verp"]], bounce.encode()), {})
        self.assertEqual(len(self.w.q("SELECT * FROM events WHERE kind = 'bounce'")), 1)
        # A complaint for s1, to two recipients at once: two answers.
        complaint = ti.arf(b["_orig"])
        c.mail("")
        c.rcpt("fbl@news.example.com")
        c.rcpt(b["_verp"])
        c.send(b"DATA\r\n")
        self.assertEqual(c.getreply()[0], 354)
        c.send(complaint.replace("\r\n.", "\r\n..").encode() + b"\r\n.\r\n")
        first, second = c.getreply(), c.getreply()
        self.assertEqual((first[0], second[0]), (250, 250), (first, second))
        self.assertIn(b"fbl@news.example.com", first[1])
        self.assertIn(b["_verp"].encode(), second[1])
        c.quit()
        self.assertIn(("s1@example.org",), self.w.q("SELECT address FROM suppressions"))
        self.assertEqual(self.w.q("SELECT DISTINCT m.status FROM memberships m WHERE"
                                  " m.subscriber_id = ?", self.w.ids["s1@example.org"]),
                         [("unsubscribed",)])
        self.w.stop()

    def test_bad_input(self):
        out = self.raw([b"HELO x", b"MAIL FROM:<a@b.example>", b"LHLO mx", b"DATA",
                        b"RCPT TO:<x@y.example>", b"MAIL FROM:<a@b.example>",
                        b"RCPT TO:<no at sign>", b"RCPT TO:x@y.example", b"DATA",
                        b"RCPT TO:<" + b"a" * 3000 + b"@x.example>", b"X" * 5000,
                        b"NOPE", b"MAIL FROM:<a\x00b@c.example>", b"QUIT", b"NOOP"])
        codes = [l[:3] for l in out.split("\r\n") if l and l[3:4] == " "]
        self.assertEqual(codes, ["220", "500", "503", "250", "503", "503", "250", "501", "501",
                                 "503", "500", "500", "500", "500", "221"], out)
        # An unparsable message is kept as `other`, and answered 250.
        out = self.raw([b"LHLO mx", b"MAIL FROM:<>", b"RCPT TO:<bounces@example.com>", b"DATA",
                        b"\xff\xfe not a message at all", b"..", b".", b"QUIT"])
        self.assertIn("250 2.0.0 <bounces@example.com> other", out)
        self.assertEqual(self.w.q("SELECT kind FROM inbound_messages WHERE source = 'lmtp'"),
                         [("other",)])
        # Cut in the middle of DATA: nothing taken.
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.sendall(b"LHLO mx\r\nMAIL FROM:<>\r\nRCPT TO:<bounces@example.com>\r\nDATA\r\n"
                  b"Subject: half\r\n\r\nhalf a messa")
        time.sleep(0.3)
        s.close()
        time.sleep(0.3)
        self.assertEqual(len(self.w.q("SELECT * FROM inbound_messages")), 1)
        self.w.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
