#!/usr/bin/python3
"""DKIM end to end: the real binary makes keys (tidings dkim keygen) and signs
messages (tidings dkim sign); verifiers the project did not write check every
signature: dkimpy (Debian python3-dkim) always, and libopendkim (Debian
libopendkim11, driven through ctypes with its file query method, no DNS) when
it is installed. Both algorithms; Arabic and Thai display names, RFC 2047
subjects, long lines, bodies with trailing whitespace and empty lines; and
tampered messages must fail.
"""
import base64
import ctypes
import ctypes.util
import json
import os
import subprocess
import sys
import tempfile

import dkim

BIN = os.environ.get("TIDINGS_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "tidings")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def run(args, stdin=None):
    return subprocess.run([BIN] + args, input=stdin, capture_output=True, timeout=60)


def enc(s):
    """An RFC 2047 B encoded word for s (UTF-8)."""
    return "=?UTF-8?B?" + base64.b64encode(s.encode()).decode() + "?="


ARABIC = "مرحبا بكم في النشرة"
THAI = "สวัสดีครับ ข่าวสารประจำเดือน"


def message(frm, to, subject, body, extra=""):
    hdr = (f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
           "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
           "Message-ID: <test.1@example.com>\r\nMIME-Version: 1.0\r\n" + extra)
    return (hdr + "\r\n" + body).encode()


def messages():
    long_words = " ".join(["word"] * 240)          # a 1,199-octet line with spaces
    long_word = "x" * 990                           # near the 998 limit, no spaces
    yield "arabic-thai-names", message(
        f"{enc(ARABIC)} <news@example.com>", f"{enc(THAI)} <somchai@example.org>",
        enc(ARABIC + " / " + THAI),
        "مرحبا  \r\nสวัสดี\t\t\r\n\r\n\r\n",
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    yield "folded-subject", message(
        "News <news@example.com>", "a@example.org",
        enc(THAI) + "\r\n " + enc(ARABIC) + "\r\n\t" + enc("ต่อ"),
        "line\r\n")
    yield "trailing-ws-empty-lines", message(
        "news@example.com", "a@example.org", "Trailing   spaces",
        "first line   \r\n\t\r\n  indented\t line \r\n\r\n \r\n\r\n\r\n")
    yield "long-lines", message(
        "news@example.com", "a@example.org", "Long lines",
        long_words + "\r\n" + long_word + "\r\n" + long_words + "  ")
    yield "empty-body", message("news@example.com", "a@example.org", "Empty", "")
    yield "no-final-crlf", message("news@example.com", "a@example.org", "No CRLF", "end")
    yield "list-headers", message(
        f"{enc('بائع')} <seller@example.com>", "a@example.org", enc("عرض خاص"),
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        "=D8=B9=D8=B1=D8=B6  =\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\n" +
        base64.encodebytes(("<p dir=\"rtl\">" + ARABIC + "</p>" * 30).encode())
        .decode().replace("\n", "\r\n") + "\r\n--b--\r\n",
        "Content-Type: multipart/alternative; boundary=\"b\"\r\n"
        "List-Unsubscribe: <https://example.com/u/abc>, <mailto:u+abc@example.com>\r\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
        "List-Id: News <news.example.com>\r\n"
        "X-Not-Signed: whatever\r\n")


# ---- libopendkim, through ctypes (the query method "file": no DNS) -------

class OpenDKIM:
    QUERYMETHOD, QUERYINFO, SETOPT, QUERY_FILE = 6, 7, 1, 1
    SIGFLAG_PASSED, SIGBH_MATCH = 0x04, 0

    def __init__(self, keyfile):
        name = ctypes.util.find_library("opendkim") or "libopendkim.so.11"
        self.lib = ctypes.CDLL(name)
        L = self.lib
        L.dkim_init.restype = ctypes.c_void_p
        L.dkim_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        L.dkim_options.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_void_p, ctypes.c_size_t]
        L.dkim_verify.restype = ctypes.c_void_p
        L.dkim_verify.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p,
                                  ctypes.POINTER(ctypes.c_int)]
        L.dkim_chunk.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        L.dkim_eom.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        L.dkim_getsiglist.argtypes = [ctypes.c_void_p,
                                      ctypes.POINTER(ctypes.POINTER(ctypes.c_void_p)),
                                      ctypes.POINTER(ctypes.c_int)]
        L.dkim_sig_getflags.restype = ctypes.c_uint
        L.dkim_sig_getflags.argtypes = [ctypes.c_void_p]
        L.dkim_sig_getbh.argtypes = [ctypes.c_void_p]
        L.dkim_free.argtypes = [ctypes.c_void_p]
        L.dkim_close.argtypes = [ctypes.c_void_p]
        self.h = L.dkim_init(None, None)
        q = ctypes.c_int(self.QUERY_FILE)
        L.dkim_options(self.h, self.SETOPT, self.QUERYMETHOD, ctypes.byref(q), ctypes.sizeof(q))
        self.path = ctypes.create_string_buffer(keyfile.encode())
        L.dkim_options(self.h, self.SETOPT, self.QUERYINFO, self.path, len(keyfile))

    def verify(self, msg):
        """The pass/fail of each signature, in the order of the message."""
        L = self.lib
        st = ctypes.c_int(0)
        d = L.dkim_verify(self.h, b"test", None, ctypes.byref(st))
        if not d:
            return []
        L.dkim_chunk(d, msg, len(msg))
        L.dkim_chunk(d, None, 0)
        L.dkim_eom(d, None)
        sigs = ctypes.POINTER(ctypes.c_void_p)()
        n = ctypes.c_int(0)
        out = []
        if L.dkim_getsiglist(d, ctypes.byref(sigs), ctypes.byref(n)) == 0:
            for i in range(n.value):
                s = sigs[i]
                out.append(bool(L.dkim_sig_getflags(s) & self.SIGFLAG_PASSED) and
                           L.dkim_sig_getbh(s) == self.SIGBH_MATCH)
        L.dkim_free(d)
        return out


def main():
    tmp = tempfile.mkdtemp(prefix="tidings-dkim-")
    db = os.path.join(tmp, "t.db")

    r = run(["dkim", "--help"])
    check(r.returncode == 0 and b"keygen" in r.stdout and b"sign" in r.stdout, "--help")
    r = run(["dkim", "keygen", "--domain", "example.com", "--selector", "r1", "--db", db])
    check(r.returncode == 0 and b"r1._domainkey.example.com" in r.stdout, "keygen rsa")
    r = run(["dkim", "keygen", "--domain", "example.com", "--selector", "e1", "--algo", "ed25519",
             "--db", db, "--json"])
    check(r.returncode == 0 and json.loads(r.stdout)["algo"] == "ed25519", "keygen ed25519 --json")
    thai_domain = "ตัวอย่าง.ไทย"
    r = run(["dkim", "keygen", "--domain", thai_domain, "--selector", "t1", "--algo", "ed25519",
             "--db", db])
    check(r.returncode == 0 and b"t1._domainkey.xn--72c1a1bt4awk9o.xn--o3cw4h" in r.stdout,
          "keygen for an IDN domain publishes the A-label name")

    # usage and failure exits: 2 for usage, 1 for failures, one line on stderr
    for args, code, what in [
        (["dkim", "keygen", "--domain", "example.com", "--selector", "x", "--algo", "dsa"], 2,
         "bad --algo"),
        (["dkim", "keygen", "--domain", "example.com"], 2, "keygen without --selector"),
        (["dkim", "frob"], 2, "unknown subcommand"),
        (["dkim", "keygen", "--domain", "example.com", "--selector", "r1"], 1, "duplicate selector"),
        (["dkim", "keygen", "--domain", "bad_domain", "--selector", "x"], 1, "bad domain"),
        (["dkim", "keygen", "--domain", "example.com", "--selector", "a b"], 1, "bad selector"),
        (["dkim", "sign", "--domain", "nokey.example"], 1, "sign without a key"),
    ]:
        r = run(args + ["--db", db], stdin=b"From: a@nokey.example\r\n\r\nx\r\n")
        lines = r.stderr.decode().strip().splitlines()
        check(r.returncode == code and len(lines) == 1 and lines[0].startswith("tidings"),
              f"{what}: exit {r.returncode}, stderr {lines}")
    r = run(["dkim", "sign", "--domain", "example.com", "--db", db],
            stdin=b"To: a@example.org\r\n\r\nbody\r\n")
    check(r.returncode == 1 and b"From" in r.stderr, "a message without From is refused")

    r = run(["dkim", "ls", "--json", "--db", db])
    check(r.returncode == 0, "ls --json")
    keys = [json.loads(line) for line in r.stdout.decode().splitlines()]
    check(len(keys) == 3, "ls lists three keys")
    records = {k["name"] + ".": k["value"].encode() for k in keys}
    for k in keys:
        parts = [p for p in k["zone"].split('"') if p.strip()]
        check("".join(parts) == k["value"] and all(len(p) <= 255 for p in parts),
              f"zone form of {k['selector']} joins back to the value, strings <= 255")
    r = run(["dkim", "ls", "--db", db])
    check(r.returncode == 0 and r.stdout.count(b"IN TXT") == 3, "ls (text)")

    def dnsfunc(name, timeout=5):
        return records.get(name.decode() if isinstance(name, bytes) else name)

    keyfile = os.path.join(tmp, "keys")
    with open(keyfile, "w") as f:
        for name, value in records.items():
            f.write(name.rstrip(".") + " " + value.decode() + "\n")
    try:
        odk = OpenDKIM(keyfile)
    except OSError as e:
        odk = None
        print(f"skip libopendkim: {e}")

    def sign(domain, msg):
        r = run(["dkim", "sign", "--domain", domain, "--db", db], stdin=msg)
        if r.returncode != 0:
            print(r.stderr.decode())
        return r.returncode, r.stdout

    def verify_one(signed, i):
        try:  # dkimpy raises on a body hash mismatch instead of saying False
            return dkim.DKIM(signed).verify(idx=i, dnsfunc=dnsfunc)
        except dkim.ValidationError:
            return False

    def verify_all(signed, n):
        return [verify_one(signed, i) for i in range(n)]

    for name, msg in messages():
        rc, signed = sign("example.com", msg)
        check(rc == 0, f"{name}: signed")
        # As SMTP would, sign adds a CRLF at the end when it is missing.
        sent = msg if msg.endswith(b"\r\n") else msg + b"\r\n"
        check(signed.endswith(sent), f"{name}: the message follows the signatures unchanged")
        sigpart = signed[:len(signed) - len(sent)]
        check(sigpart.count(b"DKIM-Signature:") == 2, f"{name}: two signatures")
        check(all(len(line) <= 78 for line in sigpart.split(b"\r\n")),
              f"{name}: signature lines within 78 columns")
        check(verify_all(signed, 2) == [True, True], f"{name}: dkimpy verifies rsa and ed25519")
        if odk:
            res = odk.verify(signed)
            check(res == [True, True], f"{name}: libopendkim verifies both ({res})")

        # Changes relaxed canonicalization forgives: still valid.
        hdr_end = signed.index(b"\r\n\r\n") + 4
        loose = (signed[:hdr_end].replace(b"Subject: ", b"Subject:  \t ", 1) +
                 signed[hdr_end:].replace(b"\r\n", b" \t\r\n") + b"\r\n\r\n")
        check(verify_all(loose, 2) == [True, True], f"{name}: relaxed changes still verify")

        # Tampering: body, a signed header, an added From (over-signing).
        body = signed[hdr_end:]
        tampered_body = signed[:hdr_end] + (body[:-3] + b"X" + body[-2:] if len(body) > 3
                                            else b"tampered\r\n")
        check(verify_all(tampered_body, 2) == [False, False], f"{name}: changed body fails")
        tampered_subject = signed.replace(b"Subject: ", b"Subject: RE: ", 1)
        check(verify_all(tampered_subject, 2) == [False, False], f"{name}: changed subject fails")
        extra_from = signed[:hdr_end - 2] + b"From: evil@example.net\r\n" + signed[hdr_end - 2:]
        check(verify_all(extra_from, 2) == [False, False], f"{name}: added From fails")
        if odk:
            check(odk.verify(tampered_body) == [False, False],
                  f"{name}: libopendkim rejects the changed body")

    # LF line ends are converted to CRLF before signing.
    lf = b"From: a@example.com\nTo: b@example.org\nSubject: lf\n\nline  \n\n"
    rc, signed = sign("example.com", lf)
    check(rc == 0 and signed.endswith(lf.replace(b"\n", b"\r\n")) and
          verify_all(signed, 2) == [True, True], "LF input is signed as CRLF and verifies")

    # The IDN domain: one Ed25519 key, d= in A-labels.
    msg = message(f"{enc(THAI)} <info@xn--72c1a1bt4awk9o.xn--o3cw4h>", "a@example.org",
                  enc(THAI), "สวัสดี  \r\n\r\n")
    rc, signed = sign(thai_domain, msg)
    check(rc == 0 and b"d=xn--72c1a1bt4awk9o.xn--o3cw4h;" in signed and
          signed.count(b"DKIM-Signature:") == 1, "IDN domain signs with its A-label")
    check(verify_all(signed, 1) == [True], "dkimpy verifies the IDN domain's ed25519 signature")
    if odk:
        check(odk.verify(signed) == [True], "libopendkim verifies the IDN domain's signature")

    if not failures:
        subprocess.run(["rm", "-rf", tmp])
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
