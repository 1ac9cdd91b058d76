/* cmd_serve: `tidings serve`: for now the scheduler and delivery (the web
 * UI, JSON API and tracking join it in a later issue). Stops cleanly on
 * SIGINT or SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "delivery/scheduler.h"
#include "store/store.h"
#include "util/log.h"

static const char usage[] =
    "usage: tidings serve [--db PATH] [--log-level debug|info|warn|error]\n"
    "\n"
    "Runs in the foreground until SIGINT or SIGTERM: starts scheduled campaigns\n"
    "at their send time and sends every running campaign through the relays\n"
    "(`tidings relay add`), %d campaigns at once at most. On a stop, messages\n"
    "not yet on a connection go back to the queue and running campaigns stay\n"
    "running: the next `serve` (or `campaign start ID --wait`) carries on.\n"
    "Logs one line per event on standard error.\n";

static volatile _Atomic bool stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, true);
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'l':
            if (log_set_level_name(optarg))
                return cli_usage_error("serve", "--log-level is debug, info, warn or error");
            break;
        case 'h': printf(usage, SCHEDULER_MAX_WORKERS); return EXIT_OK;
        default: return cli_bad_option("serve", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    /* Open once here so a bad database is a clear error before anything. */
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    store_close(s);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    td_error e = {0};
    if (scheduler_run(cli_db_path(db), &stop_flag, &e)) {
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
