/* pool_send: the end-to-end tests' driver for the relay pool, acting as the
 * delivery worker will: it submits one message per recipient to a pool of
 * relays, takes the results, applies the retry policy (backoff_classify:
 * retry later, retry now on another relay, failed, unknown) and prints one
 * JSON line per result and a summary.
 *
 *   pool_send --relay URL [--conns K] [--rate R] [--relay URL ...]
 *             [--count N] [--domains a.test,b.test] [--rcpt ADDR]...
 *             [--domain-limit DOMAIN=PER_MIN]... [--global PER_S]
 *             [--timeout MS] [--retry-ms MS] [--max-attempts N]
 *             [--max-age MS] [--down-ms MS] [--idle MS] [--size BYTES]
 *             [--deadline MS]
 *
 * --count N sends to u<i>@<domain> with the domains taken in turn; each
 * --rcpt adds one message to that address. --conns and --rate apply to the
 * relay named before them. Exit status: 0 when it ran, 2 on bad arguments. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/backoff.h"
#include "delivery/pool.h"
#include "delivery/ratelimit.h"
#include "util/buf.h"
#include "util/xalloc.h"

enum { J_POOL, J_LATER, J_FINAL };

typedef struct job {
    size_t i;
    char *rcpt;
    const char *rcpts[1];
    smtp_msg msg;
    char *data;
    unsigned attempts;
    int64_t first, retry_at;
    int state, avoid;
} job;

static void emit(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
    puts(s ? s : "{\"event\":\"unprintable\"}");
    fflush(stdout);
    free(s);
    json_decref(o);
}

static json_t *str(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("<invalid utf-8>");
}

static void usage(void)
{
    fprintf(stderr, "usage: pool_send --relay URL [--conns K] [--rate R] ... [--count N] "
                    "[--domains a,b] [--rcpt A]... [--domain-limit D=N]... [--global R] "
                    "[--timeout MS] [--retry-ms MS] [--max-attempts N] [--max-age MS] "
                    "[--down-ms MS] [--idle MS] [--size B] [--deadline MS] [--hold 0|1]\n");
    exit(2);
}

static char *make_message(size_t i, const char *to, size_t size, size_t *len)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_printf(&b,
               "From: <sender@example.com>\r\nTo: <%s>\r\nSubject: pool message %zu\r\n"
               "Message-ID: <%zu.pool-send@tidings.test>\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
               to, i, i);
    size_t start = b.len;
    do
        buf_printf(&b, "message %zu: the quick brown fox jumps over the lazy dog\r\n", i);
    while (b.len - start < size);
    *len = b.len;
    char *out = buf_steal(&b);
    buf_free(&b);
    return out;
}

static bool other_up(const pool *p, int relay)
{
    for (int i = 0; i < pool_relay_count(p); i++)
        if (i != relay && !pool_relay_down(p, i, NULL, NULL))
            return true;
    return false;
}

int main(int argc, char **argv)
{
    pool_opts po;
    pool_opts_init(&po);
    po.maildir_fsync = false;
    po.down.base_ms = 1000;
    po.down.max_delay_ms = 5000;
    backoff_policy pol;
    backoff_policy_init(&pol);
    pol.base_ms = 300;
    pol.max_delay_ms = 2000;
    pol.jitter = 0.3;
    pol.max_attempts = 6;
    pol.max_age_ms = 15000;
    const char *relays[16];
    unsigned conns[16];
    double rates[16];
    size_t nrelays = 0;
    const char *domains = "example.com";
    const char *extra[64];
    size_t nextra = 0, count = 0, size = 500;
    const char *dlim[32];
    size_t ndlim = 0;
    double global = 0;
    int64_t deadline_ms = 60000;

    for (int a = 1; a < argc; a++) {
        const char *k = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!v)
            usage();
        a++;
        if (!strcmp(k, "--relay") && nrelays < 16) {
            relays[nrelays] = v;
            conns[nrelays] = 2;
            rates[nrelays++] = 0;
        } else if (!strcmp(k, "--conns") && nrelays) {
            conns[nrelays - 1] = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(k, "--rate") && nrelays) {
            rates[nrelays - 1] = strtod(v, NULL);
        } else if (!strcmp(k, "--count")) {
            count = strtoul(v, NULL, 10);
        } else if (!strcmp(k, "--domains")) {
            domains = v;
        } else if (!strcmp(k, "--rcpt") && nextra < 64) {
            extra[nextra++] = v;
        } else if (!strcmp(k, "--domain-limit") && ndlim < 32) {
            dlim[ndlim++] = v;
        } else if (!strcmp(k, "--global")) {
            global = strtod(v, NULL);
        } else if (!strcmp(k, "--timeout")) {
            for (int s = 0; s < SMTP_STAGE_COUNT; s++)
                po.smtp.timeout_ms[s] = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(k, "--retry-ms")) {
            pol.base_ms = strtoll(v, NULL, 10);
        } else if (!strcmp(k, "--max-attempts")) {
            pol.max_attempts = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(k, "--max-age")) {
            pol.max_age_ms = strtoll(v, NULL, 10);
        } else if (!strcmp(k, "--down-ms")) {
            po.down.base_ms = strtoll(v, NULL, 10);
        } else if (!strcmp(k, "--hold")) {
            /* as the delivery worker: a connection's next message waits
             * until its last result is taken */
            po.hold_until_taken = strtol(v, NULL, 10) != 0;
        } else if (!strcmp(k, "--idle")) {
            po.idle_ms = (unsigned)strtoul(v, NULL, 10);
        } else if (!strcmp(k, "--size")) {
            size = strtoul(v, NULL, 10);
        } else if (!strcmp(k, "--deadline")) {
            deadline_ms = strtoll(v, NULL, 10);
        } else {
            usage();
        }
    }
    if (!nrelays)
        usage();

    pool *p = pool_new(&po);
    td_error e;
    for (size_t r = 0; r < nrelays; r++)
        if (pool_add_relay(p, relays[r], conns[r], rates[r], NULL, &e)) {
            emit(json_pack("{s:s,s:s,s:o}", "event", "relay_error", "code", td_strerror(e.code),
                           "error", str(e.msg)));
            pool_free(p);
            return 0;
        }
    ratelimit *rl = pool_ratelimit(p);
    if (global > 0 && ratelimit_set_global(rl, global, 1, &e))
        usage();
    for (size_t d = 0; d < ndlim; d++) {
        char *dom = xstrdup(dlim[d]), *eq = strchr(dom, '=');
        if (!eq)
            usage();
        *eq = '\0';
        /* burst 1: the test checks the spacing at the server */
        if (ratelimit_set_domain(rl, strcmp(dom, "*") ? dom : NULL, strtod(eq + 1, NULL), 1, &e)) {
            fprintf(stderr, "pool_send: %s\n", e.msg);
            exit(2);
        }
        free(dom);
    }

    /* the jobs */
    char *dl = xstrdup(domains);
    const char *dom[64];
    size_t ndom = 0;
    for (char *s = strtok(dl, ","); s && ndom < 64; s = strtok(NULL, ","))
        dom[ndom++] = s;
    size_t njobs = count + nextra;
    job *jobs = xcalloc(njobs ? njobs : 1, sizeof *jobs);
    for (size_t i = 0; i < njobs; i++) {
        job *j = &jobs[i];
        j->i = i;
        j->rcpt = i < count ? xasprintf("u%zu@%s", i, dom[i % ndom]) : xstrdup(extra[i - count]);
        j->rcpts[0] = j->rcpt;
        size_t len;
        j->data = make_message(i, j->rcpt, size, &len);
        j->msg = (smtp_msg){"sender@example.com", j->rcpts, 1, j->data, len};
        j->avoid = -1;
        j->state = J_LATER;
        j->retry_at = 0;
    }

    size_t tally[5] = {0}, finals = 0;
    int64_t t0 = smtp_now_ms();
    bool timed_out = false;
    while (finals < njobs) {
        int64_t now = smtp_now_ms(), next = -1;
        if (now - t0 > deadline_ms) {
            timed_out = true;
            break;
        }
        for (size_t i = 0; i < njobs; i++) {
            job *j = &jobs[i];
            if (j->state != J_LATER)
                continue;
            if (j->retry_at <= now) {
                if (pool_submit(p, j, &j->msg, j->avoid, &e) == 0)
                    j->state = J_POOL;
                else if (e.code == TD_ETOOBIG)
                    next = now + 10;
                else {
                    fprintf(stderr, "pool_send: submit: %s\n", e.msg);
                    exit(2);
                }
            } else if (next < 0 || j->retry_at < next) {
                next = j->retry_at;
            }
        }
        int tmo = next < 0 ? 1000 : next > now ? (int)(next - now) : 0;
        pool_poll(p, tmo);
        pool_result r;
        while (pool_take_result(p, &r)) {
            job *j = r.job;
            now = smtp_now_ms();
            if (!j->attempts)
                j->first = now;
            j->attempts++;
            const smtp_rcpt_result *x = &r.res.rcpt[0];
            int64_t when;
            int act = backoff_classify(&pol, x, j->attempts, j->first, now, other_up(p, r.relay),
                                       backoff_rand(), &when);
            emit(json_pack("{s:s,s:I,s:s,s:o,s:i,s:s,s:i,s:o,s:o,s:s,s:o,s:I}", "event", "result",
                           "msg", (json_int_t)j->i, "to", j->rcpt, "relay",
                           r.relay >= 0 ? str(pool_relay_name(p, r.relay)) : json_null(), "attempt",
                           (int)j->attempts, "status", smtp_status_name(x->status), "code",
                           x->reply.code, "enh", str(x->reply.enh), "text", str(x->reply.text),
                           "action", backoff_action_name(act), "conn_error",
                           r.conn.code ? str(r.conn.msg) : json_null(), "t",
                           (json_int_t)(now - t0)));
            switch (act) {
            case BACKOFF_NOW:
                j->state = J_LATER;
                j->retry_at = now;
                j->avoid = r.relay;
                break;
            case BACKOFF_LATER:
                j->state = J_LATER;
                j->retry_at = when;
                j->avoid = backoff_relay_failure(x) ? r.relay : -1;
                break;
            default:
                j->state = J_FINAL;
                tally[act]++;
                finals++;
            }
            pool_result_clear(&r);
        }
    }

    /* a clean stop: QUIT every connection */
    pool_drain(p);
    int64_t stop = smtp_now_ms() + 5000;
    while (pool_conns(p) > 0 && smtp_now_ms() < stop) {
        pool_poll(p, 100);
        pool_result r;
        while (pool_take_result(p, &r))
            pool_result_clear(&r);
    }
    double secs = (double)(smtp_now_ms() - t0) / 1000.0;
    emit(json_pack("{s:s,s:I,s:I,s:I,s:I,s:b,s:I,s:f}", "event", "summary", "jobs",
                   (json_int_t)njobs, "done", (json_int_t)tally[BACKOFF_DONE], "failed",
                   (json_int_t)tally[BACKOFF_FAILED], "unknown", (json_int_t)tally[BACKOFF_UNKNOWN],
                   "timed_out", timed_out, "conns_left", (json_int_t)pool_conns(p), "seconds",
                   secs));
    pool_free(p);
    for (size_t i = 0; i < njobs; i++) {
        free(jobs[i].rcpt);
        free(jobs[i].data);
    }
    free(jobs);
    free(dl);
    return 0;
}
