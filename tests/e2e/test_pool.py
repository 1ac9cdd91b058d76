#!/usr/bin/python3
"""Relay pool end to end: the driver tests/pool_send (built by `make test`
into UNIT_DIR) plays the delivery worker: it submits one message per
recipient to a pool of relays, applies the retry policy to every result, and
prints each result as a JSON line. The servers' own records are then
counted per recipient.

- failover to smtp-sink when the first relay refuses connections: every
  message delivered exactly once (the sink's dump), none lost, none doubled;
- two fault servers, one of which exits in the middle of the run: the
  message it took before dying is reported unknown and never resent, the
  rest go to the other relay; a 4xx (greylisted) recipient is retried and
  delivered; a 5xx recipient fails at once with the server's text; a
  per-domain limit holds at the servers' clocks;
- the only relay down: deferred, then failed with the reason;
- a maildir relay under a global rate limit.
"""
import base64
import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
UNIT_DIR = os.environ.get("UNIT_DIR") or os.path.join(ROOT, "build", "tests")
DRIVER = os.path.join(UNIT_DIR, "pool_send")
FAULT = os.path.join(ROOT, "tests", "tools", "smtp_fault_server.py")
SINK = "/usr/sbin/smtp-sink"
SANITIZED = os.environ.get("TIDINGS_SANITIZED") == "1"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def run(*args, timeout=60):
    """Runs the driver; returns (result events, summary)."""
    p = subprocess.run([DRIVER] + [str(a) for a in args], capture_output=True, timeout=timeout)
    err = p.stderr.decode(errors="replace")
    # the pool logs relays going down as warnings; anything else is a problem
    odd = [x for x in err.splitlines() if x.strip() and "tidings[warn] relay=" not in x]
    if p.returncode != 0 or odd:
        print(err)
    check(p.returncode == 0 and not odd, f"driver exit 0, nothing unexpected on stderr")
    ev = [json.loads(x) for x in p.stdout.decode().splitlines() if x.strip()]
    res = [e for e in ev if e["event"] == "result"]
    summ = [e for e in ev if e["event"] == "summary"]
    return res, (summ[0] if summ else {})


def by_msg(res):
    out = {}
    for r in res:
        out.setdefault(r["msg"], []).append(r)
    return out


class Fault:
    def __init__(self, tmp, *opts):
        self.rec = tempfile.mktemp(dir=tmp, suffix=".jsonl")
        self.proc = subprocess.Popen(["/usr/bin/python3", FAULT, "--record", self.rec] +
                                     [str(o) for o in opts], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("fault server did not start: " + line)
        self.port = int(line.split()[1])
        self.url = f"smtp://127.0.0.1:{self.port}?tls=none"

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def msgs(self):
        time.sleep(0.2)
        with open(self.rec) as f:
            return [r for r in (json.loads(x) for x in f if x.strip()) if r["ev"] == "msg"]


def test_failover_sink(tmp):
    if not os.path.exists(SINK):
        check(False, f"{SINK} is missing: install postfix (scripts/install-deps.sh --test)")
        return
    port = free_port()
    dump = tempfile.mkdtemp(prefix="tidings-sink-")
    os.chmod(dump, 0o777)
    cmd = [SINK] + (["-u", "nobody"] if os.geteuid() == 0 else []) + \
        ["-D", os.path.join(dump, "all"), "-4", f"127.0.0.1:{port}", "64"]
    sink = subprocess.Popen(cmd)
    dead = free_port()  # nothing listens there: connections are refused
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        n = 400 if SANITIZED else 2000
        res, s = run("--relay", f"smtp://127.0.0.1:{dead}", "--conns", 4,
                     "--relay", f"smtp://127.0.0.1:{port}", "--conns", 4,
                     "--count", n, "--size", 2000, "--timeout", 3000, "--down-ms", 10000)
        check(s.get("done") == n and not s.get("timed_out") and s.get("conns_left") == 0,
              f"refused relay + smtp-sink: {n} messages all done, connections QUIT ({s})")
        check(all(r["relay"] == f"smtp://127.0.0.1:{port}" for r in res),
              "... every one through the sink: the refused relay took none")
        check(len(res) == n, f"... one result per message, nothing retried ({len(res)})")
        print(f"     {n} messages of 2 KB over 4 connections: "
              f"{n / max(s.get('seconds', 0), 0.001):.0f} msg/s")
        time.sleep(0.5)
        data = b"".join(open(f, "rb").read() for f in glob.glob(os.path.join(dump, "*")))
        counts = [data.count(f"<{i}.pool-send@tidings.test>".encode()) for i in range(n)]
        check(all(c == 1 for c in counts),
              f"the sink's dump holds each message exactly once "
              f"({sum(1 for c in counts if c == 1)} of {n}; "
              f"{sum(1 for c in counts if c > 1)} twice or more)")
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(dump, ignore_errors=True)


def test_faults(tmp):
    opts = ["--rcpt-reply", "gone@example.com=550 5.1.1 no such user here",
            "--rcpt-temp", "grey@example.com=2"]
    n, spacing = 30, 0.25  # 15 messages to slow.test at 240 a minute
    with Fault(tmp, "--exit-after", 8, *opts) as a, Fault(tmp, *opts) as b:
        t0 = time.time()
        res, s = run("--relay", a.url, "--conns", 2, "--relay", b.url, "--conns", 2,
                     "--count", n, "--domains", "example.com,slow.test",
                     "--domain-limit", "slow.test=240",
                     "--rcpt", "gone@example.com", "--rcpt", "grey@example.com",
                     "--retry-ms", 200, "--down-ms", 5000, "--timeout", 3000)
        took = time.time() - t0
        jobs = n + 2
        check(not s.get("timed_out") and
              s.get("done", 0) + s.get("failed", 0) + s.get("unknown", 0) == jobs,
              f"every job ends done, failed or unknown in {took:.1f} s ({s})")
        ma, mb = a.msgs(), b.msgs()
        check(len(ma) == 8, f"relay A took 8 messages, then went down ({len(ma)})")
        check(len(mb) > 0, f"relay B took the rest ({len(mb)})")
        at = {}
        for m in ma + mb:
            for r in m["rcpt"]:
                at[r] = at.get(r, 0) + 1
        per = by_msg(res)
        final = {i: rs[-1] for i, rs in per.items()}
        check(len(final) == jobs, f"a final result for each of the {jobs} jobs")

        done = [r for r in final.values() if r["action"] == "done"]
        check(all(at.get(r["to"], 0) == 1 for r in done),
              f"each delivered recipient is at the servers exactly once ({len(done)})")
        unk = [r for r in final.values() if r["action"] == "unknown"]
        check(len(unk) >= 1 and all(r["status"] == "unknown" for r in unk),
              f"the message A took as it died is reported unknown ({len(unk)})")
        check(all(at.get(r["to"], 0) <= 1 for r in unk) and
              any(at.get(r["to"], 0) == 1 for r in unk),
              "... unknown messages were never resent (at most one copy, one is at A)")
        check(all(len(per[r["msg"]]) == 1 or per[r["msg"]][-1] is r for r in unk),
              "... and nothing came after the unknown result")
        # failover: once A died (the unknown result), B delivered everything
        # (results A gave just before may be taken in the same round: 20 ms)
        t_die = min((r["t"] for r in unk), default=0)
        after = [r for r in res if r["t"] > t_die + 20]
        check(len([r for r in after if r["action"] == "done"]) > 0 and
              all(r["relay"] == b.url for r in after if r["action"] == "done"),
              f"after A went down, every delivery went to B "
              f"({len([r for r in after if r['action'] == 'done'])})")
        check(all(r["conn_error"] for r in after if r["relay"] == a.url),
              "... and A got no new message (only those on the wire as it died)")
        retried = [rs for rs in per.values() if rs[0]["relay"] == a.url and
                   rs[0]["conn_error"] and rs[0]["action"] in ("now", "later")]
        check(all(rs[-1]["relay"] == b.url and
                  (rs[-1]["action"] == "done" or rs[-1]["to"] == "gone@example.com")
                  for rs in retried),
              f"messages cut off by A's death before their end were delivered by B "
              f"({len(retried)})")

        # "at once": the first answer from a server is final (gone may also
        # have been on A as it died, which is no answer)
        gone = [r for r in final.values() if r["to"] == "gone@example.com"]
        answered = [r for r in per[gone[0]["msg"]] if r["code"]] if gone else []
        check(len(gone) == 1 and gone[0]["action"] == "failed" and gone[0]["code"] == 550 and
              gone[0]["enh"] == "5.1.1" and "no such user here" in gone[0]["text"] and
              answered == [gone[0]],
              f"5xx: failed at once with the server's reply ({gone and gone[0]['text']})")
        check(at.get("gone@example.com", 0) == 0, "... and never delivered")
        # (grey may also have been on A as it died: skip that result)
        grey = [r for r in res if r["to"] == "grey@example.com"]
        g451 = [i for i, r in enumerate(grey) if r["code"] == 451]
        # If its last try was the one on A as A died, it ends unknown (never
        # resent, at most one copy) instead of done: both are right.
        ended = (grey[-1]["action"] == "done" and at.get("grey@example.com") == 1) or \
                (grey[-1]["action"] == "unknown" and at.get("grey@example.com", 0) <= 1)
        check(g451 and all(grey[i]["action"] == "later" for i in g451) and ended,
              f"4xx (greylisted): retried later, then delivered once "
              f"({[(g['code'], g['action']) for g in grey]})")
        if g451 and g451[0] + 1 < len(grey):
            gap = grey[g451[0] + 1]["t"] - grey[g451[0]]["t"]
            check(gap >= 140, f"... after the backoff delay ({gap} ms, base 200 ms less jitter)")

        ts = sorted(m["t"] for m in ma + mb if m["rcpt"] and m["rcpt"][0].endswith("@slow.test"))
        gaps = [b2 - a2 for a2, b2 in zip(ts, ts[1:])]
        check(len(ts) >= 12 and min(gaps) >= spacing * 0.8,
              f"slow.test at 240/min: {len(ts)} messages at least {spacing * 0.8:.2f} s apart at "
              f"the servers (smallest gap {min(gaps) if gaps else 0:.3f} s)")
        others = sorted(m["t"] for m in ma + mb
                        if m["rcpt"] and m["rcpt"][0].endswith("@example.com"))
        check(len(others) >= 2 and others[-1] - others[0] < (len(ts) - 1) * spacing,
              "... while example.com went unhindered")


def test_queued(tmp):
    """A connection queues its next message behind the final dot (PIPELINING):
    with one connection, a message refused after its dot and a recipient
    refused at RCPT each settle alone, and the rest are delivered once each,
    with and without holding results (the worker holds them). A server that
    dies with a message queued is in test_faults (relay A)."""
    for hold in (0, 1):
        opts = ["--rcpt-reply", "gone@example.com=550 5.1.1 no such user here",
                "--data-reply", "bad@example.com=554 5.7.1 refused by policy"]
        with Fault(tmp, *opts) as f:
            res, s = run("--relay", f.url, "--conns", 1, "--count", 20,
                         "--rcpt", "bad@example.com", "--rcpt", "gone@example.com",
                         "--hold", hold, "--retry-ms", 100, "--timeout", 3000)
            final = {r["msg"]: r for r in res}
            ms = f.msgs()
            at = {}
            for m in ms:
                for r in m["rcpt"]:
                    at[r] = at.get(r, 0) + 1
            done = [r for r in final.values() if r["action"] == "done"]
            check(len(final) == 22 and len(done) == 20 and
                  all(at.get(r["to"]) == 1 for r in done),
                  f"hold={hold}: the other 20 delivered once each ({len(done)} of {len(final)})")
            bad = [r for r in final.values() if r["to"] == "bad@example.com"]
            check(bad and bad[0]["code"] == 554 and bad[0]["action"] == "failed",
                  f"hold={hold}: the message refused after its dot failed with the reply "
                  f"({bad and bad[0]['text']})")
            gone = [r for r in final.values() if r["to"] == "gone@example.com"]
            check(gone and gone[0]["code"] == 550 and gone[0]["action"] == "failed" and
                  "gone@example.com" not in at,
                  f"hold={hold}: the recipient refused at RCPT failed, not delivered")
            with open(f.rec) as fh:
                rx = [base64.b64decode(r["b64"]) for r in
                      (json.loads(x) for x in fh if x.strip()) if r["ev"] == "rx"]
            conns = {m["conn"] for m in ms}
            both = [c for c in rx if b"\r\n.\r\nMAIL FROM:" in c]
            check(len(conns) == 1 and len(both) >= 10,
                  f"hold={hold}: one connection; the next envelope came with the final dot "
                  f"({len(both)} times)")


def test_all_down(tmp):
    dead = free_port()
    res, s = run("--relay", f"smtp://127.0.0.1:{dead}", "--count", 3, "--retry-ms", 100,
                 "--max-attempts", 3, "--down-ms", 5000, "--timeout", 2000)
    check(s.get("failed") == 3 and s.get("done") == 0,
          f"the only relay refuses: every job fails in the end ({s})")
    per = by_msg(res)
    check(all([r["action"] for r in rs] == ["later", "later", "failed"] for rs in per.values()),
          "... after being deferred twice (3 attempts)")
    last = [rs[-1] for rs in per.values()]
    check(all(r["status"] == "temp" and r["code"] == 0 and "no relay available" in r["text"] and
              "refused" in r["text"] for r in last[1:]) and
          all("refused" in r["text"] for r in last),
          f"... with the reason ({last[-1]['text'] if last else ''})")


def test_maildir(tmp):
    d = os.path.join(tmp, "md")
    n = 20
    res, s = run("--relay", f"maildir:{d}", "--count", n, "--global", 50)
    check(s.get("done") == n, f"maildir relay: {n} messages done ({s})")
    files = glob.glob(os.path.join(d, "new", "*"))
    rcpts = sorted(open(f, "rb").read().split(b"\r\n")[1] for f in files)
    check(len(files) == n and len(set(rcpts)) == n,
          f"... one file per message, each recipient once ({len(files)})")
    t = [r["t"] for r in res]
    check(max(t) - min(t) >= (n - 1) * 20 * 0.95,
          f"... at the global limit of 50/s ({max(t) - min(t)} ms for {n})")


def main():
    if not os.path.exists(DRIVER):
        print(f"FAIL {DRIVER} is missing: make test (or make B=... B/tests/pool_send)")
        sys.exit(1)
    tmp = tempfile.mkdtemp(prefix="tidings-pool-")
    try:
        for t in (test_maildir, test_all_down, test_faults, test_queued, test_failover_sink):
            print(f"-- {t.__name__}", flush=True)
            t0 = time.time()
            t(tmp)
            print(f"     ({time.time() - t0:.1f} s)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    if failures:
        print(f"{len(failures)} checks failed:")
        for f in failures:
            print("  " + f)
        sys.exit(1)
    print("all checks passed")


if __name__ == "__main__":
    main()
