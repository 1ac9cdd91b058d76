#!/usr/bin/python3
"""SMTP client end to end: the test driver tests/smtp_send (built by `make
test` into UNIT_DIR) sends through the real client to real servers on
loopback, and the servers' records are checked byte for byte.

- Postfix's smtp-sink: many messages on one connection and on several
  connections in one poll loop (the non-blocking API), counted by the sink's
  own dump file; a real server that drops the connection after the final dot.
- tests/tools/smtp_fault_server.py (aiosmtpd): 4xx/5xx per recipient, 4xx/5xx
  after DATA, RSET and the next message on the same connection, a drop in the
  middle of DATA and after the final dot, slow stages against short timeouts,
  STARTTLS with a self-signed certificate (opportunistic, required, verified
  against the certificate as CA), implicit TLS, AUTH PLAIN and LOGIN, no
  PIPELINING, no SMTPUTF8, SIZE, and the exact wire bytes: pipelined batches,
  dot-stuffing, CRLF normalisation, MAIL parameters.
- hostile servers: an endless line, garbage, a 10 MB reply, bare LF.
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
DRIVER = os.path.join(UNIT_DIR, "smtp_send")
FAULT = os.path.join(ROOT, "tests", "tools", "smtp_fault_server.py")
SINK = "/usr/sbin/smtp-sink"
SANITIZED = os.environ.get("TIDINGS_SANITIZED") == "1"
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def need(path, pkg):
    if not os.path.exists(path):
        print(f"FAIL {path} is missing: install {pkg} (scripts/install-deps.sh --test)")
        sys.exit(1)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def send(url, *opts, timeout=120):
    """Runs the driver; returns its JSON events."""
    p = subprocess.run([DRIVER, url] + [str(o) for o in opts], capture_output=True,
                       timeout=timeout)
    if p.returncode != 0 or p.stderr.strip():
        print(p.stderr.decode(errors="replace"))
    check(p.returncode == 0, f"driver exit 0 for {url} {' '.join(map(str, opts))[:60]}")
    return [json.loads(line) for line in p.stdout.decode().splitlines() if line.strip()]


def results(events):
    return [e for e in events if e["event"] == "result"]


def one(events, kind):
    xs = [e for e in events if e["event"] == kind]
    return xs[0] if xs else None


class Fault:
    """The fault server as a context manager; .records() reads its log."""

    def __init__(self, tmp, *opts):
        self.rec = tempfile.mktemp(dir=tmp, suffix=".jsonl")
        self.proc = subprocess.Popen(["/usr/bin/python3", FAULT, "--record", self.rec] +
                                     [str(o) for o in opts], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            raise RuntimeError("fault server did not start: " + line)
        self.port = int(line.split()[1])

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def records(self):
        time.sleep(0.2)  # the server writes as it reads; let it catch up
        with open(self.rec) as f:
            return [json.loads(x) for x in f if x.strip()]

    def raw(self, conn=None):
        """All bytes read, per connection (or of one)."""
        by = {}
        for r in self.records():
            if r["ev"] == "rx":
                by.setdefault(r["conn"], []).append(base64.b64decode(r["b64"]))
        if conn is not None:
            return b"".join(by.get(conn, []))
        return {k: b"".join(v) for k, v in by.items()}

    def chunks(self):
        return [base64.b64decode(r["b64"]) for r in self.records() if r["ev"] == "rx"]

    def msgs(self):
        return [r for r in self.records() if r["ev"] == "msg"]


def statuses(res):
    return [r["status"] for r in res["rcpt"]]


def test_sink(tmp):
    need(SINK, "postfix")
    port = free_port()
    # the sink drops to nobody when run as root: a directory it can write
    dump = tempfile.mkdtemp(prefix="tidings-sink-")
    os.chmod(dump, 0o777)
    cmd = [SINK]
    if os.geteuid() == 0:
        cmd += ["-u", "nobody"]
    cmd += ["-D", os.path.join(dump, "all"), "-4", f"127.0.0.1:{port}", "64"]
    sink = subprocess.Popen(cmd)
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        n = 500 if SANITIZED else 3000
        ev = send(f"smtp://127.0.0.1:{port}", "--count", n, "--size", 5000,
                  "--rcpt", "one@example.com", "--rcpt", "two@example.com")
        s = one(ev, "summary")
        check(s and s["ok"] == n and s["sent"] == n,
              f"smtp-sink: {n} messages on one connection all ok ({s})")
        check(one(ev, "open")["caps"]["pipelining"], "smtp-sink offers PIPELINING")
        print(f"     {n} messages of 5 KB on one connection: "
              f"{n / max(s['seconds'], 0.001):.0f} msg/s")
        ev = send(f"smtp://127.0.0.1:{port}", "--count", n, "--size", 5000, "--conns", 4)
        s = one(ev, "summary")
        check(s and s["ok"] == n and not [e for e in ev if e["event"] == "closed"],
              f"smtp-sink: {n} messages over 4 connections in one poll loop all ok")
        print(f"     {n} messages over 4 connections: "
              f"{n / max(s['seconds'], 0.001):.0f} msg/s")
        time.sleep(0.5)
        data = b"".join(open(f, "rb").read() for f in glob.glob(os.path.join(dump, "*")))
        ids = data.count(b"smtp-send@tidings.test>")
        check(ids == 2 * n, f"the sink's dump holds every message ({ids} of {2 * n})")
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(dump, ignore_errors=True)

    # a real server that hangs up after the final dot: unknown, maybe delivered
    port = free_port()
    cmd = [SINK] + (["-u", "nobody"] if os.geteuid() == 0 else []) + \
        ["-q", ".", "-4", f"127.0.0.1:{port}", "8"]
    sink = subprocess.Popen(cmd)
    try:
        time.sleep(0.5)
        ev = send(f"smtp://127.0.0.1:{port}", "--count", 2, "--timeout", 5000)
        r = results(ev)
        check(len(r) == 1 and r[0]["status"] == "unknown",
              "smtp-sink -q .: the message is unknown (maybe delivered)")
        check(one(ev, "closed") is not None, "... and the connection is reported closed")
    finally:
        sink.terminate()
        sink.wait()


def test_recipients(tmp):
    for pipelining in (True, False):
        tag = "pipelined" if pipelining else "no PIPELINING"
        opts = ["--rcpt-reply", "busy@example.com=450 4.2.0 mailbox busy",
                "--rcpt-reply", "gone@example.com=550 5.1.1 no such user"]
        if not pipelining:
            opts.append("--no-pipelining")
        with Fault(tmp, *opts) as f:
            ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--count", 2,
                      "--rcpt", "ok@example.com", "--rcpt", "busy@example.com",
                      "--rcpt", "gone@example.com", "--timeout", 5000)
            r = results(ev)
            check(len(r) == 2 and all(statuses(x) == ["ok", "temp", "perm"] for x in r),
                  f"{tag}: per-recipient ok / temp / perm")
            x = r[0]["rcpt"]
            check(x[1]["code"] == 450 and x[1]["enh"] == "4.2.0" and
                  x[1]["text"] == "mailbox busy", f"{tag}: the 450 reply is kept whole")
            check(x[2]["code"] == 550 and x[2]["enh"] == "5.1.1", f"{tag}: 550 kept")
            check(x[0]["code"] == 250 and "queued" in x[0]["text"],
                  f"{tag}: the accepted one carries the final reply")
            check(r[0]["status"] == "temp", f"{tag}: summary is temp")
            m = f.msgs()
            check(len(m) == 2 and all(y["rcpt"] == ["ok@example.com"] for y in m),
                  f"{tag}: the server took 2 messages for the accepted recipient only")
            ch = f.chunks()
            batched = [c for c in ch if c.startswith(b"MAIL FROM:") and c.endswith(b"DATA\r\n")
                       and c.count(b"RCPT TO:") == 3]
            if pipelining:
                check(len(batched) == 2, "pipelined: MAIL, 3 RCPT and DATA in one write")
            else:
                check(not batched and any(c.startswith(b"MAIL FROM:") and b"RCPT" not in c
                                          for c in ch),
                      "no PIPELINING: MAIL waits for its reply before RCPT")

    # every recipient refused, pipelined: DATA refused, RSET, next message fine
    with Fault(tmp, "--rcpt-reply", "gone@example.com=550 5.1.1 no such user") as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--rcpt", "gone@example.com",
                  "--timeout", 5000)
        r = results(ev)
        check(len(r) == 1 and statuses(r[0]) == ["perm"] and r[0]["rcpt"][0]["code"] == 550,
              "all recipients refused: perm with the RCPT reply")
        raw = f.raw(1)
        check(b"RSET\r\n" in raw, "... and RSET after the failed transaction")


def test_data_replies(tmp):
    with Fault(tmp, "--data-reply", "soft@example.com=451 4.3.0 try again later",
               "--data-reply", "hard@example.com=554 5.7.1 rejected as spam") as f:
        url = f"smtp://127.0.0.1:{f.port}?tls=none"
        for rcpt, want, code in (("soft@example.com", "temp", 451),
                                 ("hard@example.com", "perm", 554),
                                 ("fine@example.com", "ok", 250)):
            ev = send(url, "--rcpt", rcpt, "--count", 2, "--timeout", 5000)
            r = results(ev)
            check(len(r) == 2 and all(x["status"] == want and x["reply"]["code"] == code
                                      for x in r),
                  f"reply after the final dot {code}: {want}, twice on one connection")
        raw = f.raw()
        check(raw[1].count(b"RSET\r\n") == 2 and raw[2].count(b"RSET\r\n") == 2 and
              raw[3].count(b"RSET\r\n") == 0, "RSET after each failed message, none after ok")


def test_drops(tmp):
    with Fault(tmp, "--drop", "after-dot") as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--count", 3, "--timeout", 5000)
        r = results(ev)
        check(len(r) == 1 and r[0]["status"] == "unknown" and
              r[0]["rcpt"][0]["status"] == "unknown",
              "drop after the final dot: unknown (maybe delivered)")
        check("may have been delivered" in r[0]["reply"]["text"],
              "... and the reply text says so")
        c = one(ev, "closed")
        check(c and c["code"] == "temporary failure", "... the connection closed, temporary")
        check(len(f.msgs()) == 1, "... the server did take the message")

    with Fault(tmp, "--drop", "mid-data", "--size-limit", 0) as f:
        # larger than every socket buffer on the way, so the server's reset
        # comes while the client is still writing
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--size", 20_000_000,
                  "--timeout", 10000)
        r = results(ev)
        check(len(r) == 1 and r[0]["status"] == "temp",
              f"drop in the middle of DATA: temp, not delivered ({r and r[0]['reply']})")
        check(len(f.msgs()) == 0, "... and the server took nothing")


def test_timeouts(tmp):
    with Fault(tmp, "--slow", "dot=3") as f:
        t0 = time.time()
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--timeout", 700)
        dt = time.time() - t0
        r = results(ev)
        check(len(r) == 1 and r[0]["status"] == "unknown" and
              "final dot" in r[0]["reply"]["text"],
              f"slow after the final dot: unknown, 'final dot' timeout ({r and r[0]['reply']})")
        check(dt < 2.5, f"... within the timeout ({dt:.1f} s)")
    with Fault(tmp, "--slow", "rcpt=3") as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--timeout", 500)
        r = results(ev)
        check(len(r) == 1 and r[0]["status"] == "temp" and "RCPT" in r[0]["reply"]["text"],
              "slow RCPT: temp, RCPT timeout")
    with Fault(tmp, "--slow", "ehlo=3") as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--timeout", 500)
        o = one(ev, "open_error")
        check(o and o["code"] == "temporary failure" and "EHLO" in o["error"],
              "slow EHLO: the connection fails, temporary, EHLO stage")
    # a listening socket that never accepts or answers: the greeting times out
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    ev = send(f"smtp://127.0.0.1:{s.getsockname()[1]}", "--timeout", 400)
    o = one(ev, "open_error")
    check(o and "greeting" in o["error"], "no greeting: greeting timeout")
    s.close()
    ev = send(f"smtp://127.0.0.1:{free_port()}", "--timeout", 2000)
    o = one(ev, "open_error")
    check(o and o["code"] == "temporary failure" and "refused" in o["error"],
          "connection refused: temporary, says refused")


def make_cert(tmp):
    key, cert = os.path.join(tmp, "key.pem"), os.path.join(tmp, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_tls(tmp):
    cert, key = make_cert(tmp)
    tls = ["--tls-cert", cert, "--tls-key", key]
    with Fault(tmp, *tls) as f:
        base = f"smtp://127.0.0.1:{f.port}"
        ev = send(base, "--timeout", 5000)
        o = one(ev, "open")
        check(o and o["caps"]["tls"] and not o["caps"]["tls_verified"] and
              results(ev)[0]["status"] == "ok",
              "opportunistic STARTTLS with a self-signed certificate: encrypted, not verified")
        ev = send(base + "?tls=required", "--timeout", 5000)
        o = one(ev, "open_error")
        check(o and "certificate" in o["error"] and o["code"] == "temporary failure",
              f"tls=required verifies: an untrusted certificate fails ({o})")
        ev = send(base + "?tls=required", "--ca", cert, "--timeout", 5000)
        o = one(ev, "open")
        check(o and o["caps"]["tls_verified"] and results(ev)[0]["status"] == "ok",
              "tls=required with the certificate as CA: verified, sent")
        ev = send(f"smtp://localhost:{f.port}?tls=required", "--ca", cert, "--timeout", 5000)
        check(one(ev, "open") and one(ev, "open")["caps"]["tls_verified"],
              "... and by host name (localhost)")
        ev = send(base + "?tls=required&verify=no", "--timeout", 5000)
        check(one(ev, "open") and results(ev)[0]["status"] == "ok",
              "tls=required&verify=no: sent")
        ev = send(base + "?tls=none", "--timeout", 5000)
        check(not one(ev, "open")["caps"]["tls"], "tls=none stays in clear text")
        # the message went through TLS: the records hold the decrypted bytes
        raws = f.raw()
        check(any(b"STARTTLS\r\n" in r for r in raws.values()), "STARTTLS was sent")
        check(len(f.msgs()) == 5, f"5 messages taken over TLS and clear ({len(f.msgs())})")
    with Fault(tmp) as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=required&verify=no", "--timeout", 5000)
        o = one(ev, "open_error")
        check(o and "does not offer STARTTLS" in o["error"] and o["code"] == "permanent failure",
              "tls=required without STARTTLS: fails clearly, permanent")
    with Fault(tmp, "--smtps", *tls) as f:
        ev = send(f"smtps://127.0.0.1:{f.port}", "--ca", cert, "--timeout", 5000)
        o = one(ev, "open")
        check(o and o["caps"]["tls"] and o["caps"]["tls_verified"] and
              results(ev)[0]["status"] == "ok", "smtps:// implicit TLS, verified, sent")
        ev = send(f"smtps://127.0.0.1:{f.port}", "--timeout", 5000)
        check(one(ev, "open_error") is not None, "smtps:// verifies by default")


def test_auth(tmp):
    cert, key = make_cert(tmp)
    tls = ["--tls-cert", cert, "--tls-key", key]
    for mechs in ("PLAIN", "LOGIN"):
        with Fault(tmp, "--auth", "ann:s3cr:t p@ss", "--auth-mechs", mechs, *tls) as f:
            url = f"smtp://ann:s3cr%3At%20p%40ss@127.0.0.1:{f.port}"
            ev = send(url, "--timeout", 5000)
            o = one(ev, "open")
            check(o and o["caps"]["authenticated"] and results(ev)[0]["status"] == "ok",
                  f"AUTH {mechs} after STARTTLS: authenticated, sent")
            a = [r for r in f.records() if r["ev"] == "auth"]
            check(len(a) == 1 and a[0]["mechanism"] == mechs and a[0]["ok"],
                  f"... the server saw one {mechs} login")
            ev = send(f"smtp://ann:wrong@127.0.0.1:{f.port}", "--timeout", 5000)
            o = one(ev, "open_error")
            check(o and o["code"] == "not allowed" and "535 5.7.8" in o["error"],
                  f"AUTH {mechs} with a wrong password: denied, with the 535 ({o})")
            check(b"wrong" not in json.dumps(ev).encode(), "... the password is not echoed")
    with Fault(tmp, "--auth", "ann:pw", "--auth-plaintext") as f:
        ev = send(f"smtp://ann:pw@127.0.0.1:{f.port}", "--timeout", 5000)
        o = one(ev, "open_error")
        check(o and "clear text" in o["error"],
              "no STARTTLS offered: the password is not sent in clear text")
        check(not [r for r in f.records() if r["ev"] == "auth"], "... no AUTH reached it")
        ev = send(f"smtp://ann:pw@127.0.0.1:{f.port}?tls=none", "--timeout", 5000)
        check(one(ev, "open") and results(ev)[0]["status"] == "ok",
              "tls=none: AUTH in clear text when asked for")


def send_data(tmp, name, data):
    """Sends data (as a file called name) to a fresh fault server; returns
    the result's status, the message the server kept and its raw input."""
    path = os.path.join(tmp, name)
    open(path, "wb").write(data)
    with Fault(tmp) as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--data", path, "--timeout", 5000)
        m = f.msgs()
        got = base64.b64decode(m[0]["content_b64"]) if m else b""
        return results(ev)[0]["status"], got, f.raw(1)


def test_bytes(tmp):
    body = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: stuffing\r\n\r\n"
            b".leading dot\r\n"
            b"..two dots\r\n"
            b".\r\n"
            b"bare LF line\n"
            b".after bare LF\n"
            b"bare CR line\r"
            b"CRLF line\r\n"
            b"\r\n"
            b". space\r\n"
            b"no final newline")
    want = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: stuffing\r\n\r\n"
            b".leading dot\r\n..two dots\r\n.\r\nbare LF line\r\n.after bare LF\r\n"
            b"bare CR line\r\nCRLF line\r\n\r\n. space\r\nno final newline\r\n")
    status, got, raw = send_data(tmp, "stuff.eml", body)
    check(status == "ok", "dot-stuffing message sent")
    check(got == want, "the server got the message with CRLF line ends, un-stuffed")
    check(b"\r\n..leading dot\r\n...two dots\r\n..\r\n" in raw and
          b"\r\n..after bare LF\r\n" in raw and b"\r\n.. space\r\n" in raw,
          "on the wire: every leading dot doubled")
    check(raw.count(b"\r\n.\r\n") == 1 and b"no final newline\r\n.\r\n" in raw,
          "one end-of-data, after a CRLF added to the last line")
    check(b"\n" not in raw.replace(b"\r\n", b"") and b"\r" not in raw.replace(b"\r\n", b""),
          "no bare CR or LF on the wire")
    check(b"MAIL FROM:<sender@example.com> SIZE=" in raw, "SIZE= on MAIL FROM")

    # Line ends all CRLF (as msg_build makes them): the message goes out as
    # it is but for its leading dots, some of them on either side of the
    # client's 64 KB pieces and at the very start of the body.
    lines = [b".first body line"]
    size = 0
    k = 0
    while size < 150000:
        k += 1
        line = (b"." if k % 7 == 0 else b"") + b"x" * (k % 90) + (b"." if k % 5 == 0 else b"")
        lines.append(line)
        size += len(line) + 2
    lines += [b".", b"..", b".last"]
    crlf = (b"From: a@example.com\r\nTo: b@example.com\r\nSubject: crlf\r\n\r\n" +
            b"\r\n".join(lines))
    status, got, raw = send_data(tmp, "crlf.eml", crlf)
    check(status == "ok", "CRLF-only message sent")
    check(got == crlf + b"\r\n", "CRLF-only message un-stuffed equals what was given")
    stuffed = b"\r\n".join((b"." + l if l.startswith(b".") else l) for l in lines)
    check(stuffed + b"\r\n.\r\n" in raw, "CRLF-only message: each leading dot doubled")

    utf8_rcpt = "ñandú@example.com"
    eight = os.path.join(tmp, "8bit.eml")
    open(eight, "wb").write("Subject: x\r\n\r\nสวัสดี\r\n".encode())
    with Fault(tmp) as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--rcpt", utf8_rcpt,
                  "--timeout", 5000)
        check(results(ev)[0]["status"] == "ok", "SMTPUTF8 recipient sent to a server with it")
        raw = f.raw(1)
        check(b"SMTPUTF8" in raw.split(b"\r\n", 2)[1] or
              b"MAIL FROM:<sender@example.com> SIZE=" in raw and b" SMTPUTF8\r\n" in raw,
              "MAIL FROM carries SMTPUTF8")
        check(b" BODY=8BITMIME SMTPUTF8\r\n" in raw, "... and BODY=8BITMIME")
        check(f"RCPT TO:<{utf8_rcpt}>".encode() in raw, "RCPT TO in UTF-8")
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--data", eight, "--timeout", 5000)
        raw = f.raw(2)
        check(b" BODY=8BITMIME\r\n" in raw and b"SMTPUTF8" not in raw.split(b"RCPT")[0],
              "8-bit body, ASCII header: BODY=8BITMIME, no SMTPUTF8")
    with Fault(tmp, "--no-smtputf8") as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--rcpt", utf8_rcpt, "--count", 2,
                  "--timeout", 5000)
        r = results(ev)
        check(len(r) == 2 and all(x["status"] == "perm" and x["reply"]["enh"] == "5.6.7"
                                  for x in r),
              "SMTPUTF8 needed, not offered: perm 5.6.7 per message")
        check(b"MAIL" not in f.raw(1), "... and nothing of it went on the wire")
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--timeout", 5000)
        check(results(ev)[0]["status"] == "ok", "an ASCII message still goes")
    with Fault(tmp, "--size-limit", 3000) as f:
        ev = send(f"smtp://127.0.0.1:{f.port}?tls=none", "--size", 5000, "--timeout", 5000)
        r = results(ev)
        check(r and r[0]["status"] == "perm" and r[0]["reply"]["enh"] == "5.3.4",
              "larger than the server's SIZE: perm 5.3.4, not sent")


def test_hostile(tmp):
    for mode, words in (("endless", "longer than"), ("garbage", "not an SMTP reply"),
                        ("bigreply", "more than")):
        with Fault(tmp, "--hostile", mode) as f:
            t0 = time.time()
            ev = send(f"smtp://127.0.0.1:{f.port}", "--timeout", 5000)
            o = one(ev, "open_error")
            check(o and words in o["error"] and o["code"] == "temporary failure",
                  f"hostile {mode}: refused ({o and o['error']})")
            check(time.time() - t0 < 4, f"... at once, not by timeout")
    with Fault(tmp, "--hostile", "barelf") as f:
        ev = send(f"smtp://127.0.0.1:{f.port}", "--count", 2, "--timeout", 5000)
        r = results(ev)
        check(len(r) == 2 and all(x["status"] == "ok" for x in r),
              "replies with bare LF line ends: understood, 2 messages sent")
        check(len(f.msgs()) == 2, "... and received")


def test_maildir(tmp):
    d = os.path.join(tmp, "md", "out")
    ev = send(f"maildir:{d}", "--count", 3, "--rcpt", "a@example.com", "--rcpt",
              "b@example.com")
    r = results(ev)
    check(len(r) == 3 and all(x["status"] == "ok" and x["reply"]["code"] == 250 for x in r),
          "maildir: 3 messages ok")
    files = sorted(os.listdir(os.path.join(d, "new")))
    check(len(files) == 3 and not os.listdir(os.path.join(d, "tmp")),
          "maildir: 3 files in new/, none left in tmp/")
    body = open(os.path.join(d, "new", files[0]), "rb").read()
    check(body.startswith(b"Return-Path: <sender@example.com>\r\nDelivered-To: a@example.com\r\n"
                          b"Delivered-To: b@example.com\r\nFrom: "),
          "maildir: envelope in front of the message")
    check(all(",S=" in x and len(x.split(".")) >= 3 for x in files), "maildir: standard names")
    os.chmod(os.path.join(d, "tmp"), 0o500)
    if os.geteuid() != 0:
        ev = send(f"maildir:{d}")
        check(results(ev)[0]["status"] == "temp", "maildir: unwritable tmp/ is temp")
    os.chmod(os.path.join(d, "tmp"), 0o700)


def main():
    need(DRIVER, "the driver: make test (or make B=... B/tests/smtp_send)")
    tmp = tempfile.mkdtemp(prefix="tidings-smtp-")
    try:
        for t in (test_recipients, test_data_replies, test_drops, test_timeouts, test_tls,
                  test_auth, test_bytes, test_hostile, test_maildir, test_sink):
            print(f"-- {t.__name__}", flush=True)
            t(tmp)
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
