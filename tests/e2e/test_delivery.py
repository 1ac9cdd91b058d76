#!/usr/bin/python3
"""Campaign delivery end to end: the real binary sends campaigns through real
SMTP servers (Postfix's smtp-sink for volume, the scriptable fault server for
faults), and what the servers received is counted per recipient.

- a campaign reaches smtp-sink: every recipient exactly once;
- faults: a 550 recipient fails with the server's words (campaign failures),
  a greylisted one is deferred and then delivered, retry sends failures again;
- pause takes effect within a second and keeps the campaign's place; resume
  finishes it, nobody twice;
- crash: the sending process is killed with SIGKILL in the middle; started
  again it finishes; no recipient is skipped, and every recipient who got two
  copies is one whose message was on the wire (at most one per connection)
  and is marked maybe_duplicate in the delivery log.
"""
import collections
import email
import email.header
import email.policy
import email.utils
import glob
import json
import os
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
BIN = os.environ.get("TIDINGS_BIN") or os.path.join(ROOT, "tidings")
FAULT = os.path.join(ROOT, "tests", "tools", "smtp_fault_server.py")
SINK = "/usr/sbin/smtp-sink"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Fault:
    def __init__(self, tmp, *opts):
        self.rec = os.path.join(tmp, "rec-%d.jsonl" % free_port())
        self.proc = subprocess.Popen(["/usr/bin/python3", FAULT, "--record", self.rec] +
                                     [str(o) for o in opts], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("PORT "), line
        self.url = "smtp://127.0.0.1:%d?tls=none" % int(line.split()[1])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.proc.stdout.close()

    def rcpts(self):
        time.sleep(0.2)
        out = collections.Counter()
        with open(self.rec) as f:
            for line in f:
                r = json.loads(line)
                if r["ev"] == "msg":
                    out.update(r["rcpt"])
        return out


class Delivery(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="tidings-deliv-")
        self.dir = self.tmp.name
        self.db = os.path.join(self.dir, "t.db")
        self.ok("init", "--public-url", "https://news.example.com")
        self.ok("list", "create", "L")
        self.html = os.path.join(self.dir, "t.html")
        with open(self.html, "w", encoding="utf-8") as f:
            f.write("<p>Hi {{subscriber.first_name}}</p>"
                    '<a href="{{#track}}https://shop.example/{{subscriber.id}}{{/track}}">x</a>'
                    '<a href="{{unsubscribe_url}}">unsubscribe</a>')

    def tearDown(self):
        self.tmp.cleanup()

    def cmd(self, *args, timeout=120):
        return subprocess.run([BIN, *args, "--db", self.db], capture_output=True, timeout=timeout,
                              text=True)

    def ok(self, *args, timeout=120):
        p = self.cmd(*args, timeout=timeout)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p.stdout

    def audience(self, n, extra=()):
        csv = os.path.join(self.dir, "a.csv")
        with open(csv, "w", encoding="utf-8") as f:
            f.write("email,name\n")
            for i in range(n):
                f.write("r%d@example.com,ليلى %d\n" % (i, i))
            for e in extra:
                f.write("%s,X\n" % e)
        self.ok("import", csv, "--list", "L")
        return ["r%d@example.com" % i for i in range(n)] + list(extra)

    def campaign(self):
        return int(self.ok("campaign", "create", "--name", "C", "--subject",
                           "News for {{subscriber.first_name}}", "--from",
                           "News <news@example.com>", "--list", "L", "--template", self.html))

    def q(self, sql):
        c = sqlite3.connect(self.db)
        try:
            return c.execute(sql).fetchall()
        finally:
            c.close()

    def sink_relay(self, dump):
        """Starts smtp-sink on a free port, writing each message to its own
        file in dump, and adds it as the relay; returns the process."""
        port = free_port()
        os.mkdir(dump)
        sink = subprocess.Popen([SINK, "-u", os.environ.get("USER", "root"), "-d",
                                 os.path.join(dump, "%M."), "127.0.0.1:%d" % port, "64"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        self.ok("relay", "add", "smtp://127.0.0.1:%d?tls=none" % port, "--max-conns", "4")
        return sink

    def sink_rcpts(self, dump):
        """The envelope recipients of the messages smtp-sink wrote to dump
        (each file starts with an X-Rcpt-Args line), with their counts."""
        rcpts = collections.Counter()
        for fn in glob.glob(os.path.join(dump, "*")):
            with open(fn, "rb") as f:
                for line in f.read(2048).decode("utf-8", "replace").splitlines():
                    if line.startswith("X-Rcpt-Args: <"):
                        rcpts[line[len("X-Rcpt-Args: <"):].split(">")[0]] += 1
        return rcpts

    def test_reaches_smtp_sink(self):
        who = self.audience(500)
        dump = os.path.join(self.dir, "dump")
        sink = self.sink_relay(dump)
        try:
            cid = self.campaign()
            out = self.ok("campaign", "start", str(cid), "--wait")
            self.assertIn("finished: 500 sent, 0 failed", out)
        finally:
            sink.terminate()
            sink.wait(10)
        rcpts = self.sink_rcpts(dump)
        self.assertEqual(sorted(rcpts), sorted(who))
        self.assertTrue(all(n == 1 for n in rcpts.values()))
        st = json.loads(self.ok("campaign", "status", str(cid), "--json"))
        self.assertEqual((st["state"], st["sent"], st["total"]), ("finished", 500, 500))

    def test_builders(self):
        """Messages are made by builder threads (one per CPU but one by
        default); TIDINGS_BUILDERS=0 makes them in the delivery loop, as on
        one CPU, and 3 runs three threads: each way every recipient gets
        one message, addressed and personalised for them, and a recipient
        whose message cannot be made is recorded as failed."""
        who = self.audience(300)
        # A tracked link that is no URL for one recipient only: its message
        # cannot be made.
        self.ok("subscriber", "add", "bad@example.com", "--name", "Bad", "--list", "L",
                "--attr", "site=not a url")
        with open(self.html, "w", encoding="utf-8") as f:
            f.write("<p>Hi {{subscriber.first_name}}</p>"
                    '<a href="{{#track}}{{#subscriber.attributes.site}}'
                    "{{subscriber.attributes.site}}{{/subscriber.attributes.site}}"
                    "{{^subscriber.attributes.site}}https://shop.example/{{subscriber.id}}"
                    '{{/subscriber.attributes.site}}{{/track}}">x</a>')
        for n in ("0", "3"):
            with self.subTest(builders=n):
                dump = os.path.join(self.dir, "dump" + n)
                sink = self.sink_relay(dump)
                try:
                    cid = self.campaign()
                    p = subprocess.run([BIN, "campaign", "start", str(cid), "--wait", "--db",
                                        self.db], capture_output=True, text=True, timeout=120,
                                       env=dict(os.environ, TIDINGS_BUILDERS=n))
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertIn("finished: 300 sent, 1 failed", p.stdout)
                finally:
                    sink.terminate()
                    sink.wait(10)
                    for line in self.ok("relay", "ls", "--json").splitlines():
                        self.ok("relay", "rm", str(json.loads(line)["id"]))
                rcpts = self.sink_rcpts(dump)
                self.assertEqual(sorted(rcpts), sorted(who))
                self.assertTrue(all(k == 1 for k in rcpts.values()))
                for fn in glob.glob(os.path.join(dump, "*"))[:50]:
                    with open(fn, "rb") as f:
                        m = email.message_from_binary_file(f, policy=email.policy.default)
                    rcpt = m["X-Rcpt-Args"].split("<")[1].split(">")[0]
                    self.assertEqual(m["To"].addresses[0].addr_spec, rcpt)
                    self.assertEqual(m["Subject"], "News for ليلى")
                    self.assertIn("Hi ليلى", m.get_body(("html",)).get_content())
                failed = self.q("SELECT d.email, d.last_reply, d.message_id FROM deliveries d "
                                "WHERE d.campaign_id = %d AND d.status = 'failed'" % cid)
                self.assertEqual(len(failed), 1, failed)
                self.assertEqual(failed[0][0], "bad@example.com")
                self.assertIn("not an http or https URL", failed[0][1])
                sent = self.q("SELECT count(*) FROM deliveries WHERE campaign_id = %d AND "
                              "status = 'sent' AND message_id LIKE 'd%%.%%@example.com'" % cid)
                self.assertEqual(sent[0][0], 300)

    def test_demo_campaign_reaches_smtp_sink(self):
        """The demo's data, names in Arabic, Thai and Latin script, from a
        seller's own name: every eligible member of three lists once (double
        opt-in: confirmed only; unsubscribed and blocklisted never), each
        message parsed back by Python's email package to the right name."""
        demo = os.path.join(self.dir, "demo.db")
        p = subprocess.run([BIN, "demo", "--db", demo, "--subscribers", "400"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.db = demo
        lists = ["Newsletter", "Product updates", "عملاء ليلى (Layla's customers)"]
        want = {e: n for e, n in self.q(
            "SELECT DISTINCT s.email, s.name FROM subscribers s JOIN memberships m "
            "ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id "
            "WHERE l.name IN (%s) AND s.status = 'enabled' AND (m.status = 'confirmed' OR "
            "(m.status = 'unconfirmed' AND l.optin = 'single')) AND s.email NOT IN "
            "(SELECT address FROM suppressions)" % ",".join("'%s'" % x.replace("'", "''")
                                                            for x in lists))}
        self.assertGreater(len(want), 100)
        dump = os.path.join(self.dir, "dump")
        sink = self.sink_relay(dump)
        try:
            args = ["campaign", "create", "--name", "Demo", "--subject",
                    "{{subscriber.first_name}}، أخبار هذا الشهر", "--from",
                    "ليلى حداد <layla.haddad@tidings.example>", "--template", self.html]
            for name in lists:
                args += ["--list", name]
            cid = int(self.ok(*args))
            out = self.ok("campaign", "start", str(cid), "--wait")
            self.assertIn("finished: %d sent, 0 failed" % len(want), out)
        finally:
            sink.terminate()
            sink.wait(10)
        got = collections.Counter()
        for fn in glob.glob(os.path.join(dump, "*")):
            with open(fn, "rb") as f:
                raw = f.read()
            # smtp-sink puts its own X-* lines on top of the message
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            # RFC 2047 decoding by email.header: the default policy's address
            # parser keeps the (ignorable) blank between two encoded words
            raw_to = email.message_from_bytes(raw, policy=email.policy.compat32)["To"]
            name, addr = email.utils.parseaddr(
                str(email.header.make_header(email.header.decode_header(raw_to))))
            got[addr] += 1
            self.assertEqual(name, want.get(addr), addr)
            self.assertEqual(msg["From"].addresses[0].display_name, "ليلى حداد")
            self.assertTrue(str(msg["Subject"]).endswith("، أخبار هذا الشهر"))
            # the demo's public URL is http: no one-click, but the mailto
            self.assertRegex(str(msg["List-Unsubscribe"]).strip(), r"^<mailto:bounces\+c\d+\.d\d+-[a-z2-7]{10}@tidings"
                             r"\.example\?subject=unsubscribe>$")
        self.assertEqual(sorted(got), sorted(want))
        self.assertTrue(all(n == 1 for n in got.values()))

    def test_faults_failures_retry(self):
        self.audience(30, extra=["gone@example.com", "grey@example.com"])
        srv = Fault(self.dir, "--rcpt-reply", "gone@example.com=550 5.1.1 no such user here",
                    "--rcpt-temp", "grey@example.com=1")
        try:
            self.ok("relay", "add", srv.url)
            cid = self.campaign()
            p = self.cmd("campaign", "start", str(cid), "--wait", "--retry-after", "1")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("31 sent, 1 failed", p.stdout)
            fails = [json.loads(x) for x in self.ok("campaign", "failures", str(cid),
                                                     "--json").splitlines()]
            self.assertEqual([f["email"] for f in fails], ["gone@example.com"])
            self.assertIn("550 5.1.1 no such user here", fails[0]["reply"])
            got = srv.rcpts()
            self.assertEqual(got["grey@example.com"], 1)      # deferred, then delivered once
            self.assertEqual(got["gone@example.com"], 0)
            self.assertTrue(all(got["r%d@example.com" % i] == 1 for i in range(30)))
            self.assertEqual(self.q("SELECT attempts FROM deliveries"
                                    " WHERE email = 'grey@example.com'"), [(2,)])
            # retry: the failed one is queued again and tried (and fails again)
            self.assertIn("1 recipients queued again", self.ok("campaign", "retry", str(cid)))
            p = self.cmd("campaign", "start", str(cid), "--wait")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(self.ok("campaign", "failures", str(cid)).splitlines()), 1)
        finally:
            srv.stop()

    def test_pause_resume(self):
        who = self.audience(300)
        srv = Fault(self.dir, "--slow", "dot=0.02")
        try:
            self.ok("relay", "add", srv.url, "--max-conns", "2")
            cid = self.campaign()
            p = subprocess.Popen([BIN, "campaign", "start", str(cid), "--wait", "--db", self.db],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.0)
            t0 = time.time()
            self.ok("campaign", "pause", str(cid))
            out, err = p.communicate(timeout=30)
            took = time.time() - t0
            self.assertEqual(p.returncode, 1)
            self.assertIn("paused", err)
            self.assertLess(took, 2.0, "pause took %.2f s" % took)
            st = json.loads(self.ok("campaign", "status", str(cid), "--json"))
            self.assertEqual(st["state"], "paused")
            self.assertEqual(st["sending"], 0)
            self.assertGreater(st["sent"], 0)
            self.assertGreater(st["queued"], 0)
            sent_at_pause = st["sent"]
            time.sleep(0.5)  # nothing moves while paused
            self.assertEqual(json.loads(self.ok("campaign", "status", str(cid), "--json"))["sent"],
                             sent_at_pause)
            self.ok("campaign", "resume", str(cid))
            self.ok("campaign", "start", str(cid), "--wait")
            got = srv.rcpts()
            self.assertEqual(sorted(got), sorted(who))
            self.assertTrue(all(v == 1 for v in got.values()), got.most_common(3))
        finally:
            srv.stop()

    def test_sigkill_and_resume(self):
        who = self.audience(400)
        srv = Fault(self.dir, "--slow", "dot=0.01")
        conns = 4
        try:
            self.ok("relay", "add", srv.url, "--max-conns", str(conns))
            cid = self.campaign()
            p = subprocess.Popen([BIN, "campaign", "start", str(cid), "--wait", "--db", self.db],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.6)
            p.send_signal(signal.SIGKILL)
            p.wait()
            st = json.loads(self.ok("campaign", "status", str(cid), "--json"))
            self.assertEqual(st["state"], "running")
            self.assertGreater(st["sent"], 0, "killed before anything was sent")
            self.assertGreater(st["queued"], 0, "killed after everything was sent")
            # started again, it resumes the running campaign and finishes it
            self.ok("campaign", "start", str(cid), "--wait")
            st = json.loads(self.ok("campaign", "status", str(cid), "--json"))
            self.assertEqual((st["state"], st["sent"], st["failed"]), ("finished", 400, 0))
            got = srv.rcpts()
            self.assertEqual(sorted(got), sorted(who), "a recipient was skipped")
            twice = {r for r, n in got.items() if n > 1}
            self.assertTrue(all(got[r] <= 2 for r in got))
            self.assertLessEqual(len(twice), conns)
            flagged = {r for (r,) in self.q("SELECT email FROM deliveries WHERE maybe_duplicate")}
            self.assertTrue(twice <= flagged, (twice, flagged))
        finally:
            srv.stop()

    def test_domain_limit(self):
        self.audience(20, extra=["a@slow.example", "b@slow.example", "c@slow.example"])
        srv = Fault(self.dir)
        try:
            self.ok("relay", "add", srv.url, "--max-conns", "4")
            self.ok("relay", "limits", "--domain", "slow.example=60/min")
            cid = self.campaign()
            self.ok("campaign", "start", str(cid), "--wait")
            time.sleep(0.2)
            at = {}
            with open(srv.rec) as f:
                for line in f:
                    r = json.loads(line)
                    if r["ev"] == "msg":
                        at[r["rcpt"][0]] = r["t"]
            slow = sorted(at[a] for a in ("a@slow.example", "b@slow.example", "c@slow.example"))
            self.assertGreaterEqual(slow[1] - slow[0], 0.9)
            self.assertGreaterEqual(slow[2] - slow[1], 0.9)
            fast = sorted(v for k, v in at.items() if k.endswith("@example.com"))
            self.assertLess(fast[-1] - fast[0], 1.5, "other domains were held back")
        finally:
            srv.stop()

    def test_serve_sends_a_scheduled_campaign(self):
        who = self.audience(50)
        srv = Fault(self.dir)
        try:
            self.ok("relay", "add", srv.url)
            at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(time.time() + 3))
            cid = int(self.ok("campaign", "create", "--name", "Later", "--subject", "s",
                              "--from", "news@example.com", "--list", "L", "--template",
                              self.html, "--at", at, "--tz", "UTC"))
            self.assertIn("scheduled", self.ok("campaign", "start", str(cid)))
            serve = subprocess.Popen([BIN, "serve", "--db", self.db, "--log-level", "info"],
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
            try:
                deadline = time.time() + 30
                state = None
                while time.time() < deadline:
                    state = json.loads(self.ok("campaign", "status", str(cid), "--json"))["state"]
                    if state == "finished":
                        break
                    time.sleep(0.3)
                self.assertEqual(state, "finished")
            finally:
                serve.send_signal(signal.SIGTERM)
                _, err = serve.communicate(timeout=30)
            self.assertEqual(serve.returncode, 0, err)
            self.assertIn("scheduler stopped", err)
            self.assertIn("campaign=%d state=finished" % cid, err)
            got = srv.rcpts()
            self.assertEqual(sorted(got), sorted(who))
        finally:
            srv.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
