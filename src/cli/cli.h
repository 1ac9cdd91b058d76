/* cli: what the command files share: the command entry points, exit codes,
 * and helpers for options common to many commands.
 *
 * Exit status: 0 success, 1 failure, 2 wrong usage. Errors go to stderr, one
 * line each, starting with "tidings: " and saying what to do. */
#ifndef TD_CLI_CLI_H
#define TD_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include "util/err.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct store;

/* One entry per command; argv[0] is the command name. */
int cmd_init(int argc, char **argv);
int cmd_import(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_subscriber(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_team(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_token(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_message(int argc, char **argv);
int cmd_dkim(int argc, char **argv);
int cmd_campaign(int argc, char **argv);
int cmd_relay(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_block(int argc, char **argv);
int cmd_bounce(int argc, char **argv);
int cmd_inbound(int argc, char **argv);

/* cli_bad_option reports the option getopt_long just refused (unknown, or
 * missing its value) as a usage error; returns EXIT_USAGE. */
int cli_bad_option(const char *cmd, char **argv);

/* cli_error prints "tidings: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* cli_usage_error prints the message and a pointer to --help; returns
 * EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* cli_db_path returns the database location: the --db option if given, else
 * $TIDINGS_DB, else "./tidings.db". Borrowed; valid for the process. */
const char *cli_db_path(const char *opt);

/* cli_open_store opens (and migrates) the database; on failure prints the
 * reason and returns NULL. */
struct store *cli_open_store(const char *db_opt);

/* cli_is_tty is true when fd is a terminal (progress bars only then). */
bool cli_is_tty(int fd);

/* cli_actor names the person at the terminal for the audit log
 * ("cli:USER"). Borrowed; valid for the process. */
const char *cli_actor(void);

/* cli_audit writes one audit-log row for a change made from the command
 * line; a failure is reported but does not undo the change. */
void cli_audit(struct store *s, const char *action, const char *object_type, long long object_id,
               const char *detail);

/* cli_team_id resolves a team name to its id (0 for NULL); prints the error
 * and returns -1 when there is no such team. */
long long cli_team_id(struct store *s, const char *name);

/* cli_user_id resolves a user's email to its id (0 for NULL); prints the
 * error and returns -1 when there is no such user. */
long long cli_user_id(struct store *s, const char *email);

/* cli_read_secret_file reads the first line of path ("-" for stdin) without
 * its line ending; NULL with a printed error when it cannot. Caller frees. */
char *cli_read_secret_file(const char *path);

/* cli_json_str prints s to f as a JSON string (with quotes). */
void cli_json_str(FILE *f, const char *s);

/* cli_read_capped appends at most cap bytes of path ("-": standard input)
 * to b; the rest of a larger file is left unread. 0, or -1 after an error
 * line on stderr. */
struct buf;
int cli_read_capped(const char *path, size_t cap, struct buf *b);

#endif
