#!/usr/bin/python3
"""A scriptable SMTP server for the SMTP client's fault tests, on aiosmtpd
(Debian python3-aiosmtpd), plus a raw mode for hostile servers.

It listens on 127.0.0.1 on a free port, prints "PORT <n>" on stdout, and runs
until killed. Everything received is appended to the --record file as JSON
lines, flushed at once:
  {"ev":"rx","conn":N,"b64":...}       every chunk of bytes read (decrypted
                                        after STARTTLS), so a test can check
                                        the exact wire bytes and batching
  {"ev":"msg","conn":N,"mail_from":..,"mail_options":[..],"rcpt":[..],
   "content_b64":..,"t":..}             each message taken in (un-stuffed),
                                        t the wall-clock time it was in
  {"ev":"auth","mechanism":..,"login":..,"ok":bool}

Behaviours (aiosmtpd mode):
  --rcpt-reply ADDR=REPLY     reply REPLY to RCPT TO:<ADDR> (repeatable)
  --rcpt-temp ADDR=N          reply 451 4.7.1 (greylisted) to the first N
                              RCPT TO:<ADDR>, then accept (repeatable)
  --exit-after N              exit at once after taking in the Nth message,
                              without replying (the server goes down: its
                              clients see a drop after the final dot, then
                              refused connections)
  --data-reply ADDR=REPLY     reply REPLY after the final dot of a message
                              whose first recipient is ADDR ('*': any)
  --drop after-dot            read the whole message, then close, no reply
  --drop mid-data             close once 100 KB of a connection were read
  --slow STAGE=SECONDS        wait before replying: ehlo, mail, rcpt, dot
  --no-pipelining             do not offer PIPELINING (offered by default)
  --no-smtputf8               do not offer SMTPUTF8
  --size-limit N              SIZE N (default 33554432)
  --tls-cert F --tls-key F    offer STARTTLS with this certificate
  --smtps                     implicit TLS (needs --tls-cert/--tls-key)
  --auth USER:PASS            require AUTH; --auth-mechs PLAIN,LOGIN limits
                              what is offered; --auth-plaintext allows AUTH
                              without TLS
Hostile mode (--hostile MODE, a raw server, no aiosmtpd):
  endless    a greeting line that never ends
  garbage    a greeting that is not SMTP
  bigreply   a 10 MB multi-line EHLO reply
  barelf     a whole working dialogue with bare LF line ends
"""
import argparse
import asyncio
import base64
import json
import os
import signal
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

args = None
record_file = None
conn_seq = 0


def record(obj):
    record_file.write(json.dumps(obj) + "\n")
    record_file.flush()


def parse_pairs(items):
    out = {}
    for it in items or []:
        k, _, v = it.partition("=")
        out[k] = v
    return out


class FaultSMTP(SMTP):
    """aiosmtpd's SMTP with every byte read recorded and the mid-data drop."""

    def __init__(self, *a, **kw):
        global conn_seq
        conn_seq += 1
        self.conn_id = conn_seq
        self.bytes_in = 0
        super().__init__(*a, **kw)

    def data_received(self, data):
        record({"ev": "rx", "conn": self.conn_id, "b64": base64.b64encode(data).decode()})
        self.bytes_in += len(data)
        if args.drop == "mid-data" and self.bytes_in > 100_000:
            self.transport.abort()
            return
        super().data_received(data)


class Handler:
    def __init__(self):
        self.rcpt_reply = parse_pairs(args.rcpt_reply)
        self.data_reply = parse_pairs(args.data_reply)
        self.slow = {k: float(v) for k, v in parse_pairs(args.slow).items()}
        self.rcpt_temp = {k: int(v) for k, v in parse_pairs(args.rcpt_temp).items()}
        self.msgs = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await asyncio.sleep(self.slow.get("ehlo", 0))
        session.host_name = hostname
        if not args.no_pipelining:
            responses.insert(1, "250-PIPELINING")
        responses.insert(1, "250-ENHANCEDSTATUSCODES")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        await asyncio.sleep(self.slow.get("mail", 0))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await asyncio.sleep(self.slow.get("rcpt", 0))
        if address in self.rcpt_reply:
            return self.rcpt_reply[address]
        if self.rcpt_temp.get(address, 0) > 0:
            self.rcpt_temp[address] -= 1
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        record({"ev": "msg", "conn": server.conn_id, "mail_from": envelope.mail_from,
                "mail_options": envelope.mail_options, "rcpt": envelope.rcpt_tos,
                "content_b64": base64.b64encode(envelope.original_content).decode(),
                "t": time.time()})
        self.msgs += 1
        if args.exit_after and self.msgs >= args.exit_after:
            os._exit(0)
        await asyncio.sleep(self.slow.get("dot", 0))
        if args.drop == "after-dot":
            server.transport.abort()
            return "250 2.0.0 never sent"
        first = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        if first in self.data_reply:
            return self.data_reply[first]
        if "*" in self.data_reply:
            return self.data_reply["*"]
        return "250 2.0.0 queued"


def authenticator(server, session, envelope, mechanism, auth_data):
    user, _, pw = args.auth.partition(":")
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
          and auth_data.password.decode() == pw)
    login = auth_data.login.decode() if isinstance(auth_data, LoginPassword) else None
    record({"ev": "auth", "mechanism": mechanism, "login": login, "ok": ok})
    return AuthResult(success=ok, handled=False)


def tls_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    return ctx


async def hostile(reader, writer):
    global conn_seq
    conn_seq += 1
    cid = conn_seq
    mode = args.hostile
    try:
        if mode == "endless":
            writer.write(b"220-")
            while True:
                writer.write(b"x" * 65536)
                await writer.drain()
        if mode == "garbage":
            writer.write(b"HELLO I AM NOT AN SMTP SERVER\r\n")
            await writer.drain()
            await reader.read(1000)
            return
        nl = b"\n" if mode == "barelf" else b"\r\n"
        writer.write(b"220 hostile.test ESMTP" + nl)
        in_data = False
        content = []
        env = {}
        while True:
            line = await reader.readline()
            if not line:
                return
            record({"ev": "rx", "conn": cid, "b64": base64.b64encode(line).decode()})
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    record({"ev": "msg", "conn": cid, "mail_from": env.get("from"),
                            "mail_options": [], "rcpt": env.get("rcpt", []),
                            "content_b64": base64.b64encode(b"".join(content)).decode()})
                    content = []
                    writer.write(b"250 2.0.0 ok" + nl)
                else:
                    content.append(line[1:] if line.startswith(b".") else line)
                continue
            cmd = line[:4].upper()
            if cmd == b"EHLO":
                if mode == "bigreply":
                    row = b"250-" + b"y" * 94 + nl
                    for _ in range(10 * 1024 * 1024 // len(row)):
                        writer.write(row)
                        await writer.drain()
                    writer.write(b"250 end" + nl)
                else:
                    writer.write(b"250-hostile.test" + nl + b"250-PIPELINING" + nl +
                                 b"250 8BITMIME" + nl)
            elif cmd == b"MAIL":
                env = {"from": line[11:].strip().strip(b"<>").decode(), "rcpt": []}
                writer.write(b"250 ok" + nl)
            elif cmd == b"RCPT":
                env["rcpt"].append(line[9:].strip().strip(b"<>").decode())
                writer.write(b"250 ok" + nl)
            elif cmd == b"DATA":
                in_data = True
                writer.write(b"354 go" + nl)
            elif cmd == b"QUIT":
                writer.write(b"221 bye" + nl)
                await writer.drain()
                return
            else:
                writer.write(b"250 ok" + nl)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def main():
    loop = asyncio.get_running_loop()
    if args.hostile:
        server = await asyncio.start_server(hostile, "127.0.0.1", 0)
    else:
        handler = Handler()
        kw = dict(enable_SMTPUTF8=not args.no_smtputf8, decode_data=False,
                  data_size_limit=args.size_limit, hostname="fault.test")
        if args.tls_cert and not args.smtps:
            kw["tls_context"] = tls_context()
        if args.auth:
            kw["authenticator"] = authenticator
            kw["auth_required"] = True
            kw["auth_require_tls"] = not args.auth_plaintext
            if args.auth_mechs:
                allowed = set(args.auth_mechs.upper().split(","))
                kw["auth_exclude_mechanism"] = [m for m in ("PLAIN", "LOGIN")
                                                if m not in allowed]
        server = await loop.create_server(
            lambda: FaultSMTP(handler, **kw), "127.0.0.1", 0,
            ssl=tls_context() if args.smtps else None)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description="scriptable SMTP fault server")
    p.add_argument("--record", required=True)
    p.add_argument("--rcpt-reply", action="append")
    p.add_argument("--data-reply", action="append")
    p.add_argument("--rcpt-temp", action="append")
    p.add_argument("--exit-after", type=int)
    p.add_argument("--drop", choices=["after-dot", "mid-data"])
    p.add_argument("--slow", action="append")
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--no-smtputf8", action="store_true")
    p.add_argument("--size-limit", type=int, default=33554432)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--smtps", action="store_true")
    p.add_argument("--auth")
    p.add_argument("--auth-mechs")
    p.add_argument("--auth-plaintext", action="store_true")
    p.add_argument("--hostile", choices=["endless", "garbage", "bigreply", "barelf"])
    args = p.parse_args()
    record_file = open(args.record, "a")
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
