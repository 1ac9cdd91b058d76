#!/usr/bin/python3
"""End-to-end tests for `tidings message` and `tidings render`.

Messages made by the real binary ($TIDINGS_BIN) are parsed with Python's
email package (policy=email.policy.default), a MIME parser the project did
not write, and must come back with the same subject, display names, text,
HTML and attachments: Arabic and Thai names and subjects, long lines,
trailing whitespace, empty lines. Hostile values (CR/LF in the subject, From,
To and data, a 1 MB subject, invalid UTF-8) must be refused with exit
status 1 and a message, or, in a body, arrive as data and never as a header.
"""
import email
import email.policy
import email.utils
import html
import json
import os
import subprocess
import sys
import tempfile
import unittest
from email.header import decode_header, make_header

BIN = os.environ.get("TIDINGS_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tidings")

AR_NAME = "محمد عبد الله"
TH_NAME = "สมชาย ใจดี"
AR_SUBJ = "مرحبا بكم في نشرتنا الأسبوعية"
TH_SUBJ = "ข่าวสารประจำสัปดาห์ของคุณ พร้อมโปรโมชั่นพิเศษ"
DATE = "1751364000"


def run(*args, stdin=None):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


class Files:
    """A temporary folder holding the template, data and attachment files."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory(prefix="tidings-msg-")

    def path(self, name):
        return os.path.join(self.dir.name, name)

    def write(self, name, content):
        mode = "wb" if isinstance(content, bytes) else "w"
        kw = {} if mode == "wb" else {"encoding": "utf-8", "newline": ""}
        with open(self.path(name), mode, **kw) as f:
            f.write(content)
        return self.path(name)

    def close(self):
        self.dir.cleanup()


def check_wire(test, raw):
    """Every line ends with CRLF, none passes 998 octets, header lines fold
    at 78, and no bare CR or LF is anywhere."""
    test.assertTrue(raw.endswith(b"\r\n"))
    lines = raw.split(b"\r\n")
    in_headers = True
    for i, line in enumerate(lines[:-1]):
        test.assertNotIn(b"\r", line, "bare CR in line %d" % i)
        test.assertNotIn(b"\n", line, "bare LF in line %d" % i)
        test.assertLessEqual(len(line), 998)
        if in_headers:
            if line == b"":
                in_headers = False
            else:
                test.assertLessEqual(len(line), 78, line)


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def unix(s):
    return s.replace("\r\n", "\n")


def compliant_name(raw, field):
    """The display name decoded by the RFC 2047 rules (blanks between adjacent
    encoded words dropped). Python 3.11's policy.default keeps those blanks
    inside display names, so long names split over several encoded words are
    checked with this decoder too."""
    m = email.message_from_bytes(raw, policy=email.policy.compat32)
    decoded = str(make_header(decode_header(m[field])))
    name, _ = email.utils.parseaddr(decoded)
    return name


class MessageTest(unittest.TestCase):
    def setUp(self):
        self.f = Files()

    def tearDown(self):
        self.f.close()

    def message(self, template, data, *extra, subject="Hello", frm="news@shop.example.com",
                to="jane@example.org", expect_ok=True):
        args = ["message", "--date", DATE, "--message-id", "t.1@shop.example.com",
                "--from", frm, "--to", to, "--subject", subject]
        if template is not None:
            args += ["--template", self.f.write("t.mustache", template)]
        if data is not None:
            args += ["--data", self.f.write("d.json", data if isinstance(data, bytes)
                                            else json.dumps(data, ensure_ascii=False))]
        rc, out, err = run(*args, *extra)
        if expect_ok:
            self.assertEqual(rc, 0, err)
            check_wire(self, out)
        return rc, out, err

    def test_international_roundtrip(self):
        data = {"name": AR_NAME, "thai": TH_NAME, "amp": "Tom & Jerry <co>"}
        tpl = ("<html dir=\"rtl\"><body><h1>{{name}}</h1>\n<p>" + AR_SUBJ + " {{thai}}</p>\n"
               "<p>{{amp}}</p>\n<p>" + "long line " * 300 + "</p>\n</body></html>\n")
        text_tpl = ("{{name}}   \n\n\n" + TH_SUBJ + "\t \n" + "x" * 2000 + "\n\nend with blanks  ")
        rc, raw, err = self.message(
            tpl, data, "--text", self.f.write("text.mustache", text_tpl),
            subject=TH_SUBJ + " {{name}} {{amp}}",
            frm=AR_NAME + " <ahmed@shop.example.com>",
            to=TH_NAME + " <somchai@example.co.th>")
        m = parse(raw)
        self.assertEqual(m["subject"], TH_SUBJ + " " + AR_NAME + " Tom & Jerry <co>")
        self.assertEqual(m["from"].addresses[0].display_name, AR_NAME)
        self.assertEqual(m["from"].addresses[0].addr_spec, "ahmed@shop.example.com")
        self.assertEqual(m["to"].addresses[0].display_name, TH_NAME)
        self.assertEqual(m["to"].addresses[0].addr_spec, "somchai@example.co.th")
        want_html = tpl.replace("{{name}}", html.escape(AR_NAME)).replace(
            "{{thai}}", TH_NAME).replace("{{amp}}", "Tom &amp; Jerry &lt;co&gt;")
        self.assertEqual(unix(m.get_body(("html",)).get_content()), want_html)
        want_text = text_tpl.replace("{{name}}", AR_NAME)
        self.assertEqual(unix(m.get_body(("plain",)).get_content()), want_text)
        self.assertEqual(m.get_content_type(), "multipart/alternative")
        for part in m.walk():
            self.assertEqual(part.defects, [], part.get_content_type())
        self.assertEqual(m.defects, [])

    def test_long_names_and_subjects(self):
        name = " ".join([AR_NAME] * 6)
        subj = " ".join([TH_SUBJ] * 8)
        rc, raw, err = self.message("<p>x</p>", {}, subject=subj,
                                    frm=name + " <a@shop.example.com>")
        m = parse(raw)
        self.assertEqual(m["subject"], subj)
        self.assertEqual(compliant_name(raw, "From"), name)
        # policy.default may add blanks between encoded words, never lose text
        self.assertEqual(m["from"].addresses[0].display_name.replace(" ", ""),
                         name.replace(" ", ""))

    def test_generated_text(self):
        tpl = ("<h1>Spring sale</h1><p>Hello {{name}}, see <a href=\"{{url}}\">the offer</a>."
               "</p><ul><li>Shoes</li><li>Bags</li></ul><script>x()</script>"
               "<p dir=\"rtl\">" + AR_SUBJ + "</p>")
        rc, raw, err = self.message(tpl, {"name": "Zoë", "url": "https://shop.example.com/o?a=1&b=2"})
        text = unix(parse(raw).get_body(("plain",)).get_content())
        self.assertIn("Spring sale\n===========\n", text)
        self.assertIn("Hello Zoë, see the offer [1].", text)
        self.assertIn("* Shoes\n* Bags\n", text)
        self.assertIn(AR_SUBJ, text)
        self.assertNotIn("x()", text)
        self.assertTrue(text.endswith("Links:\n[1] https://shop.example.com/o?a=1&b=2\n"), text)

    def test_headers_and_attachments(self):
        pdf = bytes(range(256)) * 40
        att1 = self.f.write("invoice.pdf", pdf)
        att2 = self.f.write("فاتورة " + AR_SUBJ + ".txt", "hello\r\n".encode())
        rc, raw, err = self.message(
            "<p>See attached</p>", {}, "--attach", att1, "--attach", att2,
            "--unsubscribe-url", "https://news.example.com/u/tok123",
            "--unsubscribe-mailto", "unsubscribe+tok123@news.example.com",
            "--list-id", "weekly.shop.example.com", "--list-name", "Weekly " + TH_NAME,
            "--reply-to", "\"Support, Shop\" <support@shop.example.com>",
            "--feedback-id", "42:7:news:tidings")
        m = parse(raw)
        self.assertEqual(m.get_content_type(), "multipart/mixed")
        atts = list(m.iter_attachments())
        self.assertEqual([a.get_filename() for a in atts],
                         ["invoice.pdf", "فاتورة " + AR_SUBJ + ".txt"])
        self.assertEqual(atts[0].get_content_type(), "application/pdf")
        self.assertEqual(atts[0].get_content(), pdf)
        self.assertEqual(atts[1].get_payload(decode=True), b"hello\r\n")
        self.assertEqual(unix(m.get_body(("html",)).get_content()), "<p>See attached</p>")
        self.assertEqual(m["List-Unsubscribe"],
                         "<https://news.example.com/u/tok123>, "
                         "<mailto:unsubscribe+tok123@news.example.com?subject=unsubscribe>")
        self.assertEqual(m["List-Unsubscribe-Post"], "List-Unsubscribe=One-Click")
        self.assertEqual(str(m["List-Id"]), "Weekly " + TH_NAME + " <weekly.shop.example.com>")
        self.assertEqual(m["Feedback-ID"], "42:7:news:tidings")
        self.assertEqual(m["Reply-To"].addresses[0].display_name, "Support, Shop")
        self.assertEqual(m["Message-ID"], "<t.1@shop.example.com>")
        self.assertEqual(m["Date"].datetime.timestamp(), int(DATE))
        self.assertEqual(m["MIME-Version"], "1.0")
        self.assertIsNone(m["Return-Path"])

    def test_deterministic_and_text_only(self):
        args = ("--text", self.f.write("x.mustache", "Hi {{n}}\n"))
        _, a, _ = self.message(None, {"n": "a & b"}, *args)
        _, b, _ = self.message(None, {"n": "a & b"}, *args)
        self.assertEqual(a, b)
        m = parse(a)
        self.assertEqual(m.get_content_type(), "text/plain")
        self.assertEqual(unix(m.get_content()), "Hi a & b\n")

    def test_utf8_local_part(self):
        rc, raw, err = self.message("<p>x</p>", {}, to="Jörg <jörg@bücher.example>")
        self.assertIn("SMTPUTF8", err)
        # RFC 6532: the header is UTF-8, which BytesParser does not decode
        m = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
        self.assertEqual(m["to"].addresses[0].display_name, "Jörg")
        self.assertEqual(m["to"].addresses[0].addr_spec, "jörg@xn--bcher-kva.example")

    # ---- hostile values ----

    def refused(self, words, *args, **kw):
        rc, out, err = self.message(*args, expect_ok=False, **kw)
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, b"")
        self.assertTrue(err.startswith("tidings: "), err)
        for w in words:
            self.assertIn(w, err)

    def test_crlf_in_headers_refused(self):
        self.refused(["carriage return"], "<p>x</p>", {}, subject="Hi\r\nBcc: v@example.com")
        self.refused(["line feed"], "<p>x</p>", {}, subject="Hi\nthere")
        self.refused(["From"], "<p>x</p>", {}, frm="Eve <eve@example.com>\r\nBcc: v@example.com")
        self.refused(["From"], "<p>x</p>", {}, frm="Eve\n <eve@example.com>")
        self.refused(["To"], "<p>x</p>", {}, to="a@example.org\r\nBcc: v@example.com")
        self.refused(["To"], "<p>x</p>", {}, to="Name\r\n <a@example.org>")
        # from the data, through the subject template
        self.refused(["line feed"], "<p>x</p>", {"s": "Hi\nBcc: v@example.com"},
                     subject="{{s}}")
        self.refused(["carriage return"], "<p>x</p>", {"s": "a\rb"}, subject="{{{s}}}")

    def test_crlf_in_body_data_stays_in_the_body(self):
        evil = "x\r\nBcc: victim@example.com\r\n\r\n<script>"
        rc, raw, err = self.message("<p>{{e}}</p>", {"e": evil})
        m = parse(raw)
        self.assertIsNone(m["Bcc"])
        headers = raw.split(b"\r\n\r\n", 1)[0]
        self.assertNotIn(b"victim", headers)
        self.assertEqual(unix(m.get_body(("html",)).get_content()),
                         unix("<p>" + html.escape(evil, quote=True).replace("&#x27;", "&#39;") + "</p>"))

    def test_big_subjects(self):
        big = "S" * (1 << 20)
        self.refused(["at most 16384"], "<p>x</p>", {"s": big}, subject="{{s}}")
        ok = ("ข่าว " * 1200).strip()  # 15.6 KB of Thai: under the 16384-byte cap
        rc, raw, err = self.message("<p>x</p>", {"s": ok}, subject="{{s}}")
        self.assertEqual(parse(raw)["subject"], ok)

    def test_invalid_utf8(self):
        self.refused(["d.json", "line 1"], "<p>x</p>", b'{"s": "bad \xff"}', subject="{{s}}")
        rc, out, err = run("message", "--from", "a@example.com", "--to", "b@example.com",
                           "--subject", "s", "--template",
                           self.f.write("bad.mustache", b"<p>bad \xff</p>"))
        self.assertEqual(rc, 1)
        self.assertIn("UTF-8", err)
        self.assertEqual(out, b"")
        rc, out, err = run("message", "--from", "a@example.com", "--to", "b@example.com",
                           "--subject", b"bad \xff".decode("utf-8", "surrogateescape"),
                           "--template", self.f.write("ok.mustache", "<p>x</p>"))
        self.assertEqual(rc, 1)
        self.assertIn("UTF-8", err)

    def test_usage(self):
        rc, out, err = run("message", "--from", "a@example.com")
        self.assertEqual(rc, 2)
        rc, out, err = run("message", "--help")
        self.assertEqual(rc, 0)
        self.assertIn(b"--template", out)


class RenderTest(unittest.TestCase):
    def setUp(self):
        self.f = Files()

    def tearDown(self):
        self.f.close()

    def test_render(self):
        t = self.f.write("t.mustache", "Hi {{name}}! {{#items}}[{{.}}]{{/items}}{{> foot}}\n")
        os.mkdir(self.f.path("p"))
        self.f.write("p/foot.mustache", " — {{name}}")
        d = self.f.write("d.json", json.dumps({"name": "<" + AR_NAME + ">", "items": [1, 2]}))
        rc, out, err = run("render", t, "--data", d, "--partials", self.f.path("p"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out.decode(), "Hi &lt;%s&gt;! [1][2] — &lt;%s&gt;\n" % (AR_NAME, AR_NAME))

    def test_render_errors(self):
        t = self.f.write("t.mustache", "line one\n{{#open}}never closed\n")
        rc, out, err = run("render", t)
        self.assertEqual(rc, 1)
        self.assertEqual(out, b"")
        self.assertIn("line ", err)
        self.assertIn("column", err)
        rc, out, err = run("render", self.f.path("missing.mustache"))
        self.assertEqual(rc, 1)
        self.assertIn("missing.mustache", err)
        rc, out, err = run("render", t, "--data", self.f.write("bad.json", "{nope"))
        self.assertEqual(rc, 1)
        self.assertIn("bad.json: line 1", err)
        rc, out, err = run("render")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
