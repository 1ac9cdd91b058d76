/* scheduler: what `tidings serve` runs in the background for campaigns:
 * starts scheduled campaigns when their time comes, and runs a worker
 * (delivery/worker) for every running campaign, each in its own thread
 * with its own database connection, until told to stop. */
#ifndef TD_DELIVERY_SCHEDULER_H
#define TD_DELIVERY_SCHEDULER_H

#include <stdatomic.h>
#include <stdbool.h>

#include "util/err.h"

#define SCHEDULER_MAX_WORKERS 16 /* campaigns sent at once */
#define SCHEDULER_TICK_MS 1000

/* scheduler_run opens the database at location and runs until *stop is
 * true; it then stops the workers (messages not on a connection yet go
 * back to the queue; running campaigns stay running, to be resumed by the
 * next start) and returns 0. Errors of one campaign are logged and that
 * campaign is tried again a tick later; an error opening the database is
 * returned. */
int scheduler_run(const char *location, const volatile _Atomic bool *stop, td_error *e);

#endif
