/* cmd_team: `tidings team add|ls`. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/store.h"
#include "util/utf8.h"
#include "util/text.h"

static const char usage[] =
    "usage: tidings team add NAME [--model central|catalyst|local] [--parent TEAM] [--db PATH]\n"
    "       tidings team ls [--json] [--db PATH]\n"
    "\n"
    "Teams own lists, subscribers and campaigns. The model says how a team works:\n"
    "central (one group does the work for everyone), catalyst (a central group sets\n"
    "the rules and approves, local groups execute), local (acts alone within the\n"
    "guidelines). --parent makes the team part of another.\n";

static int print_team(void *ud, const team_rec *t)
{
    bool json = *(bool *)ud;
    if (json) {
        printf("{\"id\":%lld,\"name\":", (long long)t->id);
        cli_json_str(stdout, t->name);
        printf(",\"model\":\"%s\",\"parent_id\":%lld}\n", t->model, (long long)t->parent_id);
    } else {
        printf("%-6lld ", (long long)t->id);
        utf8_pad(stdout, t->name, 30);
        printf(" %-9s %lld\n", t->model,
               (long long)t->parent_id);
    }
    return 0;
}

int cmd_team(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"model", required_argument, NULL, 'm'},
        {"parent", required_argument, NULL, 'p'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {0},
    };
    const char *db = NULL, *model = "central", *parent = NULL;
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'm': model = optarg; break;
        case 'p': parent = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("team", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("team", "say add or ls");
    const char *sub = argv[optind++];
    td_error e = {0};
    if (!strcmp(sub, "ls")) {
        if (optind < argc)
            return cli_usage_error("team", "ls takes no arguments");
        store *s = cli_open_store(db);
        if (!s)
            return EXIT_FAIL;
        if (!json)
            printf("%-6s %-30s %-9s %s\n", "ID", "NAME", "MODEL", "PARENT");
        int rc = store_team_each(s, print_team, &json, &e);
        if (rc)
            cli_error("%s", e.msg);
        store_close(s);
        return rc ? EXIT_FAIL : EXIT_OK;
    }
    if (strcmp(sub, "add"))
        return cli_usage_error("team", "unknown subcommand '%s'", sub);
    if (optind + 1 != argc)
        return cli_usage_error("team", "add takes exactly one NAME");
    const char *name = argv[optind];
    if (!*name || text_check("the team name", name, strlen(name), 200, &e)) {
        cli_error("%s", *name ? e.msg : "the team name is empty");
        return EXIT_FAIL;
    }
    if (!model_team_model_ok(model))
        return cli_usage_error("team", "--model must be central, catalyst or local");
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    long long pid = cli_team_id(s, parent);
    if (pid >= 0) {
        team_rec t = {.name = (char *)name, .model = (char *)model, .parent_id = pid};
        int64_t id;
        int r = store_team_add(s, &t, &id, &e);
        if (r == TD_EEXISTS)
            cli_error("a team named '%s' exists already", name);
        else if (r)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "team.add", "team", id, model);
            printf("%lld\n", (long long)id);
            rc = EXIT_OK;
        }
    }
    store_close(s);
    return rc;
}
