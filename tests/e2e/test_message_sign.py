#!/usr/bin/python3
"""`tidings message --sign` end to end: the message exactly as a campaign
sends it, with the platform's context (signed unsubscribe URL in the body and
in List-Unsubscribe, {{#track}} links) and DKIM signatures by the From
domain's keys, both algorithms. Checked by software we did not write:
dkimpy verifies every signature; Python's email package parses the message
back to the same subject, names, text and HTML. A changed body or subject
must fail verification.
"""
import email
import email.policy
import json
import os
import re
import subprocess
import tempfile
import unittest

import dkim

BIN = os.environ.get("TIDINGS_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tidings")
BASE = "https://news.example.com"
AR = "ليلى حداد"
TH = "สมชาย ใจดี"
SUBJ = "مرحبا {{subscriber.first_name}} — ข่าวสารประจำเดือน"


def run(*args, stdin=None):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


class SignedMessage(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="tidings-sign-")
        d = cls.tmp.name
        cls.db = os.path.join(d, "t.db")
        rc, _, err = run("init", "--db", cls.db, "--public-url", BASE)
        assert rc == 0, err
        for sel, algo in (("ed", "ed25519"), ("rs", "rsa")):
            rc, _, err = run("dkim", "keygen", "--domain", "example.com", "--selector", sel,
                             "--algo", algo, "--db", cls.db)
            assert rc == 0, err
        rc, out, err = run("dkim", "ls", "--json", "--db", cls.db)
        assert rc == 0, err
        cls.records = {}
        for line in out.decode().splitlines():
            k = json.loads(line)
            cls.records[k["name"] + "."] = k["value"].encode()
        # the recipient is a stored subscriber with attributes
        rc, _, err = run("subscriber", "add", "layla@example.net", "--name", AR,
                         "--attr", "city=Amman", "--db", cls.db)
        assert rc == 0, err
        long_line = " ".join(["كلمة"] * 300)
        cls.html = os.path.join(d, "t.html")
        with open(cls.html, "w", encoding="utf-8") as f:
            f.write('<html><body dir="rtl"><h1>مرحبا {{subscriber.first_name}}</h1>\n'
                    "<p>" + long_line + "</p>\n"
                    "<p>trailing spaces   \n\n\n</p>"
                    '<p><a href="{{#track}}https://shop.example/p?id={{subscriber.id}}&amp;c=1'
                    '{{/track}}">Shop</a> — {{subscriber.attributes.city}}</p>\n'
                    '<p><a href="{{unsubscribe_url}}">Unsubscribe</a></p></body></html>\n')
        cls.text = os.path.join(d, "t.txt")
        with open(cls.text, "w", encoding="utf-8") as f:
            f.write("مرحبا {{subscriber.first_name}}\n\n{{#track}}https://shop.example/p{{/track}}"
                    "\n\nUnsubscribe: {{unsubscribe_url}}\n   \n\n")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def dnsfunc(self, name, timeout=5):
        return self.records.get(name.decode() if isinstance(name, bytes) else name)

    def message(self, *extra):
        rc, out, err = run("message", "--template", self.html, "--text", self.text,
                           "--from", f"{TH} <somchai@example.com>",
                           "--to", f"{AR} <layla@example.net>", "--subject", SUBJ,
                           "--sign", "--db", self.db, *extra)
        self.assertEqual(rc, 0, err)
        return out

    def verify(self, raw, idx):
        try:
            return dkim.DKIM(raw).verify(idx=idx, dnsfunc=self.dnsfunc)
        except dkim.ValidationError:
            return False

    def test_both_signatures_verify(self):
        raw = self.message()
        heads = raw.split(b"\r\n\r\n", 1)[0]
        algos = re.findall(rb"a=([a-z0-9-]+);", heads)
        self.assertEqual(sorted(algos), [b"ed25519-sha256", b"rsa-sha256"])
        for i in range(2):
            self.assertTrue(self.verify(raw, i), f"signature {i} does not verify")

    def test_tampering_fails(self):
        raw = self.message()
        head, body = raw.split(b"\r\n\r\n", 1)
        changed_body = head + b"\r\n\r\n" + body.replace(b"=D8", b"=D9", 1) + b"x\r\n"
        changed_subject = re.sub(rb"(?m)^Subject: ", b"Subject: X", raw, count=1)
        for bad in (changed_body, changed_subject):
            for i in range(2):
                self.assertFalse(self.verify(bad, i))

    def test_parses_back_with_platform_urls(self):
        raw = self.message()
        m = email.message_from_bytes(raw, policy=email.policy.default)
        self.assertEqual(str(m["Subject"]), "مرحبا ليلى — ข่าวสารประจำเดือน")
        self.assertEqual(m["From"].addresses[0].display_name, TH)
        self.assertEqual(m["To"].addresses[0].display_name, AR)
        lu = str(m["List-Unsubscribe"])
        self.assertTrue(lu.startswith("<" + BASE + "/u/"), lu)
        self.assertEqual(str(m["List-Unsubscribe-Post"]), "List-Unsubscribe=One-Click")
        html = m.get_body(("html",)).get_content()
        text = m.get_body(("plain",)).get_content()
        self.assertIn("مرحبا ليلى", html)
        self.assertIn("Amman", html)
        self.assertIn(" ".join(["كلمة"] * 300), html)
        # the tracked link and the unsubscribe link start from the public URL
        self.assertRegex(html, r'href="https://news\.example\.com/c/[A-Za-z0-9_-]+"')
        self.assertNotIn("shop.example", html)
        self.assertIn(lu[1:-1], html)
        self.assertRegex(text, r"https://news\.example\.com/c/[A-Za-z0-9_-]+")
        self.assertIn("Unsubscribe: " + BASE + "/u/", text)

    def test_no_key_is_a_clear_error(self):
        rc, _, err = run("message", "--template", self.html, "--from", "a@other.example",
                         "--to", "b@example.net", "--subject", "x", "--sign", "--db", self.db)
        self.assertEqual(rc, 1)
        self.assertIn("no DKIM key for other.example", err)
        self.assertEqual(len(err.strip().splitlines()), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
