/* cmd_token: `tidings token create|ls|revoke`: API tokens for the JSON API
 * (http/auth), made from the command line, e.g. for the first script
 * before anyone has signed in. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "http/auth.h"
#include "store/store.h"
#include "util/secret.h"
#include "util/text.h"

static const char usage[] =
    "usage: tidings token create --user EMAIL [--name NAME] [--expires-in DAYS] [--db PATH]\n"
    "       tidings token ls [--user EMAIL] [--json] [--db PATH]\n"
    "       tidings token revoke ID [--db PATH]\n"
    "\n"
    "create prints a new API token for the user on standard output, once: only\n"
    "its SHA-256 is kept. Send it as 'Authorization: Bearer TOKEN' to /api/v1; it\n"
    "acts with the user's role. --expires-in: it stops working after DAYS days\n"
    "(default: never). revoke ends a token at once.\n";

static int print_token(void *ud, const token_rec *t)
{
    bool json = *(bool *)ud;
    if (json) {
        printf("{\"id\":%lld,\"user_id\":%lld,\"name\":", (long long)t->id, (long long)t->user_id);
        cli_json_str(stdout, t->name);
        printf(",\"created_at\":%lld,\"expires_at\":%lld}\n", (long long)t->created_at,
               (long long)t->expires_at);
    } else {
        printf("%-6lld %-6lld %-12lld %-12lld %s\n", (long long)t->id, (long long)t->user_id,
               (long long)t->created_at, (long long)t->expires_at, t->name);
    }
    return 0;
}

int cmd_token(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},         {"user", required_argument, NULL, 'u'},
        {"name", required_argument, NULL, 'n'},       {"expires-in", required_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},             {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *user = NULL, *name = "";
    long days = 0;
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'u': user = optarg; break;
        case 'n': name = optarg; break;
        case 'x': {
            char *end;
            days = strtol(optarg, &end, 10);
            if (*end || days < 1 || days > 3650)
                return cli_usage_error("token", "--expires-in is a number of days, 1 to 3650");
            break;
        }
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("token", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("token", "say create, ls or revoke");
    const char *sub = argv[optind++];
    td_error e = {0};
    if (strcmp(sub, "create") && strcmp(sub, "ls") && strcmp(sub, "revoke"))
        return cli_usage_error("token", "unknown subcommand '%s'", sub);
    if (!strcmp(sub, "create") && !user)
        return cli_usage_error("token", "create needs --user EMAIL");
    if (strcmp(sub, "revoke") ? optind < argc : optind + 1 != argc)
        return cli_usage_error("token", "%s", strcmp(sub, "revoke") ? "unexpected argument"
                                                                    : "revoke takes one ID");
    if (text_check("the token name", name, strlen(name), 200, &e))
        return cli_usage_error("token", "%s", e.msg);
    if (secret_init()) {
        cli_error("libsodium did not start");
        return EXIT_FAIL;
    }
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    long long uid = cli_user_id(s, user);
    if (uid < 0)
        goto out;
    if (!strcmp(sub, "ls")) {
        if (!json)
            printf("%-6s %-6s %-12s %-12s %s\n", "ID", "USER", "CREATED", "EXPIRES", "NAME");
        if (store_token_each(s, uid, print_token, &json, &e))
            cli_error("%s", e.msg);
        else
            rc = EXIT_OK;
    } else if (!strcmp(sub, "revoke")) {
        char *end;
        long long id = strtoll(argv[optind], &end, 10);
        if (*end || id < 1) {
            store_close(s);
            return cli_usage_error("token", "revoke takes a token's ID (see 'token ls')");
        }
        int r = store_token_delete(s, id, &e);
        if (r == TD_ENOTFOUND)
            cli_error("there is no token %lld; see 'tidings token ls'", id);
        else if (r)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "token.delete", "token", id, NULL);
            printf("token %lld revoked\n", id);
            rc = EXIT_OK;
        }
    } else {
        char *tok = NULL;
        int64_t id = 0, exp = days ? (int64_t)time(NULL) + days * 86400 : 0;
        if (auth_token_create(s, uid, name, exp, &tok, &id, &e)) {
            cli_error("%s", e.msg);
        } else {
            cli_audit(s, "token.create", "token", id, name);
            printf("%s\n", tok);
            free(tok);
            rc = EXIT_OK;
        }
    }
out:
    store_close(s);
    return rc;
}
