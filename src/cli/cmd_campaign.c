/* cmd_campaign: `tidings campaign create|ls|status|start|pause|resume|cancel|
 * failures|retry`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign/campaign.h"
#include "delivery/worker.h"
#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "store/store.h"
#include "tmpl/tmpl.h"

static const char usage[] =
    "usage: tidings campaign create --name N --subject S --from ADDR --list NAME\n"
    "                               [--list NAME]... (--template FILE | --html FILE)\n"
    "                               [--text FILE] [--reply-to ADDR] [--at TIME --tz ZONE]\n"
    "                               [--team TEAM] [--owner EMAIL] [--no-track-opens]\n"
    "                               [--no-track-clicks] [--db PATH]\n"
    "       tidings campaign ls [--json] [--db PATH]\n"
    "       tidings campaign status ID [--json] [--db PATH]\n"
    "       tidings campaign start ID [--wait [--retry-after SECONDS]] [--db PATH]\n"
    "       tidings campaign pause|resume|cancel ID [--db PATH]\n"
    "       tidings campaign failures ID [--json] [--db PATH]\n"
    "       tidings campaign retry ID [--db PATH]\n"
    "\n"
    "create adds a draft campaign and prints its id. --template (or --html, the\n"
    "same thing) is the HTML body, a mustache template; --text a text version\n"
    "(else made from the HTML). The subject is a template too. From and\n"
    "Reply-To accept 'Name <addr>'. The audience is the confirmed members of the\n"
    "lists (and the unconfirmed ones of single opt-in lists), minus blocklisted\n"
    "and suppressed addresses, one message per person however many of the lists\n"
    "they are on; it is frozen when the campaign starts. --at TIME is the send\n"
    "time, YYYY-MM-DD HH:MM, in --tz ZONE (an IANA zone such as Asia/Bangkok;\n"
    "default UTC).\n"
    "Tracking is on unless turned off: every http(s) link of the HTML goes\n"
    "through the click redirect (/c/, as if wrapped in {{#track}}) and an open\n"
    "pixel (/o/) is added before </body>; --no-track-clicks and --no-track-opens\n"
    "leave the HTML as written.\n"
    "\n"
    "start freezes the audience and starts sending (or schedules the campaign\n"
    "when its send time is ahead). With --wait it delivers in the foreground\n"
    "through the relays (`tidings relay add`) and exits 0 when the campaign\n"
    "has finished; a campaign left running by a stopped process is resumed\n"
    "the same way. A temporary failure (4xx, a timeout, a relay down) is tried\n"
    "again after --retry-after seconds (default 300), doubling each time, up\n"
    "to 8 attempts within 3 days. pause, resume and cancel take effect within a\n"
    "second.\n"
    "failures lists the recipients whose message failed, with the server's\n"
    "reply; retry queues them again.\n";

static void print_time(const char *label, int64_t t)
{
    if (!t) {
        printf("%-12s -\n", label);
        return;
    }
    char when[40];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
    printf("%-12s %s\n", label, when);
}

static int print_row(void *ud, const campaign_rec *c)
{
    bool json = *(bool *)ud;
    if (json) {
        printf("{\"id\":%lld,\"name\":", (long long)c->id);
        cli_json_str(stdout, c->name);
        printf(",\"state\":\"%s\",\"send_at\":%lld,\"created_at\":%lld}\n", c->state,
               (long long)c->send_at, (long long)c->created_at);
    } else {
        printf("%-6lld %-10s %s\n", (long long)c->id, c->state, c->name);
    }
    return 0;
}

struct names {
    bool json;
    int n;
};

static int print_name(void *ud, const char *name)
{
    struct names *ns = ud;
    if (ns->json) {
        fputs(ns->n ? "," : "", stdout);
        cli_json_str(stdout, name);
    } else {
        printf("%s%s", ns->n ? ", " : "", name);
    }
    ns->n++;
    return 0;
}

static int do_status(store *s, int64_t id, bool json)
{
    td_error e = {0};
    campaign_rec c = {0};
    campaign_counts n;
    event_counts ev;
    int rc = store_campaign_get(s, id, &c, &e);
    if (rc == TD_ENOTFOUND) {
        cli_error("there is no campaign %lld; see 'tidings campaign ls'", (long long)id);
        return EXIT_FAIL;
    }
    if (rc || (rc = store_campaign_counts(s, id, &n, &e)) ||
        (rc = store_event_counts(s, id, &ev, &e))) {
        cli_error("%s", e.msg);
        campaign_rec_clear(&c);
        return EXIT_FAIL;
    }
    struct names ns = {json, 0};
    if (json) {
        printf("{\"id\":%lld,\"name\":", (long long)c.id);
        cli_json_str(stdout, c.name);
        printf(",\"state\":\"%s\",\"subject\":", c.state);
        cli_json_str(stdout, c.subject);
        printf(",\"from\":");
        cli_json_str(stdout, c.from);
        printf(",\"lists\":[");
        rc = store_campaign_list_names(s, id, print_name, &ns, &e);
        printf("],\"send_at\":%lld,\"timezone\":", (long long)c.send_at);
        cli_json_str(stdout, c.timezone);
        printf(",\"created_at\":%lld,\"started_at\":%lld,\"finished_at\":%lld,"
               "\"total\":%llu,\"queued\":%llu,\"sending\":%llu,\"sent\":%llu,"
               "\"deferred\":%llu,\"failed\":%llu,\"bounces\":%llu,\"complaints\":%llu,"
               "\"replies\":%llu,\"unsubscribes\":%llu}\n",
               (long long)c.created_at, (long long)c.started_at, (long long)c.finished_at,
               (unsigned long long)n.total, (unsigned long long)n.queued,
               (unsigned long long)n.sending, (unsigned long long)n.sent,
               (unsigned long long)n.deferred, (unsigned long long)n.failed,
               (unsigned long long)ev.bounce, (unsigned long long)ev.complaint,
               (unsigned long long)ev.reply, (unsigned long long)ev.unsubscribe);
    } else {
        printf("%-12s %lld\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s %s\n%-12s ", "id",
               (long long)c.id, "name", c.name, "state", c.state, "subject", c.subject, "from",
               c.from, "lists");
        rc = store_campaign_list_names(s, id, print_name, &ns, &e);
        printf("\n");
        print_time("send at", c.send_at);
        if (c.timezone)
            printf("%-12s %s\n", "time zone", c.timezone);
        print_time("created", c.created_at);
        print_time("started", c.started_at);
        print_time("finished", c.finished_at);
        printf("%-12s %llu (queued %llu, sending %llu, sent %llu, deferred %llu, failed %llu)\n",
               "recipients", (unsigned long long)n.total, (unsigned long long)n.queued,
               (unsigned long long)n.sending, (unsigned long long)n.sent,
               (unsigned long long)n.deferred, (unsigned long long)n.failed);
        printf("%-12s bounces %llu, complaints %llu, replies %llu, unsubscribes %llu\n",
               "inbound", (unsigned long long)ev.bounce, (unsigned long long)ev.complaint,
               (unsigned long long)ev.reply, (unsigned long long)ev.unsubscribe);
    }
    campaign_rec_clear(&c);
    if (rc) {
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static bool progress_shown;

static void show_progress(void *ud, const worker_progress *p)
{
    (void)ud;
    const campaign_counts *c = &p->counts;
    uint64_t done = c->sent + c->failed;
    int pct = c->total ? (int)(done * 100 / c->total) : 100, bar = pct * 30 / 100;
    fprintf(stderr, "\r\033[K[%.*s%*s] %3d%% %llu sent %llu failed %llu deferred %llu queued", bar,
            "##############################", 30 - bar, "", pct, (unsigned long long)c->sent,
            (unsigned long long)c->failed, (unsigned long long)c->deferred,
            (unsigned long long)(c->queued + c->sending));
    progress_shown = true;
}

static int print_failure(void *ud, const delivery_rec *d)
{
    bool json = *(bool *)ud;
    if (json) {
        printf("{\"email\":");
        cli_json_str(stdout, d->email);
        printf(",\"attempts\":%d,\"reply\":", d->attempts);
        cli_json_str(stdout, d->last_reply);
        printf("}\n");
    } else {
        printf("%s\t%s\n", d->email, d->last_reply ? d->last_reply : "");
    }
    return 0;
}

static int do_action(store *s, const char *sub, long long id, bool wait, unsigned retry_after,
                     bool json)
{
    td_error e = {0};
    int64_t now = (int64_t)time(NULL);
    int rc;
    if (!strcmp(sub, "pause"))
        rc = campaign_pause(s, id, now, &e);
    else if (!strcmp(sub, "resume"))
        rc = campaign_resume(s, id, now, &e);
    else if (!strcmp(sub, "cancel"))
        rc = campaign_cancel(s, id, now, &e);
    else if (!strcmp(sub, "failures"))
        rc = store_delivery_each(s, id, "failed", print_failure, &json, &e);
    else if (!strcmp(sub, "retry")) {
        uint64_t n = 0;
        rc = store_begin(s, &e);
        if (!rc)
            rc = store_delivery_requeue(s, id, "failed", false, now, &n, &e);
        /* A finished campaign runs again for them. */
        if (!rc && n)
            rc = store_campaign_set_state(s, id, "finished", "running", now, &e) == TD_EDENIED
                     ? 0
                     : rc;
        rc = rc ? rc : store_commit(s, &e);
        if (rc)
            store_rollback(s);
        else
            printf("%llu recipients queued again\n", (unsigned long long)n);
    } else { /* start */
        campaign_rec c = {0};
        rc = store_campaign_get(s, id, &c, &e);
        const char *state = c.state;
        uint64_t n = 0;
        /* With --wait, a campaign still running (its process gone) is
         * resumed rather than refused. */
        bool resume = !rc && wait && !strcmp(c.state, "running");
        if (!rc && !resume) {
            rc = campaign_start(s, id, now, &state, &n, &e);
            if (!rc)
                printf("campaign %lld %s, %llu recipients\n", id, state, (unsigned long long)n);
        }
        if (!rc && wait && !strcmp(state, "running")) {
            /* The bar is for a terminal; without one, no callback, so the
             * worker does not count the campaign's deliveries every second
             * (a walk over all of them: a twentieth of the loop's time at a
             * million). */
            worker_opts wo = {.maildir_fsync = true,
                              .progress = cli_is_tty(2) ? show_progress : NULL,
                              .retry_base_s = retry_after};
            const char *end = NULL;
            rc = worker_run(s, id, &wo, &end, &e);
            if (progress_shown)
                fputs("\n", stderr);
            if (!rc) {
                campaign_counts cc;
                store_campaign_counts(s, id, &cc, NULL);
                printf("campaign %lld %s: %llu sent, %llu failed, %llu deferred, %llu queued\n",
                       id, end, (unsigned long long)cc.sent, (unsigned long long)cc.failed,
                       (unsigned long long)cc.deferred,
                       (unsigned long long)(cc.queued + cc.sending));
                if (strcmp(end, "finished"))
                    rc = TD_EDENIED, td_err_set(&e, TD_EDENIED, "the campaign was %s", end);
            }
        } else if (!rc && wait) {
            rc = td_err_set(&e, TD_EDENIED, "the campaign is scheduled for later; run start --wait "
                            "again at its send time");
        }
        campaign_rec_clear(&c);
    }
    if (rc == TD_ENOTFOUND)
        cli_error("there is no campaign %lld; see 'tidings campaign ls'", id);
    else if (rc)
        cli_error("%s", e.msg);
    else if (!strcmp(sub, "pause") || !strcmp(sub, "resume") || !strcmp(sub, "cancel"))
        printf("campaign %lld %s\n", id,
               !strcmp(sub, "pause") ? "paused" : !strcmp(sub, "resume") ? "running" : "cancelled");
    if (!rc && strcmp(sub, "failures"))
        cli_audit(s, !strcmp(sub, "start") ? "campaign.start" : !strcmp(sub, "pause") ? "campaign.pause"
                     : !strcmp(sub, "resume") ? "campaign.resume" : !strcmp(sub, "cancel") ? "campaign.cancel"
                     : "campaign.retry", "campaign", id, NULL);
    return rc ? EXIT_FAIL : EXIT_OK;
}

int cmd_campaign(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},       {"name", required_argument, NULL, 'n'},
        {"subject", required_argument, NULL, 's'},  {"from", required_argument, NULL, 'f'},
        {"reply-to", required_argument, NULL, 'r'}, {"list", required_argument, NULL, 'l'},
        {"template", required_argument, NULL, 'T'}, {"html", required_argument, NULL, 'H'},
        {"text", required_argument, NULL, 'x'},     {"at", required_argument, NULL, 'a'},
        {"tz", required_argument, NULL, 'z'},       {"team", required_argument, NULL, 't'},
        {"owner", required_argument, NULL, 'o'},    {"json", no_argument, NULL, 'j'},
        {"wait", no_argument, NULL, 'w'},         {"retry-after", required_argument, NULL, 'R'},
        {"no-track-opens", no_argument, NULL, 'O'},
        {"no-track-clicks", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},           {0},
    };
    const char *db = NULL, *html_path = NULL, *text_path = NULL, *team = NULL, *owner = NULL;
    const char *lists[CAMPAIGN_MAX_LISTS];
    campaign_spec sp = {.lists = lists};
    bool json = false, wait = false;
    unsigned retry_after = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'n': sp.name = optarg; break;
        case 's': sp.subject = optarg; break;
        case 'f': sp.from = optarg; break;
        case 'r': sp.reply_to = optarg; break;
        case 'l':
            if (sp.nlists == CAMPAIGN_MAX_LISTS)
                return cli_usage_error("campaign", "at most %d --list", CAMPAIGN_MAX_LISTS);
            lists[sp.nlists++] = optarg;
            break;
        case 'T':
        case 'H':
            if (html_path)
                return cli_usage_error("campaign", "give --template (or --html) once");
            html_path = optarg;
            break;
        case 'x': text_path = optarg; break;
        case 'a': sp.at = optarg; break;
        case 'z': sp.tz = optarg; break;
        case 't': team = optarg; break;
        case 'o': owner = optarg; break;
        case 'j': json = true; break;
        case 'w': wait = true; break;
        case 'O': sp.no_track_opens = true; break;
        case 'C': sp.no_track_clicks = true; break;
        case 'R': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 86400)
                return cli_usage_error("campaign", "--retry-after takes seconds, 1 to 86400");
            retry_after = (unsigned)v;
            break;
        }
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("campaign", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("campaign", "say create, ls or status");
    const char *sub = argv[optind++];
    if (!strcmp(sub, "create")) {
        if (optind < argc)
            return cli_usage_error("campaign", "unexpected argument '%s'", argv[optind]);
        if (!sp.name || !sp.subject || !sp.from || !sp.nlists)
            return cli_usage_error("campaign", "create needs --name, --subject, --from and --list");
        if (!html_path && !text_path)
            return cli_usage_error("campaign", "create needs --template (or --html) or --text");
        if (sp.tz && !sp.at)
            return cli_usage_error("campaign", "--tz goes with --at");
    } else if (!strcmp(sub, "ls")) {
        if (optind < argc)
            return cli_usage_error("campaign", "ls takes no arguments");
    } else if (!strcmp(sub, "status") || !strcmp(sub, "start") || !strcmp(sub, "pause") ||
               !strcmp(sub, "resume") || !strcmp(sub, "cancel") || !strcmp(sub, "failures") ||
               !strcmp(sub, "retry")) {
        if (optind + 1 != argc)
            return cli_usage_error("campaign", "%s takes one campaign id", sub);
        if (wait && strcmp(sub, "start"))
            return cli_usage_error("campaign", "--wait goes with start");
    } else {
        return cli_usage_error("campaign", "unknown subcommand '%s'; see --help", sub);
    }

    int rc = EXIT_FAIL;
    td_error e = {0};
    buf html, text;
    buf_init(&html, TMPL_MAX_SRC);
    buf_init(&text, TMPL_MAX_SRC);
    store *s = cli_open_store(db);
    if (!s)
        goto out;
    if (!strcmp(sub, "ls")) {
        if (!json)
            printf("%-6s %-10s %s\n", "id", "state", "name");
        if (store_campaign_each(s, print_row, &json, &e))
            cli_error("%s", e.msg);
        else
            rc = EXIT_OK;
    } else if (strcmp(sub, "create")) {
        char *end;
        long long id = strtoll(argv[optind], &end, 10);
        if (*end || id <= 0)
            cli_error("'%s' is not a campaign id; see 'tidings campaign ls'", argv[optind]);
        else if (!strcmp(sub, "status"))
            rc = do_status(s, id, json);
        else
            rc = do_action(s, sub, id, wait, retry_after, json);
    } else {
        if ((html_path && cli_tmpl_read(html_path, TMPL_MAX_SRC, &html)) ||
            (text_path && cli_tmpl_read(text_path, TMPL_MAX_SRC, &text)))
            goto out;
        sp.html = html_path ? (html.data ? html.data : "") : NULL;
        sp.text = text_path ? (text.data ? text.data : "") : NULL;
        long long t = cli_team_id(s, team), o = cli_user_id(s, owner);
        if (t < 0 || o < 0)
            goto out;
        sp.team_id = t;
        sp.owner_id = o;
        int64_t id;
        if (campaign_create(s, &sp, (int64_t)time(NULL), &id, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        cli_audit(s, "campaign.create", "campaign", id, NULL);
        printf("%lld\n", (long long)id);
        rc = EXIT_OK;
    }
out:
    store_close(s);
    buf_free(&html);
    buf_free(&text);
    return rc;
}
