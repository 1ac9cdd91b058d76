#!/usr/bin/python3
"""The pages `tidings serve` shows people, in a real browser: Debian's
headless Chromium driven through ChromeDriver (python3-selenium), against
the real server on loopback, with tokens from real campaign messages.

- "view in browser" (/v/) shows the message as its recipient got it, and
  the preferences page (/p/) leaves and rejoins lists with its boxes;
- the unsubscribe page of a message: it renders the subscriber's lists
  (Arabic and Thai names intact), its button unsubscribes, and the result
  is in the database;
- the signup form: an XSS payload typed as the name runs no script and is
  shown as text; a double opt-in signup mails a confirmation link whose
  page confirms with one click;
- no page logs a JavaScript error in the browser's console.

The server side of the same pages (status codes, tokens, RFC 8058) is in
test_http.py; this file reuses its fixture.
"""
import email
import email.policy
import glob
import os
import re
import shutil
import sys
import tempfile
import unittest

import test_http

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:  # scripts/install-deps.sh --test installs python3-selenium
    webdriver = None

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Browser(test_http.Http):
    """Http's fixture (database, maildir relay, serve) plus a browser."""

    def setUp(self):
        if webdriver is None or not os.path.exists(CHROMIUM) or not os.path.exists(CHROMEDRIVER):
            self.fail("needs chromium, chromium-driver and python3-selenium "
                      "(scripts/install-deps.sh --test)")
        super().setUp()
        self.profile = tempfile.mkdtemp(prefix="tidings-chromium-")
        o = webdriver.ChromeOptions()
        o.binary_location = CHROMIUM
        # The flags keep Chromium off the (closed) network and root-safe.
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--user-data-dir=" + self.profile):
            o.add_argument(flag)
        o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.b = webdriver.Chrome(service=Service(CHROMEDRIVER), options=o)
        self.b.set_page_load_timeout(30)

    def tearDown(self):
        try:
            self.b.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
            super().tearDown()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def submit(self):
        """Clicks the page's submit button and waits for the next page."""
        # A mark on this page's window: gone once the next page is loaded.
        self.b.execute_script("window.tidingsOldPage = true")
        self.b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        def next_page(b):
            try:
                return b.execute_script("return !window.tidingsOldPage && "
                                        "document.readyState === 'complete'")
            except WebDriverException:  # between the two documents
                return False
        WebDriverWait(self.b, 20).until(next_page)

    def no_console_errors(self):
        # The public URL's host (https://tidings.test) does not resolve here:
        # a page's open pixel pointing there is not the page's error.
        errors = [e for e in self.b.get_log("browser") if e.get("level") == "SEVERE"
                  and "favicon.ico" not in e.get("message", "")
                  and not e.get("message", "").startswith(self.base + "/")]
        self.assertEqual(errors, [])

    def test_unsubscribe_page(self):
        self.ok("list", "create", "عملاء ليلى")
        self.ok("list", "create", "ลูกค้าของสมชาย")
        self.audience(["u@example.com", "v@example.com"])
        self.audience(["u@example.com"], lst="عملاء ليلى")
        self.audience(["u@example.com"], lst="ลูกค้าของสมชาย")
        _, msgs = self.send_campaign('<p>Hi</p><a href="{{unsubscribe_url}}">unsubscribe</a>')
        tok = self.urls(msgs["u@example.com"][1], "u")[0]
        self.serve()
        self.b.get(self.url("/u/" + tok))
        self.assertEqual(self.b.title, "Unsubscribe")
        body = self.b.find_element(By.TAG_NAME, "body").text
        self.assertIn("u@example.com", body)
        for name in ("L", "عملاء ليلى", "ลูกค้าของสมชาย"):
            self.assertIn(name, body)
        self.no_console_errors()
        # Only this campaign's list, not every one: the box stays unticked.
        self.submit()
        self.assertIn("unsubscribed", self.b.find_element(By.TAG_NAME, "body").text.lower())
        rows = dict(self.q("SELECT l.name, m.status FROM memberships m JOIN lists l"
                           " ON l.id = m.list_id JOIN subscribers s ON s.id = m.subscriber_id"
                           " WHERE s.email = 'u@example.com'"))
        self.assertEqual(rows, {"L": "unsubscribed", "عملاء ليلى": "confirmed",
                                "ลูกค้าของสมชาย": "confirmed"})
        self.assertEqual(self.q("SELECT m.status FROM memberships m JOIN subscribers s"
                                " ON s.id = m.subscriber_id WHERE s.email = 'v@example.com'"),
                         [("confirmed",)])
        self.no_console_errors()
        self.stop()

    def test_view_in_browser_and_preferences(self):
        self.ok("list", "create", "عملاء ليلى")
        self.audience(["p@example.com", "q@example.com"])
        self.audience(["p@example.com"], lst="عملاء ليلى")
        _, msgs = self.send_campaign(
            '<html><body><h1>Hello {{subscriber.first_name}}</h1>'
            '<a href="https://shop.example/x?u={{subscriber.id}}">shop</a>'
            '<a href="{{view_url}}">view</a> <a href="{{preferences_url}}">preferences</a>'
            '</body></html>')
        html = msgs["p@example.com"][1]
        view, prefs, opens = self.urls(html, "v")[0], self.urls(html, "p")[0], self.urls(html, "o")[0]
        self.serve()
        # The message as p got it: personalised, its links signed for p.
        self.b.get(self.url("/v/" + view))
        self.assertEqual(self.b.find_element(By.TAG_NAME, "h1").text, "Hello Name")
        hrefs = [a.get_attribute("href") for a in self.b.find_elements(By.TAG_NAME, "a")]
        self.assertTrue(hrefs[0].startswith(self.base + "/c/"), hrefs)
        self.assertEqual(hrefs[1], self.base + "/v/" + view)
        self.no_console_errors()
        # Tokens of another kind or altered: not found.
        for path in ("/v/" + opens, "/p/" + view, "/v/" + view[:-2], "/p/" + prefs + "A"):
            self.assertEqual(self.get(path)[0], 404, path)

        self.b.get(self.url("/p/" + prefs))
        boxes = self.b.find_elements(By.CSS_SELECTOR, "input[type=checkbox]")
        self.assertEqual([b.is_selected() for b in boxes], [True, True])
        labels = self.b.find_element(By.TAG_NAME, "fieldset").text
        self.assertIn("عملاء ليلى", labels)
        q = ("SELECT l.name, m.status FROM memberships m JOIN lists l ON l.id = m.list_id"
             " JOIN subscribers s ON s.id = m.subscriber_id WHERE s.email = 'p@example.com'")
        box = self.b.find_element(By.CSS_SELECTOR, 'input[name="list:عملاء ليلى"]')
        box.click()
        self.submit()
        self.assertIn("Saved.", self.b.find_element(By.TAG_NAME, "body").text)
        self.assertEqual(dict(self.q(q)), {"L": "confirmed", "عملاء ليلى": "unsubscribed"})
        # Back again: ticked, and subscribed once more.
        self.b.find_element(By.CSS_SELECTOR, 'input[name="list:عملاء ليلى"]').click()
        self.submit()
        self.assertEqual(dict(self.q(q)), {"L": "confirmed", "عملاء ليلى": "confirmed"})
        self.assertEqual([k for (k,) in self.q("SELECT kind FROM events WHERE data ="
                                               " 'preferences' ORDER BY id")],
                         ["unsubscribe", "signup"])
        self.assertEqual(self.q("SELECT m.status FROM memberships m JOIN subscribers s"
                                " ON s.id = m.subscriber_id WHERE s.email = 'q@example.com'"),
                         [("confirmed",)])
        self.no_console_errors()
        self.stop()

    def test_signup_and_confirm(self):
        self.ok("list", "create", "Open", "--visibility", "public")
        self.ok("list", "create", "Double", "--visibility", "public", "--optin", "double")
        self.serve()
        xss = '<script>document.title="owned"</script><img src=x onerror="document.title=\'owned\'">'
        self.b.get(self.url("/s/Open"))
        self.b.find_element(By.NAME, "email").send_keys("x@example.com")
        self.b.find_element(By.NAME, "name").send_keys(xss)
        self.submit()
        self.assertNotEqual(self.b.title, "owned")
        self.assertEqual(self.b.find_elements(By.CSS_SELECTOR, "body script, body img"), [])
        self.assertEqual(self.q("SELECT s.name, m.status FROM memberships m JOIN subscribers s"
                                " ON s.id = m.subscriber_id JOIN lists l ON l.id = m.list_id"
                                " WHERE l.name = 'Open'"), [(xss, "confirmed")])
        self.no_console_errors()

        # The browser's own check: an address it finds invalid is not sent.
        self.b.get(self.url("/s/Double"))
        self.b.find_element(By.NAME, "email").send_keys("not an address")
        self.b.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        field = self.b.find_element(By.NAME, "email")  # still this page: not sent
        self.assertFalse(self.b.execute_script("return arguments[0].validity.valid", field))
        self.assertEqual(self.q("SELECT count(*) FROM subscribers"), [(1,)])

        self.b.get(self.url("/s/Double"))
        self.b.find_element(By.NAME, "email").send_keys("d@example.com")
        self.b.find_element(By.NAME, "name").send_keys("ليلى حداد")
        self.submit()
        q = ("SELECT m.status FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id"
             " JOIN lists l ON l.id = m.list_id WHERE s.email = 'd@example.com'")
        self.assertEqual(self.q(q), [("unconfirmed",)])
        mails = glob.glob(os.path.join(self.maildir, "new", "*"))
        self.assertEqual(len(mails), 1)
        with open(mails[0], "rb") as f:
            m = email.message_from_binary_file(f, policy=email.policy.default)
        link = re.search(re.escape(self.base) + r"(/confirm/[A-Za-z0-9_-]+)",
                         m.get_body(("plain",)).get_content()).group(1)
        self.b.get(self.url(link))  # opening the link alone confirms nothing
        self.assertEqual(self.q(q), [("unconfirmed",)])
        self.submit()
        self.assertEqual(self.q(q), [("confirmed",)])
        self.assertEqual(self.q("SELECT name FROM subscribers WHERE email = 'd@example.com'"),
                         [("ليلى حداد",)])
        self.no_console_errors()
        self.stop()


def load_tests(loader, tests, pattern):
    """Only this file's tests, not the ones Browser inherits from Http."""
    names = sorted(n for n in Browser.__dict__ if n.startswith("test_"))
    return unittest.TestSuite(Browser(n) for n in names)


if __name__ == "__main__":
    unittest.main(verbosity=2)
