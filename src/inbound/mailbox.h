/* mailbox: taking inbound mail (bounces, complaints, replies) from IMAP and
 * POP3 mailboxes through libcurl, each message exactly once.
 *
 * URLs: imap://, imaps://, pop3://, pop3s:// host[:port], and for IMAP a
 * mailbox path (/INBOX when none). The user name and password are given
 * apart (never in the URL: it is shown and logged). Plain imap:// and
 * pop3:// use STARTTLS when the server offers it.
 *
 * Exactly once: every message is known by where it came from (the mailbox's
 * identity, see mailbox_identity) and its name there: UIDVALIDITY/UID for
 * IMAP, the UIDL for POP3. act_message records that name in the transaction
 * that applies the message; only then is the message deleted on the server
 * (IMAP: flagged \Deleted, expunged at the end of the poll; POP3: DELE,
 * committed by QUIT). A crash before the commit leaves the message to be
 * taken next time; a crash after it leaves a message that is recognised
 * and only deleted. Messages that are to stay (replies, mail that is none
 * of bounce, complaint, reply, unreadable mail) stay on the server and are
 * skipped by name. A message over MAILBOX_MAX_MESSAGE bytes is recorded
 * as other and left on the server, unfetched. See docs/internals/inbound.md. */
#ifndef TD_INBOUND_MAILBOX_H
#define TD_INBOUND_MAILBOX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

#define MAILBOX_EVERY_DEFAULT 300         /* seconds between polls of a stored mailbox */
#define MAILBOX_MAX_MESSAGE (64u << 20)   /* bytes of one message fetched at most */
#define MAILBOX_MAX_PER_POLL 500          /* messages taken per poll; the rest next time */

typedef struct mailbox_account {
    const char *url;
    const char *username; /* NULL or "": none */
    const char *password; /* NULL or "": none */
    /* When it becomes true the poll stops at the next message or the next
     * second of a transfer (TD_ETEMP); what was taken stays taken. NULL:
     * never. */
    const volatile _Atomic bool *stop;
} mailbox_account;

/* What a poll did. */
typedef struct mailbox_stats {
    unsigned listed;     /* messages on the server */
    unsigned taken;      /* applied now */
    unsigned seen;       /* taken before (skipped, or only deleted now) */
    unsigned removed;    /* deleted on the server */
    unsigned too_big;    /* recorded unfetched, over MAILBOX_MAX_MESSAGE */
    unsigned bounces, complaints, replies, other; /* of those taken now */
} mailbox_stats;

/* mailbox_check_url checks url: scheme imap, imaps, pop3 or pop3s, a host,
 * no password, for POP3 no path. Returns 0 or TD_EINVAL with a message. */
int mailbox_check_url(const char *url, td_error *e);

/* mailbox_identity returns the name the messages of (url, username) are
 * recorded under, "scheme://user@host:port/MAILBOX" in lower case but the
 * mailbox, default port spelled out: the same mailbox however its URL is
 * written. A malloc'd string the caller frees, or NULL with TD_EINVAL in e
 * for a URL mailbox_check_url refuses. */
char *mailbox_identity(const char *url, const char *username, td_error *e);

/* mailbox_poll takes what is in the mailbox once (up to
 * MAILBOX_MAX_PER_POLL messages), applying each with act_message, and fills
 * *st (may be NULL). Returns 0; TD_ETEMP when the server could not be
 * reached or broke off (what was taken stays taken); TD_EDENIED when it
 * refused the login; TD_EINVAL for a bad URL; a store error. Blocks for the
 * length of the poll. */
int mailbox_poll(store *s, const mailbox_account *a, mailbox_stats *st, td_error *e);

/* mailbox_poll_due polls every stored mailbox whose next_at has come (now:
 * unix time), one after the other, and records each poll (last_at,
 * last_error, next_at = now + every). A mailbox that fails is recorded
 * and the others still polled. Returns 0, or a store error. Blocks while
 * it polls: `tidings serve` calls it from its loop (or a thread of its
 * own) every few seconds; it returns at once when nothing is due. */
int mailbox_poll_due(store *s, int64_t now, td_error *e);

/* mailbox_poll_due_stop is mailbox_poll_due that gives up when *stop
 * becomes true (see mailbox_account.stop): `tidings serve` on SIGTERM.
 * The mailbox polled then is recorded as failed ("stopped") and due again. */
int mailbox_poll_due_stop(store *s, int64_t now, const volatile _Atomic bool *stop, td_error *e);

#endif
