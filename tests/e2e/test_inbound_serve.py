#!/usr/bin/python3
"""Inbound through `tidings serve` and by mail:

- serve polls a stored mailbox (a real Dovecot over IMAP, from
  test_inbound.py) on its own: a bounce put in the mailbox suppresses the
  address while serve runs, and serve stops cleanly on SIGTERM, also while
  a poll is due or under way;
- the List-Unsubscribe mailto of campaign messages: a message to the
  message's VERP return path with subject "unsubscribe" (or a body starting
  with it), given to `tidings inbound process`, unsubscribes the subscriber
  from the campaign's lists, once, with an unsubscribe event, and is not a
  reply; the same words to another address change nothing.
"""
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inbound_world  # noqa: E402
import test_inbound as ti  # noqa: E402


def mail(frm, to, subject, body, mid):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
            "Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n") % (frm, to, subject, mid, body)


class InboundServe(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tidings-inserve-")
        os.chmod(self.dir, 0o755)
        self.w = inbound_world.World(self.dir)
        self.sent = self.w.campaign(6)
        self.dc = None

    def tearDown(self):
        self.w.kill()
        if self.dc:
            self.dc.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_serve_polls_stored_mailboxes(self):
        if not os.path.exists(ti.DOVECOT):
            self.skipTest("dovecot is not installed")
        self.dc = ti.Dovecot(os.path.join(self.dir, "dovecot"), {"box": "pw one"})
        pw = os.path.join(self.dir, "pw")
        with open(pw, "w") as f:
            f.write("pw one\n")
        url = "imap://127.0.0.1:%d/INBOX" % self.dc.imap
        self.w.ok("inbound", "add", url, "--user", "box", "--password-file", pw, "--every", "1")
        s = self.sent
        self.w.serve()
        self.dc.deliver("box", "01", ti.dsn(s["s0@example.org"]["_verp"], "s0@example.org",
                                            "5.1.1", s["s0@example.org"]["_orig"]))
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.w.q("SELECT count(*) FROM suppressions WHERE address = 's0@example.org'")[0][0]:
                break
            time.sleep(0.2)
        supp = dict(self.w.q("SELECT address, reason FROM suppressions"))
        self.assertEqual(set(supp), {"s0@example.org"}, self.dc.log())
        self.assertTrue(supp["s0@example.org"].startswith("bounce: 5.1.1"))
        # Applied, so deleted on the server; the poll is on the mailbox's record.
        deadline = time.time() + 30
        while self.dc.messages("box") and time.time() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.dc.messages("box"), [])
        box = json.loads(self.w.ok("inbound", "ls", "--json").strip().splitlines()[0])
        self.assertIsNone(box.get("last_error"), box)
        # More mail while serve runs: a second bounce and a reply (stays).
        self.dc.deliver("box", "02", ti.dsn(s["s1@example.org"]["_verp"], "s1@example.org",
                                            "5.1.1", s["s1@example.org"]["_orig"]))
        self.dc.deliver("box", "03", ti.reply("s2@example.org", "Re: News", "Hello",
                                              "In-Reply-To: <%s>\r\n" % s["s2@example.org"]["_mid"]))
        deadline = time.time() + 60
        while time.time() < deadline and self.w.q("SELECT count(*) FROM replies")[0][0] < 1:
            time.sleep(0.2)
        t0 = time.time()
        log = self.w.stop()
        self.assertLess(time.time() - t0, 30)
        self.assertNotIn("[error]", log)
        self.assertEqual({a for (a,) in self.w.q("SELECT address FROM suppressions")},
                         {"s0@example.org", "s1@example.org"})
        self.assertEqual(self.w.q("SELECT count(*) FROM replies")[0][0], 1)
        self.assertEqual(self.w.q("SELECT count(*) FROM inbound_messages")[0][0], 3)

    def test_serve_stops_while_a_poll_hangs(self):
        # A "server" that accepts and never speaks: the poll blocks in
        # libcurl; SIGTERM must still stop serve promptly.
        import socket
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        try:
            url = "imap://127.0.0.1:%d/INBOX" % ls.getsockname()[1]
            self.w.ok("inbound", "add", url, "--every", "1")
            self.w.serve()
            conn = None
            deadline = time.time() + 20
            ls.settimeout(1)
            while conn is None and time.time() < deadline:
                try:
                    conn, _ = ls.accept()
                except socket.timeout:
                    pass
            self.assertIsNotNone(conn, "serve never polled the mailbox")
            t0 = time.time()
            self.w.stop()
            self.assertLess(time.time() - t0, 15)
            conn.close()
        finally:
            ls.close()

    def test_unsubscribe_by_mail(self):
        s = self.sent
        lu = s["s0@example.org"].get("list-unsubscribe", "")
        verp = s["s0@example.org"]["_verp"]
        self.assertIn("<mailto:%s?subject=unsubscribe>" % verp, lu)
        files = {
            # What a mail client sends for the mailto link.
            "a.eml": mail("s0@example.org", verp, "unsubscribe",
                          "This message was automatically generated by Gmail.", "u0@mua"),
            # By hand: the body says it.
            "b.eml": mail("S 1 <s1@example.org>", s["s1@example.org"]["_verp"], "Re: News",
                          "  Unsubscribe\r\n\r\n> old text", "u1@mua"),
            # Words to the From address: a reply, nothing unsubscribed.
            "c.eml": mail("s2@example.org", "news@example.com", "unsubscribe", "unsubscribe",
                          "u2@mua"),
            # The VERP with a mismatched campaign: not ours to act on.
            "d.eml": mail("s3@example.org", verp.replace("+c", "+c9"), "unsubscribe", "",
                          "u3@mua"),
        }
        paths = []
        for n, d in files.items():
            p = os.path.join(self.dir, n)
            with open(p, "w") as f:
                f.write(d)
            paths.append(p)
        out = [json.loads(l) for l in self.w.ok("inbound", "process", *paths).splitlines()]
        kinds = [o["kind"] for o in out]
        self.assertEqual(kinds[:2], ["unsubscribe", "unsubscribe"], out)
        self.assertNotIn("unsubscribe", kinds[2:], out)
        st = dict(self.w.q("SELECT s.email || '/' || l.name, m.status FROM memberships m "
                           "JOIN subscribers s ON s.id = m.subscriber_id "
                           "JOIN lists l ON l.id = m.list_id"))
        # The campaign's list L is left; M (not the campaign's) is kept.
        self.assertEqual(st["s0@example.org/L"], "unsubscribed")
        self.assertEqual(st["s0@example.org/M"], "confirmed")
        self.assertEqual(st["s1@example.org/L"], "unsubscribed")
        self.assertEqual(st["s2@example.org/L"], "confirmed")
        self.assertEqual(st["s3@example.org/L"], "confirmed")
        ev = self.w.q("SELECT subscriber_id, data FROM events WHERE kind = 'unsubscribe'")
        self.assertEqual(sorted(i for i, _ in ev),
                         sorted([self.w.ids["s0@example.org"], self.w.ids["s1@example.org"]]))
        self.assertTrue(all(json.loads(d)["via"] == "mail" for _, d in ev))
        self.assertEqual(self.w.q("SELECT count(*) FROM replies WHERE sender LIKE 's0%' OR "
                                  "sender LIKE 's1%'")[0][0], 0)
        # Exactly once: the same file again does nothing.
        again = json.loads(self.w.ok("inbound", "process", paths[0]).strip())
        self.assertTrue(again["duplicate"], again)
        self.assertEqual(len(self.w.q("SELECT 1 FROM events WHERE kind = 'unsubscribe'")), 2)
        status = self.w.ok("campaign", "status", str(self.w.cid))
        self.assertRegex(status, r"unsubscribe\w*\s*[:=]?\s*2")


if __name__ == "__main__":
    unittest.main(verbosity=2)
