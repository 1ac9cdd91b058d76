/* smtp_client: a non-blocking ESMTP client on OpenSSL, for delivery workers
 * that keep a pool of connections per relay and push many messages through
 * each, all multiplexed in one poll() loop.
 *
 * A connection (smtp_conn) is a state machine. The worker asks it for its
 * file descriptor, the poll events it wants and its deadline, and calls
 * smtp_conn_step when poll says the descriptor is ready or the deadline has
 * passed. No call in this non-blocking API blocks: name resolution is the
 * caller's (smtp_resolve, which blocks, or its own resolver), and
 * smtp_conn_connect takes an address. smtp_open/smtp_send/smtp_close wrap it
 * all in a blocking form for tests and one-off sends.
 *
 * What it speaks: EHLO (HELO when EHLO is refused), PIPELINING (MAIL, every
 * RCPT and DATA in one write), SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES,
 * STARTTLS (opportunistic or required) or implicit TLS, AUTH PLAIN and
 * LOGIN, many messages per connection with RSET after a failed one, QUIT.
 * Every wait has a timeout (smtp_opts). Results are per recipient:
 * ok / temp / perm / unknown (maybe delivered). The contract, with the
 * state after every kind of failure, is in docs/internals/smtp.md. */
#ifndef TD_SMTP_SMTP_CLIENT_H
#define TD_SMTP_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "smtp/smtp_reply.h"
#include "smtp/smtp_url.h"
#include "util/err.h"

/* The stages that have a timeout of their own. */
enum smtp_stage {
    SMTP_STAGE_CONNECT,  /* TCP connect */
    SMTP_STAGE_GREETING, /* the 220 banner */
    SMTP_STAGE_EHLO,     /* EHLO or HELO reply */
    SMTP_STAGE_TLS,      /* STARTTLS reply and the TLS handshake */
    SMTP_STAGE_AUTH,     /* each AUTH exchange */
    SMTP_STAGE_MAIL,     /* MAIL FROM reply */
    SMTP_STAGE_RCPT,     /* each RCPT TO reply */
    SMTP_STAGE_DATA,     /* the 354 after DATA */
    SMTP_STAGE_BLOCK,    /* progress while writing the message */
    SMTP_STAGE_DOT,      /* the reply after the final "." */
    SMTP_STAGE_RSET,     /* RSET reply */
    SMTP_STAGE_QUIT,     /* QUIT reply */
    SMTP_STAGE_COUNT
};

/* Options of a connection beyond its URL. Start from smtp_opts_init. */
typedef struct smtp_opts {
    const char *helo_name;                 /* EHLO argument; NULL: this host's name */
    const char *ca_file;                   /* PEM file of trusted CAs; NULL: the system's */
    unsigned timeout_ms[SMTP_STAGE_COUNT]; /* 0: the stage's default */
    size_t max_reply_line;                 /* bytes per reply line (0: SMTP_REPLY_LINE_MAX) */
    size_t max_reply_lines;                /* lines per reply (0: SMTP_REPLY_LINES_MAX) */
} smtp_opts;

/* smtp_opts_init fills o with the defaults: timeouts from RFC 5321 section
 * 4.5.3.2 (greeting 5 min, MAIL 5, RCPT 5, DATA 2, data block 3, final dot
 * 10) and, where it says nothing, Postfix's (connect 30 s, EHLO, TLS, AUTH
 * and RSET 5 min, QUIT 30 s). */
void smtp_opts_init(smtp_opts *o);

/* smtp_stage_name returns a static name ("connect", "greeting", ...). */
const char *smtp_stage_name(int stage);

/* What the server offered in its EHLO reply, and how the session stands. */
typedef struct smtp_caps {
    bool esmtp; /* EHLO was accepted (false after a HELO fallback) */
    bool pipelining, eightbitmime, smtputf8, enhanced, starttls;
    bool auth_plain, auth_login;
    bool size;         /* SIZE offered */
    uint64_t size_max; /* its limit; 0 when none was given */
    bool tls;          /* the session is encrypted */
    bool tls_verified; /* ... and the certificate and name were verified */
    bool authenticated;
} smtp_caps;

/* One message: envelope and content, all borrowed by the connection from
 * smtp_conn_send until its result is taken (or the connection freed).
 * Addresses go on the wire as given inside <>, so they must already be
 * normalised (mime/addr); CR, LF, '<', '>' and other controls are refused.
 * data is the whole message (header, empty line, body); line ends may be
 * CRLF, LF or CR: they go out as CRLF, with dot-stuffing. */
typedef struct smtp_msg {
    const char *from;        /* envelope sender; "" for the null sender <> */
    const char *const *rcpt; /* envelope recipients */
    size_t nrcpt;            /* 1..SMTP_MAX_RCPT */
    const char *data;
    size_t len;
} smtp_msg;

#define SMTP_MAX_RCPT 1000
#define SMTP_MAX_PATH 256 /* RFC 5321 4.5.3.1.3, without the brackets */

/* smtp_msg_check returns 0 when m can be put on the wire, or TD_EINVAL with
 * a message in e: no recipient or more than SMTP_MAX_RCPT, an empty
 * recipient, an address with a control character, '<' or '>' (which could
 * smuggle a command or a parameter), or longer than SMTP_MAX_PATH. */
int smtp_msg_check(const smtp_msg *m, td_error *e);

/* smtp_data_crlf_only: whether every line end of d[0..len) is CRLF (no bare
 * CR or LF), as in every message msg_build makes. A message given to a
 * connection is checked once; one that is goes out as it is but for the
 * dot-stuffing of lines starting with '.', any other is made so line by line
 * (CRLF line ends) as it goes out. */
bool smtp_data_crlf_only(const char *d, size_t len);

/* The outcome for one recipient. */
typedef struct smtp_rcpt_result {
    int status;       /* enum smtp_status */
    smtp_reply reply; /* the server's reply that decided it, or a local one
                       * (code 0) for a failure found here */
} smtp_rcpt_result;

/* The outcome of one message; owned by the caller after smtp_conn_take_result
 * (free with smtp_result_clear). */
typedef struct smtp_result {
    int status; /* summary: unknown if any recipient is unknown, else
                 * ok if all are ok, else temp if any is temp, else perm */
    size_t nrcpt;
    smtp_rcpt_result *rcpt; /* in the order of smtp_msg.rcpt */
    smtp_reply reply;       /* the reply (or local failure) that ended the message */
} smtp_result;

/* smtp_result_clear frees r's contents and zeroes it; safe on a zeroed one. */
void smtp_result_clear(smtp_result *r);

/* A connection's state as the caller sees it. */
enum smtp_conn_state {
    SMTP_CONN_OPENING, /* connect, greeting, EHLO, STARTTLS, AUTH under way */
    SMTP_CONN_READY,   /* idle: smtp_conn_send may be called */
    SMTP_CONN_BUSY,    /* a message (or the RSET after one) is under way */
    SMTP_CONN_CLOSING, /* QUIT sent */
    SMTP_CONN_CLOSED,  /* the socket is closed; smtp_conn_error says why */
};

typedef struct smtp_conn smtp_conn;

/* smtp_conn_new returns a new, unconnected connection to the relay u (an
 * smtp or smtps URL; its host, port, TLS mode and credentials are copied)
 * with options o (NULL for the defaults; copied). Never NULL. Free with
 * smtp_conn_free. */
smtp_conn *smtp_conn_new(const smtp_url *u, const smtp_opts *o);

/* smtp_conn_connect starts a non-blocking connect to sa (one address of the
 * relay, port included). Returns 0 (the connection is OPENING), or TD_ETEMP
 * with a message in e when no socket could be made or the connect failed at
 * once (the connection is then CLOSED). Call it once per connection. */
int smtp_conn_connect(smtp_conn *c, const struct sockaddr *sa, socklen_t salen, td_error *e);

/* smtp_conn_fd returns the socket to poll, or -1 when CLOSED. */
int smtp_conn_fd(const smtp_conn *c);

/* smtp_conn_events returns the poll events wanted now (POLLIN, POLLOUT);
 * 0 when CLOSED. It changes after every step: ask again each round. */
short smtp_conn_events(const smtp_conn *c);

/* smtp_conn_deadline returns the time (smtp_now_ms) by which the current
 * wait must end, or -1 when nothing is awaited (READY, CLOSED). */
int64_t smtp_conn_deadline(const smtp_conn *c);

/* smtp_now_ms returns a monotonic clock in milliseconds. */
int64_t smtp_now_ms(void);

/* smtp_conn_step does all the work that can be done without blocking:
 * revents are poll's for the fd (0 when called because the deadline
 * passed). Afterwards the state, result and events may have changed. Never
 * fails: a failure moves the connection to CLOSED (see smtp_conn_error) and,
 * if a message was in flight, makes its result available. */
void smtp_conn_step(smtp_conn *c, short revents);

/* smtp_conn_state returns the enum smtp_conn_state. */
int smtp_conn_state(const smtp_conn *c);

/* smtp_conn_error returns why the connection closed, borrowed until
 * smtp_conn_free: code TD_OK after a QUIT; TD_ETEMP for network, timeout,
 * TLS and 4xx failures; TD_EPERM when the server refused service with a 5xx
 * (greeting, EHLO and HELO) or lacks what the URL requires (STARTTLS, AUTH);
 * TD_EDENIED when it refused the credentials. */
const td_error *smtp_conn_error(const smtp_conn *c);

/* smtp_conn_caps returns what the server offered (borrowed, valid until
 * smtp_conn_free; complete once the connection has been READY). */
const smtp_caps *smtp_conn_caps(const smtp_conn *c);

/* smtp_conn_send starts sending m (borrowed, see smtp_msg) on a READY
 * connection. Returns 0: the connection is BUSY, or, when the message was
 * refused without a word on the wire (it needs SMTPUTF8 the server lacks,
 * or it is larger than the server's SIZE), still READY with a perm result
 * already available. Returns TD_EINVAL with a message in e for a message
 * that cannot be sent anywhere (no recipient, too many, an address with a
 * control character or <>, or longer than SMTP_MAX_PATH), and TD_EINTERNAL
 * when the connection is not READY or the previous result was not taken;
 * then nothing changed. */
int smtp_conn_send(smtp_conn *c, const smtp_msg *m, td_error *e);

/* smtp_conn_can_queue says whether a second message may be queued behind
 * the one in flight: its final dot is written (or about to be), the server
 * offers PIPELINING, and none is queued yet.
 *
 * smtp_conn_queue puts m (borrowed, as for smtp_conn_send) behind it: its
 * MAIL, RCPT and DATA go out after the final dot in the same batch (RFC
 * 2920 3.1), which saves the server's turn that answers them, a round trip
 * a message. When the first message's result is taken, m becomes the
 * message in flight, and its body waits, even after the server's 354,
 * until smtp_conn_release: so a caller that must record a result before
 * the next message can arrive (the delivery log) keeps at most one message
 * a connection on the wire. If the connection closes first, m is dropped
 * unsent and its result never comes: the caller settles it. Returns 0;
 * TD_ETEMP when this relay would refuse m without a word (SMTPUTF8, SIZE:
 * send it with smtp_conn_send when READY, for that refusal); otherwise as
 * smtp_conn_send, TD_EINTERNAL when nothing can be queued. */
bool smtp_conn_can_queue(const smtp_conn *c);
int smtp_conn_queue(smtp_conn *c, const smtp_msg *m, td_error *e);

/* smtp_conn_release lets the body of a message that was queued, and is now
 * in flight, go (at once if its 354 came). A no-op otherwise. */
void smtp_conn_release(smtp_conn *c);

/* smtp_conn_take_result moves the finished message's result into *out (the
 * caller's, overwritten; free with smtp_result_clear) and returns true, or
 * returns false when no result is waiting. The connection releases the
 * message it borrowed; a queued message becomes the one in flight. A result
 * can come while the connection is still BUSY (its RSET, the queued
 * message) or after it CLOSED (the failure that ended the message). */
bool smtp_conn_take_result(smtp_conn *c, smtp_result *out);

/* smtp_conn_quit sends QUIT when the connection is READY (it becomes
 * CLOSING, then CLOSED with TD_OK). In any other state it closes the socket
 * at once; a message in flight ends as if the connection had dropped. */
void smtp_conn_quit(smtp_conn *c);

/* smtp_conn_free closes the socket (without QUIT) and frees c; NULL is a
 * no-op. A result not taken is freed with it. */
void smtp_conn_free(smtp_conn *c);

/* One resolved address of a relay. */
typedef struct smtp_addr {
    struct sockaddr_storage sa;
    socklen_t len;
} smtp_addr;

/* smtp_resolve looks u's host up (getaddrinfo: this BLOCKS; call it outside
 * the poll loop, e.g. when a relay is loaded, and again after failures) and
 * returns the count of addresses put in out[0..max), IPv6 and IPv4 in the
 * resolver's order, or -1 with TD_ETEMP (lookup failed for now) or TD_EINVAL
 * (no such host; not an smtp URL) in e. */
int smtp_resolve(const smtp_url *u, smtp_addr *out, int max, td_error *e);

/* smtp_open resolves u, connects to each address in turn until one answers,
 * and runs the connection to READY, blocking. Returns the connection (the
 * caller's: smtp_close or smtp_conn_free), or NULL with the error of the
 * last address tried in e (codes as smtp_conn_error). */
smtp_conn *smtp_open(const smtp_url *u, const smtp_opts *o, td_error *e);

/* smtp_send sends m on the READY connection c and blocks until its result,
 * which goes to *out (overwritten; free with smtp_result_clear), and until
 * the connection is READY again or CLOSED. Returns 0 when *out is filled
 * (look at out->status; c may have CLOSED: see smtp_conn_state), or the
 * error of smtp_conn_send (then *out is zeroed). */
int smtp_send(smtp_conn *c, const smtp_msg *m, smtp_result *out, td_error *e);

/* smtp_close sends QUIT (waiting at most the QUIT timeout) and frees c;
 * NULL is a no-op. */
void smtp_close(smtp_conn *c);

#endif
