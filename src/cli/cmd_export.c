/* cmd_export: `tidings export --list NAME [--output FILE]`. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audience/export.h"
#include "cli/cli.h"
#include "store/store.h"

static const char usage[] =
    "usage: tidings export --list NAME [--output FILE] [--db PATH]\n"
    "\n"
    "Writes the list's subscribers as CSV (email,name,attributes,timezone,locale,\n"
    "subscription), the format 'tidings import' reads back. Without --output it\n"
    "writes to standard output; with it, the file appears only when complete.\n";

int cmd_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"list", required_argument, NULL, 'l'},
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *list = NULL, *output = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "ho:", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'l': list = optarg; break;
        case 'o': output = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("export", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("export", "unexpected argument '%s'", argv[optind]);
    if (!list)
        return cli_usage_error("export", "--list NAME is required");
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    td_error e = {0};
    list_rec l = {0};
    FILE *out = stdout;
    char *tmp = NULL;
    int r = store_list_find(s, list, &l, &e);
    if (r == TD_ENOTFOUND) {
        cli_error("there is no list '%s'; see 'tidings list ls'", list);
        goto out;
    } else if (r) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (output && strcmp(output, "-")) {
        size_t n = strlen(output) + 16;
        tmp = malloc(n);
        snprintf(tmp, n, "%s.tmp%ld", output, (long)getpid());
        if (!(out = fopen(tmp, "wb"))) {
            cli_error("cannot write %s: %s", output, strerror(errno));
            goto out;
        }
    }
    uint64_t rows = 0;
    r = export_csv(s, l.id, out, &rows, &e);
    if (out != stdout) {
        if (fclose(out) && !r)
            r = td_err_set(&e, TD_EIO, "writing %s failed: %s", output, strerror(errno));
        out = stdout;
        if (!r && rename(tmp, output))
            r = td_err_set(&e, TD_EIO, "cannot create %s: %s", output, strerror(errno));
        if (r)
            unlink(tmp);
    }
    if (r) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (output)
        fprintf(stderr, "exported %llu subscribers of %s to %s\n", (unsigned long long)rows,
                list, output);
    rc = EXIT_OK;
out:
    free(tmp);
    list_rec_clear(&l);
    store_close(s);
    return rc;
}
