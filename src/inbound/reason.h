/* reason: why a delivery failed, from the diagnostic text and the status
 * code, with sisimai-like reason names (userunknown, mailboxfull, ...).
 *
 * The text rules are one ordered table of PCRE2 patterns (reason.c), matched
 * against the lower-cased diagnostic. A rule is either "specific" (it wins
 * over what the status code says: "550 5.2.1 User unknown" is userunknown)
 * or "generic" (used only when the status code says nothing precise). The
 * names are static strings; compare them with strcmp. */
#ifndef TD_INBOUND_REASON_H
#define TD_INBOUND_REASON_H

#include <stdbool.h>
#include <stddef.h>

/* reason_init compiles the rule table once (thread-safe, idempotent).
 * Returns 0, or TD_EINTERNAL when a pattern does not compile (a bug). */
int reason_init(void);

/* reason_from_text returns the first rule matching text[0..len) (any case),
 * or NULL; *specific (if not NULL) tells whether the rule is specific. The
 * text is scanned up to a cap (16 KiB). Needs reason_init. */
const char *reason_from_text(const char *text, size_t len, bool *specific);

/* reason_from_status returns the reason an RFC 3463 code implies
 * ("5.1.1" -> userunknown), or NULL when it implies nothing precise. */
const char *reason_from_status(const char *status);

/* reason_pseudo_status writes into out (>= 16 bytes) a status for a failure
 * that carried none: class cls (4 or 5) and the subject/detail usual for the
 * reason ("userunknown", 5 -> "5.1.1"; unknown reasons -> "5.0.0"). */
void reason_pseudo_status(const char *reason, int cls, char out[16]);

/* reason_is_hard is true when the reason says the address itself is bad
 * (userunknown, hostunknown, hasmoved, notaccept) and the failure is
 * permanent (class 5): such an address must be suppressed for good. */
bool reason_is_hard(const char *reason, int cls);

/* reason_is_temporary_text is true when text[0..len) says the failure is a
 * delay or will be retried ("delayed", "will be retried", "retry timeout
 * exceeded", ...): class 4 when no code says otherwise. */
bool reason_is_temporary_text(const char *text, size_t len);

#endif
