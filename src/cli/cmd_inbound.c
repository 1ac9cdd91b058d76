/* cmd_inbound: `tidings inbound process|poll|add|ls|rm|settings`: taking in
 * bounces, complaints and replies, from files or from IMAP/POP3 mailboxes
 * (inbound/act.h, inbound/mailbox.h). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "inbound/act.h"
#include "inbound/mailbox.h"
#include "inbound/webhook.h"
#include "store/store.h"
#include "util/buf.h"

static const char usage[] =
    "usage: tidings inbound process FILE... [--rcpt ADDRESS] [--db PATH]\n"
    "       tidings inbound poll [URL [--user USER] [--password-file FILE]] [--once]\n"
    "                            [--every SECONDS] [--db PATH]\n"
    "       tidings inbound add URL [--user USER] [--password-file FILE] [--every SECONDS]\n"
    "                           [--db PATH]\n"
    "       tidings inbound ls [--json] [--db PATH]\n"
    "       tidings inbound rm ID|URL [--db PATH]\n"
    "       tidings inbound settings [--soft-limit N] [--db PATH]\n"
    "       tidings inbound webhook set ses [--topic-arn ARN] [--cert-url-prefix URL]\n"
    "       tidings inbound webhook set sendgrid|mailgun|postmark --secret-file FILE\n"
    "       tidings inbound webhook rm PROVIDER | webhook ls [--db PATH]\n"
    "\n"
    "Bounces, complaints and replies to campaigns are matched to the campaign\n"
    "and subscriber they answer and applied: a hard bounce or a complaint\n"
    "suppresses the address (a complaint also unsubscribes it from every list),\n"
    "soft bounces suppress it at the soft limit (default 3, counted once per\n"
    "campaign), replies go to the inbox of the subscriber's owner or the\n"
    "campaign's. Each message is applied once, however often it is seen.\n"
    "\n"
    "process applies message files (\"-\": standard input, e.g. from a local\n"
    "MTA's pipe; --rcpt gives the envelope recipient) and prints one JSON line\n"
    "per file.\n"
    "poll URL takes what is in a mailbox: imap://, imaps://, pop3://, pop3s://\n"
    "host[:port][/MAILBOX]; --user and --password-file log in (the password on\n"
    "the file's first line; never in the URL). Messages applied are deleted on\n"
    "the server; replies and unknown mail stay. Without URL, poll takes the\n"
    "stored mailboxes that are due. --once polls once; otherwise it polls every\n"
    "--every seconds (default 300) until stopped.\n"
    "add stores a mailbox to poll every --every seconds (`tidings serve` and\n"
    "`inbound poll` poll it); ls lists them, rm removes one.\n"
    "settings --soft-limit N sets how many soft bounces suppress an address.\n"
    "webhook set turns on a provider's event webhook, served by `tidings serve` at\n"
    "POST /webhooks/PROVIDER: ses (SNS messages, signature checked against\n"
    "certificates from https://sns.REGION.amazonaws.com/ or --cert-url-prefix;\n"
    "subscriptions confirmed; --topic-arn takes only that topic), sendgrid (the\n"
    "signed Event Webhook's public key in FILE), mailgun (the webhook signing key\n"
    "in FILE), postmark (\"user:password\" of the webhook's Basic auth in FILE).\n"
    "Bounces and complaints they report are applied as mailed ones are, once per\n"
    "event id. rm turns one off (its URL answers 404); ls shows which are on.\n";

static void print_result(const char *file, const act_result *r)
{
    printf("{\"file\":");
    cli_json_str(stdout, file);
    printf(",\"kind\":\"%s\",\"duplicate\":%s,\"matched_by\":", r->kind,
           r->duplicate ? "true" : "false");
    if (r->matched_by)
        printf("\"%s\"", r->matched_by);
    else
        printf("null");
    printf(",\"campaign_id\":%lld,\"subscriber_id\":%lld,\"reply_id\":%lld,\"suppressed\":%d,"
           "\"unsubscribed\":%d,\"kept\":%s,\"note\":",
           (long long)r->campaign_id, (long long)r->subscriber_id, (long long)r->reply_id,
           r->suppressed, r->unsubscribed, r->keep ? "true" : "false");
    cli_json_str(stdout, r->note);
    printf("}\n");
}

static int do_process(store *s, char **files, int n, const char *rcpt)
{
    int rc = EXIT_OK;
    for (int i = 0; i < n; i++) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        if (cli_read_capped(files[i], MAILBOX_MAX_MESSAGE, &b)) {
            buf_free(&b);
            rc = EXIT_FAIL;
            continue;
        }
        act_source src = {.source = "file", .rcpt = rcpt};
        act_result r;
        td_error e = {0};
        if (act_message(s, b.data, b.len, &src, &r, &e)) {
            cli_error("%s: %s", files[i], e.msg);
            rc = EXIT_FAIL;
        } else {
            print_result(files[i], &r);
        }
        fflush(stdout);
        buf_free(&b);
    }
    return rc;
}

static void print_stats(const char *url, const mailbox_stats *st)
{
    printf("{\"url\":");
    cli_json_str(stdout, url);
    printf(",\"listed\":%u,\"taken\":%u,\"seen\":%u,\"removed\":%u,\"too_big\":%u,"
           "\"bounces\":%u,\"complaints\":%u,\"replies\":%u,\"other\":%u}\n",
           st->listed, st->taken, st->seen, st->removed, st->too_big, st->bounces,
           st->complaints, st->replies, st->other);
    fflush(stdout);
}

static int do_poll(store *s, const char *url, const char *user, const char *password, bool once,
                   int every)
{
    for (;;) {
        td_error e = {0};
        int rc;
        if (url) {
            mailbox_account a = {.url = url, .username = user, .password = password};
            mailbox_stats st;
            rc = mailbox_poll(s, &a, &st, &e);
            print_stats(url, &st);
        } else {
            rc = mailbox_poll_due(s, (int64_t)time(NULL), &e);
        }
        if (rc) {
            cli_error("%s", e.msg);
            if (once || rc == TD_EINVAL || rc == TD_EDENIED)
                return EXIT_FAIL;
        }
        if (once)
            return EXIT_OK;
        sleep(url ? (unsigned)every : 5u);
    }
}

struct ls_state {
    bool json;
};

static int print_mailbox(void *ud, const mailbox_rec *m)
{
    struct ls_state *ls = ud;
    if (ls->json) {
        printf("{\"id\":%lld,\"url\":", (long long)m->id);
        cli_json_str(stdout, m->url);
        printf(",\"user\":");
        cli_json_str(stdout, m->username);
        printf(",\"every\":%d,\"next_at\":%lld,\"last_at\":%lld,\"last_error\":", m->every,
               (long long)m->next_at, (long long)m->last_at);
        if (m->last_error)
            cli_json_str(stdout, m->last_error);
        else
            printf("null");
        printf("}\n");
    } else {
        char when[32] = "never";
        if (m->last_at) {
            time_t t = (time_t)m->last_at;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
        }
        printf("%-4lld %-50s %-24s %6ds %-21s %s\n", (long long)m->id, m->url,
               m->username && *m->username ? m->username : "-", m->every, when,
               m->last_error ? m->last_error : "");
    }
    return 0;
}

struct find_state {
    const char *url;
    long long id, found;
};

static int match_mailbox(void *ud, const mailbox_rec *m)
{
    struct find_state *f = ud;
    if ((f->id && m->id == f->id) || (f->url && !strcmp(m->url, f->url)))
        f->found = m->id;
    return 0;
}

static int do_settings(store *s, int soft_limit)
{
    td_error e = {0};
    if (soft_limit > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", soft_limit);
        if (store_setting_set(s, ACT_SETTING_SOFT_LIMIT, v, &e)) {
            cli_error("%s", e.msg);
            return EXIT_FAIL;
        }
        cli_audit(s, "inbound.settings", "setting", 0, v);
    }
    printf("soft-limit  %d\n", act_soft_limit(s));
    return EXIT_OK;
}

static const char *const hook_key[WEBHOOK_NPROVIDERS] = {
    WEBHOOK_SET_SES, WEBHOOK_SET_SENDGRID, WEBHOOK_SET_MAILGUN, WEBHOOK_SET_POSTMARK};

/* webhook set|rm|ls. */
static int do_webhook(store *s, char **args, int nargs, const char *secret_file,
                      const char *topic, const char *prefix)
{
    td_error e = {0};
    const char *op = nargs ? args[0] : "";
    if (!strcmp(op, "ls") && nargs == 1) {
        for (int p = 0; p < WEBHOOK_NPROVIDERS; p++) {
            char *v = NULL;
            bool on = !store_setting_get(s, hook_key[p], &v, NULL) && v && *v;
            printf("%-9s %s\n", webhook_provider_name(p), on ? "on" : "off");
            free(v);
        }
        return EXIT_OK;
    }
    if ((strcmp(op, "set") && strcmp(op, "rm")) || nargs != 2)
        return cli_usage_error("inbound", "say webhook set PROVIDER, webhook rm PROVIDER or "
                                          "webhook ls");
    int p = webhook_provider_find(args[1], strlen(args[1]));
    if (p < 0)
        return cli_usage_error("inbound", "the providers are ses, sendgrid, mailgun, postmark");
    bool set = !strcmp(op, "set");
    if (set && p != WEBHOOK_SES && !secret_file)
        return cli_usage_error("inbound", "webhook set %s takes --secret-file FILE", args[1]);
    if ((topic || prefix) && (!set || p != WEBHOOK_SES))
        return cli_usage_error("inbound", "--topic-arn and --cert-url-prefix go with "
                                          "webhook set ses");
    char *value = NULL;
    if (set && p == WEBHOOK_SES) {
        value = strdup("on");
    } else if (set) {
        buf b;
        buf_init(&b, 16384);
        if (cli_read_capped(secret_file, 16384, &b)) {
            buf_free(&b);
            return EXIT_FAIL;
        }
        /* One line, but for a PEM key (SendGrid) kept whole. */
        if (!strstr(b.data, "-----BEGIN"))
            b.data[strcspn(b.data, "\r\n")] = '\0';
        value = buf_steal(&b);
        buf_free(&b);
        if (webhook_check_config(p, value, &e)) {
            memset(value, 0, strlen(value));
            free(value);
            cli_error("%s", e.msg);
            return EXIT_FAIL;
        }
    }
    int rc = store_setting_set(s, hook_key[p], value ? value : "", &e);
    if (!rc && p == WEBHOOK_SES)
        rc = store_setting_set(s, WEBHOOK_SET_SES_TOPIC, set && topic ? topic : "", &e);
    if (!rc && p == WEBHOOK_SES)
        rc = store_setting_set(s, WEBHOOK_SET_SES_CERT_PREFIX, set && prefix ? prefix : "", &e);
    if (value) {
        memset(value, 0, strlen(value));
        free(value);
    }
    if (rc) {
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    cli_audit(s, set ? "inbound.webhook.set" : "inbound.webhook.rm", "setting", 0, args[1]);
    printf("webhook %s %s\n", args[1], set ? "on" : "off");
    return EXIT_OK;
}

static int parse_every(const char *v, int *out)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v || n < 1 || n > 86400 * 7)
        return -1;
    *out = (int)n;
    return 0;
}

int cmd_inbound(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'u'},
        {"password-file", required_argument, NULL, 'p'},
        {"every", required_argument, NULL, 'e'},
        {"once", no_argument, NULL, 'o'},
        {"rcpt", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"soft-limit", required_argument, NULL, 's'},
        {"secret-file", required_argument, NULL, 'S'},
        {"topic-arn", required_argument, NULL, 'T'},
        {"cert-url-prefix", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *user = NULL, *pwfile = NULL, *rcpt = NULL;
    const char *secret_file = NULL, *topic = NULL, *prefix = NULL;
    int every = MAILBOX_EVERY_DEFAULT, soft_limit = 0;
    bool once = false, json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'u': user = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'e':
            if (parse_every(optarg, &every))
                return cli_usage_error("inbound", "--every takes seconds, from 1 to 604800");
            break;
        case 'o': once = true; break;
        case 'r': rcpt = optarg; break;
        case 'S': secret_file = optarg; break;
        case 'T': topic = optarg; break;
        case 'C': prefix = optarg; break;
        case 'j': json = true; break;
        case 's': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 1000)
                return cli_usage_error("inbound", "--soft-limit takes a number from 1 to 1000");
            soft_limit = (int)v;
            break;
        }
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("inbound", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("inbound", "say process, poll, add, ls, rm or settings");
    const char *sub = argv[optind++];
    char **args = argv + optind;
    int nargs = argc - optind;
    if (!strcmp(sub, "process")) {
        if (!nargs)
            return cli_usage_error("inbound", "process takes one or more files (\"-\": stdin)");
    } else if (!strcmp(sub, "poll")) {
        if (nargs > 1)
            return cli_usage_error("inbound", "poll takes one URL at most");
    } else if (!strcmp(sub, "add") || !strcmp(sub, "rm")) {
        if (nargs != 1)
            return cli_usage_error("inbound", "%s takes one %s", sub,
                                   !strcmp(sub, "add") ? "URL" : "mailbox (an id or a URL)");
    } else if (!strcmp(sub, "webhook")) {
        /* checked in do_webhook */
    } else if (!strcmp(sub, "ls") || !strcmp(sub, "settings")) {
        if (nargs)
            return cli_usage_error("inbound", "%s takes no arguments", sub);
    } else {
        return cli_usage_error("inbound",
                               "unknown subcommand '%s'; say process, poll, add, ls, rm, settings or "
                               "webhook",
                               sub);
    }
    const char *url = (!strcmp(sub, "poll") || !strcmp(sub, "add")) && nargs ? args[0] : NULL;
    td_error e = {0};
    if (url && mailbox_check_url(url, &e)) {
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    if ((user || pwfile) && !url)
        return cli_usage_error("inbound", "--user and --password-file go with a mailbox URL");
    char *password = NULL;
    if (pwfile && !(password = cli_read_secret_file(pwfile)))
        return EXIT_FAIL;
    store *s = cli_open_store(db);
    if (!s) {
        free(password);
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    if (!strcmp(sub, "process")) {
        rc = do_process(s, args, nargs, rcpt);
    } else if (!strcmp(sub, "poll")) {
        rc = do_poll(s, url, user, password, once, every);
    } else if (!strcmp(sub, "settings")) {
        rc = do_settings(s, soft_limit);
    } else if (!strcmp(sub, "webhook")) {
        rc = do_webhook(s, args, nargs, secret_file, topic, prefix);
    } else if (!strcmp(sub, "ls")) {
        struct ls_state ls = {json};
        if (!json)
            printf("%-4s %-50s %-24s %7s %-21s %s\n", "id", "url", "user", "every", "last poll",
                   "last error");
        if (store_mailbox_each(s, print_mailbox, &ls, &e))
            cli_error("%s", e.msg);
        else
            rc = EXIT_OK;
    } else if (!strcmp(sub, "add")) {
        mailbox_rec m = {.url = (char *)url, .username = (char *)(user ? user : ""),
                         .password = password ? password : "", .every = every};
        int64_t id;
        int r = store_mailbox_add(s, &m, &id, &e);
        if (r == TD_EEXISTS)
            cli_error("that mailbox is there already; see 'tidings inbound ls'");
        else if (r)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "inbound.add", "mailbox", id, NULL);
            printf("%lld\n", (long long)id);
            rc = EXIT_OK;
        }
    } else { /* rm */
        struct find_state f = {0};
        char *end;
        f.id = strtoll(args[0], &end, 10);
        if (*end || f.id <= 0) {
            f.id = 0;
            f.url = args[0];
        }
        if (store_mailbox_each(s, match_mailbox, &f, &e))
            cli_error("%s", e.msg);
        else if (!f.found)
            cli_error("there is no such mailbox; see 'tidings inbound ls'");
        else if (store_mailbox_delete(s, f.found, &e))
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "inbound.delete", "mailbox", f.found, NULL);
            printf("removed mailbox %lld\n", f.found);
            rc = EXIT_OK;
        }
    }
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    store_close(s);
    return rc;
}
