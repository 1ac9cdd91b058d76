#!/usr/bin/python3
"""End-to-end tests for `tidings bounce FILE...` through the real binary
($TIDINGS_BIN): our own corpus under tests/data/bounces/ (one message per
format family and hostile ones; NAME.eml gives exactly the line in
NAME.expected), the command's contract (--help, exit status 0/1/2, an error
line for a file that cannot be read while the others are still read,
standard input as '-'), and hostile input made here because it is too big
to keep in git: a 50 MB bounce, MIME nested 100000 deep, and binary junk.
"""
import json
import os
import subprocess
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
BIN = os.environ.get("TIDINGS_BIN") or os.path.join(ROOT, "tidings")
DATA = os.path.join(ROOT, "tests", "data", "bounces")
# The sanitizer build is several times slower; the limits are for a
# parser that hangs or goes quadratic, not for a slow machine.
SLOW = 10 if os.environ.get("TIDINGS_SANITIZED") else 1


def run(*args, cwd=None, stdin=b"", timeout=120):
    p = subprocess.run([BIN, "bounce", *args], capture_output=True, cwd=cwd, input=stdin,
                       timeout=timeout * SLOW)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


DSN_HEAD = (b"Return-Path: <>\nFrom: Mail Delivery System <MAILER-DAEMON@mx.example.net>\n"
            b"To: bounces+c1.s1@news.tidings-test.example\n"
            b"Subject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\n\n"
            b"--B\nContent-Type: text/plain\n\nYour message could not be delivered.\n\n"
            b"--B\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.net\n\n"
            b"Final-Recipient: rfc822; big@example.net\nAction: failed\nStatus: 5.1.1\n"
            b"Diagnostic-Code: smtp; 550 5.1.1 <big@example.net>: user unknown\n\n")


class Corpus(unittest.TestCase):
    def test_golden(self):
        names = sorted(f for f in os.listdir(DATA) if f.endswith(".eml"))
        self.assertGreaterEqual(len(names), 20)
        rc, out, err = run(*names, cwd=DATA)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        lines = out.splitlines()
        self.assertEqual(len(lines), len(names))
        for name, line in zip(names, lines):
            with open(os.path.join(DATA, name[:-4] + ".expected"), encoding="utf-8") as f:
                want = f.read().strip()
            # Byte for byte: key order and number forms are the contract.
            self.assertEqual(line, want, name)
            json.loads(line)

    def test_every_family_is_there(self):
        kinds = {}
        for name in os.listdir(DATA):
            if name.endswith(".expected"):
                with open(os.path.join(DATA, name), encoding="utf-8") as f:
                    kinds.setdefault(json.loads(f.read())["kind"], []).append(name)
        for k in ("bounce", "complaint", "reply", "other"):
            self.assertIn(k, kinds)


class Contract(unittest.TestCase):
    def test_help(self):
        rc, out, err = run("--help")
        self.assertEqual(rc, 0)
        self.assertIn("usage: tidings bounce FILE", out)
        self.assertIn("\n  bounce ", subprocess.run([BIN, "--help"], capture_output=True,
                                                      text=True).stdout)

    def test_usage_errors(self):
        rc, out, err = run()
        self.assertEqual((rc, out), (2, ""))
        self.assertEqual(len(err.splitlines()), 1, err)
        rc, out, err = run("--no-such-option", "x.eml")
        self.assertEqual((rc, out), (2, ""))
        self.assertIn("--no-such-option", err)

    def test_unreadable_file_reported_and_others_read(self):
        with tempfile.TemporaryDirectory() as d:
            rc, out, err = run("exim-prose.eml", os.path.join(d, "missing.eml"), d, "gmail-prose.eml",
                               cwd=DATA)
        self.assertEqual(rc, 1)
        got = [json.loads(l)["file"] for l in out.splitlines()]
        self.assertEqual(got, ["exim-prose.eml", "gmail-prose.eml"])
        lines = err.splitlines()
        self.assertEqual(len(lines), 2, err)
        self.assertIn("missing.eml", lines[0])
        self.assertTrue(all(l.startswith("tidings: ") for l in lines))

    def test_stdin(self):
        with open(os.path.join(DATA, "qmail-prose.eml"), "rb") as f:
            rc, out, err = run("-", stdin=f.read())
        self.assertEqual(rc, 0, err)
        o = json.loads(out)
        self.assertEqual(o["file"], "-")
        self.assertEqual([r["address"] for r in o["recipients"]],
                         ["nosuch@qmail.example.com", "over@qmail.example.com"])

    def test_not_a_message_is_other(self):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for name, data in (("empty", b""), ("junk", os.urandom(4096)), ("nul", b"\0" * 1000)):
                paths.append(os.path.join(d, name))
                with open(paths[-1], "wb") as f:
                    f.write(data)
            rc, out, err = run(*paths)
        self.assertEqual(rc, 0, err)
        for line in out.splitlines():
            o = json.loads(line)
            self.assertEqual((o["kind"], o["recipients"]), ("other", []), line)


class Hostile(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-bounce-")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, data):
        p = os.path.join(self.tmp.name, name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def test_50mb_message(self):
        # A bounce that returns a 50 MB original: the report comes first and
        # is found; the bulk is not read past the parser's cap.
        line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkwYWJjZGVmZ2hpamtsbW5vcHFy\n"
        body = line * (50 * 1024 * 1024 // len(line) + 1)
        p = self.write("big.eml", DSN_HEAD + b"--B\nContent-Type: message/rfc822\n\n"
                       b"From: news@tidings-test.example\nTo: big@example.net\nSubject: big\n"
                       b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                       + body + b"--B--\n")
        self.assertGreater(os.path.getsize(p), 50 * 1024 * 1024)
        t0 = time.monotonic()
        rc, out, err = run(p, timeout=60)
        self.assertEqual(rc, 0, err)
        o = json.loads(out)
        self.assertEqual(o["kind"], "bounce")
        self.assertEqual([(r["address"], r["status"], r["hard"]) for r in o["recipients"]],
                         [("big@example.net", "5.1.1", True)])
        self.assertLess(time.monotonic() - t0, 20 * SLOW)

    def test_deep_nesting(self):
        depth = 100000
        parts = [b"From: MAILER-DAEMON@mx.example.net\nSubject: deep\nMIME-Version: 1.0\n"
                 b"Content-Type: multipart/mixed; boundary=\"d0\"\n\n"]
        parts += [b"--d%d\nContent-Type: multipart/mixed; boundary=\"d%d\"\n\n" % (i - 1, i)
                  for i in range(1, depth)]
        p = self.write("deep.eml", b"".join(parts))
        rc, out, err = run(p, timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["kind"], "other")

    def test_many_recipients_capped(self):
        groups = b"".join(b"Final-Recipient: rfc822; u%d@example.net\nAction: failed\nStatus: 5.1.1\n\n" % i
                          for i in range(5000))
        p = self.write("many.eml", DSN_HEAD.split(b"Final-Recipient")[0] + groups + b"--B--\n")
        rc, out, err = run(p, timeout=60)
        self.assertEqual(rc, 0, err)
        rc_list = json.loads(out)["recipients"]
        self.assertEqual(len(rc_list), 256)  # BOUNCE_MAX_RCPT
        self.assertEqual(rc_list[0]["address"], "u0@example.net")
        self.assertEqual(rc_list[255]["address"], "u255@example.net")

    def test_huge_failed_recipients_header(self):
        # Each named recipient's diagnostic is looked up in the notice: the
        # work must stop at the cap, not go on for 50000 of them.
        addrs = ",".join("u%d@example.com" % i for i in range(50000)).encode()
        notice = b"\n".join(b"  u%d@example.com\n    550 user unknown" % i for i in range(5000))
        p = self.write("xf.eml", b"From: MAILER-DAEMON@mx.example.net\nX-Failed-Recipients: " + addrs +
                       b"\nSubject: Mail delivery failed\n\nThe following address(es) failed:\n" + notice + b"\n")
        t0 = time.monotonic()
        rc, out, err = run(p, timeout=60)
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(json.loads(out)["recipients"]), 256)
        self.assertLess(time.monotonic() - t0, 5 * SLOW)

    def test_long_lines_and_junk_in_report(self):
        junk = os.urandom(200000)
        p = self.write("junk.eml", DSN_HEAD + b"--B\nContent-Type: text/plain\n\n" + junk + b"\n--B--\n")
        rc, out, err = run(p)
        self.assertEqual(rc, 0, err)
        o = json.loads(out)
        self.assertEqual(o["recipients"][0]["address"], "big@example.net")


if __name__ == "__main__":
    unittest.main()
