/* cmd_bounce: `tidings bounce FILE...`: classifies inbound messages
 * (bounce, complaint, reply, other) and prints each one's failed recipients
 * as one JSON object a line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "inbound/bounce.h"
#include "util/buf.h"

static const char usage[] =
    "usage: tidings bounce FILE...\n"
    "\n"
    "Reads each FILE ('-' is standard input) as one mail message and prints one\n"
    "JSON object a line, in the order of the files:\n"
    "  {\"file\": FILE, \"kind\": \"bounce\"|\"complaint\"|\"reply\"|\"other\",\n"
    "   \"recipients\": [{\"address\", \"status\", \"reply_code\", \"hard\", \"reason\"}]}\n"
    "\n"
    "A bounce lists each failed or delayed recipient in the order the message\n"
    "gives them: the RFC 3463 status (\"5.1.1\"; inferred from the text when the\n"
    "message has none), the SMTP reply code (null when none), hard (true when the\n"
    "address itself is bad and must be suppressed for good) and a reason\n"
    "(userunknown, mailboxfull, blocked, expired, ...). A complaint (ARF, RFC\n"
    "5965, or an Amazon SES complaint) lists the complaining address with reason\n"
    "\"feedback\". Replies, automatic replies and anything else have no\n"
    "recipients, and so do bytes that are not a mail message at all. Only the\n"
    "first 4 MiB of a message are read.\n"
    "\n"
    "Exit status: 0 when every file was read, 1 when one could not be (an error\n"
    "line for it goes to standard error and the other files are still read),\n"
    "2 for wrong usage.\n";

int cmd_bounce(int argc, char **argv)
{
    static const struct option opts[] = {
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return EXIT_OK;
        default:
            return cli_bad_option("bounce", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("bounce", "give at least one message FILE");
    if (bounce_init() != 0) {
        cli_error("the bounce rules failed to compile (a bug)");
        return EXIT_FAIL;
    }
    int rc = EXIT_OK;
    buf data;
    buf_init(&data, BOUNCE_MAX_INPUT);
    for (int i = optind; i < argc; i++) {
        buf_reset(&data);
        if (cli_read_capped(argv[i], BOUNCE_MAX_INPUT, &data)) {
            rc = EXIT_FAIL;
            continue;
        }
        bounce_result *r = NULL;
        td_error e = {0};
        int prc = bounce_parse(data.data, data.len, &r, &e);
        if (prc && prc != TD_EINVAL) {
            cli_error("%s: %s", argv[i], e.msg);
            rc = EXIT_FAIL;
            continue;
        }
        /* Bytes that are not a mail message at all (an empty file, binary
         * junk in a mailbox) are "other": what came in was read, and the
         * line still stands for the file. */
        char *line = bounce_result_json(r, argv[i]);
        puts(line);
        free(line);
        bounce_result_free(r);
    }
    buf_free(&data);
    if (fflush(stdout)) {
        cli_error("writing the output failed");
        rc = EXIT_FAIL;
    }
    return rc;
}
