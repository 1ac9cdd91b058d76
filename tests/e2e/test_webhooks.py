#!/usr/bin/python3
"""Provider webhooks end to end against the real `tidings serve`: a sent
campaign's real Message-IDs and VERP return paths in payloads written from
the providers' documented formats (Amazon SES notifications through SNS,
SendGrid's signed Event Webhook, Mailgun's signed webhooks, Postmark's
Bounce and SpamComplaint webhooks), signed here with test keys (SNS: a
self-signed certificate served by a local HTTP server that the
cert-url-prefix setting trusts).

- hard bounces suppress, soft ones count, complaints suppress and
  unsubscribe, each an event; unknown recipients change nothing;
- forged, altered or missing signatures are 401/403 and change nothing;
  old Mailgun timestamps are refused; malformed JSON is 400; oversize
  bodies 413; an unconfigured provider 404;
- a replayed request is 200 and stored once;
- SNS subscriptions are confirmed by fetching SubscribeURL; certificate
  URLs off sns.REGION.amazonaws.com (and the trusted prefix) are refused
  without being fetched.
"""
import base64
import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import inbound_world  # noqa: E402


def openssl(*args, data=None):
    p = subprocess.run(["openssl", *args], input=data, capture_output=True)
    if p.returncode:
        raise RuntimeError(p.stderr.decode())
    return p.stdout


class CertServer:
    """A local HTTP server: /cert.pem is the SNS signing certificate,
    /confirm?Token=... records subscription confirmations."""

    def __init__(self, cert):
        self.cert = cert
        self.hits = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.hits.append(self.path)
                if self.path == "/cert.pem":
                    body = outer.cert
                elif self.path.startswith("/confirm"):
                    body = b"<ConfirmSubscriptionResponse/>"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.httpd.server_address[1]
        self.th = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.th.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Webhooks(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tidings-hooks-")
        self.w = inbound_world.World(self.dir)
        self.sent = self.w.campaign(8)
        self.ids = self.w.ids

    def tearDown(self):
        self.w.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def post(self, provider, body, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.w.request("POST", "/webhooks/" + provider, body, h)

    def state(self):
        """Everything a webhook may change."""
        return (sorted(self.w.q("SELECT address, reason FROM suppressions")),
                sorted(self.w.q("SELECT address, campaign_id FROM soft_bounces")),
                sorted(self.w.q("SELECT subscriber_id, list_id, status FROM memberships")),
                sorted(self.w.q("SELECT kind, subscriber_id, data FROM events WHERE kind IN "
                                "('bounce', 'complaint', 'unsubscribe')")),
                self.w.q("SELECT count(*) FROM inbound_messages")[0][0])

    def suppressed(self):
        return {a for (a,) in self.w.q("SELECT address FROM suppressions")}

    def soft(self):
        return {a for (a,) in self.w.q("SELECT address FROM soft_bounces")}

    def memberships(self, email):
        return sorted(s for (s,) in self.w.q(
            "SELECT status FROM memberships WHERE subscriber_id = ?", self.ids[email]))

    def secret_file(self, text):
        p = os.path.join(self.dir, "secret-%s" % uuid.uuid4().hex)
        with open(p, "w") as f:
            f.write(text + "\n")
        return p

    def common_checks(self, provider, good_body, sign):
        """Malformed JSON 400 (signed), oversize 413, nothing changed."""
        before = self.state()
        st, _ = self.post(provider, *sign("{not json"))
        self.assertEqual(st, 400)
        big = "[" + ",".join(['{"event":"open","email":"x@y.z"}'] * 40000) + "]"
        self.assertGreater(len(big), 1 << 20)
        b, h = sign(big)
        self.assertEqual(self.w.post_big("/webhooks/" + provider, b, h), 413)
        self.assertEqual(self.state(), before)

    # ---- SendGrid ---------------------------------------------------------

    def test_sendgrid(self):
        key = os.path.join(self.dir, "ec.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        pub = base64.b64encode(openssl("ec", "-in", key, "-pubout", "-outform", "DER")).decode()
        other = os.path.join(self.dir, "ec2.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", other)
        self.w.serve()
        st, _ = self.post("sendgrid", "[]")
        self.assertEqual(st, 404, "not configured yet")
        self.w.ok("inbound", "webhook", "set", "sendgrid", "--secret-file", self.secret_file(pub))

        def sign(body, k=key, ts=None):
            body = body.encode() if isinstance(body, str) else body
            ts = ts or str(int(time.time()))
            sig = openssl("dgst", "-sha256", "-sign", k, data=ts.encode() + body)
            return body, {"X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(sig).decode(),
                          "X-Twilio-Email-Event-Webhook-Timestamp": ts}

        s = self.sent
        now = int(time.time())
        events = [
            {"email": "s0@example.org", "timestamp": now, "smtp-id": "<%s>" % s["s0@example.org"]["_mid"],
             "event": "bounce", "category": ["news"], "sg_event_id": "ev-bounce-0",
             "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
             "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
             "status": "5.1.1", "type": "bounce", "tls": 1},
            {"email": "s1@example.org", "timestamp": now, "event": "bounce", "type": "blocked",
             "sg_event_id": "ev-blocked-1", "status": "4.0.0",
             "reason": "421 4.7.0 Try again later"},
            {"email": "s2@example.org", "timestamp": now, "event": "spamreport",
             "sg_event_id": "ev-spam-2", "sg_message_id": "x.filter0001"},
            {"email": "s3@example.org", "timestamp": now, "event": "deferred",
             "sg_event_id": "ev-deferred-3", "response": "400 try again later", "attempt": "5"},
            {"email": "s4@example.org", "timestamp": now, "event": "delivered",
             "sg_event_id": "ev-delivered-4", "response": "250 OK"},
            {"email": "stranger@nowhere.example", "timestamp": now, "event": "bounce",
             "type": "bounce", "sg_event_id": "ev-stranger", "status": "5.1.1",
             "reason": "550 5.1.1 no such user"},
        ]
        body = json.dumps(events)
        before = self.state()
        # Missing, forged (another key), altered: refused, nothing changed.
        self.assertEqual(self.post("sendgrid", body)[0], 401)
        self.assertEqual(self.post("sendgrid", *sign(body, k=other))[0], 403)
        b, h = sign(body)
        self.assertEqual(self.post("sendgrid", b.replace(b"s0@", b"s5@"), h)[0], 403)
        # One second after the signed timestamp (sign() reads the clock
        # itself: `now + 1` was the signed one when a second passed between).
        ts = int(h["X-Twilio-Email-Event-Webhook-Timestamp"])
        h2 = dict(h, **{"X-Twilio-Email-Event-Webhook-Timestamp": str(ts + 1)})
        self.assertEqual(self.post("sendgrid", b, h2)[0], 403)
        self.assertEqual(self.state(), before)
        self.common_checks("sendgrid", body, sign)

        st, text = self.post("sendgrid", b, h)
        self.assertEqual(st, 200, text)
        self.assertIn("taken=5", text)
        self.assertEqual(self.suppressed(), {"s0@example.org", "s2@example.org"})
        self.assertEqual(self.soft(), {"s1@example.org", "s3@example.org"})
        self.assertEqual(self.memberships("s2@example.org"), ["unsubscribed", "unsubscribed"])
        self.assertEqual(self.memberships("s0@example.org"), ["confirmed", "confirmed"])
        notes = [n for (n,) in self.w.q("SELECT note FROM inbound_messages")]
        self.assertTrue(any("hard bounce of s0@example.org (by message-id)" in n for n in notes), notes)
        self.assertTrue(any("never mailed: stranger@nowhere.example" in n for n in notes), notes)
        keys = {k for (k,) in self.w.q("SELECT key FROM inbound_messages WHERE source = 'webhook:sendgrid'")}
        self.assertIn("sendgrid:ev-bounce-0", keys)
        after = self.state()
        # A replay (SendGrid retries) is stored once.
        st, text = self.post("sendgrid", *sign(body))
        self.assertEqual(st, 200)
        self.assertIn("duplicate=5", text)
        self.assertEqual(self.state(), after)
        ev = self.w.q("SELECT data FROM events WHERE kind = 'bounce' AND subscriber_id = ?",
                      self.ids["s0@example.org"])
        self.assertEqual(len(ev), 1)
        self.assertEqual(json.loads(ev[0][0])["hard"], True)
        self.w.ok("inbound", "webhook", "rm", "sendgrid")
        self.assertEqual(self.post("sendgrid", *sign(body))[0], 404)
        self.w.stop()

    # ---- Mailgun ----------------------------------------------------------

    def test_mailgun(self):
        key = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
        self.w.ok("inbound", "webhook", "set", "mailgun", "--secret-file", self.secret_file(key))
        self.w.serve()
        s = self.sent

        def payload(ev, ts=None, k=key, token=None):
            ts = str(ts or int(time.time()))
            token = token or uuid.uuid4().hex * 2
            sig = hmac.new(k.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
            return {"signature": {"timestamp": ts, "token": token, "signature": sig},
                    "event-data": ev}

        def failed(rcpt, severity, eid, mid=None, sender=None):
            return {"event": "failed", "id": eid, "timestamp": time.time(), "severity": severity,
                    "reason": "bounce" if severity == "permanent" else "generic",
                    "log-level": "error", "recipient": rcpt, "recipient-domain": "example.org",
                    "envelope": {"sender": sender or "bounces@example.com", "transport": "smtp",
                                 "targets": rcpt},
                    "message": {"headers": {"to": rcpt, "message-id": mid or "x@mailgun.example",
                                            "from": "news@example.com", "subject": "News"},
                                "attachments": [], "size": 111},
                    "delivery-status": {"tls": True, "code": 550 if severity == "permanent" else 452,
                                        "message": "5.1.1 user unknown" if severity == "permanent"
                                        else "4.2.2 mailbox full",
                                        "attempt-no": 1, "description": ""},
                    "flags": {"is-routed": False, "is-authenticated": True}}

        hard = payload(failed("s0@example.org", "permanent", "mg-hard-0",
                              mid=s["s0@example.org"]["_mid"]))
        soft = payload(failed("S1@Example.org", "temporary", "mg-soft-1",
                              sender=s["s1@example.org"]["_verp"]))
        spam = payload({"event": "complained", "id": "mg-spam-2", "timestamp": time.time(),
                        "recipient": "s2@example.org",
                        "message": {"headers": {"message-id": s["s2@example.org"]["_mid"]}}})
        opened = payload({"event": "opened", "id": "mg-open", "recipient": "s3@example.org"})
        before = self.state()
        forged = json.loads(json.dumps(hard))
        forged["signature"]["signature"] = "0" * 64
        self.assertEqual(self.post("mailgun", forged)[0], 403)
        wrongkey = payload(failed("s0@example.org", "permanent", "mg-x"), k="key-other")
        self.assertEqual(self.post("mailgun", wrongkey)[0], 403)
        altered = json.loads(json.dumps(hard))
        altered["signature"]["timestamp"] = str(int(altered["signature"]["timestamp"]) - 1)
        self.assertEqual(self.post("mailgun", altered)[0], 403)
        old = payload(failed("s0@example.org", "permanent", "mg-old"), ts=int(time.time()) - 7200)
        self.assertEqual(self.post("mailgun", old)[0], 403)
        nosig = {"event-data": hard["event-data"]}
        self.assertEqual(self.post("mailgun", nosig)[0], 401)
        self.assertEqual(self.post("mailgun", "{not json")[0], 400)
        self.assertEqual(self.w.post_big("/webhooks/mailgun", b"x" * ((1 << 20) + 10)), 413)
        self.assertEqual(self.state(), before)

        for p in (hard, soft, spam, opened):
            st, text = self.post("mailgun", p)
            self.assertEqual(st, 200, text)
        self.assertEqual(self.suppressed(), {"s0@example.org", "s2@example.org"})
        self.assertEqual(self.soft(), {"s1@example.org"})
        notes = " | ".join(n for (n,) in self.w.q("SELECT note FROM inbound_messages"))
        self.assertIn("hard bounce of s0@example.org (by message-id)", notes)
        self.assertIn("soft bounce of s1@example.org (by verp)", notes)
        self.assertIn("complaint about s2@example.org (by message-id)", notes)
        self.assertEqual(self.memberships("s2@example.org"), ["unsubscribed", "unsubscribed"])
        after = self.state()
        st, text = self.post("mailgun", hard)  # a replay, within the time allowed
        self.assertEqual(st, 200)
        self.assertIn("duplicate=1", text)
        self.assertEqual(self.state(), after)
        self.w.stop()

    # ---- Postmark ---------------------------------------------------------

    def test_postmark(self):
        self.w.ok("inbound", "webhook", "set", "postmark", "--secret-file",
                  self.secret_file("hooks:pässword with spaces"))
        self.w.serve()
        auth = {"Authorization": "Basic " + base64.b64encode(
            "hooks:pässword with spaces".encode()).decode()}

        def bounce(eid, typ, email, code):
            return {"RecordType": "Bounce", "MessageStream": "outbound", "ID": eid, "Type": typ,
                    "TypeCode": code, "Name": typ, "Tag": "news",
                    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                    "Metadata": {}, "ServerID": 23, "Description": "The server was unable to "
                    "deliver your message (ex: unknown user, mailbox not found).",
                    "Details": "smtp;550 5.1.1 The email account that you tried to reach does "
                    "not exist." if code == 1 else "smtp;452 4.2.2 mailbox full",
                    "Email": email, "From": "news@example.com",
                    "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": True,
                    "Inactive": code == 1, "CanActivate": True, "Subject": "News", "Content": ""}

        hard = bounce(4323372036854775807, "HardBounce", "s0@example.org", 1)
        soft = bounce(4323372036854775808, "SoftBounce", "s1@example.org", 4096)
        spam = {"RecordType": "SpamComplaint", "MessageStream": "outbound", "ID": 42,
                "Type": "SpamComplaint", "TypeCode": 512, "Name": "Spam complaint",
                "Tag": "news", "MessageID": "00000000-0000-0000-0000-000000000000",
                "ServerID": 1234, "Description": "", "Details": "Test spam complaint details",
                "Email": "s2@example.org", "From": "news@example.com",
                "BouncedAt": "2019-11-05T16:33:54.9070259Z", "DumpAvailable": True,
                "Inactive": True, "CanActivate": False, "Subject": "News"}
        auto = bounce(7, "AutoResponder", "s3@example.org", 2)
        stranger = bounce(8, "HardBounce", "nobody@nowhere.example", 1)
        before = self.state()
        self.assertEqual(self.post("postmark", hard)[0], 401)
        bad = {"Authorization": "Basic " + base64.b64encode(b"hooks:guess").decode()}
        self.assertEqual(self.post("postmark", hard, bad)[0], 401)
        self.assertEqual(self.post("postmark", "{not json", auth)[0], 400)
        self.assertEqual(self.w.post_big("/webhooks/postmark", b"x" * ((1 << 20) + 1), auth), 413)
        self.assertEqual(self.state(), before)
        for p in (hard, soft, spam, auto, stranger):
            st, text = self.post("postmark", p, auth)
            self.assertEqual(st, 200, text)
        self.assertEqual(self.suppressed(), {"s0@example.org", "s2@example.org"})
        self.assertEqual(self.soft(), {"s1@example.org"})
        self.assertEqual(self.memberships("s2@example.org"), ["unsubscribed", "unsubscribed"])
        after = self.state()
        for p in (hard, spam):
            st, text = self.post("postmark", p, auth)
            self.assertEqual((st, "duplicate=1" in text), (200, True), text)
        self.assertEqual(self.state(), after)
        self.w.stop()

    # ---- Amazon SES through SNS -----------------------------------------------

    def test_ses_sns(self):
        key = os.path.join(self.dir, "sns.key")
        cert = os.path.join(self.dir, "sns.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                "-days", "2", "-subj", "/CN=sns.test")
        with open(cert, "rb") as f:
            cs = CertServer(f.read())
        other = os.path.join(self.dir, "other.key")
        openssl("genrsa", "-out", other, "2048")
        try:
            self.run_sns(cs, key, other)
        finally:
            cs.stop()

    def run_sns(self, cs, key, other):
        base = "http://127.0.0.1:%d/" % cs.port
        topic = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
        self.w.ok("inbound", "webhook", "set", "ses", "--cert-url-prefix", base,
                  "--topic-arn", topic)
        self.w.serve()
        s = self.sent

        def sns(typ, message, version="1", k=key, cert_url=None, extra=None):
            m = {"Type": typ, "MessageId": str(uuid.uuid4()), "TopicArn": topic,
                 "Message": message, "Timestamp": "2024-05-06T10:00:00.000Z",
                 "SignatureVersion": version, "SigningCertURL": cert_url or base + "cert.pem",
                 "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"}
            if typ == "Notification":
                fields = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
            else:
                m["Token"] = "2336412f37fb687f5d51e6e2425f004aed"
                m["SubscribeURL"] = base + "confirm?Action=ConfirmSubscription&Token=" + m["Token"]
                fields = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                          "TopicArn", "Type"]
            m.update(extra or {})
            canon = "".join("%s\n%s\n" % (f, m[f]) for f in fields if f in m)
            sig = openssl("dgst", "-sha1" if version == "1" else "-sha256", "-sign", k,
                          data=canon.encode())
            m["Signature"] = base64.b64encode(sig).decode()
            return m

        def ses_mail(email, with_verp=True):
            return {"timestamp": "2024-05-06T09:59:58.000Z",
                    "source": s[email]["_verp"] if with_verp else "news@example.com",
                    "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
                    "sendingAccountId": "123456789012",
                    "messageId": "01000100000000-abcdef-000000",
                    "destination": [email], "headersTruncated": False,
                    "headers": [{"name": "Message-ID", "value": "<%s>" % s[email]["_mid"]}],
                    "commonHeaders": {"from": ["News <news@example.com>"], "to": [email],
                                      "messageId": "<%s>" % s[email]["_mid"], "subject": "News"}}

        bounce = {"notificationType": "Bounce",
                  "bounce": {"bounceType": "Permanent", "bounceSubType": "General",
                             "bouncedRecipients": [{"emailAddress": "s0@example.org",
                                                    "action": "failed", "status": "5.1.1",
                                                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
                             "timestamp": "2024-05-06T10:00:00.000Z",
                             "feedbackId": "0100000-fb-1", "remoteMtaIp": "127.0.2.0",
                             "reportingMTA": "dsn; a1-2.smtp-out.amazonses.com"},
                  "mail": ses_mail("s0@example.org")}
        transient = {"notificationType": "Bounce",
                     "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
                                "bouncedRecipients": [{"emailAddress": "s1@example.org"}],
                                "timestamp": "2024-05-06T10:00:00.000Z", "feedbackId": "fb-2"},
                     "mail": ses_mail("s1@example.org", with_verp=False)}
        complaint = {"notificationType": "Complaint",
                     "complaint": {"userAgent": "AnyCompany Feedback Loop (V0.01)",
                                   "complainedRecipients": [{"emailAddress": "s2@example.org"}],
                                   "complaintFeedbackType": "abuse",
                                   "arrivalDate": "2024-05-06T10:00:00.000Z",
                                   "timestamp": "2024-05-06T10:00:01.000Z", "feedbackId": "fb-3"},
                     "mail": ses_mail("s2@example.org")}
        delivery = {"notificationType": "Delivery", "mail": ses_mail("s3@example.org"),
                    "delivery": {"recipients": ["s3@example.org"]}}

        # Subscription confirmed by fetching SubscribeURL.
        st, text = self.post("ses", sns("SubscriptionConfirmation", "You have chosen to "
                                        "subscribe to the topic " + topic))
        self.assertEqual(st, 200, text)
        self.assertTrue(any(h.startswith("/confirm?Action=ConfirmSubscription") for h in cs.hits),
                        cs.hits)
        before = self.state()
        n1 = sns("Notification", json.dumps(bounce), version="1")
        # Altered, forged, another topic, an untrusted certificate URL (not
        # fetched), no signature: refused, nothing changed.
        altered = dict(n1, Message=n1["Message"].replace("Permanent", "Transient"))
        self.assertEqual(self.post("ses", altered)[0], 403)
        self.assertEqual(self.post("ses", sns("Notification", json.dumps(bounce), k=other))[0], 403)
        self.assertEqual(self.post("ses", sns("Notification", json.dumps(bounce),
                                              extra={"TopicArn": topic + "-other"}))[0], 403)
        hits = len(cs.hits)
        for u in ("https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
                  "http://sns.us-east-1.amazonaws.com/cert.pem",
                  "https://evil.example/sns.us-east-1.amazonaws.com/cert.pem"):
            self.assertEqual(self.post("ses", sns("Notification", json.dumps(bounce),
                                                  cert_url=u))[0], 403, u)
        self.assertEqual(len(cs.hits), hits)
        nosig = dict(n1)
        del nosig["Signature"]
        self.assertEqual(self.post("ses", nosig)[0], 401)
        self.assertEqual(self.post("ses", "{not json")[0], 400)
        self.assertEqual(self.w.post_big("/webhooks/ses", b"x" * ((1 << 20) + 1)), 413)
        bad_inner = sns("Notification", "not json")
        self.assertEqual(self.post("ses", bad_inner)[0], 400)
        self.assertEqual(self.state(), before)

        st, text = self.post("ses", n1)
        self.assertEqual(st, 200, text)
        for m in (sns("Notification", json.dumps(transient), version="2"),
                  sns("Notification", json.dumps(complaint), version="2"),
                  sns("Notification", json.dumps(delivery))):
            st, text = self.post("ses", m)
            self.assertEqual(st, 200, text)
        self.assertEqual(self.suppressed(), {"s0@example.org", "s2@example.org"})
        self.assertEqual(self.soft(), {"s1@example.org"})
        self.assertEqual(self.memberships("s2@example.org"), ["unsubscribed", "unsubscribed"])
        notes = " | ".join(n for (n,) in self.w.q("SELECT note FROM inbound_messages"))
        self.assertIn("hard bounce of s0@example.org (by verp)", notes)
        self.assertIn("soft bounce of s1@example.org (by message-id)", notes)
        self.assertIn("complaint about s2@example.org (by verp)", notes)
        supp = dict(self.w.q("SELECT address, reason FROM suppressions"))
        self.assertTrue(supp["s0@example.org"].startswith("bounce: 5.1.1"), supp)
        # The certificate was fetched once and cached.
        self.assertEqual(cs.hits.count("/cert.pem"), 1, cs.hits)
        after = self.state()
        st, text = self.post("ses", n1)  # SNS delivers at least once
        self.assertEqual((st, "duplicate=1" in text), (200, True), text)
        self.assertEqual(self.state(), after)
        self.w.stop()

    def test_unknown_and_methods(self):
        self.w.serve()
        self.assertEqual(self.w.request("POST", "/webhooks/nope", b"{}")[0], 404)
        self.assertEqual(self.w.request("POST", "/webhooks/ses", b"{}")[0], 404)
        self.assertEqual(self.w.request("GET", "/webhooks/ses")[0], 405)
        self.assertEqual(self.w.request("POST", "/webhooks/", b"{}")[0], 404)
        self.assertEqual(self.w.request("POST", "/webhooks/a/b", b"{}")[0], 404)
        out = self.w.ok("inbound", "webhook", "ls")
        self.assertIn("ses       off", out)
        p = self.w.cmd("inbound", "webhook", "set", "sendgrid", "--secret-file",
                       self.secret_file("not a key"))
        self.assertNotEqual(p.returncode, 0)
        p = self.w.cmd("inbound", "webhook", "set", "postmark", "--secret-file",
                       self.secret_file("nocolon"))
        self.assertNotEqual(p.returncode, 0)
        self.w.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
