/* cmd_block: `tidings block add|ls|get|rm`, the content library (articles and
 * products that newsletters include as {{> article/NAME}}, {{> product/NAME}}). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "campaign/blocks.h"
#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "store/store.h"

static const char usage[] =
    "usage: tidings block add NAME --kind article|product --title TITLE --file BODY.mustache\n"
    "                         [--data JSON] [--team TEAM] [--db PATH]\n"
    "       tidings block ls [--kind article|product] [--json] [--db PATH]\n"
    "       tidings block get NAME [--body] [--db PATH]\n"
    "       tidings block rm NAME [--db PATH]\n"
    "\n"
    "The content library: articles and products the company provides, which\n"
    "newsletter templates include as {{> article/NAME}} or {{> product/NAME}}.\n"
    "NAME is 1 to 64 of a-z, 0-9 and '-'. The body (--file, '-' for standard\n"
    "input) is a mustache template of at most 256 KiB; inside it {{title}},\n"
    "{{name}}, {{kind}} and the keys of --data (a JSON object, e.g.\n"
    "'{\"price\":\"12.50\",\"url\":\"https://shop.example/mug\"}') are the block's,\n"
    "and the rest of the message's data is there as usual ({{subscriber.name}},\n"
    "{{#track}}URL{{/track}}). add replaces a block of the same name. --team makes\n"
    "the block that team's; without it the block is company-wide.\n"
    "get prints the block as one JSON object, or with --body only its body.\n";

/* print_block writes b as one JSON object on a line (body only when asked). */
static void print_block(const block_rec *b, bool body)
{
    printf("{\"id\":%lld,\"kind\":\"%s\",\"name\":\"%s\",\"title\":", (long long)b->id, b->kind,
           b->name);
    cli_json_str(stdout, b->title);
    /* data is canonical JSON as stored (store_block_put), so it goes out as is */
    printf(",\"data\":%s,\"team_id\":%lld,\"created_at\":%lld,\"updated_at\":%lld",
           b->data ? b->data : "{}", (long long)b->team_id, (long long)b->created_at,
           (long long)b->updated_at);
    if (body) {
        fputs(",\"body\":", stdout);
        cli_json_str(stdout, b->body);
    }
    fputs("}\n", stdout);
}

static int print_row(void *ud, const block_rec *b)
{
    if (*(bool *)ud)
        print_block(b, false);
    else
        printf("%-6lld %-8s %-30s %-6lld %s\n", (long long)b->id, b->kind, b->name,
               (long long)b->team_id, b->title);
    return 0;
}

/* block_add reads the body and saves the block; returns an exit status. */
static int block_add(store *s, const char *name, const char *kind, const char *title,
                     const char *file, const char *data, const char *team)
{
    td_error e = {0};
    buf body;
    buf_init(&body, BUF_NOCAP);
    int rc = EXIT_FAIL;
    if (cli_tmpl_read(file, BLOCK_MAX_BODY, &body))
        goto out;
    if (memchr(body.data, '\0', body.len)) {
        cli_error("%s: the body contains a NUL byte", file);
        goto out;
    }
    if (blocks_check_body(body.data, body.len, &e)) {
        cli_error("%s: %s", file, e.msg);
        goto out;
    }
    long long tid = cli_team_id(s, team);
    if (tid < 0)
        goto out;
    block_rec old = {0};
    bool existed = store_block_get(s, name, &old, NULL) == TD_OK;
    block_rec_clear(&old);
    block_rec b = {.kind = (char *)kind, .name = (char *)name, .title = (char *)title,
                   .body = body.data, .data = (char *)data, .team_id = tid};
    int64_t id;
    if (store_block_put(s, &b, &id, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    cli_audit(s, existed ? "block.replace" : "block.add", "block", id, name);
    printf("%s %s %s (id %lld)\n", existed ? "replaced" : "added", kind, name, (long long)id);
    rc = EXIT_OK;
out:
    buf_free(&body);
    return rc;
}

int cmd_block(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},    {"kind", required_argument, NULL, 'k'},
        {"title", required_argument, NULL, 't'}, {"file", required_argument, NULL, 'f'},
        {"data", required_argument, NULL, 'D'},  {"team", required_argument, NULL, 'T'},
        {"json", no_argument, NULL, 'j'},        {"body", no_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},        {0},
    };
    const char *db = NULL, *kind = NULL, *title = NULL, *file = NULL, *data = NULL, *team = NULL;
    bool json = false, body = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'k': kind = optarg; break;
        case 't': title = optarg; break;
        case 'f': file = optarg; break;
        case 'D': data = optarg; break;
        case 'T': team = optarg; break;
        case 'j': json = true; break;
        case 'b': body = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("block", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("block", "say add, ls, get or rm");
    const char *sub = argv[optind++];
    bool is_add = !strcmp(sub, "add"), is_ls = !strcmp(sub, "ls");
    if (!is_add && !is_ls && strcmp(sub, "get") && strcmp(sub, "rm"))
        return cli_usage_error("block", "unknown subcommand '%s'", sub);
    if (kind && !model_block_kind_ok(kind))
        return cli_usage_error("block", "--kind must be article or product");
    if ((title || file || data || team) && !is_add)
        return cli_usage_error("block", "--title, --file, --data and --team go with add");
    if (kind && !is_add && !is_ls)
        return cli_usage_error("block", "--kind goes with add or ls");
    if (json && !is_ls)
        return cli_usage_error("block", "--json goes with ls");
    if (body && strcmp(sub, "get"))
        return cli_usage_error("block", "--body goes with get");
    if (is_ls && optind < argc)
        return cli_usage_error("block", "ls takes no arguments");
    if (!is_ls && optind + 1 != argc)
        return cli_usage_error("block", "%s takes exactly one NAME", sub);
    const char *name = is_ls ? NULL : argv[optind];
    if (is_add && (!kind || !title || !file))
        return cli_usage_error("block", "add needs --kind, --title and --file");
    /* Checked before the database is opened, and never echoed: a name that
     * is not a slug may hold anything, a line break included. */
    if (name && !model_block_name_ok(name)) {
        cli_error("a block name is 1 to %d of a-z, 0-9 and '-'", BLOCK_MAX_NAME);
        return EXIT_FAIL;
    }

    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    td_error e = {0};
    int rc = EXIT_FAIL;
    if (is_add) {
        rc = block_add(s, name, kind, title, file, data, team);
    } else if (is_ls) {
        if (!json)
            printf("%-6s %-8s %-30s %-6s %s\n", "ID", "KIND", "NAME", "TEAM", "TITLE");
        if (store_block_each(s, kind, print_row, &json, &e))
            cli_error("%s", e.msg);
        else
            rc = EXIT_OK;
    } else if (!strcmp(sub, "get")) {
        block_rec b = {0};
        int r = store_block_get(s, name, &b, &e);
        if (r == TD_ENOTFOUND)
            cli_error("there is no block '%s'; see 'tidings block ls'", name);
        else if (r)
            cli_error("%s", e.msg);
        else {
            if (body)
                fputs(b.body, stdout);
            else
                print_block(&b, true);
            rc = EXIT_OK;
        }
        block_rec_clear(&b);
    } else {
        block_rec b = {0};
        int r = store_block_get(s, name, &b, &e);
        if (!r)
            r = store_block_delete(s, name, &e);
        if (r == TD_ENOTFOUND)
            cli_error("there is no block '%s'; see 'tidings block ls'", name);
        else if (r)
            cli_error("%s", e.msg);
        else {
            cli_audit(s, "block.delete", "block", b.id, name);
            printf("deleted %s %s\n", b.kind, name);
            rc = EXIT_OK;
        }
        block_rec_clear(&b);
    }
    store_close(s);
    return rc;
}
