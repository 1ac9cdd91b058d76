/* cmd_render: `tidings render TEMPLATE --data FILE.json [--partials DIR]`
 * prints a mustache template rendered with the data. */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "tmpl/tmpl.h"

static const char usage[] =
    "usage: tidings render TEMPLATE [--data FILE.json] [--partials DIR]\n"
    "\n"
    "Prints TEMPLATE (a mustache file; '-' reads standard input) rendered with the\n"
    "JSON data (none: an empty object). {{name}} is HTML-escaped, {{{name}}} is not.\n"
    "Partials {{> NAME}} are read from DIR/NAME.mustache; without --partials they\n"
    "render empty. Errors (with line and column) go to standard error, exit 1.\n";

int cmd_render(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, NULL, 'd'},
        {"partials", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *data_path = NULL, *partials = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data_path = optarg;
            break;
        case 'p':
            partials = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return EXIT_OK;
        default:
            return cli_bad_option("render", argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("render", "give exactly one TEMPLATE file");
    const char *path = argv[optind];
    int rc = EXIT_FAIL;
    buf src, out;
    buf_init(&src, BUF_NOCAP);
    buf_init(&out, BUF_NOCAP);
    json_t *data = cli_tmpl_data(data_path);
    if (!data)
        goto done;
    if (cli_tmpl_read(path, TMPL_MAX_SRC, &src))
        goto done;
    if (cli_tmpl_render(path, src.data, src.len, data, partials, &out))
        goto done;
    if (fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout)) {
        cli_error("writing the output failed");
        goto done;
    }
    rc = EXIT_OK;
done:
    json_decref(data);
    buf_free(&src);
    buf_free(&out);
    return rc;
}
