/* cmd_subscriber: `tidings subscriber add|get|update|delete`. */
#include <getopt.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audience/subscriber.h"
#include "cli/cli.h"
#include "store/store.h"
#include "util/text.h"

static const char usage[] =
    "usage: tidings subscriber add EMAIL [FIELDS] [--list NAME]...\n"
    "       tidings subscriber get EMAIL [--json]\n"
    "       tidings subscriber update EMAIL [FIELDS] [--email NEW] [--list NAME]...\n"
    "                                 [--unsubscribe NAME]...\n"
    "       tidings subscriber delete EMAIL\n"
    "FIELDS:\n"
    "  --name NAME             display name\n"
    "  --attributes JSON       all attributes, as a JSON object (replaces them)\n"
    "  --attr KEY=VALUE        one attribute (a number, true/false/null, or text)\n"
    "  --status STATUS         enabled or blocklisted\n"
    "  --owner EMAIL           the user (a seller) who owns this subscriber\n"
    "  --team TEAM             the team the subscriber belongs to\n"
    "  --tz ZONE               time zone, an IANA name like Asia/Bangkok\n"
    "  --locale TAG            language tag like en, ar-EG, th-TH\n"
    "Every command takes --db PATH. --list subscribes to a list (confirmed on single\n"
    "opt-in lists, unconfirmed on double opt-in); --unsubscribe leaves one.\n";

#define MAX_LISTS 32

struct opts {
    const char *db, *name, *attributes, *status, *owner, *team, *tz, *locale, *new_email;
    const char *attr[64];
    int n_attr;
    const char *lists[MAX_LISTS], *unsubs[MAX_LISTS];
    int n_lists, n_unsubs;
    bool json;
};

/* apply_attr sets KEY=VALUE into obj: VALUE is taken as JSON when it is a
 * number, true, false or null, and as text otherwise. */
static int apply_attr(json_t *obj, const char *kv, td_error *e)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return td_err_set(e, TD_EINVAL, "--attr wants KEY=VALUE, not '%s'", kv);
    char *key = strndup(kv, (size_t)(eq - kv));
    const char *val = eq + 1;
    json_t *v = json_loads(val, JSON_DECODE_ANY, NULL);
    if (v && (json_is_object(v) || json_is_array(v) || json_is_string(v))) {
        json_decref(v);
        v = NULL;
    }
    if (!v)
        v = json_string(val);
    int rc = TD_OK;
    if (!v)
        rc = td_err_set(e, TD_EINVAL, "the value of --attr %s is not valid UTF-8", key);
    else if (text_check("an attribute name", key, strlen(key), 128, e))
        rc = TD_EINVAL, json_decref(v);
    else
        json_object_set_new(obj, key, v);
    free(key);
    return rc;
}

/* fill applies the field options onto r (strings borrowed from argv except
 * attribs, which is returned as a new string in *attribs_out). */
static int fill(const struct opts *o, sub_rec *r, char **attribs_out, td_error *e)
{
    if (o->name)
        r->name = (char *)o->name;
    if (o->status)
        r->status = (char *)o->status;
    if (o->tz)
        r->timezone = (char *)o->tz;
    if (o->locale)
        r->locale = (char *)o->locale;
    *attribs_out = NULL;
    if (o->attributes || o->n_attr) {
        const char *base = o->attributes ? o->attributes : (r->attribs ? r->attribs : "{}");
        char *canon = subscriber_attribs(base, strlen(base), e);
        if (!canon)
            return TD_EINVAL;
        json_t *obj = json_loads(canon, 0, NULL);
        free(canon);
        for (int i = 0; i < o->n_attr; i++)
            if (apply_attr(obj, o->attr[i], e)) {
                json_decref(obj);
                return TD_EINVAL;
            }
        char *text = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
        json_decref(obj);
        if (strlen(text) > SUB_ATTRIBS_MAX) {
            free(text);
            return td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes",
                              SUB_ATTRIBS_MAX);
        }
        *attribs_out = text;
        r->attribs = text;
    }
    return subscriber_check(r, e);
}

static int resolve_people(store *s, const struct opts *o, sub_rec *r)
{
    long long id;
    if (o->owner) {
        if ((id = cli_user_id(s, o->owner)) < 0)
            return -1;
        r->owner_id = id;
    }
    if (o->team) {
        if ((id = cli_team_id(s, o->team)) < 0)
            return -1;
        r->team_id = id;
    }
    return 0;
}

/* set_lists subscribes to --list and unsubscribes from --unsubscribe. */
static int set_lists(store *s, const struct opts *o, int64_t sub_id)
{
    td_error e = {0};
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? o->n_unsubs : o->n_lists;
        for (int i = 0; i < n; i++) {
            const char *name = pass ? o->unsubs[i] : o->lists[i];
            list_rec l = {0};
            if (store_list_find(s, name, &l, &e)) {
                cli_error("there is no list '%s'; see 'tidings list ls'", name);
                return -1;
            }
            const char *status = pass ? "unsubscribed"
                                      : (!strcmp(l.optin, "double") ? "unconfirmed" : "confirmed");
            int rc = store_member_set(s, l.id, sub_id, status, false, NULL, &e);
            if (!rc)
                cli_audit(s, pass ? "membership.unsubscribe" : "membership.add", "subscriber",
                          sub_id, l.name);
            list_rec_clear(&l);
            if (rc) {
                cli_error("%s", e.msg);
                return -1;
            }
        }
    }
    return 0;
}

static int print_membership(void *ud, const char *list, const char *status)
{
    int *n = ud;
    if (n[1]) {
        printf("%s", n[0]++ ? "," : "");
        printf("{\"list\":");
        cli_json_str(stdout, list);
        printf(",\"status\":\"%s\"}", status);
    } else {
        printf("list:       %s (%s)\n", list, status);
    }
    return 0;
}

static void print_time(const char *label, int64_t t)
{
    char buf[32];
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%SZ", &tm);
    printf("%-11s %s\n", label, buf);
}

static int do_get(store *s, const sub_rec *r, bool json)
{
    td_error e = {0};
    int state[2] = {0, json};
    if (json) {
        printf("{\"id\":%lld,\"email\":", (long long)r->id);
        cli_json_str(stdout, r->email);
        printf(",\"name\":");
        cli_json_str(stdout, r->name);
        printf(",\"attributes\":%s,\"status\":\"%s\",\"owner_id\":%lld,\"team_id\":%lld,"
               "\"timezone\":",
               r->attribs, r->status, (long long)r->owner_id, (long long)r->team_id);
        cli_json_str(stdout, r->timezone);
        printf(",\"locale\":");
        cli_json_str(stdout, r->locale);
        printf(",\"created_at\":%lld,\"updated_at\":%lld,\"lists\":[", (long long)r->created_at,
               (long long)r->updated_at);
    } else {
        /* Owner and team by name: ids mean nothing to a person. */
        user_rec u = {0};
        team_rec t = {0};
        bool has_owner = r->owner_id && !store_user_get(s, r->owner_id, &u, NULL);
        bool has_team = r->team_id && !store_team_get(s, r->team_id, &t, NULL);
        printf("id:         %lld\nemail:      %s\nname:       %s\nattributes: %s\n"
               "status:     %s\nowner:      %s\nteam:       %s\ntimezone:   %s\n"
               "locale:     %s\n",
               (long long)r->id, r->email, r->name, r->attribs, r->status,
               has_owner ? u.email : "-", has_team ? t.name : "-",
               r->timezone ? r->timezone : "-", r->locale ? r->locale : "-");
        user_rec_clear(&u);
        team_rec_clear(&t);
        print_time("created:", r->created_at);
        print_time("updated:", r->updated_at);
    }
    int rc = store_member_lists(s, r->id, print_membership, state, &e);
    if (json)
        printf("]}\n");
    if (rc)
        cli_error("%s", e.msg);
    return rc ? EXIT_FAIL : EXIT_OK;
}

int cmd_subscriber(int argc, char **argv)
{
    static const struct option lopts[] = {
        {"db", required_argument, NULL, 'd'},     {"name", required_argument, NULL, 'n'},
        {"attributes", required_argument, NULL, 'A'}, {"attr", required_argument, NULL, 'a'},
        {"status", required_argument, NULL, 's'}, {"owner", required_argument, NULL, 'o'},
        {"team", required_argument, NULL, 't'},   {"tz", required_argument, NULL, 'z'},
        {"locale", required_argument, NULL, 'l'}, {"email", required_argument, NULL, 'E'},
        {"list", required_argument, NULL, 'L'},   {"unsubscribe", required_argument, NULL, 'U'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {0},
    };
    struct opts o = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
        switch (c) {
        case 'd': o.db = optarg; break;
        case 'n': o.name = optarg; break;
        case 'A': o.attributes = optarg; break;
        case 'a':
            if (o.n_attr == 64)
                return cli_usage_error("subscriber", "at most 64 --attr options");
            o.attr[o.n_attr++] = optarg;
            break;
        case 's': o.status = optarg; break;
        case 'o': o.owner = optarg; break;
        case 't': o.team = optarg; break;
        case 'z': o.tz = optarg; break;
        case 'l': o.locale = optarg; break;
        case 'E': o.new_email = optarg; break;
        case 'L':
            if (o.n_lists == MAX_LISTS)
                return cli_usage_error("subscriber", "at most %d --list options", MAX_LISTS);
            o.lists[o.n_lists++] = optarg;
            break;
        case 'U':
            if (o.n_unsubs == MAX_LISTS)
                return cli_usage_error("subscriber", "at most %d --unsubscribe options",
                                       MAX_LISTS);
            o.unsubs[o.n_unsubs++] = optarg;
            break;
        case 'j': o.json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("subscriber", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("subscriber", "say add, get, update or delete");
    const char *sub = argv[optind++];
    if (strcmp(sub, "add") && strcmp(sub, "get") && strcmp(sub, "update") && strcmp(sub, "delete"))
        return cli_usage_error("subscriber", "unknown subcommand '%s'", sub);
    if (optind + 1 != argc)
        return cli_usage_error("subscriber", "%s takes exactly one EMAIL", sub);
    if (o.new_email && strcmp(sub, "update"))
        return cli_usage_error("subscriber", "--email is only for update");

    td_error e = {0};
    char *email = subscriber_email(argv[optind], strlen(argv[optind]), &e);
    if (!email) {
        cli_error("'%s' is not a valid address: %s", argv[optind], e.msg);
        return EXIT_FAIL;
    }
    store *s = cli_open_store(o.db);
    if (!s) {
        free(email);
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    char *attribs = NULL, *new_email = NULL;
    sub_rec r = {0};

    if (!strcmp(sub, "add")) {
        sub_rec n = {.email = email};
        if (fill(&o, &n, &attribs, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        if (resolve_people(s, &o, &n))
            goto out;
        int64_t id;
        /* One transaction: a refused --list leaves no subscriber behind. */
        if (store_begin(s, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        int r2 = store_sub_add(s, &n, &id, &e);
        if (r2 == TD_EEXISTS) {
            cli_error("%s is a subscriber already; use 'tidings subscriber update'", email);
        } else if (r2) {
            cli_error("%s", e.msg);
        } else {
            cli_audit(s, "subscriber.add", "subscriber", id, NULL);
            if (!set_lists(s, &o, id)) {
                if (store_commit(s, &e))
                    cli_error("%s", e.msg);
                else {
                    printf("%lld\n", (long long)id);
                    rc = EXIT_OK;
                }
            }
        }
        if (rc != EXIT_OK)
            store_rollback(s);
        goto out;
    }

    int found = store_sub_find(s, email, &r, &e);
    if (found == TD_ENOTFOUND) {
        cli_error("there is no subscriber %s", email);
        goto out;
    } else if (found) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (!strcmp(sub, "get")) {
        rc = do_get(s, &r, o.json);
    } else if (!strcmp(sub, "delete")) {
        if (store_sub_delete(s, r.id, &e))
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "subscriber.delete", "subscriber", r.id, NULL);
            printf("deleted subscriber %lld\n", (long long)r.id);
            rc = EXIT_OK;
        }
    } else { /* update */
        sub_rec u = r; /* borrows r's strings; fill() swaps in option values */
        if (o.new_email) {
            if (!(new_email = subscriber_email(o.new_email, strlen(o.new_email), &e))) {
                cli_error("'%s' is not a valid address: %s", o.new_email, e.msg);
                goto out;
            }
            u.email = new_email;
        }
        if (fill(&o, &u, &attribs, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        if (resolve_people(s, &o, &u))
            goto out;
        if (store_begin(s, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        int r2 = store_sub_update(s, &u, &e);
        if (r2 == TD_EEXISTS)
            cli_error("another subscriber has the address %s", u.email);
        else if (r2)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "subscriber.update", "subscriber", r.id, NULL);
            if (!set_lists(s, &o, r.id)) {
                if (store_commit(s, &e))
                    cli_error("%s", e.msg);
                else {
                    printf("updated subscriber %lld\n", (long long)r.id);
                    rc = EXIT_OK;
                }
            }
        }
        if (rc != EXIT_OK)
            store_rollback(s);
    }
out:
    sub_rec_clear(&r);
    free(attribs);
    free(new_email);
    free(email);
    store_close(s);
    return rc;
}
