#!/usr/bin/python3
"""End-to-end tests for the content library: `tidings block add|ls|get|rm`
through the real binary ($TIDINGS_BIN), bad input refused with exit status 1
or 2 and one line on standard error (and the library left as it was), and
`tidings message` including an article and a product from the library next
to a partial from --partials DIR, the message parsed back with Python's
email package and the blocks' titles and prices found in both parts.
"""
import email
import email.policy
import json
import os
import subprocess
import tempfile
import unittest

BIN = os.environ.get("TIDINGS_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "tidings")

AR_TITLE = "تخفيضات الربيع"
TH_TITLE = "แก้วสีน้ำเงิน"


class BlockTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-blocks-")
        self.db = self.path("t.db")
        # No stray ./tidings.db or $TIDINGS_DB from the caller.
        self.env = {k: v for k, v in os.environ.items() if k != "TIDINGS_DB"}
        rc, out, err = self.tid("init", "--public-url", "https://news.example.com")
        self.assertEqual(rc, 0, err)

    def tearDown(self):
        self.tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp.name, name)

    def write(self, name, content):
        mode = "wb" if isinstance(content, bytes) else "w"
        kw = {} if mode == "wb" else {"encoding": "utf-8", "newline": ""}
        with open(self.path(name), mode, **kw) as f:
            f.write(content)
        return self.path(name)

    def tid(self, *args):
        p = subprocess.run([BIN, *args, "--db", self.db], capture_output=True, timeout=120,
                           env=self.env, cwd=self.tmp.name, input=b"")
        return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")

    def ok(self, *args):
        rc, out, err = self.tid(*args)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")
        return out

    def ls(self, *extra):
        out = self.ok("block", "ls", "--json", *extra)
        return [json.loads(line) for line in out.splitlines()]

    def add_samples(self):
        self.ok("block", "add", "spring-sale", "--kind", "article", "--title", AR_TITLE,
                "--file", self.write("art.mustache",
                                     "<h2>{{title}}</h2>\n<p>{{summary}}, {{subscriber.name}}</p>\n"
                                     "<a href=\"{{#track}}{{url}}{{/track}}\">Read more</a>\n"),
                "--data", json.dumps({"summary": "Up to 30% off <today>",
                                      "url": "https://shop.example/sale?a=1&b=2"}))
        self.ok("block", "add", "blue-mug", "--kind", "product", "--title", TH_TITLE,
                "--file", self.write("mug.mustache",
                                     "<div><b>{{title}}</b> price {{price}} EUR</div>\n"),
                "--data", '{"price": 12.50, "image": "https://cdn.example/mug.png"}')

    # ---- the command ---------------------------------------------------------

    def test_add_ls_get_rm(self):
        self.add_samples()
        rows = self.ls()
        self.assertEqual([(r["kind"], r["name"]) for r in rows],
                         [("article", "spring-sale"), ("product", "blue-mug")])
        self.assertEqual(rows[0]["title"], AR_TITLE)
        self.assertEqual(rows[1]["data"], {"image": "https://cdn.example/mug.png", "price": 12.5})
        self.assertNotIn("body", rows[0])
        self.assertEqual([r["name"] for r in self.ls("--kind", "product")], ["blue-mug"])
        table = self.ok("block", "ls")
        self.assertIn("spring-sale", table)
        self.assertIn(TH_TITLE, table)

        got = json.loads(self.ok("block", "get", "blue-mug"))
        self.assertEqual(got["title"], TH_TITLE)
        self.assertEqual(got["body"], "<div><b>{{title}}</b> price {{price}} EUR</div>\n")
        self.assertEqual(got["team_id"], 0)
        self.assertEqual(self.ok("block", "get", "blue-mug", "--body"),
                         "<div><b>{{title}}</b> price {{price}} EUR</div>\n")

        # add again: replaced, same id, canonical data
        out = self.ok("block", "add", "blue-mug", "--kind", "product", "--title", "Mug",
                      "--file", "-", "--data", '{ "b" : 1 , "a" : [ 1.0, "x" ] }')
        self.assertTrue(out.startswith("replaced product blue-mug"), out)
        again = json.loads(self.ok("block", "get", "blue-mug"))
        self.assertEqual(again["id"], got["id"])
        self.assertEqual(again["title"], "Mug")
        self.assertEqual(again["body"], "")
        self.assertEqual(again["data"], {"a": [1, "x"], "b": 1})

        # a team's block
        self.ok("team", "add", "Sales North")
        self.ok("block", "add", "north-only", "--kind", "article", "--title", "North",
                "--file", self.path("art.mustache"), "--team", "Sales North")
        north = json.loads(self.ok("block", "get", "north-only"))
        self.assertNotEqual(north["team_id"], 0)

        self.assertEqual(self.ok("block", "rm", "spring-sale"), "deleted article spring-sale\n")
        self.assertEqual([r["name"] for r in self.ls()], ["north-only", "blue-mug"])
        rc, out, err = self.tid("block", "rm", "spring-sale")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err.count("\n"), 1, err)

        rc, out, err = self.tid("block", "--help")
        self.assertEqual(rc, 0)
        self.assertIn("tidings block add", out)

    def test_bad_input(self):
        self.add_samples()
        before = self.ls()
        body = self.write("ok.mustache", "{{title}}")
        big = self.write("big.mustache", "x" * (256 * 1024 + 1))
        unclosed = self.write("unclosed.mustache", "{{#title}} never closed")
        badutf = self.write("bad.mustache", b"caf\xe9 \xff")
        nul = self.write("nul.mustache", b"a\x00b")
        add = ["block", "add"]
        cases = [
            # (args, allowed exit statuses, a word the message holds)
            (add + ["Bad_Name", "--kind", "article", "--title", "t", "--file", body], {1}, "a-z"),
            (add + ["a/b", "--kind", "article", "--title", "t", "--file", body], {1}, "a-z"),
            (add + ["x" * 65, "--kind", "article", "--title", "t", "--file", body], {1}, "a-z"),
            (add + ["bad\nname", "--kind", "article", "--title", "t", "--file", body], {1}, "a-z"),
            (add + ["x'); DROP TABLE content_blocks;--", "--kind", "article", "--title", "t",
                    "--file", body], {1}, "a-z"),
            (add + ["ok", "--kind", "news", "--title", "t", "--file", body], {2}, "--kind"),
            (add + ["ok", "--kind", "Article", "--title", "t", "--file", body], {2}, "--kind"),
            (add + ["ok", "--title", "t", "--file", body], {2}, "--kind"),
            (add + ["ok", "--kind", "article", "--file", body], {2}, "--title"),
            (add + ["ok", "--kind", "article", "--title", "t"], {2}, "--file"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", body, "--data", "{bad"],
             {1}, "not JSON"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", body, "--data", "[1]"],
             {1}, "object"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", body, "--data",
                    '{"a":"x\ny"}'], {1}, "not JSON"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", big], {1}, "larger"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file",
                    self.path("missing.mustache")], {1}, "missing.mustache"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", unclosed], {1}, "line 1"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", badutf], {1}, "UTF-8"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", nul], {1}, "NUL"),
            (add + ["ok", "--kind", "article", "--title", "two\nlines", "--file", body], {1},
             "title"),
            (add + ["ok", "--kind", "article", "--title", "", "--file", body], {1}, "title"),
            (add + ["ok", "--kind", "article", "--title", "t", "--file", body, "--team", "Nope"],
             {1}, "team"),
            (add + ["ok", "extra", "--kind", "article", "--title", "t", "--file", body], {2},
             "one NAME"),
            (["block", "get", "nope"], {1}, "no block"),
            (["block", "get", "../etc/passwd"], {1}, "a-z"),
            (["block", "rm", "nope"], {1}, "no block"),
            (["block", "ls", "--kind", "video"], {2}, "--kind"),
            (["block", "ls", "extra"], {2}, "no arguments"),
            (["block", "frob"], {2}, "frob"),
            (["block"], {2}, "add"),
            (["block", "ls", "--bogus"], {2}, "bogus"),
            (["block", "get", "blue-mug", "--json"], {2}, "--json"),
        ]
        for args, codes, word in cases:
            with self.subTest(args=args[:3]):
                rc, out, err = self.tid(*args)
                self.assertIn(rc, codes, err)
                self.assertEqual(out, "")
                self.assertEqual(err.count("\n"), 1, repr(err))
                self.assertTrue(err.startswith("tidings"), err)
                self.assertIn(word, err)
        self.assertEqual(self.ls(), before)

    # ---- in a message ----------------------------------------------------------

    def message(self, template, *extra):
        args = ["message", "--date", "1751364000", "--message-id", "b.1@shop.example.com",
                "--from", "Sam Seller <sam@shop.example.com>", "--to", "Jane Doe <jane@example.org>",
                "--subject", "This week", "--template", self.write("nl.mustache", template),
                *extra]
        return self.tid(*args)

    def test_message_with_blocks(self):
        self.add_samples()
        parts = self.path("partials")
        os.mkdir(parts)
        self.write("partials/footer.mustache", "<footer>Sent by {{sender.name}}</footer>\n")
        # a file named like a block cannot shadow the library: folders hold no '/'
        tpl = ("<html><body>\n<h1>Hello {{subscriber.name}}</h1>\n"
               "  {{> article/spring-sale}}\n"
               "{{> product/blue-mug}}\n"
               "{{> footer}}\n"
               "<p>{{title}}</p>\n</body></html>\n")
        rc, out, err = self.message(tpl, "--partials", parts)
        self.assertEqual(rc, 0, err)
        m = email.message_from_bytes(out.encode("utf-8"), policy=email.policy.default)
        self.assertEqual(m["subject"], "This week")
        html = m.get_body(("html",)).get_content()
        text = m.get_body(("plain",)).get_content()
        for part in (html, text):
            self.assertIn(AR_TITLE, part)
            self.assertIn(TH_TITLE, part)
            self.assertIn("price 12.5 EUR", part)
            self.assertIn("Jane Doe", part)
            self.assertIn("Sent by Sam Seller", part)
        self.assertIn("Up to 30% off &lt;today&gt;", html)
        self.assertIn("Up to 30% off <today>", text)
        # the block's link is click-tracked, from the public URL
        self.assertIn('<a href="https://news.example.com/c/', html)
        self.assertNotIn("shop.example/sale", html)
        # indentation of the standalone partial reaches every line of the body
        self.assertIn("\n  <p>Up to 30% off", html.replace("\r\n", "\n"))
        # outside a block, title is the data's (none here)
        self.assertIn("<p></p>", html)
        for p in m.walk():
            self.assertEqual(p.defects, [])

        # --data cannot hide the library, and keeps the rest of its keys
        data = self.write("d.json", json.dumps({"__blocks": "x", "title": "Outer"}))
        rc, out, err = self.message("{{> product/blue-mug}}<p>{{title}}</p>\n", "--data", data)
        self.assertEqual(rc, 0, err)
        m = email.message_from_bytes(out.encode("utf-8"), policy=email.policy.default)
        html = m.get_body(("html",)).get_content()
        self.assertIn("<b>" + TH_TITLE + "</b>", html)
        self.assertIn("<p>Outer</p>", html)

    def test_message_missing_block(self):
        self.add_samples()
        for tpl, word in [("{{> article/nope}}\n", "no article 'nope'"),
                          ("{{> product/spring-sale}}\n", "not a product")]:
            with self.subTest(tpl=tpl):
                rc, out, err = self.message(tpl)
                self.assertEqual(rc, 1, err)
                self.assertEqual(out, "")
                self.assertEqual(err.count("\n"), 1, err)
                self.assertIn(word, err)
        # a body that no longer compiles (written behind the CLI's back) fails the message
        self.tid("block", "rm", "blue-mug")
        import sqlite3
        c = sqlite3.connect(self.db)
        c.execute("INSERT INTO content_blocks (kind, name, title, body, data, created_at,"
                  " updated_at) VALUES ('product', 'broken', 't', '{{#x}}', '{}', 0, 0)")
        c.commit()
        c.close()
        rc, out, err = self.message("{{> product/broken}}\n")
        self.assertEqual(rc, 1, err)
        self.assertIn("product/broken", err)
        self.assertEqual(err.count("\n"), 1, err)


if __name__ == "__main__":
    unittest.main()
