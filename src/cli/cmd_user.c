/* cmd_user: `tidings user add|ls`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "audience/subscriber.h"
#include "cli/cli.h"
#include "store/store.h"
#include "util/secret.h"
#include "util/text.h"

static const char usage[] =
    "usage: tidings user add EMAIL --role ROLE [--name NAME] [--team TEAM]\n"
    "                        [--password-file FILE] [--db PATH]\n"
    "       tidings user ls [--json] [--db PATH]\n"
    "\n"
    "ROLE is admin, director, designer, operator, seller or responder. Without\n"
    "--password-file the user cannot log in until a password is set.\n";

static int print_user(void *ud, const user_rec *u)
{
    bool json = *(bool *)ud;
    if (json) {
        printf("{\"id\":%lld,\"email\":", (long long)u->id);
        cli_json_str(stdout, u->email);
        printf(",\"name\":");
        cli_json_str(stdout, u->name);
        printf(",\"role\":\"%s\",\"team_id\":%lld}\n", u->role, (long long)u->team_id);
    } else {
        printf("%-6lld %-36s %-10s %-6lld %s\n", (long long)u->id, u->email, u->role,
               (long long)u->team_id, u->name);
    }
    return 0;
}

int cmd_user(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},   {"role", required_argument, NULL, 'r'},
        {"name", required_argument, NULL, 'n'}, {"team", required_argument, NULL, 't'},
        {"password-file", required_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},       {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *role = NULL, *name = "", *team = NULL, *pwfile = NULL;
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'r': role = optarg; break;
        case 'n': name = optarg; break;
        case 't': team = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("user", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("user", "say add or ls");
    const char *sub = argv[optind++];
    td_error e = {0};
    if (!strcmp(sub, "ls")) {
        if (optind < argc)
            return cli_usage_error("user", "ls takes no arguments");
        store *s = cli_open_store(db);
        if (!s)
            return EXIT_FAIL;
        if (!json)
            printf("%-6s %-36s %-10s %-6s %s\n", "ID", "EMAIL", "ROLE", "TEAM", "NAME");
        int rc = store_user_each(s, print_user, &json, &e);
        if (rc)
            cli_error("%s", e.msg);
        store_close(s);
        return rc ? EXIT_FAIL : EXIT_OK;
    }
    if (strcmp(sub, "add"))
        return cli_usage_error("user", "unknown subcommand '%s'", sub);
    if (optind + 1 != argc)
        return cli_usage_error("user", "add takes exactly one EMAIL");
    if (!role || !model_role_ok(role))
        return cli_usage_error("user", "--role must be admin, director, designer, operator, "
                                       "seller or responder");
    char *email = subscriber_email(argv[optind], strlen(argv[optind]), &e);
    if (!email) {
        cli_error("the email is not valid: %s", e.msg);
        return EXIT_FAIL;
    }
    if (text_check("the name", name, strlen(name), 256, &e)) {
        cli_error("%s", e.msg);
        free(email);
        return EXIT_FAIL;
    }
    store *s = cli_open_store(db);
    if (!s) {
        free(email);
        return EXIT_FAIL;
    }
    int rc = EXIT_FAIL;
    char *pw = NULL, *hash = NULL;
    long long tid = cli_team_id(s, team);
    if (tid < 0)
        goto out;
    if (pwfile) {
        if (!(pw = cli_read_secret_file(pwfile)))
            goto out;
        if (!(hash = secret_hash_password(pw, strlen(pw), &e))) {
            cli_error("%s", e.msg);
            goto out;
        }
    }
    user_rec u = {.email = email, .name = (char *)name, .role = (char *)role, .team_id = tid,
                  .password_hash = hash};
    int64_t id;
    int r = store_user_add(s, &u, &id, &e);
    if (r == TD_EEXISTS)
        cli_error("a user with the address %s exists already", email);
    else if (r)
        cli_error("%s", e.msg);
    else {
        cli_audit(s, "user.add", "user", id, role);
        printf("%lld\n", (long long)id);
        rc = EXIT_OK;
    }
out:
    if (pw) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    free(hash);
    free(email);
    store_close(s);
    return rc;
}
