/* cmd_import: `tidings import FILE.csv --list NAME`: CSV into a list, with a
 * progress bar on a terminal. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "audience/import.h"
#include "cli/cli.h"
#include "store/store.h"

static const char usage[] =
    "usage: tidings import FILE.csv --list NAME [--team TEAM] [--owner EMAIL]\n"
    "                      [--mode subscribe|upsert|blocklist] [--db PATH]\n"
    "\n"
    "Imports subscribers from a CSV file ('-' reads standard input) into a list.\n"
    "The first row names the columns: email (required), name, attributes (a JSON\n"
    "object), timezone, locale, subscription (confirmed|unconfirmed|unsubscribed);\n"
    "every other column becomes an attribute. Rows that are not valid are reported\n"
    "with their line number and every valid row still imports; importing the same\n"
    "file again changes nothing.\n"
    "\n"
    "  --mode subscribe  add new subscribers, leave existing ones as they are (default)\n"
    "  --mode upsert     also overwrite the name and attributes of existing ones\n"
    "  --mode blocklist  block every address in the file from all mail\n"
    "  --team TEAM       team of new subscribers (default: the list's team)\n"
    "  --owner EMAIL     owner (a seller) of new subscribers (default: the list's owner)\n"
    "\n"
    "Exit status: 0 when every row imported, 1 when some rows were refused (the\n"
    "others are imported) or the import failed, 2 for wrong usage.\n";

#define MAX_REPORTED 1000

struct ui {
    bool tty;
    off_t size;
    struct timespec start, last;
    uint64_t reported;
};

static double since(const struct timespec *a)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - a->tv_sec) + (double)(now.tv_nsec - a->tv_nsec) / 1e9;
}

static void reject(void *ud, uint64_t line, const char *reason)
{
    struct ui *u = ud;
    (void)line;
    if (++u->reported <= MAX_REPORTED) {
        if (u->tty)
            fputs("\r\033[K", stderr);
        fprintf(stderr, "tidings: %s\n", reason);
    } else if (u->reported == MAX_REPORTED + 1) {
        fprintf(stderr, "tidings: more refused rows are counted but not shown\n");
    }
}

static void progress(void *ud, const import_stats *st)
{
    struct ui *u = ud;
    if (!u->tty || since(&u->last) < 0.1)
        return;
    clock_gettime(CLOCK_MONOTONIC, &u->last);
    double t = since(&u->start);
    double rate = t > 0 ? (double)st->rows / t : 0;
    if (u->size > 0) {
        double frac = (double)st->bytes / (double)u->size;
        if (frac > 1)
            frac = 1;
        int fill = (int)(frac * 30);
        double left = frac > 0 ? t / frac - t : 0;
        fprintf(stderr, "\r\033[K[%.*s%.*s] %3d%% %llu rows  %.0f rows/s  %d:%02d left",
                fill, "##############################", 30 - fill,
                "                              ", (int)(frac * 100),
                (unsigned long long)st->rows, rate, (int)left / 60, (int)left % 60);
    } else {
        fprintf(stderr, "\r\033[K%llu rows  %.0f rows/s", (unsigned long long)st->rows, rate);
    }
}

int cmd_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},   {"list", required_argument, NULL, 'l'},
        {"team", required_argument, NULL, 't'}, {"owner", required_argument, NULL, 'o'},
        {"mode", required_argument, NULL, 'm'}, {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *list = NULL, *team = NULL, *owner = NULL, *mode = "subscribe";
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'l': list = optarg; break;
        case 't': team = optarg; break;
        case 'o': owner = optarg; break;
        case 'm': mode = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("import", argv);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("import", "give exactly one FILE.csv (or - for stdin)");
    if (!list)
        return cli_usage_error("import", "--list NAME is required");
    import_opts io = {0};
    if (!strcmp(mode, "subscribe"))
        io.mode = SUB_MODE_SUBSCRIBE;
    else if (!strcmp(mode, "upsert"))
        io.mode = SUB_MODE_UPSERT;
    else if (!strcmp(mode, "blocklist"))
        io.mode = SUB_MODE_BLOCKLIST;
    else
        return cli_usage_error("import", "--mode must be subscribe, upsert or blocklist");

    const char *path = argv[optind];
    FILE *in = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!in) {
        cli_error("cannot open %s: %s", path, strerror(errno));
        return EXIT_FAIL;
    }
    struct ui u = {.tty = cli_is_tty(2)};
    struct stat sb;
    if (in != stdin && fstat(fileno(in), &sb) == 0 && S_ISREG(sb.st_mode))
        u.size = sb.st_size;
    static char iobuf[1 << 16];
    setvbuf(in, iobuf, _IOFBF, sizeof iobuf);

    int rc = EXIT_FAIL;
    td_error e = {0};
    list_rec l = {0};
    store *s = cli_open_store(db);
    if (!s)
        goto out;
    int r = store_list_find(s, list, &l, &e);
    if (r == TD_ENOTFOUND) {
        cli_error("there is no list '%s'; create it with 'tidings list create %s'", list, list);
        goto out;
    } else if (r) {
        cli_error("%s", e.msg);
        goto out;
    }
    long long tid = team ? cli_team_id(s, team) : l.team_id;
    long long oid = owner ? cli_user_id(s, owner) : l.owner_id;
    if (tid < 0 || oid < 0)
        goto out;
    io.list_id = l.id;
    io.list_optin = l.optin;
    io.team_id = tid;
    io.owner_id = oid;
    io.reject = reject;
    io.progress = progress;
    io.ud = &u;
    clock_gettime(CLOCK_MONOTONIC, &u.start);
    u.last = u.start;
    import_stats st;
    r = import_csv(s, in, &io, &st, &e);
    if (u.tty)
        fputs("\r\033[K", stderr);
    double t = since(&u.start);
    if (r) {
        cli_error("%s", e.msg);
        if (st.created + st.updated)
            cli_error("%llu rows were imported before that; importing the file again is safe",
                      (unsigned long long)(st.created + st.updated));
        goto out;
    }
    char detail[200];
    snprintf(detail, sizeof detail,
             "{\"rows\":%llu,\"created\":%llu,\"updated\":%llu,\"invalid\":%llu,\"mode\":\"%s\"}",
             (unsigned long long)st.rows, (unsigned long long)st.created,
             (unsigned long long)st.updated, (unsigned long long)st.invalid, mode);
    cli_audit(s, "list.import", "list", l.id, detail);
    printf("imported %s into %s: %llu rows, %llu new, %llu updated, %llu unchanged, "
           "%llu added to the list, %llu refused (%.1f s, %.0f rows/s)\n",
           strcmp(path, "-") ? path : "stdin", list, (unsigned long long)st.rows,
           (unsigned long long)st.created, (unsigned long long)st.updated,
           (unsigned long long)st.unchanged, (unsigned long long)st.memberships,
           (unsigned long long)st.invalid, t, t > 0 ? (double)st.rows / t : 0.0);
    if (st.invalid) {
        cli_error("%llu rows were refused (reasons above); the other rows were imported",
                  (unsigned long long)st.invalid);
        goto out;
    }
    rc = EXIT_OK;
out:
    list_rec_clear(&l);
    store_close(s);
    if (in && in != stdin)
        fclose(in);
    return rc;
}
