/* render: messages/s on one core for a campaign's whole per-recipient
 * pipeline (issue 3, item 8), beside OpenSSL's raw signing rate measured in
 * the same run (`openssl speed -seconds 3 rsa2048 ed25519` before the first
 * round of measurements and after each; a round's ratio is to the mean of
 * the two around it, the verdict on the median round), the reference of
 * the targets. Ed25519 signatures are made with libsodium, about
 * twice as fast here as OpenSSL 3.0's; its raw rate is printed too, with the
 * ratio to it.
 *
 * Per recipient, exactly as a campaign does it: the context JSON
 * (msg_context_data: subscriber, list, campaign, sender, signed
 * unsubscribe/preferences/view/open URLs), the ~20 KB HTML template with 10
 * personalised fields and 20 {{#track}} links (each a signed click URL), a
 * text template with the same links, the subject template, the VERP return
 * path, msg_build (From with a display name, To with the recipient's name,
 * List-Unsubscribe https + mailto, List-Id, Feedback-ID) and dkim_sign. The
 * templates, the envelope and the signers are made once. Every recipient is
 * different (id, e-mail, name in Latin, Arabic or Thai script, attributes),
 * so nothing carries over from one to the next.
 *
 * Before timing, one signed message per algorithm set is checked with
 * dkimpy and Python's email parser (/usr/bin/python3); the bench fails if
 * either refuses it.
 *
 * Rates are per CPU second of this process (CLOCK_PROCESS_CPUTIME_ID), as
 * `openssl speed` reports per user CPU second; wall-clock rates are printed
 * beside them. Run: bench/render [--seconds S] [--rounds N] [--only MODE]
 * [--no-openssl] (MODE: none, ed25519, rsa, both), or make bench-render. */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "campaign/context.h"
#include "mime/dkim.h"
#include "mime/msg.h"
#include "tmpl/tmpl.h"
#include "util/buf.h"

#define BASE_URL "https://news.example.com"
#define NLINKS 20

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The per-stage breakdown uses the monotonic clock: it is read in the vDSO
 * (about 20 ns), where a CPU clock is a system call (about 600 ns here, 4%
 * of a message if read at every stage). */
static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const td_error *e)
{
    fprintf(stderr, "bench/render: %s: %s\n", what, e ? e->msg : "failed");
    exit(1);
}

/* ---- the campaign ------------------------------------------------------ */

static const char *const products[NLINKS] = {
    "linen-shirt",   "canvas-tote",   "desk-lamp",     "tea-sampler",  "wool-scarf",
    "notebook-a5",   "fountain-pen",  "travel-mug",    "yoga-mat",     "plant-pot",
    "headphones",    "rain-jacket",   "chef-knife",    "board-game",   "sunglasses",
    "running-shoes", "water-bottle",  "photo-frame",   "candle-set",   "gift-card",
};

/* The HTML template: a typical table-layout newsletter. 10 personalised
 * fields (subscriber first_name, name, email, id, attributes.city,
 * attributes.plan, attributes.company, attributes.points, sender.name,
 * list.name) plus the four signed URLs, and 20 tracked product links whose
 * target carries the subscriber's id and plan. Static copy pads it to about
 * 20 KB of output. */
static void html_template(buf *t)
{
    buf_puts(t,
             "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             "<meta name=\"viewport\" content=\"width=device-width\">\n"
             "<title>{{campaign.subject}}</title>\n"
             "<style>body{margin:0;padding:0;background:#f4f4f4}"
             "td{font-family:Arial,sans-serif;font-size:14px;color:#333}</style>\n"
             "</head>\n<body>\n"
             "<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\">\n"
             "<tr><td align=\"center\" style=\"padding:8px;font-size:11px\">"
             "<a href=\"{{view_url}}\">View this e-mail in your browser</a></td></tr>\n"
             "<tr><td style=\"padding:24px\">\n"
             "<h1 style=\"font-size:22px\">Hello {{subscriber.first_name}},</h1>\n"
             "<p>This is {{sender.name}} from {{list.name}}. As a {{subscriber.attributes.plan}} "
             "member in {{subscriber.attributes.city}} you have "
             "<b>{{subscriber.attributes.points}}</b> points to spend this month.</p>\n"
             "<p>We picked these for {{subscriber.attributes.company}}:</p>\n"
             "</td></tr>\n");
    for (int i = 0; i < NLINKS; i++) {
        buf_printf(t,
                   "<tr><td style=\"padding:12px 24px;border-top:1px solid #e0e0e0\">\n"
                   "<table role=\"presentation\" width=\"100%%\"><tr>\n"
                   "<td width=\"120\"><img src=\"https://cdn.shop.example/img/%s.jpg\" "
                   "width=\"120\" height=\"120\" alt=\"%s\" style=\"display:block\"></td>\n"
                   "<td style=\"padding-left:16px\"><h2 style=\"font-size:16px;margin:0 0 8px\">"
                   "Product %d: %s</h2>\n"
                   "<p style=\"margin:0 0 8px\">Hand-picked for the "
                   "{{subscriber.attributes.plan}} plan, shipped free to your door within three "
                   "working days, returns accepted for thirty days.</p>\n"
                   "<a href=\"{{#track}}https://shop.example/p/%s?ref={{subscriber.id}}&amp;"
                   "plan={{subscriber.attributes.plan}}&amp;utm_source=newsletter&amp;"
                   "utm_campaign={{campaign.id}}{{/track}}\" style=\"color:#0a66c2\">"
                   "See it in the shop</a>\n"
                   "</td></tr></table>\n</td></tr>\n",
                   products[i], products[i], i + 1, products[i], products[i]);
    }
    for (int i = 0; i < 10; i++)
        buf_puts(t, "<tr><td style=\"padding:12px 24px;font-size:13px;line-height:20px\">"
                    "Our spring collection arrives next week: linen, canvas and recycled wool, "
                    "made in small workshops we visit every year. Every order plants a tree, "
                    "and the packaging is paper only, printed with vegetable inks.</td></tr>\n");
    buf_puts(t,
             "<tr><td style=\"padding:24px;font-size:11px;color:#777\">\n"
             "You receive this at {{subscriber.email}} (member {{subscriber.id}}) because you "
             "subscribed to {{list.name}}.<br>\n"
             "<a href=\"{{preferences_url}}\">Preferences</a> &middot; "
             "<a href=\"{{unsubscribe_url}}\">Unsubscribe</a>\n"
             "</td></tr>\n</table>\n"
             "<img src=\"{{open_url}}\" width=\"1\" height=\"1\" alt=\"\">\n"
             "</body>\n</html>\n");
}

/* The text version: the same fields and the same 20 tracked links. */
static void text_template(buf *t)
{
    buf_puts(t, "Hello {{subscriber.first_name}},\n\n"
                "This is {{sender.name}} from {{list.name}}. As a "
                "{{subscriber.attributes.plan}} member in {{subscriber.attributes.city}} you "
                "have {{subscriber.attributes.points}} points to spend this month.\n\n"
                "We picked these for {{subscriber.attributes.company}}:\n\n");
    for (int i = 0; i < NLINKS; i++)
        buf_printf(t,
                   "* Product %d: %s\n  {{#track}}https://shop.example/p/%s?ref={{subscriber.id}}"
                   "&plan={{subscriber.attributes.plan}}&utm_source=newsletter&"
                   "utm_campaign={{campaign.id}}{{/track}}\n\n",
                   i + 1, products[i], products[i]);
    buf_puts(t, "You receive this at {{subscriber.email}} (member {{subscriber.id}}) because "
                "you subscribed to {{list.name}}.\n"
                "View in your browser: {{view_url}}\n"
                "Preferences: {{preferences_url}}\n"
                "Unsubscribe: {{unsubscribe_url}}\n");
}

#define SUBJECT_TMPL "{{subscriber.first_name}}, your {{subscriber.attributes.plan}} picks for April"

/* ---- recipients ---------------------------------------------------------- */

static const char *const names[] = {
    "Jane Doe",
    "Zoë Müller",
    "\xd9\x85\xd8\xb1\xd9\x8a\xd9\x85 \xd8\xa7\xd9\x84\xd8\xb9\xd9\x84\xd9\x8a",             /* مريم العلي */
    "\xe0\xb8\xaa\xe0\xb8\xa1\xe0\xb8\x8a\xe0\xb8\xb2\xe0\xb8\xa2 \xe0\xb9\x83\xe0\xb8\x88\xe0\xb8\x94\xe0\xb8\xb5", /* สมชาย ใจดี */
    "Li Wei",
    "Ahmed Hassan",
    "\xd8\xb9\xd9\x85\xd8\xb1 \xd8\xae\xd8\xa7\xd9\x84\xd8\xaf",                             /* عمر خالد */
    "\xe0\xb8\x99\xe0\xb8\xb4\xe0\xb8\x94\xe0\xb8\xb2 \xe0\xb8\xa8\xe0\xb8\xa3\xe0\xb8\xb5", /* นิดา ศรี */
    "Olivia Brown-Smith",
    "José García",
};
#define NNAMES (sizeof names / sizeof names[0])
static const char *const cities[] = {"Lisbon", "Cairo", "Bangkok", "Montréal", "Oslo", "Dubai",
                                     "Chiang Mai", "Nairobi", "Lyon"};
static const char *const plans[] = {"basic", "plus", "premium", "family", "business"};
static const char *const companies[] = {"Acme & Sons", "Globex", "Initech", "Umbrella <Ltd>",
                                        "Stark \"Industries\"", "Wayne Enterprises", "Hooli"};
#define PICK(a, i) (a[(size_t)(i) % (sizeof a / sizeof a[0])])

/* Recipient i: the record the store would hand the sender. */
typedef struct recipient {
    sub_rec s;
    char email[64], attribs[256];
} recipient;

static void recipient_make(recipient *r, uint64_t i)
{
    memset(&r->s, 0, sizeof r->s);
    r->s.id = (int64_t)(100000 + i);
    snprintf(r->email, sizeof r->email, "user%" PRIu64 "@mail%u.example.org", 100000 + i,
             (unsigned)(i % 97));
    snprintf(r->attribs, sizeof r->attribs,
             "{\"city\":\"%s\",\"company\":\"%s\",\"plan\":\"%s\",\"points\":%" PRIu64 "}",
             PICK(cities, i / 3), PICK(companies, i / 7),
             PICK(plans, i / 2),  (i * 37) % 5000);
    /* JSON needs the quotes in a company name escaped. */
    if (strstr(r->attribs, "\"Industries\""))
        snprintf(r->attribs, sizeof r->attribs,
                 "{\"city\":\"%s\",\"company\":\"Stark \\\"Industries\\\"\",\"plan\":\"%s\","
                 "\"points\":%" PRIu64 "}",
                 PICK(cities, i / 3), PICK(plans, i / 2), (i * 37) % 5000);
    r->s.email = r->email;
    r->s.name = (char *)PICK(names, i);
    r->s.attribs = r->attribs;
    r->s.status = "enabled";
    r->s.timezone = "Europe/Lisbon";
    r->s.locale = "en";
}

/* ---- the pipeline -------------------------------------------------------- */

typedef struct campaign {
    msg_context mc;
    tmpl *html, *text, *subject;
    msg_envelope *env;
    buf h, t, subj, msg, sig, to;
    double stage[6]; /* seconds in: context, html, text+subject, build, sign, free */
} campaign;

enum { ST_CONTEXT, ST_HTML, ST_TEXT, ST_BUILD, ST_SIGN, ST_FREE, ST_N };
static const char *const stage_names[ST_N] = {"context", "html", "text+subj", "msg_build",
                                              "dkim_sign", "free"};

static void campaign_init(campaign *c)
{
    memset(c, 0, sizeof *c);
    c->mc.base_url = BASE_URL;
    track_key("bench secret, not a real one", c->mc.key);
    c->mc.campaign_id = 42;
    c->mc.campaign_name = "April picks";
    c->mc.subject = "Your April picks";
    c->mc.list_id = 7;
    c->mc.list_name = "Shop news";
    c->mc.sender_name = "Maya Levin";
    c->mc.sender_email = "maya@example.com";
    msg_context_memo_on(&c->mc); /* as a campaign's builders do */

    td_error e;
    buf src;
    buf_init(&src, BUF_NOCAP);
    html_template(&src);
    if (tmpl_compile(src.data, src.len, &c->html, &e))
        die("the HTML template", &e);
    buf_reset(&src);
    text_template(&src);
    if (tmpl_compile(src.data, src.len, &c->text, &e))
        die("the text template", &e);
    if (tmpl_compile(SUBJECT_TMPL, strlen(SUBJECT_TMPL), &c->subject, &e))
        die("the subject template", &e);
    buf_free(&src);

    msg_envelope_spec es = {.from = "Maya Levin <maya@example.com>",
                            .list_id = "shop-news.example.com",
                            .list_name = "Shop news",
                            .feedback_id = "42:7:newsletter:tidings"};
    if (msg_envelope_new(&es, &c->env, &e))
        die("msg_envelope_new", &e);
    buf_init(&c->h, BUF_NOCAP);
    buf_init(&c->t, BUF_NOCAP);
    buf_init(&c->subj, BUF_NOCAP);
    buf_init(&c->msg, BUF_NOCAP);
    buf_init(&c->sig, BUF_NOCAP);
    buf_init(&c->to, BUF_NOCAP);
}

static void campaign_free(campaign *c)
{
    tmpl_free(c->html);
    tmpl_free(c->text);
    tmpl_free(c->subject);
    msg_context_memo_off(&c->mc);
    msg_envelope_free(c->env);
    buf_free(&c->h);
    buf_free(&c->t);
    buf_free(&c->subj);
    buf_free(&c->msg);
    buf_free(&c->sig);
    buf_free(&c->to);
}

/* One recipient's message: c->sig then c->msg (the signature fields go in
 * front). Per-stage times are added to c->stage. */
static void message(campaign *c, dkim_signer *const *signers, size_t nsigners, uint64_t i)
{
    td_error e;
    double t0 = mono_now(), t1;
    recipient r;
    recipient_make(&r, i);
    json_t *data = msg_context_data(&c->mc, &r.s, &e);
    if (!data)
        die("msg_context_data", &e);
    t1 = mono_now();
    c->stage[ST_CONTEXT] += t1 - t0;
    t0 = t1;

    tmpl_helper hh = msg_context_helper(&c->mc, true);
    buf_reset(&c->h);
    if (tmpl_render_with(c->html, data, NULL, NULL, &hh, 1, &c->h, &e))
        die("rendering the HTML", &e);
    t1 = mono_now();
    c->stage[ST_HTML] += t1 - t0;
    t0 = t1;

    tmpl_helper th = msg_context_helper(&c->mc, false);
    buf_reset(&c->t);
    buf_reset(&c->subj);
    if (tmpl_render_with(c->text, data, NULL, NULL, &th, 1, &c->t, &e) ||
        tmpl_render(c->subject, data, NULL, NULL, &c->subj, &e))
        die("rendering the text or subject", &e);
    size_t text_len = msg_text_unescape(c->t.data, c->t.len);
    size_t subj_len = msg_text_unescape(c->subj.data, c->subj.len);
    t1 = mono_now();
    c->stage[ST_TEXT] += t1 - t0;
    t0 = t1;

    char verp[ADDR_MAX + 3], token[24], mailto[96];
    snprintf(token, sizeof token, "s%" PRId64, r.s.id);
    if (msg_verp_build("bounces", "c42", token, "example.com", verp, &e))
        die("msg_verp_build", &e);
    snprintf(mailto, sizeof mailto, "unsubscribe+c42.%s@example.com", token);
    buf_reset(&c->to);
    buf_printf(&c->to, "%s <%s>", r.s.name, r.s.email);
    msg_spec ms = {
        .to = c->to.data,
        .subject = c->subj.data,
        .subject_len = subj_len,
        .html = c->h.data,
        .html_len = c->h.len,
        .text = c->t.data,
        .text_len = text_len,
        .unsubscribe_url = json_string_value(json_object_get(data, "unsubscribe_url")),
        .unsubscribe_mailto = mailto,
        .return_path = verp,
    };
    msg_info info;
    buf_reset(&c->msg);
    if (msg_build(c->env, &ms, &c->msg, &info, &e))
        die("msg_build", &e);
    t1 = mono_now();
    c->stage[ST_BUILD] += t1 - t0;
    t0 = t1;

    buf_reset(&c->sig);
    if (nsigners && dkim_sign(signers, nsigners, c->msg.data, c->msg.len, (int64_t)time(NULL),
                              &c->sig, &e))
        die("dkim_sign", &e);
    t1 = mono_now();
    c->stage[ST_SIGN] += t1 - t0;
    t0 = t1;

    json_decref(data);
    c->stage[ST_FREE] += mono_now() - t0;
}

/* ---- the check before timing --------------------------------------------- */

static const char verify_py[] =
    "import sys, email, email.policy, dkim\n"
    "path, nsig, subject, to_name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]\n"
    "txt = dict(a.split('=', 1) for a in sys.argv[5:])\n"
    "raw = open(path, 'rb').read()\n"
    "def dns(name, timeout=5):\n"
    "    sel = name.decode().split('.')[0]\n"
    "    return txt[sel].encode()\n"
    "d = dkim.DKIM(raw)\n"
    "for i in range(nsig):\n"
    "    if not d.verify(idx=i, dnsfunc=dns):\n"
    "        sys.exit('signature %d does not verify' % i)\n"
    "m = email.message_from_bytes(raw, policy=email.policy.default)\n"
    "if m['Subject'] != subject: sys.exit('Subject %r, expected %r' % (m['Subject'], subject))\n"
    "if m['To'].addresses[0].display_name != to_name: sys.exit('To is %r' % m['To'])\n"
    "if m['From'].addresses[0].display_name != 'Maya Levin': sys.exit('From is %r' % m['From'])\n"
    "if len(m.get_all('DKIM-Signature') or []) != nsig: sys.exit('wrong signature count')\n"
    "parts = {p.get_content_type(): p.get_content() for p in m.walk() if not p.is_multipart()}\n"
    "if set(parts) != {'text/plain', 'text/html'}: sys.exit('parts %r' % list(parts))\n"
    "if to_name.split()[0] not in parts['text/plain'] or to_name.split()[0] not in "
    "parts['text/html']: sys.exit('the name is not in the body')\n"
    "if parts['text/html'].count('" BASE_URL "/c/') != 20 or "
    "parts['text/plain'].count('" BASE_URL "/c/') != 20: sys.exit('not 20 tracked links')\n";

/* check writes recipient i's message signed by signers[0..n) to a temporary
 * file and has dkimpy verify every signature and Python's email package read
 * it back; exits the bench when either refuses. */
static void check(campaign *c, dkim_signer *const *signers, size_t n, const char *const *sel,
                  const char *const *txt, uint64_t i, const char *label)
{
    message(c, signers, n, i);
    char path[] = "/tmp/tidings-bench-render-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "wb");
    if (!f || fwrite(c->sig.data ? c->sig.data : "", 1, c->sig.len, f) != c->sig.len ||
        fwrite(c->msg.data, 1, c->msg.len, f) != c->msg.len || fclose(f))
        die("writing the message to check", NULL);
    char spy[] = "/tmp/tidings-bench-render-py-XXXXXX";
    fd = mkstemp(spy);
    f = fd < 0 ? NULL : fdopen(fd, "w");
    if (!f || fputs(verify_py, f) < 0 || fclose(f))
        die("writing the check script", NULL);

    recipient r;
    recipient_make(&r, i);
    /* The arguments are ours (no quote inside), so single quotes do. */
    buf cmd;
    buf_init(&cmd, BUF_NOCAP);
    buf_printf(&cmd, "/usr/bin/python3 %s %s %zu '%.*s' '%s'", spy, path, n,
               (int)msg_text_unescape(c->subj.data, c->subj.len), c->subj.data, r.s.name);
    for (size_t k = 0; k < n; k++)
        buf_printf(&cmd, " '%s=%s'", sel[k], txt[k]);
    int rc = system(cmd.data);
    buf_free(&cmd);
    unlink(spy);
    if (rc != 0) {
        fprintf(stderr, "bench/render: the %s message does not check out (kept in %s)\n", label,
                path);
        exit(1);
    }
    unlink(path);
    printf("checked: %-8s %zu bytes, %s, %zu signature(s) verified by dkimpy\n", label,
           c->sig.len + c->msg.len, r.s.name, n);
}

/* ---- measurement --------------------------------------------------------- */

typedef struct result {
    double cpu_rate, wall_rate, bytes;
    double stage_us[ST_N];
} result;

static uint64_t next_recipient;

static result measure(campaign *c, dkim_signer *const *signers, size_t n, double seconds)
{
    memset(c->stage, 0, sizeof c->stage);
    uint64_t count = 0;
    double bytes = 0;
    double c0 = cpu_now(), w0 = mono_now(), ct;
    do {
        for (int k = 0; k < 16; k++) {
            message(c, signers, n, next_recipient++);
            bytes += (double)(c->sig.len + c->msg.len);
        }
        count += 16;
    } while ((ct = cpu_now() - c0) < seconds);
    double wt = mono_now() - w0;
    result r = {.cpu_rate = (double)count / ct,
                .wall_rate = (double)count / wt,
                .bytes = bytes / (double)count};
    /* Each stage's share of the wall time, applied to the CPU time: on a
     * shared machine a preemption lands in stages in proportion to their
     * length, so the shares hold where the wall-clock figures do not. */
    double staged = 0;
    for (int s = 0; s < ST_N; s++)
        staged += c->stage[s];
    for (int s = 0; s < ST_N; s++)
        r.stage_us[s] = staged > 0 ? 1e6 * ct / (double)count * c->stage[s] / staged : 0;
    return r;
}

/* openssl speed's sign/s for rsa2048 and ed25519, from its summary lines. */
static int openssl_speed(double *rsa, double *ed)
{
    FILE *p = popen("openssl speed -seconds 3 rsa2048 ed25519 2>/dev/null", "r");
    if (!p)
        return -1;
    char line[512];
    *rsa = *ed = 0;
    while (fgets(line, sizeof line, p)) {
        double a, b, sign, verify;
        if (sscanf(line, "rsa 2048 bits %lfs %lfs %lf %lf", &a, &b, &sign, &verify) == 4)
            *rsa = sign;
        char *q = strstr(line, "EdDSA (Ed25519)");
        if (q && sscanf(q + 15, " %lfs %lfs %lf %lf", &a, &b, &sign, &verify) == 4)
            *ed = sign;
    }
    return pclose(p) == 0 && *rsa > 0 && *ed > 0 ? 0 : -1;
}

/* The raw rate of the Ed25519 signer the platform uses (libsodium, see
 * src/mime/dkim.c), over a 32-byte digest as DKIM signs, per CPU second:
 * printed beside openssl's so the ratio to each can be read. */
static double sodium_ed25519_rate(double seconds)
{
    unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
    unsigned char d[32] = {1}, sig[crypto_sign_BYTES] = {0};
    if (sodium_init() < 0 || crypto_sign_ed25519_keypair(pk, sk))
        return 0;
    long n = 0;
    double t0 = cpu_now(), t;
    do {
        for (int k = 0; k < 100; k++, n++) {
            d[k % 32] ^= sig[k % 64]; /* each digest different */
            crypto_sign_ed25519_detached(sig, NULL, d, sizeof d, sk);
        }
    } while ((t = cpu_now() - t0) < seconds);
    sodium_memzero(sk, sizeof sk);
    return (double)n / t;
}

#define MAX_ROUNDS 9

/* median of v[0..n), n <= MAX_ROUNDS (v is left as it was) */
static double median(const double *v, int n)
{
    double w[MAX_ROUNDS];
    memcpy(w, v, (size_t)n * sizeof *w);
    for (int i = 1; i < n; i++) /* insertion sort: at most 9 values */
        for (int j = i; j > 0 && w[j - 1] > w[j]; j--) {
            double x = w[j];
            w[j] = w[j - 1];
            w[j - 1] = x;
        }
    return n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
}

/* The raw signing rate bounding mode m (1 ed25519, 2 rsa, 3 both: one
 * signature of each per message) from one openssl speed run. */
static double signing_limit(int m, double rsa, double ed)
{
    return m == 1 ? ed : m == 2 ? rsa : 1 / (1 / rsa + 1 / ed);
}

static void usage(void)
{
    fputs("usage: bench/render [--seconds S] [--rounds N (1-9, default 3)] "
          "[--only none|ed25519|rsa|both] [--no-openssl]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    const char *only = NULL;
    int with_openssl = 1, rounds = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--no-openssl"))
            with_openssl = 0;
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else
            usage();
    }
    if (seconds <= 0 || rounds < 1 || rounds > MAX_ROUNDS)
        usage();
    setvbuf(stdout, NULL, _IOLBF, 0);

    td_error e;
    char *pem_r, *txt_r, *pem_e, *txt_e;
    dkim_signer *rs, *es;
    if (dkim_keygen(DKIM_RSA_SHA256, &pem_r, &txt_r, &e) ||
        dkim_keygen(DKIM_ED25519_SHA256, &pem_e, &txt_e, &e) ||
        dkim_signer_new("example.com", "r2024", pem_r, &rs, &e) ||
        dkim_signer_new("example.com", "e2024", pem_e, &es, &e))
        die("DKIM keys", &e);

    campaign c;
    campaign_init(&c);

    struct mode {
        const char *name, *label;
        dkim_signer *s[2];
        size_t n;
        const char *sel[2], *txt[2];
    } modes[] = {
        {"none", "no signature", {NULL, NULL}, 0, {NULL, NULL}, {NULL, NULL}},
        {"ed25519", "ed25519-sha256", {es, NULL}, 1, {"e2024", NULL}, {txt_e, NULL}},
        {"rsa", "rsa-sha256 (2048)", {rs, NULL}, 1, {"r2024", NULL}, {txt_r, NULL}},
        {"both", "rsa + ed25519", {rs, es}, 2, {"r2024", "e2024"}, {txt_r, txt_e}},
    };
    enum { NMODES = sizeof modes / sizeof modes[0] };
    if (only) {
        int found = 0;
        for (int m = 0; m < NMODES; m++)
            found |= !strcmp(only, modes[m].name);
        if (!found)
            usage();
    }

    /* Recipients 2 and 3 have Arabic and Thai names (and so subjects). */
    check(&c, NULL, 0, NULL, NULL, 0, "unsigned");
    check(&c, modes[1].s, 1, modes[1].sel, modes[1].txt, 2, "ed25519");
    check(&c, modes[2].s, 1, modes[2].sel, modes[2].txt, 3, "rsa");
    check(&c, modes[3].s, 2, modes[3].sel, modes[3].txt, 7, "both");
    message(&c, NULL, 0, 1);
    printf("message: %zu bytes (HTML part %zu bytes, text %zu) before signing; "
           "%.0f CPU s per measurement, one core\n\n",
           c.msg.len, c.h.len, c.t.len, seconds);

    /* Warm up (caches, the allocator's arenas, the CPU's clock) so the
     * first mode measured is not the slowest for no reason of its own. */
    for (double w0 = cpu_now(); cpu_now() - w0 < 0.5;)
        for (int k = 0; k < 16; k++)
            message(&c, modes[3].s, 2, next_recipient++);

    /* Rounds of the measurements, with openssl speed before the first and
     * after each: on a shared machine openssl's own rate drifts by several
     * percent within a minute, so each round is compared with the mean of
     * the two runs around it (as bench/send brackets its sends with
     * smtp-source), and the verdict is on the median round. */
    double orsa[MAX_ROUNDS + 1], oed[MAX_ROUNDS + 1];
    result res[MAX_ROUNDS][NMODES];
    memset(res, 0, sizeof res);
    if (with_openssl && openssl_speed(&orsa[0], &oed[0])) {
        fprintf(stderr, "bench/render: could not run or read `openssl speed`\n");
        return 1;
    }
    for (int k = 0; k < rounds; k++) {
        if (rounds > 1)
            printf("round %d of %d\n", k + 1, rounds);
        printf("%-20s %10s %10s %7s", "", "msg/s cpu", "msg/s wall", "us/msg");
        for (int s = 0; s < ST_N; s++)
            printf(" %9s", stage_names[s]);
        printf("\n");
        for (int m = 0; m < NMODES; m++) {
            if (only && strcmp(only, modes[m].name))
                continue;
            result *r = &res[k][m];
            *r = measure(&c, modes[m].s, modes[m].n, seconds);
            printf("%-20s %10.0f %10.0f %7.1f", modes[m].label, r->cpu_rate, r->wall_rate,
                   1e6 / r->cpu_rate);
            for (int s = 0; s < ST_N; s++)
                printf(" %9.1f", r->stage_us[s]);
            printf("\n");
        }
        if (with_openssl && openssl_speed(&orsa[k + 1], &oed[k + 1])) {
            fprintf(stderr, "bench/render: could not run or read `openssl speed`\n");
            return 1;
        }
    }
    printf("(stage columns: us of CPU per message, split by each stage's share of the wall "
           "time)\n");

    if (with_openssl) {
        double sed = sodium_ed25519_rate(3.0);
        printf("\nopenssl speed -seconds 3 rsa2048 ed25519 (sign/s per CPU second), before "
               "round 1 and after each round:\n  rsa2048");
        for (int k = 0; k <= rounds; k++)
            printf(" %.0f", orsa[k]);
        printf("\n  ed25519");
        for (int k = 0; k <= rounds; k++)
            printf(" %.0f", oed[k]);
        printf("\nlibsodium crypto_sign_ed25519_detached, 3 CPU s (the ed25519 signer used): "
               "%.0f/s (%.1f us)\n\n",
               sed, sed > 0 ? 1e6 / sed : 0);
        printf("%-20s %10s %10s  %-24s %8s %s\n", "", "msg/s", "openssl/s", "ratio per round",
               "median", "target");
        struct {
            int m;
            double target;
        } t[] = {{1, 0.50}, {2, 0.80}, {3, 0}};
        for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
            int m = t[i].m;
            if (res[0][m].cpu_rate == 0)
                continue;
            double ratio[MAX_ROUNDS], rate[MAX_ROUNDS], limit[MAX_ROUNDS];
            char per[64] = "";
            for (int k = 0; k < rounds; k++) {
                limit[k] = (signing_limit(m, orsa[k], oed[k]) +
                            signing_limit(m, orsa[k + 1], oed[k + 1])) / 2;
                rate[k] = res[k][m].cpu_rate;
                ratio[k] = rate[k] / limit[k];
                size_t used = strlen(per);
                snprintf(per + used, sizeof per - used, "%s%.1f%%", k ? " " : "", 100 * ratio[k]);
            }
            double med = median(ratio, rounds);
            printf("%-20s %10.0f %10.0f  %-24s %7.1f%%", modes[m].label, median(rate, rounds),
                   median(limit, rounds), per, 100 * med);
            if (t[i].target > 0)
                printf(" %5.0f%% %s\n", 100 * t[i].target, med >= t[i].target ? "met" : "MISSED");
            else
                printf("   (no target)\n");
        }
        if (res[0][1].cpu_rate > 0 && sed > 0) {
            double rate[MAX_ROUNDS];
            for (int k = 0; k < rounds; k++)
                rate[k] = res[k][1].cpu_rate;
            printf("%-20s %10.0f %10.0f  %-24s %7.1f%%   (to libsodium's raw rate; no target)\n",
                   modes[1].label, median(rate, rounds), sed, "",
                   100 * median(rate, rounds) / sed);
        }
    }

    campaign_free(&c);
    dkim_signer_free(rs);
    dkim_signer_free(es);
    free(pem_r);
    free(txt_r);
    free(pem_e);
    free(txt_e);
    return 0;
}
