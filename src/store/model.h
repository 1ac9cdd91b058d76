/* model: the records that cross the storage interface (design.md's data model).
 *
 * Strings in these structs are owned by the struct when it was filled by the
 * store (free with the matching *_clear function) and borrowed when the
 * caller fills one to pass in. Ids are 64-bit; 0 means "none". Times are Unix
 * seconds (UTC). */
#ifndef TD_STORE_MODEL_H
#define TD_STORE_MODEL_H

#include <stdbool.h>
#include <stdint.h>

typedef struct team_rec {
    int64_t id;
    char *name;
    char *model;     /* central | catalyst | local */
    int64_t parent_id;
    int64_t created_at;
} team_rec;

typedef struct user_rec {
    int64_t id;
    char *email;
    char *name;
    char *role;      /* admin | director | designer | operator | seller | responder */
    int64_t team_id;
    char *password_hash; /* argon2id string, or NULL for none */
    int64_t created_at;
} user_rec;

typedef struct sub_rec {
    int64_t id;
    char *email;     /* normalised (see mime/addr.h) */
    char *name;
    char *attribs;   /* a JSON object, compact with sorted keys */
    char *status;    /* enabled | blocklisted */
    int64_t owner_id;
    int64_t team_id;
    char *timezone;  /* IANA zone name or NULL */
    char *locale;    /* BCP 47 tag or NULL */
    int64_t created_at;
    int64_t updated_at;
} sub_rec;

typedef struct list_rec {
    int64_t id;
    char *name;
    int64_t team_id;
    int64_t owner_id;
    char *optin;      /* single | double */
    char *visibility; /* public | private */
    int64_t created_at;
    /* filled by list_each only: member counts by status */
    int64_t n_confirmed, n_unconfirmed, n_unsubscribed;
} list_rec;

/* A subscriber's membership of one list, as export reads it. */
typedef struct member_rec {
    sub_rec sub;
    char *status;     /* unconfirmed | confirmed | unsubscribed */
    int64_t created_at, confirmed_at, unsubscribed_at;
} member_rec;

typedef struct audit_rec {
    int64_t actor_id;    /* user id or 0 */
    const char *actor;   /* who, for people: "cli:root", a user's email */
    const char *action;  /* e.g. "subscriber.add" */
    const char *object_type;
    int64_t object_id;
    const char *detail;  /* short JSON or text; no secrets */
} audit_rec;

typedef struct store_counts {
    int64_t teams, users, lists, subscribers, memberships, suppressions, audit;
} store_counts;

/* How an upsert treats a subscriber that exists already. */
typedef enum {
    SUB_MODE_SUBSCRIBE, /* keep the existing record as it is */
    SUB_MODE_UPSERT,    /* overwrite name and attributes */
    SUB_MODE_BLOCKLIST, /* set status blocklisted */
} sub_mode;

/* What an upsert did. */
typedef enum { SUB_UNCHANGED, SUB_CREATED, SUB_UPDATED } sub_outcome;

/* A bulk import session (store_bulk_*): what the merge does. */
typedef struct bulk_opts {
    int64_t list_id;
    sub_mode mode;
    const char *default_status; /* membership status when a row names none */
    int64_t owner_id, team_id;  /* for new subscribers; 0 for none */
    bool background;            /* write batches while the caller makes the next */
} bulk_opts;

/* What the merges of a bulk session did so far. */
typedef struct bulk_stats {
    uint64_t created, updated, unchanged, memberships;
} bulk_stats;

/* A DKIM private key of a sending domain (mime/dkim.h signs with it). */
typedef struct dkim_key_rec {
    int64_t id;
    char *domain;      /* A-label form, lower-case */
    char *selector;
    char *algo;        /* rsa | ed25519 */
    char *private_key; /* PEM (PKCS#8), unencrypted: the database is a secret */
    int64_t created_at;
} dkim_key_rec;

/* A content block of the library (design.md): an article or a product the
 * company provides, which a newsletter template includes as a partial
 * ({{> article/NAME}}); campaign/blocks.h says what the body sees. */
#define BLOCK_MAX_NAME 64              /* bytes of a block's name (a slug) */
#define BLOCK_MAX_TITLE 1024           /* bytes of its title */
#define BLOCK_MAX_BODY (256u << 10)    /* bytes of its body (mustache source) */
#define BLOCK_MAX_DATA (64u << 10)     /* bytes of its data (canonical JSON) */
typedef struct block_rec {
    int64_t id;
    char *kind;        /* article | product */
    char *name;        /* unique slug: a-z, 0-9, '-'; 1 to BLOCK_MAX_NAME bytes */
    char *title;       /* one line of UTF-8 */
    char *body;        /* mustache template source, UTF-8 */
    char *data;        /* a JSON object (price, url, image...), canonical; NULL in: "{}" */
    int64_t team_id;   /* 0: company-wide */
    int64_t created_at;
    int64_t updated_at;
    int64_t owner_id;  /* the user who made it (a seller's own); 0: none. A
                        * replace with 0 keeps the owner it had */
} block_rec;

/* A relay a campaign's messages go through (see smtp/smtp_url.h). The URL
 * keeps its password: the database is a secret, as with DKIM keys. */
typedef struct relay_rec {
    int64_t id;
    char *url;       /* canonical form (smtp_url_format, unmasked) */
    int max_conns;   /* open connections at most, 1 to 1000 */
    double rate;     /* messages per second at most; 0: no limit of its own */
    int64_t created_at;
} relay_rec;

/* A campaign. States: draft -> scheduled -> running <-> paused ->
 * finished | cancelled (see campaign/campaign.h for the transitions). */
typedef struct campaign_rec {
    int64_t id;
    char *name;
    char *subject;   /* a mustache template, rendered per recipient */
    char *from;      /* "Name <addr>" or "addr", as checked by mime/addr */
    char *reply_to;  /* or NULL */
    char *html;      /* HTML template source, or NULL for a text-only campaign */
    char *text;      /* text template source, or NULL: made from the HTML */
    char *state;
    int64_t send_at; /* unix time; 0: as soon as it is started */
    char *timezone;  /* the IANA zone --at was given in, or NULL */
    int64_t team_id, owner_id;
    int64_t created_at, updated_at, started_at, finished_at;
    /* Tracking turned off (`campaign create --no-track-opens/--no-track-clicks`);
     * false, the zero value, is the default: tracked. */
    bool no_track_opens, no_track_clicks;
} campaign_rec;

/* How a campaign's deliveries stand. */
typedef struct campaign_counts {
    uint64_t total, queued, sending, sent, deferred, failed;
} campaign_counts;

/* One recipient of a campaign: the delivery log's row. */
typedef struct delivery_rec {
    int64_t id, campaign_id, subscriber_id;
    char *email;      /* frozen when the campaign started */
    char *status;     /* queued | sending | sent | deferred | failed */
    int attempts;
    int64_t next_at;  /* not before (unix time) */
    char *last_reply; /* the server's words, or what went wrong */
    int64_t relay_id;
    char *message_id;
    bool maybe_duplicate; /* was on the wire at a crash and sent again */
    int64_t updated_at;
} delivery_rec;

/* A delivery due now, with what its message needs of the subscriber. */
typedef struct due_rec {
    delivery_rec d;
    sub_rec sub;   /* id, email, name, attribs, timezone, locale */
    bool wanted;   /* still enabled, subscribed to one of the campaign's lists,
                    * not suppressed: an unsubscribe counts at once */
} due_rec;

/* Something that happened to a campaign's message or a list's subscriber.
 * kind: open | click | unsubscribe | signup | confirm | bounce | complaint |
 * reply. Ids are 0 when not known; data is the kind's detail (a click's
 * URL, a bounce's JSON), NULL when none; at is unix time (0: now). The
 * strings are borrowed, not owned. */
typedef struct event_rec {
    const char *kind;
    int64_t campaign_id, subscriber_id, list_id;
    const char *data;
    int64_t at;
} event_rec;

/* How many events of each kind a campaign has (store_event_counts). */
typedef struct event_counts {
    uint64_t open, click, unsubscribe, bounce, complaint, reply;
} event_counts;

/* A mailbox polled for inbound mail: bounces, complaints, replies
 * (inbound/mailbox.h). The password is kept as given: the database is a
 * secret, as with relays and DKIM keys. */
typedef struct mailbox_rec {
    int64_t id;
    char *url;        /* imap[s]://host[:port][/MAILBOX] or pop3[s]://host[:port] */
    char *username;
    char *password;
    int every;        /* seconds between polls */
    int64_t next_at;  /* not before (unix time) */
    int64_t last_at;  /* last poll that went well; 0: never */
    char *last_error; /* what the last poll said went wrong; NULL when it went well */
    int64_t created_at;
} mailbox_rec;

/* One message taken in (store_inbound_add): where it came from, so it is
 * never taken twice, and what was made of it. Strings are borrowed. */
typedef struct inbound_rec {
    const char *source;     /* the mailbox's identity (mailbox_identity) or "file" */
    const char *key;        /* its name there: "UIDVALIDITY/UID", the UIDL, "sha256:HEX" */
    const char *kind;       /* bounce | complaint | reply | other */
    const char *note;       /* what was done, or why nothing was (one line) */
    const char *message_id; /* its own Message-ID without <>, or NULL */
    int64_t campaign_id, subscriber_id; /* 0: not matched */
    int64_t size;           /* bytes */
    bool keep;              /* left on the server for a person (replies, unknown mail) */
} inbound_rec;

/* A reply to a campaign, for the inbox (store_reply_add). Strings are
 * borrowed. Ids are 0 when not known. */
typedef struct reply_rec {
    int64_t inbound_id;
    int64_t campaign_id, subscriber_id;
    const char *sender;      /* the From address */
    const char *sender_name; /* its display name, or NULL */
    const char *subject;
    const char *body;        /* text, UTF-8 */
    const char *message_id, *in_reply_to; /* without <>, or NULL */
    const char *matched_by;  /* verp | in-reply-to | sender | NULL (not threaded) */
    int64_t owner_id, team_id; /* routed to */
    int64_t assigned_to;
    int64_t sent_at;         /* its Date, 0 when none */
    int64_t received_at;
} reply_rec;

/* A login session (http/auth). The client holds the token; the database
 * only its SHA-256 (hex), so a copy of it opens no session. */
typedef struct session_rec {
    int64_t id;
    char *token_hash;
    int64_t user_id;
    char *csrf;       /* the token state-changing requests must echo */
    char *peer;       /* the client address it was made from */
    int64_t created_at, expires_at;
} session_rec;

/* An API token (Authorization: Bearer), kept as its SHA-256 (hex). */
typedef struct token_rec {
    int64_t id;
    char *token_hash;
    int64_t user_id;
    char *name;       /* what it is for, chosen by its maker */
    int64_t created_at;
    int64_t expires_at; /* 0: never */
} token_rec;

/* Which rows of a paged listing a caller may see: those owned by owner_id
 * or in team team_id; with both 0, every row (http/perm decides them). */
typedef struct store_scope {
    int64_t owner_id, team_id;
} store_scope;

/* A reply as the inbox lists it; strings borrowed for the callback. */
typedef struct reply_view {
    int64_t id, campaign_id, subscriber_id, owner_id, team_id, assigned_to, received_at;
    const char *sender, *sender_name, *subject, *body, *status;
} reply_view;

void session_rec_clear(session_rec *r);
void token_rec_clear(token_rec *r);
void mailbox_rec_clear(mailbox_rec *m);
void relay_rec_clear(relay_rec *r);
void campaign_rec_clear(campaign_rec *c);
void delivery_rec_clear(delivery_rec *d);

void team_rec_clear(team_rec *t);
void user_rec_clear(user_rec *u);
void sub_rec_clear(sub_rec *s);
void list_rec_clear(list_rec *l);
void member_rec_clear(member_rec *m);
void dkim_key_rec_clear(dkim_key_rec *k);
void block_rec_clear(block_rec *b);

/* Validity checks for the enumerated columns. */
bool model_team_model_ok(const char *s);
bool model_role_ok(const char *s);
bool model_sub_status_ok(const char *s);
bool model_member_status_ok(const char *s);
bool model_event_kind_ok(const char *s);
bool model_optin_ok(const char *s);
bool model_visibility_ok(const char *s);
bool model_block_kind_ok(const char *s);
bool model_campaign_state_ok(const char *s);
/* model_block_name_ok: 1 to BLOCK_MAX_NAME of a-z, 0-9 and '-'. */
bool model_block_name_ok(const char *s);

#endif
