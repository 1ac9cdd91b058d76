/* cmd_relay: `tidings relay add|ls|rm`: the relays campaigns are sent
 * through. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "smtp/smtp_url.h"
#include "store/store.h"
#include "util/jsonstr.h"

#include <jansson.h>

static const char usage[] =
    "usage: tidings relay add URL [--max-conns N] [--rate N/s] [--db PATH]\n"
    "       tidings relay ls [--json] [--db PATH]\n"
    "       tidings relay rm URL|ID [--db PATH]\n"
    "       tidings relay limits [--global N/s] [--domain DOMAIN=N/min]... [--clear]\n"
    "                            [--db PATH]\n"
    "\n"
    "URL is one of:\n"
    "  smtp://host[:port][?tls=opportunistic|required|none][&verify=yes|no]\n"
    "  smtp://user:pass@host[:port]...   (AUTH PLAIN or LOGIN, only over TLS\n"
    "                                      unless tls=none)\n"
    "  smtps://[user:pass@]host[:port]   (TLS from the first byte)\n"
    "  maildir:/absolute/path            (each message written as a file)\n"
    "--max-conns is how many connections may be open to it at once (default 4);\n"
    "--rate how many messages a second it takes at most (default: no limit of\n"
    "its own). Passwords are kept in the database, which is therefore a secret;\n"
    "`relay ls` shows them as ****.\n"
    "\n"
    "limits sets what holds across all relays: --global, messages a second in\n"
    "all; --domain, messages a minute to one recipient domain (repeat it; N 0\n"
    "removes that domain's limit; DOMAIN 'default' is every other domain);\n"
    "--clear removes them all. Without options it prints them. They apply to\n"
    "campaigns started afterwards.\n";

struct ls_state {
    bool json;
};

static int print_relay(void *ud, const relay_rec *r)
{
    struct ls_state *ls = ud;
    smtp_url u;
    td_error e = {0};
    char *shown = NULL;
    if (!smtp_url_parse(r->url, &u, &e)) {
        shown = smtp_url_format(&u, true);
        smtp_url_clear(&u);
    }
    if (ls->json) {
        printf("{\"id\":%lld,\"url\":", (long long)r->id);
        cli_json_str(stdout, shown ? shown : "(unreadable)");
        printf(",\"max_conns\":%d,\"rate\":%g}\n", r->max_conns, r->rate);
    } else {
        char rate[32] = "-";
        if (r->rate > 0)
            snprintf(rate, sizeof rate, "%g/s", r->rate);
        printf("%-4lld %-60s %5d %10s\n", (long long)r->id, shown ? shown : "(unreadable)",
               r->max_conns, rate);
    }
    free(shown);
    return 0;
}

struct find_state {
    const char *canon;
    long long id, found;
};

static int match_relay(void *ud, const relay_rec *r)
{
    struct find_state *f = ud;
    if ((f->id && r->id == f->id) || (f->canon && !strcmp(r->url, f->canon)))
        f->found = r->id;
    return 0;
}

static bool parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0 || v > 1e6)
        return false;
    if (*end && strcmp(end, "/s"))
        return false;
    *out = v;
    return true;
}

/* The limits live in one setting, "limits": {"global": per_s,
 * "domains": {"gmail.com": per_min, "default": per_min}} (read by
 * delivery/worker). */
static int do_limits(const char *db, double global, const char *const *domains, int ndomains,
                     bool clear)
{
    td_error e = {0};
    json_t *lim = NULL;
    json_t *doms = NULL;
    for (int i = 0; i < ndomains; i++) {
        const char *eq = strchr(domains[i], '=');
        double v;
        char *end;
        if (!eq || eq == domains[i] || eq - domains[i] > 253 ||
            (v = strtod(eq + 1, &end), end == eq + 1) || (*end && strcmp(end, "/min")) || v < 0 ||
            v > 1e7)
            return cli_usage_error("relay", "--domain takes DOMAIN=N/min, e.g. gmail.com=600/min");
    }
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    char *cur = NULL;
    int g = store_setting_get(s, "limits", &cur, &e);
    if (g && g != TD_ENOTFOUND) {
        cli_error("%s", e.msg);
        goto out;
    }
    lim = cur && !clear ? json_loads(cur, 0, NULL) : NULL;
    if (!json_is_object(lim)) {
        json_decref(lim);
        lim = json_object();
    }
    doms = json_object_get(lim, "domains");
    if (!json_is_object(doms)) {
        doms = json_object();
        json_object_set_new(lim, "domains", doms);
    }
    bool change = clear || global >= 0 || ndomains;
    if (global >= 0) {
        if (global > 0)
            json_object_set_new(lim, "global", json_real(global));
        else
            json_object_del(lim, "global");
    }
    for (int i = 0; i < ndomains; i++) {
        const char *eq = strchr(domains[i], '=');
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(eq - domains[i]), domains[i]);
        for (char *p = name; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        double v = strtod(eq + 1, NULL);
        if (v > 0)
            json_object_set_new(doms, name, json_real(v));
        else
            json_object_del(doms, name);
    }
    if (change) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        jsonstr_value(&b, lim);
        int r = store_setting_set(s, "limits", b.data, &e);
        buf_free(&b);
        if (r) {
            cli_error("%s", e.msg);
            goto out;
        }
        cli_audit(s, "relay.limits", "setting", 0, NULL);
    }
    json_t *gv = json_object_get(lim, "global");
    if (json_is_number(gv))
        printf("global  %g/s\n", json_number_value(gv));
    else
        printf("global  -\n");
    const char *k;
    json_t *v;
    json_object_foreach(doms, k, v) printf("%-40s %g/min\n", k, json_number_value(v));
    rc = EXIT_OK;
out:
    json_decref(lim);
    free(cur);
    store_close(s);
    return rc;
}

int cmd_relay(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},        {"max-conns", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},      {"json", no_argument, NULL, 'j'},
        {"global", required_argument, NULL, 'g'},    {"domain", required_argument, NULL, 'D'},
        {"clear", no_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},            {0},
    };
    const char *db = NULL;
    int max_conns = 4;
    double rate = 0;
    bool json = false, clear = false;
    double global = -1;
    const char *domains[64];
    int ndomains = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'c': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || end == optarg || v < 1 || v > 1000)
                return cli_usage_error("relay", "--max-conns takes a number from 1 to 1000");
            max_conns = (int)v;
            break;
        }
        case 'r':
            if (!parse_rate(optarg, &rate))
                return cli_usage_error("relay", "--rate takes messages per second, e.g. 50/s");
            break;
        case 'j': json = true; break;
        case 'g':
            if (!parse_rate(optarg, &global))
                return cli_usage_error("relay", "--global takes messages per second, e.g. 100/s");
            break;
        case 'D':
            if (ndomains == 64)
                return cli_usage_error("relay", "at most 64 --domain at once");
            domains[ndomains++] = optarg;
            break;
        case 'C': clear = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("relay", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("relay", "say add, ls or rm");
    const char *sub = argv[optind++];
    const char *arg = optind < argc ? argv[optind++] : NULL;
    if (optind < argc)
        return cli_usage_error("relay", "unexpected argument '%s'", argv[optind]);
    if (!strcmp(sub, "limits")) {
        if (arg)
            return cli_usage_error("relay", "limits takes options, not '%s'", arg);
        return do_limits(db, global, domains, ndomains, clear);
    }
    if (strcmp(sub, "add") && strcmp(sub, "ls") && strcmp(sub, "rm"))
        return cli_usage_error("relay", "unknown subcommand '%s'; say add, ls, rm or limits", sub);
    if (!strcmp(sub, "ls") ? arg != NULL : arg == NULL)
        return cli_usage_error("relay", !strcmp(sub, "ls") ? "ls takes no arguments"
                                                           : "say which relay (a URL or an id)");
    td_error e = {0};
    smtp_url u = {0};
    char *canon = NULL;
    if (!strcmp(sub, "add") || (!strcmp(sub, "rm") && strchr(arg, ':'))) {
        if (smtp_url_parse(arg, &u, &e)) {
            cli_error("%s", e.msg);
            return EXIT_FAIL;
        }
        canon = smtp_url_format(&u, false);
        smtp_url_clear(&u);
    }
    int rc = EXIT_FAIL;
    store *s = cli_open_store(db);
    if (!s) {
        free(canon);
        return EXIT_FAIL;
    }
    if (!strcmp(sub, "ls")) {
        struct ls_state ls = {json};
        if (!json)
            printf("%-4s %-60s %5s %10s\n", "id", "url", "conns", "rate");
        if (store_relay_each(s, print_relay, &ls, &e))
            cli_error("%s", e.msg);
        else
            rc = EXIT_OK;
    } else if (!strcmp(sub, "add")) {
        relay_rec r = {.url = canon, .max_conns = max_conns, .rate = rate};
        int64_t id;
        int r2 = store_relay_add(s, &r, &id, &e);
        if (r2 == TD_EEXISTS)
            cli_error("that relay is there already; see 'tidings relay ls'");
        else if (r2)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "relay.add", "relay", id, NULL);
            printf("%lld\n", (long long)id);
            rc = EXIT_OK;
        }
    } else {
        struct find_state f = {.canon = canon};
        if (!canon) {
            char *end;
            f.id = strtoll(arg, &end, 10);
            if (*end || f.id <= 0) {
                cli_error("'%s' is neither a relay URL nor an id; see 'tidings relay ls'", arg);
                goto out;
            }
        }
        if (store_relay_each(s, match_relay, &f, &e))
            cli_error("%s", e.msg);
        else if (!f.found)
            cli_error("there is no such relay; see 'tidings relay ls'");
        else if (store_relay_delete(s, f.found, &e))
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "relay.delete", "relay", f.found, NULL);
            printf("removed relay %lld\n", f.found);
            rc = EXIT_OK;
        }
    }
out:
    store_close(s);
    free(canon);
    return rc;
}
