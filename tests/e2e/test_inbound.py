#!/usr/bin/python3
"""Inbound mail end to end: a real campaign is sent to a maildir relay; bounces,
complaints and replies are crafted to the VERP return paths, Message-IDs and
unsubscribe tokens found in the messages it wrote, put in a real Dovecot
(IMAP and POP3, started here as an ordinary process on loopback ports with a
config, a passwd-file user and maildirs of its own), and taken in by
`tidings inbound poll`.

- every way of matching works (VERP, returned Message-ID, List-Unsubscribe
  token, List-Id with the address, the address alone; In-Reply-To,
  References, the sender for replies), and a bounce naming an address that
  was never mailed changes nothing and says so;
- hard bounces and complaints suppress at once, a complaint unsubscribes from
  every list, soft bounces suppress at the limit (`inbound settings`);
- replies are stored and routed to the subscriber's owner, else the
  campaign's owner and team; auto-replies are not;
- the real bounces of /work/shared/data/bounces and tests/data/bounces, and
  hostile input (a 50 MB message, deep MIME nesting, broken encodings,
  garbage) go through without harm; what is applied is deleted on the
  server, replies and the rest stay;
- exactly once: the poller is killed with SIGKILL again and again in the
  middle of polls, over IMAP and over POP3; in the end every message was
  applied once (one event, one reply row each) and the server keeps only
  what is to stay;
- stored mailboxes: add, ls, poll --once (what `tidings serve` will call), rm.
"""
import glob
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = os.environ.get("TIDINGS_BIN") or os.path.join(ROOT, "tidings")
DOVECOT = "/usr/sbin/dovecot"
SHARED = "/work/shared/data/bounces/eml"
LOCAL = os.path.join(ROOT, "tests", "data", "bounces")
SANITIZED = os.environ.get("TIDINGS_SANITIZED") == "1"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Dovecot:
    """A Dovecot of our own: IMAP and POP3 on loopback, users in a
    passwd-file, maildirs under dir/mail/USER. Run as the current user, or
    as nobody when that is root (Dovecot wants a non-root mail user)."""

    def __init__(self, dir, users):
        self.dir = dir
        self.imap, self.pop3 = free_port(), free_port()
        self.root = os.geteuid() == 0
        for d in ("run", "state", "mail", "home"):
            os.makedirs(os.path.join(dir, d), exist_ok=True)
        if self.root:
            import pwd
            nb = pwd.getpwnam("nobody")
            self.uid, self.gid, user, group = nb.pw_uid, nb.pw_gid, "nobody", "nogroup"
        else:
            import grp
            import pwd
            self.uid, self.gid = os.getuid(), os.getgid()
            user, group = pwd.getpwuid(self.uid).pw_name, grp.getgrgid(self.gid).gr_name
        with open(os.path.join(dir, "passwd"), "w") as f:
            for u, pw in users.items():
                f.write("%s:{PLAIN}%s\n" % (u, pw))
        conf = """
base_dir = {d}/run
state_dir = {d}/state
instance_name = td{imap}
log_path = {d}/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
first_valid_uid = 1
mail_location = maildir:{d}/mail/%u
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={d}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {user}
}}
service auth-worker {{
  user = {user}
}}
""".format(d=dir, imap=self.imap, pop3=self.pop3, user=user, group=group, uid=self.uid,
           gid=self.gid)
        self.conf = os.path.join(dir, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        for u in users:
            for sub in ("new", "cur", "tmp"):
                os.makedirs(os.path.join(dir, "mail", u, sub), exist_ok=True)
        self.fix_owner()
        pre = []
        if self.root:
            pre = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
        self.proc = subprocess.Popen(pre + [DOVECOT, "-F", "-c", self.conf],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.pop3), 1).close()
                socket.create_connection(("127.0.0.1", self.imap), 1).close()
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("dovecot did not start: %s" % self.log())
                time.sleep(0.1)

    def fix_owner(self):
        if self.root:
            for base, dirs, files in os.walk(self.dir):
                for n in dirs + files:
                    os.chown(os.path.join(base, n), self.uid, self.gid)
            os.chown(self.dir, self.uid, self.gid)

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def deliver(self, user, name, data):
        """Puts one message into user's maildir the maildir way (tmp, then
        rename into new)."""
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        tmp = os.path.join(self.dir, "mail", user, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        if self.root:
            os.chown(tmp, self.uid, self.gid)
        os.rename(tmp, os.path.join(self.dir, "mail", user, "new", name))

    def messages(self, user):
        out = []
        for sub in ("new", "cur"):
            for p in glob.glob(os.path.join(self.dir, "mail", user, sub, "*")):
                with open(p, "rb") as f:
                    out.append(f.read())
        return out

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()


def headers_of(raw):
    """The header block of a message file as a dict (first of each name)
    and the text of the block."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("utf-8", "replace")
    head = head.replace("\r\n", "\n")
    h = {}
    for line in head.replace("\n ", " ").replace("\n\t", " ").split("\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            h.setdefault(k.strip().lower(), v.strip())
    return h, head


def dsn(to_addr, failed, status, original_headers, code=None):
    """A multipart/report DSN, delivered to to_addr, naming failed."""
    code = code or ("550" if status.startswith("5") else "452")
    return ("Return-Path: <>\r\n"
            "Delivered-To: %(to)s\r\n"
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
            "To: %(to)s\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\n"
            "Auto-Submitted: auto-replied\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=delivery-status; boundary=\"BB\"\r\n"
            "\r\n--BB\r\nContent-Type: text/plain\r\n\r\n"
            "This is the mail system at host mx.example.net.\r\n\r\n"
            "<%(rcpt)s>: host mx.example.net said: %(code)s %(st)s mailbox problem\r\n"
            "\r\n--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
            "Reporting-MTA: dns; mx.example.net\r\n\r\n"
            "Final-Recipient: rfc822; %(rcpt)s\r\n"
            "Action: %(action)s\r\n"
            "Status: %(st)s\r\n"
            "Diagnostic-Code: smtp; %(code)s %(st)s mailbox problem\r\n"
            "\r\n--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            "%(orig)s\r\n"
            "\r\n--BB--\r\n") % {"to": to_addr, "rcpt": failed, "st": status, "code": code,
                                 "orig": original_headers.replace("\n", "\r\n"),
                                 "action": "failed" if status.startswith("5") else "delayed"}


def arf(original):
    """An ARF complaint quoting the original message's headers."""
    return ("Return-Path: <fbl@isp.example>\r\n"
            "From: <fbl@isp.example>\r\n"
            "To: <abuse@example.com>\r\n"
            "Subject: FW: complaint\r\n"
            "MIME-Version: 1.0\r\n"
            "Content-Type: multipart/report; report-type=feedback-report; boundary=\"FF\"\r\n"
            "\r\n--FF\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n"
            "\r\n--FF\r\nContent-Type: message/feedback-report\r\n\r\n"
            "Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n"
            "\r\n--FF\r\nContent-Type: message/rfc822\r\n\r\n%s\r\n\r\nbody\r\n"
            "\r\n--FF--\r\n") % original.replace("\n", "\r\n")


def reply(frm, subject, body, extra="", to="News <news@example.com>", mid=None):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: <%s>\r\n"
            "Date: Mon, 02 Jun 2025 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n%s\r\n%s\r\n") % (
                frm, to, subject, mid or "r%d@mua.example" % random.randrange(1 << 40), extra,
                body)


class Inbound(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(DOVECOT):
            raise unittest.SkipTest("dovecot is not installed (scripts/install-deps.sh --test)")

    def setUp(self):
        self.tmpd = tempfile.mkdtemp(prefix="tidings-inbound-")
        self.dir = self.tmpd
        os.chmod(self.dir, 0o755)
        self.db = os.path.join(self.dir, "t.db")
        self.pw = os.path.join(self.dir, "pw")
        with open(self.pw, "w") as f:
            f.write("s3cret pass\n")
        self.dc = Dovecot(os.path.join(self.dir, "dovecot"),
                          {"box": "s3cret pass", "pop": "s3cret pass", "crash": "s3cret pass"})

    def tearDown(self):
        self.dc.stop()
        shutil.rmtree(self.tmpd, ignore_errors=True)

    def cmd(self, *args, timeout=300):
        return subprocess.run([BIN, *args, "--db", self.db], capture_output=True,
                              timeout=timeout, text=True)

    def ok(self, *args, timeout=300):
        p = self.cmd(*args, timeout=timeout)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr, self.dc.log()))
        return p.stdout

    def q(self, sql, *params):
        c = sqlite3.connect(self.db)
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def imap_url(self):
        return "imap://127.0.0.1:%d/INBOX" % self.dc.imap

    def pop3_url(self):
        return "pop3://127.0.0.1:%d" % self.dc.pop3

    def poll(self, url, user, timeout=300):
        out = self.ok("inbound", "poll", url, "--user", user, "--password-file", self.pw,
                      "--once", timeout=timeout)
        return json.loads(out.strip().splitlines()[-1])

    def world(self, n=40):
        """Teams, a seller, a campaign to n subscribers sent to a maildir:
        returns {email: headers} of the messages it wrote."""
        self.ok("init", "--public-url", "https://news.example.com")
        self.ok("team", "add", "Central")
        self.ok("team", "add", "Sales", "--model", "local")
        self.ok("user", "add", "op@example.com", "--role", "operator", "--team", "Central")
        self.ok("user", "add", "seller@example.com", "--role", "seller", "--team", "Sales")
        self.ok("list", "create", "L")
        self.ok("list", "create", "M")
        owned = os.path.join(self.dir, "owned.csv")
        free = os.path.join(self.dir, "free.csv")
        with open(owned, "w") as f:
            f.write("email,name\n")
            for i in range(n // 2):
                f.write("s%d@example.org,S %d\n" % (i, i))
        with open(free, "w") as f:
            f.write("email,name\n")
            for i in range(n // 2, n):
                f.write("s%d@example.org,S %d\n" % (i, i))
        self.ok("import", owned, "--list", "L", "--owner", "seller@example.com", "--team", "Sales")
        self.ok("import", free, "--list", "L")
        self.ok("import", owned, "--list", "M")
        html = os.path.join(self.dir, "t.html")
        with open(html, "w") as f:
            f.write('<p>Hi</p><a href="{{unsubscribe_url}}">unsubscribe</a>')
        cid = int(self.ok("campaign", "create", "--name", "C", "--subject", "News", "--from",
                          "News <news@example.com>", "--list", "L", "--template", html,
                          "--team", "Central", "--owner", "op@example.com"))
        md = os.path.join(self.dir, "sent")
        self.ok("relay", "add", "maildir:" + md)
        self.ok("campaign", "start", str(cid), "--wait")
        sent = {}
        for p in glob.glob(os.path.join(md, "new", "*")):
            with open(p, "rb") as f:
                h, head = headers_of(f.read())
            rcpt = h["delivered-to"]
            lines = [l for l in head.split("\n")
                     if not l.lower().startswith(("return-path:", "delivered-to:"))]
            h["_orig"] = "\n".join(lines)
            sent[rcpt] = h
        self.assertEqual(len(sent), n)
        self.cid = cid
        self.ids = dict(self.q("SELECT email, id FROM subscribers"))
        self.users = dict(self.q("SELECT email, id FROM users"))
        self.teams = dict(self.q("SELECT name, id FROM teams"))
        return sent

    # ---- the scenario -----------------------------------------------------

    def test_bounces_complaints_replies_over_imap(self):
        sent = self.world()
        verp = lambda a: sent[a]["return-path"].strip("<>")
        mid = lambda a: sent[a]["message-id"].strip("<>")
        d = self.dc.deliver
        # Hard bounce, VERP intact.
        d("box", "01", dsn(verp("s0@example.org"), "s0@example.org", "5.1.1", sent["s0@example.org"]["_orig"]))
        # VERP lost (a forwarding bounce address): the returned Message-ID.
        d("box", "02", dsn("bounces@example.com", "s1@example.org", "5.1.1", sent["s1@example.org"]["_orig"]))
        # VERP and Message-ID lost: the signed List-Unsubscribe token.
        orig2 = "\n".join(l for l in sent["s2@example.org"]["_orig"].split("\n")
                          if not l.lower().startswith(("message-id:", "list-id:", "feedback-id:")))
        d("box", "03", dsn("bounces@example.com", "s2@example.org", "5.1.1", orig2))
        # Soft bounces: a delay notice and the failure of the same message
        # count once; under the default limit nothing is suppressed.
        d("box", "04", dsn(verp("s3@example.org"), "s3@example.org", "4.2.2", sent["s3@example.org"]["_orig"]))
        d("box", "05", dsn(verp("s3@example.org"), "s3@example.org", "4.2.2", sent["s3@example.org"]["_orig"]))
        # A complaint (ARF) about s25 (no owner), on lists L and M? s25 is
        # on L only; s4 (owned) is on L and M.
        d("box", "06", arf(sent["s4@example.org"]["_orig"]))
        # Replies: an owned subscriber by In-Reply-To, a free one by
        # References, one by the sender alone, and an auto-reply.
        d("box", "07", reply("S 5 <s5@example.org>", "Re: News", "What does it cost?",
                             "In-Reply-To: <%s>\r\n" % mid("s5@example.org"), mid="human5@mua.example"))
        d("box", "08", reply("s25@example.org", "Re: News", "ขอบคุณครับ — merci",
                             "References: <other@x.example> <%s>\r\n" % mid("s25@example.org")))
        d("box", "09", reply("S 26 <S26@Example.org>", "Re: News", "Call me."))
        d("box", "10", reply("s6@example.org", "Automatic reply: News", "I am away.",
                             "Auto-Submitted: auto-replied\r\nIn-Reply-To: <%s>\r\n" % mid("s6@example.org")))
        # A bounce naming an address we never mailed: nothing changes.
        d("box", "11", dsn("bounces@example.com", "stranger@nowhere.example", "5.1.1",
                           "From: someone@else.example\nTo: stranger@nowhere.example\nSubject: hi"))
        # Garbage.
        d("box", "12", b"\x00\x01\x02 not mail at all \xff\xfe")
        st = self.poll(self.imap_url(), "box")
        self.assertEqual(st["listed"], 12, st)
        self.assertEqual(st["taken"], 12, st)
        self.assertEqual((st["bounces"], st["complaints"], st["replies"]), (6, 1, 3), st)

        supp = dict(self.q("SELECT address, reason FROM suppressions"))
        self.assertEqual(set(supp), {"s0@example.org", "s1@example.org", "s2@example.org",
                                     "s4@example.org"}, supp)
        self.assertTrue(supp["s0@example.org"].startswith("bounce: 5.1.1"))
        self.assertTrue(supp["s4@example.org"].startswith("complaint"))
        notes = [n for (n,) in self.q("SELECT note FROM inbound_messages")]
        for want in ("hard bounce of s0@example.org (by verp)",
                     "hard bounce of s1@example.org (by message-id)",
                     "hard bounce of s2@example.org (by token)",
                     "soft bounce of s3@example.org (by verp)",
                     "complaint about s4@example.org (by message-id)"):
            self.assertTrue(any(want in n for n in notes), (want, notes))
        # The complaint unsubscribed s4 from both lists.
        self.assertEqual(sorted(r[0] for r in self.q(
            "SELECT status FROM memberships WHERE subscriber_id = ?", self.ids["s4@example.org"])),
            ["unsubscribed", "unsubscribed"])
        # Soft bounces of one campaign count once.
        self.assertEqual(self.q("SELECT count(*) FROM soft_bounces")[0][0], 1)
        # Events per kind, with the bounce data.
        ev = self.q("SELECT kind, subscriber_id, data FROM events WHERE kind IN"
                    " ('bounce','complaint','reply','unsubscribe') ORDER BY id")
        kinds = [e[0] for e in ev]
        self.assertEqual(kinds.count("bounce"), 5, ev)  # s0, s1, s2, s3 twice
        self.assertEqual(kinds.count("complaint"), 1)
        self.assertEqual(kinds.count("unsubscribe"), 2)
        self.assertEqual(kinds.count("reply"), 3)
        b0 = json.loads([e[2] for e in ev if e[0] == "bounce" and e[1] == self.ids["s0@example.org"]][0])
        self.assertEqual(b0, {"status": "5.1.1", "reason": b0["reason"], "hard": True})
        # Replies: threaded and routed.
        rows = self.q("SELECT subscriber_id, campaign_id, matched_by, owner_id, team_id, assigned_to,"
                      " sender, subject, body, status, first_response_at, message_id, in_reply_to"
                      " FROM replies ORDER BY id")
        byid = {r[0]: r for r in rows}
        self.assertEqual(len(rows), 3, rows)
        r5 = byid[self.ids["s5@example.org"]]
        self.assertEqual(r5[1:6], (self.cid, "in-reply-to", self.users["seller@example.com"],
                                   self.teams["Sales"], self.users["seller@example.com"]))
        self.assertEqual((r5[6], r5[7], r5[9], r5[10], r5[11]),
                         ("s5@example.org", "Re: News", "open", None, "human5@mua.example"))
        self.assertIn("What does it cost?", r5[8])
        r25 = byid[self.ids["s25@example.org"]]
        self.assertEqual(r25[1:6], (self.cid, "in-reply-to", self.users["op@example.com"],
                                    self.teams["Central"], self.users["op@example.com"]))
        self.assertIn("ขอบคุณครับ", r25[8])
        r26 = byid[self.ids["s26@example.org"]]
        self.assertEqual(r26[1:3], (self.cid, "sender"))
        # The auto-reply and the stranger's bounce changed nothing.
        notes = [n for (n,) in self.q("SELECT note FROM inbound_messages")]
        self.assertTrue(any("auto-reply" in n for n in notes), notes)
        self.assertTrue(any("never mailed: stranger@nowhere.example" in n for n in notes), notes)
        self.assertTrue(any(n.startswith("unreadable") for n in notes), notes)
        # campaign status shows the counts.
        cs = json.loads(self.ok("campaign", "status", str(self.cid), "--json"))
        self.assertEqual((cs["bounces"], cs["complaints"], cs["replies"]), (5, 1, 3), cs)
        # On the server: what was applied is gone; replies, the auto-reply,
        # the stranger's bounce and the garbage stay.
        left = self.dc.messages("box")
        self.assertEqual(len(left), 6, [m[:200] for m in left])
        # A second poll takes nothing again.
        st = self.poll(self.imap_url(), "box")
        self.assertEqual((st["taken"], st["seen"], st["removed"]), (0, 6, 0), st)
        self.assertEqual(self.q("SELECT count(*) FROM replies")[0][0], 3)

        # Soft limit: at 1, the next soft bounce of another address suppresses.
        self.assertIn("soft-limit  3", self.ok("inbound", "settings"))
        self.assertIn("soft-limit  1", self.ok("inbound", "settings", "--soft-limit", "1"))
        d("box", "13", dsn(verp("s7@example.org"), "s7@example.org", "4.2.2", sent["s7@example.org"]["_orig"]))
        self.poll(self.imap_url(), "box")
        self.assertIn("s7@example.org", dict(self.q("SELECT address, reason FROM suppressions")))

    def test_real_and_hostile_mail_over_pop3(self):
        sent = self.world(10)
        n = 0
        files = sorted(glob.glob(os.path.join(SHARED, "*.eml")))[:60] + \
            sorted(glob.glob(os.path.join(LOCAL, "*.eml")))
        for p in files:
            with open(p, "rb") as f:
                self.dc.deliver("pop", "real%03d" % n, f.read())
            n += 1
        # Hostile: 50 MB, deep nesting, a broken encoding, a bounce naming
        # an address never mailed that carries our own campaign's List-Id.
        big = ["From: a@b.example\r\nTo: news@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
               "Content-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\n"
               "hello\r\n--X\r\nContent-Type: application/octet-stream\r\n"
               "Content-Transfer-Encoding: base64\r\n\r\n"]
        line = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
        big.append(line * (50 * 1024 * 1024 // len(line)))
        big.append("--X--\r\n")
        self.dc.deliver("pop", "hostile-big", "".join(big))
        deep = "From: a@b.example\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
        for i in range(2000):
            deep += "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i)
        self.dc.deliver("pop", "hostile-deep", deep)
        self.dc.deliver("pop", "hostile-enc",
                        "From: =?utf-8?B?////?= <x@y.example>\r\nSubject: =?x-unknown?Q?=FF=FE?=\r\n"
                        "Content-Type: text/plain; charset=klingon\r\n"
                        "Content-Transfer-Encoding: base64\r\n\r\n!!!not base64\xff\xfe\r\n")
        ours = "\n".join(l for l in sent["s1@example.org"]["_orig"].split("\n")
                         if not l.lower().startswith(("message-id:", "list-unsubscribe")))
        ours = ours.replace("s1@example.org", "nobody@example.org")
        self.dc.deliver("pop", "stranger", dsn("bounces@example.com", "nobody@example.org",
                                               "5.1.1", ours))
        total = n + 4
        st = self.poll(self.pop3_url(), "pop", timeout=900)
        self.assertEqual(st["listed"], total, st)
        self.assertEqual(st["taken"], total, st)
        # Nothing of ours was mailed to any of these: nothing suppressed, no
        # event, no reply row attached to a subscriber.
        self.assertEqual(self.q("SELECT count(*) FROM suppressions")[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM events WHERE kind IN ('bounce','complaint')")[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM replies WHERE subscriber_id IS NOT NULL")[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM inbound_messages")[0][0], total)
        big_row = self.q("SELECT kind, size, keep FROM inbound_messages WHERE size > 50000000")
        self.assertEqual(len(big_row), 1, big_row)
        stranger = [n for (n,) in self.q("SELECT note FROM inbound_messages")
                    if "nobody@example.org" in n]
        self.assertEqual(len(stranger), 1)
        self.assertIn("nothing changed", stranger[0])
        # Again: every message is known, none applied twice.
        st = self.poll(self.pop3_url(), "pop")
        self.assertEqual(st["taken"], 0, st)
        self.assertEqual(self.q("SELECT count(*) FROM inbound_messages")[0][0], total)

    def crash_run(self, url, user, nmsg):
        """Starts the poller and kills it with SIGKILL once it has taken a
        random number more messages, again and again until all are taken;
        returns how many kills landed in the middle of a poll."""
        rnd = random.Random(7)
        count = lambda: self.q("SELECT count(*) FROM inbound_messages")[0][0]
        mid = 0
        for _ in range(100):
            now = count()
            if now >= nmsg:
                break
            target = now + rnd.randint(1, max(1, (nmsg - now) // 3))
            p = subprocess.Popen([BIN, "inbound", "poll", url, "--user", user, "--password-file",
                                  self.pw, "--every", "1", "--db", self.db],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 60
            while count() < target and p.poll() is None and time.time() < deadline:
                time.sleep(0.002)
            p.send_signal(signal.SIGKILL)
            p.wait()
            if count() < nmsg:
                mid += 1
        return mid

    def crash_check(self, url, user, sent, kind):
        nsub = len(sent)
        mid = self.crash_run(url, user, 2 * nsub)
        st = self.poll(url, user)
        self.assertEqual(st["taken"], 0, st)  # the killed runs took everything
        self.assertGreater(mid, 2)
        # Exactly once: one record per message, one bounce event per
        # bounced subscriber, one reply row per replying subscriber.
        self.assertEqual(self.q("SELECT count(*) FROM inbound_messages")[0][0], 2 * nsub)
        per = self.q("SELECT subscriber_id, count(*) FROM events WHERE kind = 'bounce'"
                     " GROUP BY subscriber_id")
        self.assertEqual(len(per), nsub)
        self.assertTrue(all(c == 1 for _, c in per), per)
        per = self.q("SELECT subscriber_id, count(*) FROM replies GROUP BY subscriber_id")
        self.assertEqual(len(per), nsub)
        self.assertTrue(all(c == 1 for _, c in per), per)
        self.assertEqual(self.q("SELECT count(*) FROM suppressions")[0][0], nsub)
        # The server keeps the replies and nothing else.
        left = self.dc.messages(user)
        self.assertEqual(len(left), nsub, (kind, len(left)))
        self.assertTrue(all(b"Subject: Re: News" in m for m in left))

    def seed_crash(self, user, sent):
        for i, (a, h) in enumerate(sorted(sent.items())):
            self.dc.deliver(user, "b%03d" % i, dsn(h["return-path"].strip("<>"), a, "5.1.1", h["_orig"]))
            self.dc.deliver(user, "r%03d" % i, reply(a, "Re: News", "reply %d" % i,
                                                     "In-Reply-To: %s\r\n" % h["message-id"]))

    def test_exactly_once_across_kill9_imap(self):
        sent = self.world(60 if not SANITIZED else 30)
        self.seed_crash("crash", sent)
        self.crash_check("imap://127.0.0.1:%d/" % self.dc.imap, "crash", sent, "imap")

    def test_exactly_once_across_kill9_pop3(self):
        sent = self.world(100 if not SANITIZED else 40)
        self.seed_crash("crash", sent)
        self.crash_check(self.pop3_url(), "crash", sent, "pop3")

    def test_stored_mailboxes_and_files(self):
        sent = self.world(4)
        h = sent["s0@example.org"]
        self.dc.deliver("box", "a", dsn(h["return-path"].strip("<>"), "s0@example.org", "5.1.1", h["_orig"]))
        mid = self.ok("inbound", "add", self.imap_url(), "--user", "box", "--password-file",
                      self.pw, "--every", "60").strip()
        # The same mailbox again is refused; a password in the URL too.
        p = self.cmd("inbound", "add", self.imap_url(), "--user", "box")
        self.assertEqual(p.returncode, 1)
        p = self.cmd("inbound", "add", "imap://box:pw@127.0.0.1:%d/" % self.dc.imap)
        self.assertEqual(p.returncode, 1)
        self.assertIn("password", p.stderr)
        p = self.cmd("inbound", "add", "http://127.0.0.1/")
        self.assertEqual(p.returncode, 1)
        ls = [json.loads(l) for l in self.ok("inbound", "ls", "--json").splitlines()]
        self.assertEqual(ls[0]["url"], self.imap_url())
        self.assertNotIn("s3cret", self.ok("inbound", "ls"))
        self.ok("inbound", "poll", "--once")
        self.assertEqual(self.q("SELECT address FROM suppressions"), [("s0@example.org",)])
        ls = json.loads(self.ok("inbound", "ls", "--json"))
        self.assertGreater(ls["last_at"], 0)
        self.assertIsNone(ls["last_error"])
        self.assertGreater(ls["next_at"], ls["last_at"])
        # Not due again yet: a second poll does not reach the server.
        self.dc.deliver("box", "b", dsn(sent["s1@example.org"]["return-path"].strip("<>"),
                                        "s1@example.org", "5.1.1", sent["s1@example.org"]["_orig"]))
        self.ok("inbound", "poll", "--once")
        self.assertEqual(len(self.q("SELECT address FROM suppressions")), 1)
        # A wrong password is recorded on the mailbox.
        self.ok("inbound", "rm", mid)
        bad = os.path.join(self.dir, "bad")
        with open(bad, "w") as f:
            f.write("wrong\n")
        self.ok("inbound", "add", self.imap_url(), "--user", "box", "--password-file", bad)
        self.ok("inbound", "poll", "--once")
        ls = json.loads(self.ok("inbound", "ls", "--json"))
        self.assertIn("refused the login", ls["last_error"])
        # Files: process applies them once; --rcpt gives the envelope.
        h2 = sent["s2@example.org"]
        f = os.path.join(self.dir, "m.eml")
        with open(f, "w") as fh:
            fh.write(dsn("bounces@example.com", "s2@example.org", "5.1.1", "Subject: x"))
        out = [json.loads(l) for l in self.ok("inbound", "process", f, "--rcpt",
                                              h2["return-path"].strip("<>")).splitlines()]
        self.assertEqual((out[0]["kind"], out[0]["matched_by"], out[0]["suppressed"]),
                         ("bounce", "verp", 1), out)
        out = json.loads(self.ok("inbound", "process", f))
        self.assertTrue(out["duplicate"])
        p = self.cmd("inbound", "process", os.path.join(self.dir, "missing.eml"))
        self.assertEqual(p.returncode, 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
