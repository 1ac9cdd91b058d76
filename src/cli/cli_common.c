/* cli_common: helpers shared by the command files (see cli.h). */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"
#include "util/buf.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("tidings: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "tidings %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see 'tidings %s --help')\n", cmd);
    va_end(ap);
    return EXIT_USAGE;
}

const char *cli_db_path(const char *opt)
{
    if (opt && *opt)
        return opt;
    const char *env = getenv("TIDINGS_DB");
    if (env && *env)
        return env;
    return "./tidings.db";
}

struct store *cli_open_store(const char *db_opt)
{
    td_error e = {0};
    store *s = NULL;
    const char *path = cli_db_path(db_opt);
    if (store_open(path, &s, &e)) {
        cli_error("%s", e.msg);
        return NULL;
    }
    return s;
}

bool cli_is_tty(int fd)
{
    return isatty(fd) == 1;
}

const char *cli_actor(void)
{
    static char actor[96];
    if (!actor[0]) {
        const char *u = getenv("USER");
        snprintf(actor, sizeof actor, "cli:%.80s", u && *u ? u : "unknown");
    }
    return actor;
}

void cli_audit(struct store *s, const char *action, const char *object_type, long long object_id,
               const char *detail)
{
    td_error e = {0};
    audit_rec a = {.actor = cli_actor(),
                   .action = action,
                   .object_type = object_type,
                   .object_id = object_id,
                   .detail = detail};
    if (store_audit_add(s, &a, &e))
        cli_error("the change was made but the audit log could not record it: %s", e.msg);
}

long long cli_team_id(struct store *s, const char *name)
{
    if (!name)
        return 0;
    team_rec t = {0};
    td_error e = {0};
    int rc = store_team_find(s, name, &t, &e);
    if (rc == TD_ENOTFOUND) {
        cli_error("there is no team '%s'; see 'tidings team ls'", name);
        return -1;
    }
    if (rc) {
        cli_error("%s", e.msg);
        return -1;
    }
    long long id = t.id;
    team_rec_clear(&t);
    return id;
}

long long cli_user_id(struct store *s, const char *email)
{
    if (!email)
        return 0;
    user_rec u = {0};
    td_error e = {0};
    int rc = store_user_find(s, email, &u, &e);
    if (rc == TD_ENOTFOUND) {
        cli_error("there is no user '%s'; see 'tidings user ls'", email);
        return -1;
    }
    if (rc) {
        cli_error("%s", e.msg);
        return -1;
    }
    long long id = u.id;
    user_rec_clear(&u);
    return id;
}

char *cli_read_secret_file(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (!f) {
        cli_error("cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    char line[1100];
    char *got = fgets(line, sizeof line, f);
    if (f != stdin)
        fclose(f);
    if (!got) {
        cli_error("%s is empty: put the password on its first line", path);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return strdup(line);
}

void cli_json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

int cli_bad_option(const char *cmd, char **argv)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "";
    /* getopt_long sets optopt to the option's value when it lacks its
     * argument, and to 0 for a long option it does not know. */
    if (optopt && !strncmp(arg, "--", 2))
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt && arg[0] == '-' && arg[1] != '-')
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

/* Reads at most cap bytes of path ("-": standard input) into b. The rest
 * of a larger file is left unread: the parser would not look at it. */
int cli_read_capped(const char *path, size_t cap, buf *b)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return -1;
    }
    char chunk[65536];
    int rc = 0;
    while (b->len < cap) {
        size_t want = cap - b->len < sizeof chunk ? cap - b->len : sizeof chunk;
        size_t got = fread(chunk, 1, want, f);
        if (got)
            buf_append(b, chunk, got);
        if (got < want) {
            if (ferror(f)) {
                cli_error("%s: %s", path, strerror(errno ? errno : EIO));
                rc = -1;
            }
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    return rc;
}
