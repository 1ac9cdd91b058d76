/* act: acting on one inbound message, exactly once.
 *
 * The message is classified (bounce.h), matched to the campaign and
 * subscriber it answers, and applied, all in one transaction with the row
 * that records it as taken in (source, key), so that a message is never
 * applied twice, whatever crashes when:
 *
 * - a hard bounce suppresses the address at once; soft bounces are counted
 *   per address, once per campaign, and suppress at the soft limit (the
 *   setting "inbound.soft_limit", default ACT_SOFT_LIMIT_DEFAULT);
 * - a complaint unsubscribes the subscriber from every list and suppresses
 *   the address at once;
 * - a message to a VERP return path (the List-Unsubscribe mailto of
 *   campaign messages) that is not a bounce or complaint and says
 *   "unsubscribe" (its subject, trimmed, any case; or the start of its
 *   body) unsubscribes the subscriber from the campaign's lists; it is
 *   recorded as other (kind "unsubscribe" in act_result), not as a reply;
 * - a reply (not an auto-reply: RFC 3834 Auto-Submitted, vacation notices)
 *   is stored for the inbox, threaded to its campaign and subscriber and
 *   routed to the subscriber's owner, else the campaign's owner and team;
 * - each of these is an event (bounce, complaint, unsubscribe, reply) in the
 *   campaign's statistics;
 * - a bounce naming an address that was never mailed, and anything else,
 *   changes nothing and says so in the record.
 *
 * Matching, in order of trust: the VERP return path (bounces+cN.dM@domain)
 * among the addresses the message was delivered to (or the returned
 * original's envelope sender, as ARF reports give it); the returned original's
 * Message-ID (deliveries.message_id); its signed List-Unsubscribe token; its
 * List-Id / Feedback-ID with the failed address; the failed address alone
 * (the newest delivery to it). Replies: VERP, In-Reply-To / References, the
 * sender's address. See docs/internals/inbound.md. */
#ifndef TD_INBOUND_ACT_H
#define TD_INBOUND_ACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "inbound/bounce.h"
#include "inbound/inmsg.h"
#include "store/store.h"
#include "util/err.h"

#define ACT_SOFT_LIMIT_DEFAULT 3
#define ACT_SETTING_SOFT_LIMIT "inbound.soft_limit"
#define ACT_VERP_BASE "bounces" /* what delivery/worker.c builds return paths with */

/* Where a message came from. */
typedef struct act_source {
    const char *source; /* the mailbox's identity (mailbox_identity), or "file" */
    const char *key;    /* its name there ("UIDVALIDITY/UID", UIDL); NULL: "sha256:" of the bytes */
    const char *rcpt;   /* the envelope recipient when the caller knows it, or NULL */
    int64_t now;        /* 0: the current time */
} act_source;

/* What was made of a message. */
typedef struct act_result {
    bool duplicate;         /* taken in before: nothing was done this time */
    const char *kind;       /* bounce | complaint | reply | unsubscribe | other (static);
                             * an unsubscribe is recorded as other */
    bool keep;              /* to stay on the server: nothing was done with it,
                             * or a person will want it (replies) */
    const char *matched_by; /* static: verp, message-id, token, headers, address,
                             * in-reply-to, sender; NULL when not matched */
    int64_t inbound_id, campaign_id, subscriber_id, reply_id;
    int suppressed;   /* addresses suppressed now */
    int unsubscribed; /* memberships ended (complaints) */
    char note[256];   /* what was done, or why nothing was, for a person */
} act_result;

/* One match: a delivery (when found) and the address it went to. */
typedef struct act_match {
    const char *by; /* static, as act_result.matched_by; NULL: no match */
    int64_t campaign_id, subscriber_id, delivery_id;
    char email[320]; /* the address we mailed */
} act_match;

/* act_message applies the message data[0..len) from src. Returns 0 with *out
 * filled (out->duplicate when it was taken in before), or a TD_E* code from
 * the store (TD_ETEMP: busy, try again) with nothing applied. A message that
 * cannot be read, or whose effects the store refuses, is still recorded (as
 * other, with the reason in out->note), so it is never lost and never tried
 * again. */
int act_message(store *s, const char *data, size_t len, const act_source *src, act_result *out,
                td_error *e);

/* act_report applies a bounce or complaint that came as a report rather
 * than a message (a provider's webhook): br as bounce_parse would make it
 * (kind BOUNCE or COMPLAINT; orig_message_id, orig_return_path and
 * feedback_type used when set; borrowed), recorded under (src->source,
 * src->key: the provider's event id, required) with the same matching,
 * effects and exactly once as act_message; len is the size recorded.
 * Returns 0 with *out (out->duplicate when taken before), TD_EINVAL for a
 * report of another kind or without a key, or a store error with nothing
 * applied. */
int act_report(store *s, const bounce_result *br, const act_source *src, size_t len,
               act_result *out, td_error *e);

/* act_match_message finds the delivery a bounce or complaint answers as a
 * whole: by VERP (rcpt first, then m's delivered-to addresses, then the
 * original's envelope sender), by the
 * returned original's Message-ID, by its List-Unsubscribe token. Returns 0
 * with out->by NULL when none matches; a store error otherwise. */
int act_match_message(store *s, const bounce_result *br, const inmsg *m, const char *rcpt,
                      act_match *out, td_error *e);

/* act_match_address finds the delivery to address that a bounce or
 * complaint without a message-level match answers: the campaign named by
 * the returned original's List-Id or Feedback-ID, else the newest delivery
 * to the address. Returns 0 with out->by NULL when the address was never
 * mailed. */
int act_match_address(store *s, const bounce_result *br, const char *address, act_match *out,
                      td_error *e);

/* act_match_reply threads a reply: by VERP, by In-Reply-To / References
 * against the Message-IDs sent, by the sender's address against
 * subscribers (campaign: the newest delivery to them, if any). Returns 0
 * with out->by NULL when none matches. */
int act_match_reply(store *s, const inmsg *m, const char *rcpt, act_match *out, td_error *e);

/* act_soft_limit reads the soft bounce limit (ACT_SOFT_LIMIT_DEFAULT when
 * unset or not a number from 1 to 1000). */
int act_soft_limit(store *s);

#endif
