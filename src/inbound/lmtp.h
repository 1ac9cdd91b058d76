/* inbound/lmtp: an LMTP listener (RFC 2033), so that a mail server can hand
 * the mail of a bounce domain pointed at Tidings straight to it, instead of
 * Tidings polling a mailbox.
 *
 * LMTP is SMTP without queueing: after DATA the server answers once per
 * accepted recipient, and only after the message's effects are committed
 * (inbound/act), so the mail server keeps (and retries) whatever got a 4xx.
 * The protocol side is a state machine fed one line at a time
 * (lmtp_session), apart from the sockets (lmtp_server), so that it can be
 * fuzzed and tested without a network. No library in Debian serves LMTP
 * (libmicrohttpd is HTTP only; Postfix and Dovecot are whole servers), and
 * the part needed here is small: LHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. */
#ifndef TD_INBOUND_LMTP_H
#define TD_INBOUND_LMTP_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

#define LMTP_LINE_MAX 2048   /* a command line, without its line end */
#define LMTP_RCPT_MAX 100    /* recipients per transaction (RFC 5321 4.5.3.1.8) */
#define LMTP_ADDR_MAX 320

/* What to do with a whole message for one recipient: returns the reply
 * code (250, or 4xx/5xx) and writes the rest of the reply line ("2.0.0
 * taken") into text. */
typedef int (*lmtp_deliver_fn)(void *ud, const char *data, size_t len, const char *from,
                               const char *rcpt, char *text, size_t cap);

typedef struct lmtp_session {
    bool lhlo, in_data, too_big, quit;
    char from[LMTP_ADDR_MAX + 1];
    bool have_from;
    char *rcpt[LMTP_RCPT_MAX];
    size_t nrcpt;
    buf data;
    size_t max_size;
    lmtp_deliver_fn deliver;
    void *ud;
} lmtp_session;

/* lmtp_session_init prepares s for a connection: messages up to max_size
 * bytes, each handed to deliver once per recipient. */
void lmtp_session_init(lmtp_session *s, size_t max_size, lmtp_deliver_fn deliver, void *ud);

/* lmtp_greeting appends the server's first reply to out. */
void lmtp_greeting(buf *out);

/* lmtp_line takes one line from the client (without its CRLF or LF; any
 * bytes) and appends the replies it calls for to out. Returns false when
 * the connection is to be closed (after QUIT, the replies still to send). */
bool lmtp_line(lmtp_session *s, const char *line, size_t n, buf *out);

void lmtp_session_clear(lmtp_session *s);

typedef struct lmtp_server lmtp_server;

/* lmtp_server_start listens on addr ("ADDR:PORT", "[V6]:PORT", numeric) and takes
 * each message into the database at location (inbound/act: bounces,
 * complaints, replies, unsubscribes), at most max_conns connections at
 * once, each in a thread of its own with its own database connection.
 * Returns 0 with *out, or an error (the address is taken, say). */
int lmtp_server_start(const char *location, const char *addr, unsigned max_conns,
                      lmtp_server **out, td_error *e);

/* lmtp_server_stop stops listening, ends the connections (a message being
 * taken in is finished or, not yet answered, left for the mail server to
 * send again) and frees srv. NULL is a no-op. */
void lmtp_server_stop(lmtp_server *srv);

#endif
