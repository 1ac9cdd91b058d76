#!/usr/bin/python3
"""`tidings campaign create|ls|status` and `tidings relay add|ls|rm` through
the real binary: what they print, their exit codes, and hostile input."""
import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("TIDINGS_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tidings")


class CLI(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-camp-")
        self.db = os.path.join(self.tmp.name, "t.db")
        self.ok("init")
        self.ok("list", "create", "Customers")
        self.ok("list", "create", "VIP", "--optin", "double")
        self.html = self.write("t.html", "<p>مرحبا {{subscriber.first_name}}</p>")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        p = os.path.join(self.tmp.name, name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    def run_(self, *args):
        p = subprocess.run([BIN, *args, "--db", self.db], capture_output=True, timeout=60)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def ok(self, *args):
        rc, out, err = self.run_(*args)
        self.assertEqual(rc, 0, err)
        return out

    def fails(self, code, *args):
        rc, out, err = self.run_(*args)
        self.assertEqual(rc, code, (args, out, err))
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        return err

    def create(self, *extra):
        return self.run_("campaign", "create", "--name", "Spring سبرينغ", "--subject",
                         "Hi {{subscriber.first_name}}", "--from", "สมชาย <somchai@example.com>",
                         "--list", "Customers", "--list", "VIP", "--template", self.html, *extra)

    def test_create_ls_status(self):
        rc, out, err = self.create("--at", "2031-05-01 08:00", "--tz", "Asia/Bangkok")
        self.assertEqual(rc, 0, err)
        cid = int(out)
        ls = [json.loads(line) for line in self.ok("campaign", "ls", "--json").splitlines()]
        self.assertEqual([(c["id"], c["name"], c["state"]) for c in ls],
                         [(cid, "Spring سبرينغ", "draft")])
        st = json.loads(self.ok("campaign", "status", str(cid), "--json"))
        self.assertEqual(st["lists"], ["Customers", "VIP"])
        self.assertEqual(st["send_at"], 1935363600)  # 2031-05-01 01:00 UTC
        self.assertEqual(st["timezone"], "Asia/Bangkok")
        self.assertEqual(st["from"], "สมชาย <somchai@example.com>")
        self.assertEqual((st["total"], st["sent"]), (0, 0))
        text = self.ok("campaign", "status", str(cid))
        self.assertIn("state        draft", text)

    def test_refusals(self):
        self.fails(2, "campaign")
        self.fails(2, "campaign", "launch")
        self.fails(2, "campaign", "create", "--name", "x")
        self.fails(2, "campaign", "status")
        self.fails(2, "campaign", "create", "--bogus")
        err = self.fails(1, "campaign", "status", "42")
        self.assertIn("no campaign 42", err)
        self.fails(1, "campaign", "status", "x'; DROP TABLE campaigns; --")
        bad = self.write("bad.html", "{{#a}}")
        rc, _, err = self.run_("campaign", "create", "--name", "n", "--subject", "s", "--from",
                               "a@example.com", "--list", "Customers", "--html", bad)
        self.assertEqual(rc, 1)
        self.assertIn("line 1, column 1", err)
        for args, want in (
            (("--from", "a@example.com\r\nBcc: evil@example.com"), "From address"),
            (("--list", "Nope"), "no list 'Nope'"),
            (("--at", "2001-01-01 00:00"), "in the past"),
            (("--at", "2031-01-01 00:00", "--tz", "Nowhere/City"), "time zone"),
        ):
            base = ["campaign", "create", "--name", "n", "--subject", "s", "--template",
                    self.html]
            if "--from" not in args:
                base += ["--from", "a@example.com"]
            if "--list" not in args:
                base += ["--list", "Customers"]
            rc, _, err = self.run_(*base, *args)
            self.assertEqual(rc, 1, (args, err))
            self.assertIn(want, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.fails(1, "campaign", "create", "--name", "n", "--subject", "s", "--from",
                   "a@example.com", "--list", "Customers", "--template",
                   os.path.join(self.tmp.name, "missing.html"))
        self.assertEqual(self.ok("campaign", "ls", "--json"), "")

    def test_relays(self):
        rid = int(self.ok("relay", "add", "smtp://user:s3cret@Relay.Example:587?tls=required",
                          "--max-conns", "8", "--rate", "50/s"))
        self.ok("relay", "add", "maildir:/var/tmp/tidings-mail")
        out = self.ok("relay", "ls", "--json")
        relays = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(len(relays), 2)
        self.assertNotIn("s3cret", out)
        self.assertIn("****", relays[0]["url"])
        self.assertIn("relay.example:587", relays[0]["url"])
        self.assertEqual((relays[0]["max_conns"], relays[0]["rate"]), (8, 50))
        err = self.fails(1, "relay", "add", "smtp://user:s3cret@relay.example:587?tls=required")
        self.assertIn("there already", err)
        self.fails(1, "relay", "add", "http://example.com")
        self.fails(1, "relay", "add", "smtp://host\r\n:25")
        self.fails(2, "relay", "add", "smtp://h:25", "--max-conns", "0")
        self.fails(2, "relay", "add", "smtp://h:25", "--rate", "fast")
        self.fails(2, "relay", "rm")
        self.fails(1, "relay", "rm", "99")
        self.ok("relay", "rm", str(rid))
        self.ok("relay", "rm", "maildir:/var/tmp/tidings-mail")
        self.assertEqual(self.ok("relay", "ls", "--json"), "")


if __name__ == "__main__":
    unittest.main(verbosity=2)
