#!/usr/bin/python3
"""End-to-end tests of the tidings command line: the real binary ($TIDINGS_BIN)
run as a user would, each case in its own temporary directory (also its
working directory, so ./tidings.db lands there).

Covers: --help on every command and subcommand; exit 2 with one line on
stderr for wrong usage; exit 1 with a reason for failures; --db, TIDINGS_DB
and ./tidings.db; init with an admin; import from a file and from stdin;
hostile CSV through the binary (refused rows named by line, the rest
imported); a million-row file (100,000 under sanitizers); export round trip;
the demo; no progress bar unless stderr is a terminal (and one when it is).

Standard library only. Run: TIDINGS_BIN=build/tidings tests/e2e/test_cli.py
"""
import csv
import io
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.abspath(os.environ.get("TIDINGS_BIN", os.path.join(ROOT, "tidings")))
SANITIZED = os.environ.get("TIDINGS_SANITIZED") == "1"
BIG_ROWS = 100_000 if SANITIZED else 1_000_000
PY = "/usr/bin/python3"
GEN = os.path.join(ROOT, "bench", "gen_csv.py")

# Commands and subcommands that must answer --help.
HELP = [[], ["init"], ["import"], ["export"], ["subscriber"], ["subscriber", "add"],
        ["subscriber", "get"], ["subscriber", "update"], ["subscriber", "delete"], ["list"],
        ["list", "create"], ["list", "ls"], ["list", "delete"], ["team"], ["team", "add"],
        ["team", "ls"], ["user"], ["user", "add"], ["user", "ls"], ["demo"]]


def base_env():
    env = dict(os.environ)
    env.pop("TIDINGS_DB", None)
    env.setdefault("USER", "tester")
    return env


class Run:
    """What one run of the binary did."""

    def __init__(self, args, code, out, err):
        self.args, self.code, self.out, self.err = args, code, out, err

    def __repr__(self):
        return "tidings %s -> %d\n--- stdout\n%s--- stderr\n%s" % (
            " ".join(self.args), self.code, self.out[-3000:], self.err[-3000:])

    def err_lines(self):
        return [l for l in self.err.split("\n") if l]


class Case(unittest.TestCase):
    """Each test gets a fresh directory as its working directory."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tidings-e2e.")
        self.env = base_env()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def write(self, name, data):
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(self.path(name), mode, **({} if mode == "wb" else {"newline": ""})) as f:
            f.write(data)
        return self.path(name)

    def run_t(self, *args, stdin=b"", env=None, timeout=300):
        p = subprocess.run([BIN, *args], cwd=self.dir, env=env or self.env, input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        return Run(list(args), p.returncode, p.stdout.decode("utf-8", "replace"),
                   p.stderr.decode("utf-8", "replace"))

    def ok(self, *args, **kw):
        r = self.run_t(*args, **kw)
        self.assertEqual(r.code, 0, r)
        return r

    def db(self, name="t.db"):
        return sqlite3.connect(self.path(name))

    def q(self, sql, name="t.db", *params):
        c = self.db(name)
        try:
            return c.execute(sql, params).fetchall()
        finally:
            c.close()

    def setup_list(self, db="t.db", name="L", optin="single"):
        self.ok("init", "--db", db)
        self.ok("list", "create", name, "--optin", optin, "--db", db)


# ---- help, usage, failures -------------------------------------------------------

class TestUsage(Case):
    def test_help_on_every_command(self):
        for cmd in HELP:
            for flag in (["--help"], ["-h"]):
                r = self.run_t(*cmd, *flag)
                with self.subTest(cmd=cmd, flag=flag):
                    self.assertEqual(r.code, 0, r)
                    self.assertIn("usage:", r.out, r)
                    self.assertEqual(r.err, "", r)
        self.assertEqual(self.ok("help").out, self.ok("--help").out)
        # Asking for help touches no database.
        self.assertEqual(os.listdir(self.dir), [])

    def test_no_command(self):
        r = self.run_t()
        self.assertEqual(r.code, 2, r)
        self.assertIn("usage:", r.err)
        self.assertEqual(r.out, "")

    def test_wrong_usage_exits_2_with_one_line(self):
        self.setup_list()
        self.write("a.csv", "email\na@x.com\n")
        cases = [
            ["bogus"], ["--bogus"],
            ["init", "extra"], ["init", "--admin-email", "a@x.com"],
            ["init", "--admin-password-file", "pw"], ["init", "--public-url", "ftp://x"],
            ["init", "--bogus"],
            ["import"], ["import", "a.csv"], ["import", "a.csv", "b.csv", "--list", "L"],
            ["import", "a.csv", "--list", "L", "--mode", "merge"],
            ["import", "a.csv", "--list", "L", "--bogus"], ["import", "a.csv", "--list"],
            ["export"], ["export", "--list", "L", "extra"], ["export", "--output"],
            ["subscriber"], ["subscriber", "frob", "a@x.com"], ["subscriber", "add"],
            ["subscriber", "add", "a@x.com", "b@x.com"],
            ["subscriber", "get", "a@x.com", "--email", "b@x.com"],
            ["subscriber", "get", "a@x.com", "--bogus"],
            ["list"], ["list", "frob"], ["list", "create"], ["list", "create", "A", "B"],
            ["list", "create", "X", "--optin", "triple"],
            ["list", "create", "X", "--visibility", "secret"], ["list", "ls", "extra"],
            ["list", "delete"],
            ["team"], ["team", "frob"], ["team", "add"], ["team", "add", "T", "--model", "anarchy"],
            ["team", "ls", "extra"],
            ["user"], ["user", "add", "a@x.com"], ["user", "add", "a@x.com", "--role", "king"],
            ["user", "add", "--role", "admin"], ["user", "ls", "extra"],
            ["demo", "extra"], ["demo", "--subscribers", "lots"], ["demo", "--subscribers", "-1"],
            ["demo", "--bogus"],
        ]
        for args in cases:
            full = list(args)
            if args and args[0] not in ("bogus", "--bogus", "demo"):
                full[1:1] = ["--db", "t.db"]
            r = self.run_t(*full)
            with self.subTest(args=args):
                self.assertEqual(r.code, 2, r)
                self.assertEqual(len(r.err_lines()), 1, r)
                self.assertTrue(r.err.startswith("tidings"), r)
                self.assertEqual(r.out, "", r)
        # Usage errors change nothing.
        self.assertEqual(self.q("SELECT count(*) FROM teams")[0][0], 0)

    def test_failures_exit_1_with_a_reason(self):
        self.setup_list()
        self.ok("subscriber", "add", "dup@x.com", "--db", "t.db")
        self.ok("team", "add", "T", "--db", "t.db")
        self.write("junk.db", b"this is not a database\n" * 300)
        os.mkdir(self.path("adir"))
        cases = [
            ["import", "missing.csv", "--list", "L", "--db", "t.db"],
            ["import", "adir", "--list", "L", "--db", "t.db"],
            ["import", "-", "--list", "Nope", "--db", "t.db"],
            ["export", "--list", "Nope", "--db", "t.db"],
            ["export", "--list", "L", "--output", "no/such/dir/x.csv", "--db", "t.db"],
            ["subscriber", "get", "nobody@x.com", "--db", "t.db"],
            ["subscriber", "add", "not an address", "--db", "t.db"],
            ["subscriber", "add", "dup@x.com", "--db", "t.db"],
            ["subscriber", "add", "new@x.com", "--list", "Nope", "--db", "t.db"],
            ["subscriber", "add", "new2@x.com", "--attributes", "[1]", "--db", "t.db"],
            ["subscriber", "add", "new3@x.com", "--tz", "Mars/Base", "--db", "t.db"],
            ["subscriber", "add", "new4@x.com", "--name", "a\nb", "--db", "t.db"],
            ["subscriber", "update", "nobody@x.com", "--name", "N", "--db", "t.db"],
            ["subscriber", "delete", "nobody@x.com", "--db", "t.db"],
            ["list", "create", "L", "--db", "t.db"],
            ["list", "create", "", "--db", "t.db"],
            ["list", "create", "M", "--team", "Nope", "--db", "t.db"],
            ["list", "delete", "Nope", "--db", "t.db"],
            ["team", "add", "T", "--db", "t.db"],
            ["team", "add", "U", "--parent", "Nope", "--db", "t.db"],
            ["user", "add", "u@x.com", "--role", "seller", "--team", "Nope", "--db", "t.db"],
            ["user", "add", "bad address", "--role", "seller", "--db", "t.db"],
            ["user", "add", "u@x.com", "--role", "seller", "--password-file", "nofile",
             "--db", "t.db"],
            ["team", "ls", "--db", "junk.db"],
            ["team", "ls", "--db", "no/such/dir/t.db"],
            ["init", "--db", "t.db", "--admin-email", "a@x.com", "--admin-password-file",
             "nofile"],
        ]
        for args in cases:
            r = self.run_t(*args)
            with self.subTest(args=args):
                self.assertEqual(r.code, 1, r)
                lines = r.err_lines()
                self.assertEqual(len(lines), 1, r)
                self.assertTrue(lines[0].startswith("tidings: "), r)
        # The failed export left no partial file.
        self.assertFalse(os.path.exists(self.path("no")))
        self.assertEqual(os.listdir(self.path("adir")), [])

    def test_a_failed_command_changes_nothing(self):
        """Exit 1 means the command did not happen: running it again once
        the cause is fixed must work."""
        self.setup_list()
        r = self.run_t("subscriber", "add", "new@x.com", "--list", "Nope", "--db", "t.db")
        self.assertEqual(r.code, 1, r)
        self.ok("list", "create", "Nope", "--db", "t.db")
        self.ok("subscriber", "add", "new@x.com", "--list", "Nope", "--db", "t.db")


# ---- database selection, init ------------------------------------------------------

class TestDatabase(Case):
    def test_db_option_env_and_default(self):
        os.mkdir(self.path("sub"))
        # Default: ./tidings.db in the working directory.
        self.ok("init")
        self.assertTrue(os.path.exists(self.path("tidings.db")))
        self.ok("team", "add", "Default")
        # TIDINGS_DB.
        env = dict(self.env, TIDINGS_DB=self.path("sub", "env.db"))
        self.ok("init", env=env)
        self.ok("team", "add", "FromEnv", env=env)
        # --db wins over TIDINGS_DB.
        self.ok("init", "--db", "opt.db", env=env)
        self.ok("team", "add", "FromOpt", "--db", "opt.db", env=env)
        self.assertEqual(self.q("SELECT name FROM teams", "tidings.db"), [("Default",)])
        self.assertEqual(self.q("SELECT name FROM teams", "sub/env.db"), [("FromEnv",)])
        self.assertEqual(self.q("SELECT name FROM teams", "opt.db"), [("FromOpt",)])
        # Every command that opens the database honours the same rule.
        self.assertIn("FromEnv", self.ok("team", "ls", env=env).out)
        self.ok("list", "create", "EnvList", env=env)
        self.assertIn("EnvList", self.ok("list", "ls", env=env).out)
        self.assertNotIn("EnvList", self.ok("list", "ls").out)
        self.assertIn("Default", self.ok("team", "ls").out)
        # A relative --db is relative to the working directory.
        self.assertIn("FromOpt", self.ok("team", "ls", "--db", "opt.db").out)

    def test_init_admin(self):
        pw = "correct horse battery staple"
        self.write("pw", pw + "\n")
        r = self.ok("init", "--db", "t.db", "--admin-email", "Boss@Example.COM",
                    "--admin-password-file", "pw", "--admin-name", "ليلى")
        self.assertIn("schema version", r.out)
        users = [json.loads(l) for l in self.ok("user", "ls", "--json", "--db", "t.db").out
                 .splitlines()]
        self.assertEqual([(u["email"], u["role"], u["name"]) for u in users],
                         [("Boss@example.com", "admin", "ليلى")])
        (h,) = self.q("SELECT password_hash FROM users")[0]
        self.assertTrue(h.startswith("$argon2id$"), h)
        # The password is nowhere in the database file.
        for name in os.listdir(self.dir):
            if name.startswith("t.db"):
                with open(self.path(name), "rb") as f:
                    self.assertNotIn(pw.encode(), f.read())
        # Running init again is safe and keeps everything.
        r = self.ok("init", "--db", "t.db", "--admin-email", "Boss@Example.COM",
                    "--admin-password-file", "pw")
        self.assertIn("exists already", r.out)
        self.assertEqual(self.q("SELECT password_hash FROM users")[0][0], h)
        secret = self.q("SELECT value FROM settings WHERE key = 'secret'")
        self.ok("init", "--db", "t.db")
        self.assertEqual(self.q("SELECT value FROM settings WHERE key = 'secret'"), secret)
        # The password from stdin.
        self.ok("init", "--db", "t.db", "--admin-email", "two@example.com",
                "--admin-password-file", "-", stdin=b"another one\n")
        self.assertEqual(self.q("SELECT count(*) FROM users WHERE role = 'admin'")[0][0], 2)
        # An empty password file is refused.
        self.write("empty", "")
        r = self.run_t("init", "--db", "t.db", "--admin-email", "three@example.com",
                       "--admin-password-file", "empty")
        self.assertEqual(r.code, 1, r)
        self.assertEqual(self.q("SELECT count(*) FROM users")[0][0], 2)


# ---- import ------------------------------------------------------------------------

def summary(out):
    """The counts of an import's summary line."""
    m = re.search(r"(\d+) rows, (\d+) new, (\d+) updated, (\d+) unchanged, (\d+) added to the "
                  r"list, (\d+) refused", out)
    assert m, out
    return dict(zip(("rows", "new", "updated", "unchanged", "added", "refused"),
                    map(int, m.groups())))


class TestImport(Case):
    CSV = ("email,name,city,orders\r\n"
           "layla@example.com,ليلى حداد,Cairo,3\r\n"
           "somchai@example.co.th,สมชาย ใจดี,Bangkok,12\r\n"
           "\"o'brien@example.net\",\"O'Brien, \"\"Bob\"\"\",Dublin,007\r\n")

    def test_file_and_stdin(self):
        self.setup_list()
        self.write("a.csv", self.CSV)
        r = self.ok("import", "a.csv", "--list", "L", "--db", "t.db")
        self.assertEqual(summary(r.out), dict(rows=3, new=3, updated=0, unchanged=0, added=3,
                                              refused=0))
        self.assertEqual(r.err, "")
        # Again, from stdin into another list: same subscribers, new memberships.
        self.ok("list", "create", "M", "--db", "t.db")
        r = self.ok("import", "-", "--list", "M", "--db", "t.db", stdin=self.CSV.encode())
        self.assertIn("stdin", r.out)
        self.assertEqual(summary(r.out), dict(rows=3, new=0, updated=0, unchanged=3, added=3,
                                              refused=0))
        rows = self.q("SELECT email, name, attribs FROM subscribers ORDER BY email")
        self.assertEqual(rows, [
            ("layla@example.com", "ليلى حداد", '{"city":"Cairo","orders":3}'),
            ("o'brien@example.net", "O'Brien, \"Bob\"", '{"city":"Dublin","orders":"007"}'),
            ("somchai@example.co.th", "สมชาย ใจดี", '{"city":"Bangkok","orders":12}')])
        # Re-importing changes nothing, in every mode.
        for mode in ("subscribe", "upsert"):
            r = self.ok("import", "a.csv", "--list", "L", "--mode", mode, "--db", "t.db")
            self.assertEqual(summary(r.out), dict(rows=3, new=0, updated=0, unchanged=3,
                                                  added=0, refused=0))
        # The import is in the audit log.
        self.assertGreaterEqual(
            self.q("SELECT count(*) FROM audit_log WHERE action = 'list.import'")[0][0], 2)

    def test_modes_team_owner(self):
        self.setup_list()
        self.ok("team", "add", "Sales", "--db", "t.db")
        self.ok("user", "add", "seller@x.com", "--role", "seller", "--team", "Sales",
                "--db", "t.db")
        self.write("a.csv", "email,name\na@x.com,A\nb@x.com,B\n")
        self.ok("import", "a.csv", "--list", "L", "--team", "Sales", "--owner", "seller@x.com",
                "--db", "t.db")
        self.assertEqual(
            self.q("SELECT count(*) FROM subscribers s JOIN teams t ON t.id = s.team_id JOIN "
                   "users u ON u.id = s.owner_id WHERE t.name = 'Sales' AND u.email = "
                   "'seller@x.com'")[0][0], 2)
        self.write("b.csv", "email,name\na@x.com,A2\n")
        r = self.ok("import", "b.csv", "--list", "L", "--mode", "upsert", "--db", "t.db")
        self.assertEqual(summary(r.out)["updated"], 1)
        r = self.ok("import", "b.csv", "--list", "L", "--mode", "blocklist", "--db", "t.db")
        self.assertEqual(self.q("SELECT name, status FROM subscribers ORDER BY email"),
                         [("A2", "blocklisted"), ("B", "enabled")])
        for args in (["--team", "Nope"], ["--owner", "nobody@x.com"]):
            r = self.run_t("import", "a.csv", "--list", "L", *args, "--db", "t.db")
            self.assertEqual(r.code, 1, r)

    def test_empty_and_header_only(self):
        self.setup_list()
        self.write("empty.csv", "")
        r = self.run_t("import", "empty.csv", "--list", "L", "--db", "t.db")
        self.assertEqual(r.code, 1, r)
        self.assertEqual(len(r.err_lines()), 1, r)
        self.assertIn("empty", r.err)
        r = self.run_t("import", "-", "--list", "L", "--db", "t.db", stdin=b"")
        self.assertEqual(r.code, 1, r)
        self.write("head.csv", "email,name,city\r\n")
        r = self.ok("import", "head.csv", "--list", "L", "--db", "t.db")
        self.assertEqual(summary(r.out)["rows"], 0)
        self.write("nohead.csv", "a@x.com,A\n")
        r = self.run_t("import", "nohead.csv", "--list", "L", "--db", "t.db")
        self.assertEqual(r.code, 1, r)
        self.assertIn("email", r.err)
        self.assertEqual(self.q("SELECT count(*) FROM subscribers")[0][0], 0)

    def test_hostile_rows(self):
        """Each refused row named by its line; every valid row imported;
        exit 1 because rows were refused."""
        self.setup_list()
        big = "x" * (10 * 1024 * 1024)
        rows = [
            (b"email,name,city\r\n", None),                                      # 1
            (b"ok1@x.com,Ok One,P\r\n", "ok"),                                    # 2
            (b"a@x.com,\"unterminated\r\nok2@x.com,Ok Two,P\r\n", "bad"),          # 3 (+4 re-read)
            (b"nul@x.com,N\x00UL,P\r\n", "bad"),                                  # 5
            (b"utf@x.com,\xff\xfe,P\r\n", "bad"),                                 # 6
            (b"crlf@x.com,\"two\r\nlines\",P\r\n", "bad"),                        # 7-8
            (b"\"cr@x.com\r\",C,P\r\n", "bad"),                                   # 9
            (b"'; DROP TABLE subscribers; --@x.com,D,P\r\n", "bad"),              # 10
            (b"sql@x.com,'; DROP TABLE subscribers; --,\"\"\"; DROP TABLE lists; --\"\r\n",
             "ok"),                                                               # 11
            (b"cols@x.com,A\r\n", "bad"),                                         # 12
            (b"big@x.com," + big.encode() + b",P\r\n", "bad"),                    # 13
            (b"Dup@Example.COM,First,P\r\n", "ok"),                               # 14
            (b"Dup@example.com,Second,P\r\n", "ok"),                              # 15
            (b"two@@x.com,Two Ats,P\r\n", "bad"),                                # 16
            (b"last@x.com,Last,\"multi\nline city\"\r\n", "ok"),                  # 17-18
            (b"after@x.com,After,P\r\n", "ok"),                                   # 19
        ]
        self.write("h.csv", b"".join(r for r, _ in rows))
        r = self.run_t("import", "h.csv", "--list", "L", "--db", "t.db")
        self.assertEqual(r.code, 1, r)
        refused = [int(m) for m in re.findall(r"^tidings: line (\d+):", r.err, re.M)]
        self.assertEqual(refused, [3, 5, 6, 7, 9, 10, 12, 13, 16], r)
        self.assertIn("rows were refused", r.err_lines()[-1])
        s = summary(r.out)
        self.assertEqual(s["refused"], 9, r)
        emails = [e for (e,) in self.q("SELECT email FROM subscribers ORDER BY email")]
        self.assertEqual(emails, ["Dup@example.com", "after@x.com", "last@x.com", "ok1@x.com",
                                  "ok2@x.com", "sql@x.com"])
        self.assertEqual(self.q("SELECT name, attribs FROM subscribers WHERE email = "
                                "'sql@x.com'"),
                         [("'; DROP TABLE subscribers; --",
                           '{"city":"\\"; DROP TABLE lists; --"}')])
        self.assertEqual(self.q("SELECT name FROM subscribers WHERE email = 'Dup@example.com'"),
                         [("First",)])
        self.assertEqual(self.q("SELECT count(*) FROM memberships")[0][0], 6)
        # Nothing dropped.
        tables = {t for (t,) in self.q("SELECT name FROM sqlite_master WHERE type = 'table'")}
        self.assertTrue({"subscribers", "lists", "memberships"} <= tables)
        # Every reason is one line a person can act on.
        for line in r.err_lines():
            self.assertTrue(line.startswith("tidings: "), line)
            self.assertLess(len(line), 400, line)

    def test_million_rows(self):
        """A generated file of BIG_ROWS rows imports completely, without a
        progress bar (output is not a terminal), in bounded memory."""
        self.setup_list()
        csvp = self.path("big.csv")
        t0 = time.time()
        subprocess.run([PY, GEN, str(BIG_ROWS), csvp], check=True)
        t1 = time.time()
        with open(self.path("out"), "wb") as out, open(self.path("err"), "wb") as err:
            p = subprocess.Popen([BIN, "import", csvp, "--list", "L", "--db", "t.db"],
                                 cwd=self.dir, env=self.env, stdout=out, stderr=err)
            _, status, usage = os.wait4(p.pid, 0)
        t2 = time.time()
        code = os.waitstatus_to_exitcode(status)
        p.returncode = code
        with open(self.path("out"), encoding="utf-8") as f:
            out = f.read()
        with open(self.path("err"), encoding="utf-8", errors="replace") as f:
            err = f.read()
        self.assertEqual(code, 0, err[-2000:])
        self.assertEqual(err, "")
        s = summary(out)
        self.assertEqual((s["rows"], s["new"], s["added"], s["refused"]),
                         (BIG_ROWS, BIG_ROWS, BIG_ROWS, 0), out)
        self.assertEqual(self.q("SELECT count(*) FROM subscribers")[0][0], BIG_ROWS)
        self.assertEqual(self.q("SELECT count(*) FROM memberships")[0][0], BIG_ROWS)
        # The bulk path skips per-row CHECK and foreign-key evaluation; what
        # it wrote must still satisfy both.
        self.assertEqual(self.q("PRAGMA foreign_key_check"), [])
        self.assertEqual(self.q("SELECT count(*) FROM subscribers WHERE NOT json_valid(attribs)"
                                " OR status NOT IN ('enabled', 'blocklisted')")[0][0], 0)
        self.assertEqual(self.q("SELECT count(*) FROM memberships WHERE status NOT IN"
                                " ('confirmed', 'unconfirmed', 'unsubscribed')")[0][0], 0)
        self.assertEqual(self.q("PRAGMA integrity_check"), [("ok",)])
        rss_mb = usage.ru_maxrss / 1024
        sys.stderr.write("\n  %d rows: generated in %.1f s, imported in %.1f s "
                         "(%.0f rows/s), peak RSS %.1f MB\n"
                         % (BIG_ROWS, t1 - t0, t2 - t1, BIG_ROWS / (t2 - t1), rss_mb))
        if not SANITIZED:
            # Streaming: the bound for the million-row import.
            self.assertLess(rss_mb, 64, "peak RSS %.1f MB for %d rows" % (rss_mb, BIG_ROWS))
        # Importing it again changes nothing.
        r = self.ok("import", csvp, "--list", "L", "--db", "t.db", timeout=600)
        s = summary(r.out)
        self.assertEqual((s["new"], s["updated"], s["unchanged"], s["added"]),
                         (0, 0, BIG_ROWS, 0))


# ---- progress bar --------------------------------------------------------------------

class TestProgress(Case):
    def rows_file(self, n):
        p = self.path("p.csv")
        subprocess.run([PY, GEN, str(n), p], check=True)
        with open(p, "ab") as f:
            f.write(b"bad-address,X,Cairo,free,1,1.0,2024-01-01\r\n")
        return p

    def test_no_progress_when_not_a_terminal(self):
        self.setup_list()
        p = self.rows_file(60000)
        r = self.run_t("import", p, "--list", "L", "--db", "t.db")
        self.assertEqual(r.code, 1, r)
        for stream in (r.out, r.err):
            self.assertNotIn("\r", stream)
            self.assertNotIn("\x1b", stream)
            self.assertNotIn("rows/s ", stream.replace("rows/s)", ""))
        self.assertEqual(len(r.err_lines()), 2, r)  # the refused row and the closing line

    def test_progress_on_a_terminal(self):
        self.setup_list()
        p = self.rows_file(200000)
        master, slave = pty.openpty()
        proc = subprocess.Popen([BIN, "import", p, "--list", "L", "--db", "t.db"],
                                cwd=self.dir, env=self.env, stdout=subprocess.PIPE,
                                stderr=slave)
        os.close(slave)
        chunks = []

        def drain():
            while True:
                try:
                    r, _, _ = select.select([master], [], [], 0.5)
                    if r:
                        b = os.read(master, 65536)
                        if not b:
                            return
                        chunks.append(b)
                    elif proc.poll() is not None:
                        return
                except OSError:
                    return

        t = threading.Thread(target=drain)
        t.start()
        out = proc.stdout.read().decode()
        proc.stdout.close()
        proc.wait(timeout=300)
        t.join(timeout=10)
        os.close(master)
        tty = b"".join(chunks).decode("utf-8", "replace")
        self.assertEqual(proc.returncode, 1, tty)
        self.assertIn("rows/s", tty)
        self.assertRegex(tty, r"\d+:\d\d left")
        self.assertIn("line 200002", tty)
        # The bar is cleared, not left on the screen, and stdout is clean.
        self.assertNotIn("\r", out)
        self.assertNotIn("\x1b", out)


# ---- export ----------------------------------------------------------------------------

class TestExport(Case):
    CSV = ("email,name,attributes,city,orders,timezone,locale,subscription\r\n"
           "layla@example.com,ليلى حداد,,Cairo,3,Africa/Cairo,ar-EG,confirmed\r\n"
           "somchai@example.co.th,สมชาย,\"{\"\"vip\"\":true,\"\"tags\"\":[\"\"a\"\"]}\","
           "Bangkok,12,Asia/Bangkok,th-TH,unconfirmed\r\n"
           "\"o'brien@example.net\",\"O'Brien, \"\"Bob\"\"\",,\"Dublin\nnorth\",,,,"
           "unsubscribed\r\n"
           "drop@example.org,'; DROP TABLE subscribers; --,,,2.25,UTC,en,\r\n"
           "idn@bücher.example,Bücher,,,0,,,\r\n")

    def rows(self, text):
        return sorted(map(tuple, csv.reader(io.StringIO(text, newline=""))))

    def same_rows(self, a, b):
        """assertEqual for long row lists without unittest's quadratic diff."""
        diff = [(x, y) for x, y in zip(a, b) if x != y]
        if diff or len(a) != len(b):
            self.fail("%d rows vs %d, %d differ; first: %s" % (len(a), len(b), len(diff),
                                                             diff[:3]))

    def test_round_trip(self):
        self.setup_list()
        self.write("a.csv", self.CSV)
        self.ok("import", "a.csv", "--list", "L", "--db", "t.db")
        out = self.ok("export", "--list", "L", "--db", "t.db").out
        r = self.ok("export", "--list", "L", "--output", "e.csv", "--db", "t.db")
        self.assertIn("exported 5", r.err)
        with open(self.path("e.csv"), encoding="utf-8", newline="") as f:
            self.assertEqual(f.read(), out)
        self.assertTrue(out.startswith("email,name,attributes,timezone,locale,subscription,status\r\n"))
        self.assertIn("idn@xn--bcher-kva.example", out)
        # import(export(list)) == list, into a fresh database.
        self.setup_list("u.db", "Copy", "double")
        r = self.ok("import", "e.csv", "--list", "Copy", "--db", "u.db")
        self.assertEqual(summary(r.out)["new"], 5)
        out2 = self.ok("export", "--list", "Copy", "--db", "u.db").out
        self.assertEqual(self.rows(out2), self.rows(out))
        cols = "email, name, attribs, timezone, locale"
        self.assertEqual(self.q("SELECT %s FROM subscribers ORDER BY email" % cols, "u.db"),
                         self.q("SELECT %s FROM subscribers ORDER BY email" % cols, "t.db"))
        # And through a pipe: export | import -.
        self.ok("list", "create", "Piped", "--db", "u.db")
        r = self.ok("import", "-", "--list", "Piped", "--db", "u.db", stdin=out.encode())
        self.assertEqual(summary(r.out), dict(rows=5, new=0, updated=0, unchanged=5, added=5,
                                              refused=0))
        self.assertEqual(self.rows(self.ok("export", "--list", "Piped", "--db", "u.db").out),
                         self.rows(out))

    def test_round_trip_of_a_generated_file(self):
        self.setup_list()
        p = self.path("g.csv")
        subprocess.run([PY, GEN, "20000", p], check=True)
        self.ok("import", p, "--list", "L", "--db", "t.db")
        self.ok("export", "--list", "L", "--output", "e.csv", "--db", "t.db")
        self.setup_list("u.db")
        r = self.ok("import", "e.csv", "--list", "L", "--db", "u.db")
        self.assertEqual(summary(r.out)["new"], 20000)
        self.ok("export", "--list", "L", "--output", "e2.csv", "--db", "u.db")
        with open(self.path("e.csv"), encoding="utf-8") as a, \
                open(self.path("e2.csv"), encoding="utf-8") as b:
            self.same_rows(self.rows(a.read()), self.rows(b.read()))
        # Importing the export back into its own list in upsert mode rewrites
        # nothing: the attributes it holds are the ones stored.
        r = self.ok("import", "e.csv", "--list", "L", "--mode", "upsert", "--db", "t.db")
        self.assertEqual(summary(r.out)["updated"], 0, r)


# ---- the other commands ----------------------------------------------------------------

class TestCommands(Case):
    def test_subscriber_lifecycle(self):
        self.setup_list()
        self.ok("list", "create", "Double", "--optin", "double", "--db", "t.db")
        hostile = "'; DROP TABLE subscribers; --"
        sid = self.ok("subscriber", "add", "Ann@Example.COM", "--name", hostile, "--attr",
                      "orders=3", "--attr", "city=Paris", "--tz", "Europe/Paris", "--locale",
                      "fr-FR", "--list", "L", "--list", "Double", "--db", "t.db").out.strip()
        self.assertTrue(sid.isdigit(), sid)
        # The domain's case does not matter; the local part's does.
        g = json.loads(self.ok("subscriber", "get", "Ann@EXAMPLE.com", "--json", "--db",
                               "t.db").out)
        self.assertEqual(g["email"], "Ann@example.com")
        self.assertEqual(g["name"], hostile)
        self.assertEqual(g["attributes"], {"city": "Paris", "orders": 3})
        self.assertEqual(g["timezone"], "Europe/Paris")
        self.assertEqual(sorted((l["list"], l["status"]) for l in g["lists"]),
                         [("Double", "unconfirmed"), ("L", "confirmed")])
        self.ok("subscriber", "update", "Ann@example.com", "--email", "ann@example.net",
                "--unsubscribe", "L", "--status", "blocklisted", "--db", "t.db")
        g = json.loads(self.ok("subscriber", "get", "ann@example.net", "--json", "--db",
                               "t.db").out)
        self.assertEqual(g["status"], "blocklisted")
        self.assertEqual(g["name"], hostile)
        self.assertIn({"list": "L", "status": "unsubscribed"}, g["lists"])
        self.assertIn("ann@example.net", self.ok("subscriber", "get", "ann@example.net",
                                                  "--db", "t.db").out)
        self.ok("subscriber", "delete", "ann@example.net", "--db", "t.db")
        self.assertEqual(self.run_t("subscriber", "get", "ann@example.net", "--db",
                                    "t.db").code, 1)
        self.assertEqual(self.q("SELECT count(*) FROM memberships")[0][0], 0)
        actions = [a for (a,) in self.q("SELECT action FROM audit_log ORDER BY id")]
        for a in ("subscriber.add", "subscriber.update", "subscriber.delete"):
            self.assertIn(a, actions)

    def test_teams_users_lists(self):
        self.ok("init", "--db", "t.db")
        self.ok("team", "add", "HQ", "--db", "t.db")
        self.ok("team", "add", "ฝ่ายขาย", "--model", "local", "--parent", "HQ", "--db", "t.db")
        teams = [json.loads(l) for l in self.ok("team", "ls", "--json", "--db", "t.db")
                 .out.splitlines()]
        self.assertEqual([(t["name"], t["model"]) for t in teams],
                         [("HQ", "central"), ("ฝ่ายขาย", "local")])
        self.assertEqual(teams[1]["parent_id"], teams[0]["id"])
        self.write("pw", "secret\n")
        for role in ("admin", "director", "designer", "operator", "seller", "responder"):
            self.ok("user", "add", role + "@x.com", "--role", role, "--team", "HQ",
                    "--password-file", "pw", "--db", "t.db")
        users = [json.loads(l) for l in self.ok("user", "ls", "--json", "--db", "t.db")
                 .out.splitlines()]
        self.assertEqual(len(users), 6)
        self.ok("list", "create", "News", "--team", "HQ", "--owner", "operator@x.com",
                "--optin", "double", "--visibility", "public", "--db", "t.db")
        lists = [json.loads(l) for l in self.ok("list", "ls", "--json", "--db", "t.db")
                 .out.splitlines()]
        self.assertEqual([(l["name"], l["optin"], l["visibility"]) for l in lists],
                         [("News", "double", "public")])
        self.assertIn("News", self.ok("list", "ls", "--db", "t.db").out)
        self.ok("list", "delete", "News", "--db", "t.db")
        self.assertEqual(self.ok("list", "ls", "--json", "--db", "t.db").out, "")


class TestDemo(Case):
    ARABIC = re.compile("[\u0600-\u06ff]")
    THAI = re.compile("[\u0e00-\u0e7f]")

    def check_demo_db(self, name):
        teams = self.q("SELECT count(*), count(DISTINCT model) FROM teams", name)[0]
        self.assertGreaterEqual(teams[0], 3)
        self.assertEqual(teams[1], 3)  # central, catalyst, local
        roles = {r for (r,) in self.q("SELECT role FROM users", name)}
        self.assertEqual(roles, {"admin", "director", "designer", "operator", "seller",
                                 "responder"})
        self.assertGreaterEqual(self.q("SELECT count(*) FROM lists", name)[0][0], 2)
        names = [n for (n,) in self.q("SELECT name FROM subscribers", name)]
        self.assertGreaterEqual(len(names), 1000)
        arabic = sum(1 for n in names if self.ARABIC.search(n))
        thai = sum(1 for n in names if self.THAI.search(n))
        latin = sum(1 for n in names if re.search("[A-Za-z]", n))
        self.assertGreater(arabic, len(names) // 10)
        self.assertGreater(thai, len(names) // 10)
        self.assertGreater(latin, len(names) // 10)
        self.assertGreater(self.q("SELECT count(*) FROM memberships", name)[0][0], len(names))

    def test_demo(self):
        r = self.ok("demo", "--db", "d.db")
        for word in ("teams", "users", "lists", "subscribers"):
            self.assertIn(word, r.out)
        self.assertRegex(r.out, r"\d+ subscribers")
        self.assertEqual(r.err, "")
        self.check_demo_db("d.db")
        # Again: replaced, not doubled.
        before = self.q("SELECT count(*) FROM subscribers", "d.db")
        self.ok("demo", "--db", "d.db")
        self.assertEqual(self.q("SELECT count(*) FROM subscribers", "d.db"), before)
        # The demo database works with the other commands.
        out = self.ok("export", "--list", "Newsletter", "--db", "d.db").out
        self.assertTrue(out.startswith("email,name,attributes"))
        self.assertGreater(out.count("\n"), 1000)

    def test_demo_default_path(self):
        r = self.ok("demo", "--subscribers", "200")
        self.assertTrue(os.path.exists(self.path("tidings-demo.db")), r)
        self.assertEqual(self.q("SELECT count(*) FROM subscribers", "tidings-demo.db")[0][0],
                         200)


if __name__ == "__main__":
    if not os.access(BIN, os.X_OK):
        sys.exit("no tidings binary at %s (set TIDINGS_BIN)" % BIN)
    unittest.main(verbosity=2)
