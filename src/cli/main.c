/* main: the tidings command line: dispatches to one function per command. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"init", cmd_init, "create or migrate the database; create the first admin"},
    {"import", cmd_import, "import subscribers from a CSV file into a list"},
    {"export", cmd_export, "write a list's subscribers as CSV"},
    {"subscriber", cmd_subscriber, "add, get, update or delete one subscriber"},
    {"list", cmd_list, "create, list or delete mailing lists"},
    {"team", cmd_team, "add or list teams"},
    {"user", cmd_user, "add or list users"},
    {"token", cmd_token, "make, list or revoke API tokens (Authorization: Bearer)"},
    {"demo", cmd_demo, "create a demo database and print a summary"},
    {"render", cmd_render, "print a mustache template rendered with JSON data"},
    {"message", cmd_message, "print one complete message exactly as it would be sent"},
    {"dkim", cmd_dkim, "make DKIM keys, list them with their DNS records, sign a message"},
    {"block", cmd_block, "add, list, show or remove articles and products of the content library"},
    {"campaign", cmd_campaign, "create campaigns, list them, see how one stands"},
    {"relay", cmd_relay, "add, list or remove the relays campaigns are sent through"},
    {"serve", cmd_serve, "run the scheduler, delivery, tracking and the JSON API (/api/v1)"},
    {"bounce", cmd_bounce, "classify inbound messages: bounces, complaints, replies (JSON lines)"},
    {"inbound", cmd_inbound, "take in bounces, complaints and replies from files or IMAP/POP3"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: tidings COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'tidings COMMAND --help' for a command's options.\n"
               "The database is --db PATH, else $TIDINGS_DB, else ./tidings.db.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    /* Commands report bad options themselves, in one line (cli_bad_option). */
    opterr = 0;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "tidings: unknown command '%s'; run 'tidings --help' for the list\n", argv[1]);
    return EXIT_USAGE;
}
