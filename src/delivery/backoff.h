/* backoff: the retry policy of the delivery layer. It decides, for each
 * recipient's result, whether the message is done, retried later (when, with
 * exponential backoff and jitter), retried at once on another relay, given
 * up, or "unknown": maybe delivered, which must not be retried blindly. It
 * also says how long a failing relay stays marked down.
 *
 * Pure functions of their arguments: the clock and the random number are
 * passed in, so the policy is tested without sleeping. The contract is in
 * docs/internals/delivery.md. */
#ifndef TD_DELIVERY_BACKOFF_H
#define TD_DELIVERY_BACKOFF_H

#include <stdbool.h>
#include <stdint.h>

#include "smtp/smtp_client.h"

/* A retry policy. Start from backoff_policy_init. */
typedef struct backoff_policy {
    int64_t base_ms;       /* delay after the first failed attempt */
    int64_t max_delay_ms;  /* cap on one delay */
    double factor;         /* growth per further attempt (>= 1) */
    double jitter;         /* 0..1: a delay d is drawn from [d*(1-jitter), d] */
    unsigned max_attempts; /* attempts (the first included) before giving up */
    int64_t max_age_ms;    /* give up this long after the first attempt */
} backoff_policy;

/* backoff_policy_init fills p with the defaults for recipients: 5 min, then
 * doubling up to 4 h, jitter 0.5, at most 8 attempts, within 3 days (close
 * to what MTAs do; Postfix gives up after 5 days, a newsletter has aged
 * out well before). */
void backoff_policy_init(backoff_policy *p);

/* What to do with a recipient after an attempt. */
enum backoff_action {
    BACKOFF_DONE,    /* delivered: record sent */
    BACKOFF_LATER,   /* temporary failure: retry at *when (deferred) */
    BACKOFF_NOW,     /* the relay failed, not the recipient: retry at once
                      * on another relay (*when is now) */
    BACKOFF_FAILED,  /* permanent failure, or the attempts or age ran out:
                      * record failed with the last reply */
    BACKOFF_UNKNOWN, /* the connection died after the message was written:
                      * it may have been delivered. Record it; retry only
                      * by a deliberate decision (RFC 1047) */
};

/* backoff_action_name returns "done", "later", "now", "failed" or
 * "unknown" (static). */
const char *backoff_action_name(int action);

/* backoff_delay returns the delay (ms, >= 0) before the attempt after
 * attempts failed ones (1: after the first): base * factor^(attempts-1),
 * capped at max_delay, less up to jitter of it chosen by rnd (any 32-bit
 * random number; the same rnd gives the same delay). */
int64_t backoff_delay(const backoff_policy *p, unsigned attempts, uint32_t rnd);

/* backoff_relay_failure reports whether a reply or a local failure is the
 * relay's fault rather than the recipient's: a connection that failed
 * before the message was written (status temp and code 0) or a 421
 * ("service not available, closing"). */
bool backoff_relay_failure(const smtp_rcpt_result *r);

/* backoff_classify decides for one recipient's result r after its attempts-th
 * attempt (1 for the first), the first of which was made at first_ms, at
 * now. other_relay: another relay could take it now. Returns the enum
 * backoff_action and sets *when (may be NULL) to the time to retry (LATER),
 * now (NOW), or 0 (otherwise):
 *   ok -> DONE; perm -> FAILED; unknown -> UNKNOWN;
 *   temp, the relay's fault (backoff_relay_failure) with another relay ->
 *     NOW; otherwise temp -> LATER after backoff_delay(attempts);
 *   temp when attempts reached max_attempts, or now is past
 *     first_ms + max_age_ms -> FAILED (a retry that would come later than
 *     that is moved to it: the last try is at the deadline). */
int backoff_classify(const backoff_policy *p, const smtp_rcpt_result *r, unsigned attempts,
                     int64_t first_ms, int64_t now, bool other_relay, uint32_t rnd, int64_t *when);

/* backoff_relay_down returns how long (ms) to keep a relay marked down after
 * failures consecutive failures (>= 1) that ended with the connection error
 * code conn_err (smtp_conn_error's code): TD_ETEMP backs off as
 * backoff_delay(failures) of p; TD_EPERM and TD_EDENIED (the relay refuses
 * us, or its settings are wrong) wait max_delay_ms at once, since retrying
 * soon cannot help. */
int64_t backoff_relay_down(const backoff_policy *p, int conn_err, unsigned failures, uint32_t rnd);

/* backoff_rand returns a random number for the jitter (not for secrets): a
 * xorshift generator seeded from the clock and the process id at first use. */
uint32_t backoff_rand(void);

#endif
