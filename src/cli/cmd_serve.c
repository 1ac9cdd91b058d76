/* cmd_serve: `tidings serve`: the HTTP server (tracking, unsubscribe,
 * signup, health and metrics; src/http) beside the scheduler and delivery.
 * Stops cleanly on SIGINT or SIGTERM: requests being answered finish,
 * queued events are stored, delivery stops as `campaign start --wait`
 * does. */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "delivery/scheduler.h"
#include "http/endpoints.h"
#include "http/server.h"
#include "inbound/lmtp.h"
#include "inbound/mailbox.h"
#include "store/store.h"
#include "util/log.h"

static const char usage[] =
    "usage: tidings serve [--listen ADDR:PORT] [--threads N] [--lmtp ADDR:PORT]\n"
    "                     [--db PATH] [--log-level debug|info|warn|error]\n"
    "\n"
    "Runs in the foreground until SIGINT or SIGTERM. Serves HTTP on --listen\n"
    "(default " HTTP_DEFAULT_LISTEN ", the public URL `tidings init` sets by default;\n"
    "[::1]:8080 for IPv6) with N threads (default: one per CPU, at most 8):\n"
    "  /o/TOKEN open pixel, /c/TOKEN click redirect, /u/TOKEN unsubscribe page\n"
    "  and RFC 8058 one-click POST, /s/LIST signup form, /confirm/TOKEN double\n"
    "  opt-in, /healthz, /metrics (Prometheus).\n"
    "The links in messages start from the public URL (`tidings init --public-url`):\n"
    "it must reach this address, directly or through a proxy. Starts scheduled campaigns\n"
    "at their send time and sends every running campaign through the relays\n"
    "(`tidings relay add`), %d campaigns at once at most. On a stop, messages\n"
    "not yet on a connection go back to the queue and running campaigns stay\n"
    "running: the next `serve` (or `campaign start ID --wait`) carries on.\n"
    "Polls the stored mailboxes (`tidings inbound add`) when they are due, and\n"
    "takes provider webhooks at /webhooks/ses|sendgrid|mailgun|postmark once\n"
    "configured (`tidings inbound webhook`). With --lmtp, also takes mail over\n"
    "LMTP (RFC 2033) on that address, for a bounce domain whose mail server\n"
    "hands its mail to Tidings (Postfix: transport lmtp:inet:ADDR:PORT);\n"
    "each message is answered only once its effects are stored.\n"
    "Logs one line per event on standard error.\n";

static volatile _Atomic bool stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stop_flag, true);
}

#define POLL_TICK_S 5 /* how often the poller looks for a due mailbox */

/* The mailbox poller: a thread of its own because a poll blocks for as
 * long as the server takes, with its own database connection (SQLite
 * handles are not shared between threads). On a stop, a poll in progress
 * is abandoned at its next message or transfer second: what was applied
 * is recorded, the rest is taken next time (act.h's exactly once). */
struct poller {
    const char *location;
    pthread_t th;
    bool started;
};

static void *poller_main(void *ud)
{
    struct poller *p = ud;
    td_error e = {0};
    store *s = NULL;
    while (!atomic_load(&stop_flag)) {
        if (!s && store_open(p->location, &s, &e)) {
            log_error("serve: mailboxes: %s", e.msg);
            s = NULL;
        } else if (mailbox_poll_due_stop(s, (int64_t)time(NULL), &stop_flag, &e)) {
            log_warn("serve: mailboxes: %s", e.msg);
        }
        for (int i = 0; i < POLL_TICK_S * 10 && !atomic_load(&stop_flag); i++) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    store_close(s);
    return NULL;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'L'},
        {"lmtp", required_argument, NULL, 'M'},
        {"threads", required_argument, NULL, 't'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL;
    const char *listen = HTTP_DEFAULT_LISTEN, *lmtp = NULL;
    unsigned threads = 0;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'L': listen = optarg; break;
        case 'M': lmtp = optarg; break;
        case 't': {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 64)
                return cli_usage_error("serve", "--threads is a number from 1 to 64");
            threads = (unsigned)n;
            break;
        }
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
    td_error e = {0};
    struct sockaddr_storage ss;
    socklen_t sl;
    if (http_listen_parse(listen, &ss, &sl, &e))
        return cli_usage_error("serve", "--listen: %s", e.msg);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    endpoints *ep = NULL;
    http_server *srv = NULL;
    if (endpoints_new(cli_db_path(db), &ep, &e) ||
        http_server_start(listen, threads, endpoints_handle, ep, &srv, &e)) {
        endpoints_free(ep);
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    endpoints_set_server(ep, srv);
    lmtp_server *ls = NULL;
    if (lmtp && lmtp_server_start(cli_db_path(db), lmtp, 16, &ls, &e)) {
        http_server_stop(srv);
        endpoints_free(ep);
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    if (ls)
        log_info("serve: lmtp on %s", lmtp);
    /* Tests and scripts wait for this line to know the port is open. */
    log_info("serve: listening on %s port=%u", listen, http_server_port(srv));
    struct poller poll = {.location = cli_db_path(db)};
    poll.started = !pthread_create(&poll.th, NULL, poller_main, &poll);
    if (!poll.started)
        log_error("serve: the mailbox poller did not start; mailboxes are not polled");
    int rc = scheduler_run(cli_db_path(db), &stop_flag, &e);
    /* scheduler_run also returns on an error: the poller must stop too. */
    atomic_store(&stop_flag, true);
    if (poll.started)
        pthread_join(poll.th, NULL);
    /* Stop: no new connections, requests in flight answered, then every
     * queued event stored. */
    http_server_stop(srv);
    endpoints_free(ep);
    lmtp_server_stop(ls);
    log_info("serve: stopped");
    if (rc) {
        cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}
