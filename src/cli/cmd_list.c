/* cmd_list: `tidings list create|ls|delete`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"
#include "util/text.h"
#include "util/utf8.h"

static const char usage[] =
    "usage: tidings list create NAME [--team TEAM] [--owner EMAIL]\n"
    "                        [--optin single|double] [--visibility public|private] [--db PATH]\n"
    "       tidings list ls [--json] [--db PATH]\n"
    "       tidings list delete NAME [--db PATH]\n"
    "\n"
    "A double opt-in list sends new signups a confirmation link before they\n"
    "receive campaigns; a public list is offered on signup and preference pages.\n"
    "Deleting a list removes its memberships, not its subscribers.\n";

static int print_list(void *ud, const list_rec *l)
{
    bool json = *(bool *)ud;
    if (json) {
        printf("{\"id\":%lld,\"name\":", (long long)l->id);
        cli_json_str(stdout, l->name);
        printf(",\"team_id\":%lld,\"owner_id\":%lld,\"optin\":\"%s\",\"visibility\":\"%s\","
               "\"confirmed\":%lld,\"unconfirmed\":%lld,\"unsubscribed\":%lld}\n",
               (long long)l->team_id, (long long)l->owner_id, l->optin, l->visibility,
               (long long)l->n_confirmed, (long long)l->n_unconfirmed,
               (long long)l->n_unsubscribed);
    } else {
        printf("%-6lld ", (long long)l->id);
        utf8_pad(stdout, l->name, 30);
        printf(" %-7s %-8s %10lld %11lld %12lld\n",
               l->optin, l->visibility, (long long)l->n_confirmed, (long long)l->n_unconfirmed,
               (long long)l->n_unsubscribed);
    }
    return 0;
}

int cmd_list(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"team", required_argument, NULL, 't'},
        {"owner", required_argument, NULL, 'o'}, {"optin", required_argument, NULL, 'i'},
        {"visibility", required_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *team = NULL, *owner = NULL, *optin = "single",
               *visibility = "private";
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 't': team = optarg; break;
        case 'o': owner = optarg; break;
        case 'i': optin = optarg; break;
        case 'v': visibility = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("list", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("list", "say create, ls or delete");
    const char *sub = argv[optind++];
    td_error e = {0};
    store *s = NULL;
    int rc = EXIT_FAIL;

    if (!strcmp(sub, "ls")) {
        if (optind < argc)
            return cli_usage_error("list", "ls takes no arguments");
        if (!(s = cli_open_store(db)))
            return EXIT_FAIL;
        if (!json)
            printf("%-6s %-30s %-7s %-8s %10s %11s %12s\n", "ID", "NAME", "OPTIN", "VISIBLE",
                   "CONFIRMED", "UNCONFIRMED", "UNSUBSCRIBED");
        if (store_list_each(s, print_list, &json, &e))
            cli_error("%s", e.msg);
        else
            rc = EXIT_OK;
        store_close(s);
        return rc;
    }
    if (strcmp(sub, "create") && strcmp(sub, "delete"))
        return cli_usage_error("list", "unknown subcommand '%s'", sub);
    if (optind + 1 != argc)
        return cli_usage_error("list", "%s takes exactly one NAME", sub);
    const char *name = argv[optind];

    if (!strcmp(sub, "delete")) {
        if (!(s = cli_open_store(db)))
            return EXIT_FAIL;
        list_rec l = {0};
        int r = store_list_find(s, name, &l, &e);
        if (r == TD_ENOTFOUND)
            cli_error("there is no list '%s'; see 'tidings list ls'", name);
        else if (r || store_list_delete(s, l.id, &e))
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "list.delete", "list", l.id, NULL);
            printf("deleted list %s\n", name);
            rc = EXIT_OK;
        }
        list_rec_clear(&l);
        store_close(s);
        return rc;
    }

    if (!*name || text_check("the list name", name, strlen(name), 200, &e)) {
        cli_error("%s", *name ? e.msg : "the list name is empty");
        return EXIT_FAIL;
    }
    if (!model_optin_ok(optin))
        return cli_usage_error("list", "--optin must be single or double");
    if (!model_visibility_ok(visibility))
        return cli_usage_error("list", "--visibility must be public or private");
    if (!(s = cli_open_store(db)))
        return EXIT_FAIL;
    long long tid = cli_team_id(s, team), oid = cli_user_id(s, owner);
    if (tid >= 0 && oid >= 0) {
        list_rec l = {.name = (char *)name, .team_id = tid, .owner_id = oid,
                      .optin = (char *)optin, .visibility = (char *)visibility};
        int64_t id;
        int r = store_list_add(s, &l, &id, &e);
        if (r == TD_EEXISTS)
            cli_error("a list named '%s' exists already", name);
        else if (r)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "list.create", "list", id, optin);
            printf("%lld\n", (long long)id);
            rc = EXIT_OK;
        }
    }
    store_close(s);
    return rc;
}
