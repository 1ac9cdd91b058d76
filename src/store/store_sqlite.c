/* store_sqlite: the SQLite backend (see store.h, store_sqlite.h).
 *
 * WAL journal, foreign keys on, a busy timeout, and every statement a named
 * query from the table below, prepared once on first use and kept for the
 * life of the handle. Parameters are bound by name (:email), never spliced
 * into SQL text. Migrations are numbered; each runs in its own transaction
 * and records itself in schema_migrations, so opening an older database
 * upgrades it in place. SQLite-only tricks (RETURNING, ON CONFLICT clauses,
 * WITHOUT ROWID) stay in this file. */
#include "store/store_sqlite.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "util/jsonstr.h"
#include "util/utf8.h"
#include "util/xalloc.h"

/* ---- migrations ------------------------------------------------------- */

/* The delivery rows in the work index (migration 10). A query that is to
 * use the index names one of these statuses as a constant, or carries this
 * very expression: SQLite uses a partial index only when the query's WHERE
 * implies the index's. */
#define NOT_SENT                                                                              \
    "(status = 'queued' OR status = 'deferred' OR status = 'sending' OR status = 'failed')"

static const char *const migrations[] = {
    /* 1: the core of the data model */
    "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE teams ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  model TEXT NOT NULL CHECK (model IN ('central','catalyst','local')),"
    "  parent_id INTEGER REFERENCES teams(id) ON DELETE RESTRICT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE users ("
    "  id INTEGER PRIMARY KEY,"
    "  email TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  role TEXT NOT NULL CHECK (role IN ('admin','director','designer','operator','seller','responder')),"
    "  team_id INTEGER REFERENCES teams(id) ON DELETE RESTRICT,"
    "  password_hash TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE subscribers ("
    "  id INTEGER PRIMARY KEY,"
    "  email TEXT NOT NULL UNIQUE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  attribs TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attribs)),"
    "  status TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled','blocklisted')),"
    "  owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  team_id INTEGER REFERENCES teams(id) ON DELETE SET NULL,"
    "  timezone TEXT,"
    "  locale TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    /* Partial: most subscribers have no owner, and a NULL entry per row
     * costs every insert for nothing. */
    "CREATE INDEX subscribers_owner ON subscribers(owner_id) WHERE owner_id IS NOT NULL;"
    "CREATE TABLE lists ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE,"
    "  team_id INTEGER REFERENCES teams(id) ON DELETE RESTRICT,"
    "  owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  optin TEXT NOT NULL CHECK (optin IN ('single','double')),"
    "  visibility TEXT NOT NULL CHECK (visibility IN ('public','private')),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE memberships ("
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,"
    "  subscriber_id INTEGER NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,"
    /* Spelled with OR: SQLite evaluates a CHECK's IN list of three or more
     * values by building a temporary table for every row written, which
     * cost a fifth of a bulk import. */
    "  status TEXT NOT NULL CHECK (status = 'unconfirmed' OR status = 'confirmed'"
    "   OR status = 'unsubscribed'),"
    "  created_at INTEGER NOT NULL,"
    "  confirmed_at INTEGER,"
    "  unsubscribed_at INTEGER,"
    "  PRIMARY KEY (list_id, subscriber_id)) WITHOUT ROWID;"
    "CREATE INDEX memberships_subscriber ON memberships(subscriber_id);",

    /* 2: consent and accountability */
    "CREATE TABLE suppressions ("
    "  address TEXT PRIMARY KEY,"
    "  reason TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE audit_log ("
    "  id INTEGER PRIMARY KEY,"
    "  at INTEGER NOT NULL,"
    "  actor_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  actor TEXT NOT NULL,"
    "  action TEXT NOT NULL,"
    "  object_type TEXT NOT NULL,"
    "  object_id INTEGER,"
    "  detail TEXT);"
    "CREATE INDEX audit_log_object ON audit_log(object_type, object_id);",

    /* 3: DKIM keys per sending domain (the private key as PKCS#8 PEM) */
    "CREATE TABLE dkim_keys ("
    "  id INTEGER PRIMARY KEY,"
    "  domain TEXT NOT NULL,"
    "  selector TEXT NOT NULL,"
    "  algo TEXT NOT NULL CHECK (algo IN ('rsa','ed25519')),"
    "  private_key TEXT NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (domain, selector));",

    /* 4: the content library: articles and products as template partials.
     * The checks repeat those sq_block_put makes in C, so a row written by
     * anything else (the sqlite3 shell, a later backend) holds to them too;
     * kind is spelled with OR for the reason given at memberships.status. */
    "CREATE TABLE content_blocks ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind = 'article' OR kind = 'product'),"
    "  name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64"
    "   AND name NOT GLOB '*[^a-z0-9-]*'),"
    "  title TEXT NOT NULL,"
    "  body TEXT NOT NULL CHECK (length(CAST(body AS BLOB)) <= 262144),"
    "  data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data) AND json_type(data) = 'object'),"
    "  team_id INTEGER REFERENCES teams(id) ON DELETE RESTRICT,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL);"
    "CREATE INDEX content_blocks_kind ON content_blocks(kind, name);",

    /* 5: campaigns, their lists, the delivery log, the relays. Enumerated
     * columns are spelled with OR (see memberships.status). */
    "CREATE TABLE relays ("
    "  id INTEGER PRIMARY KEY,"
    "  url TEXT NOT NULL UNIQUE,"
    "  max_conns INTEGER NOT NULL CHECK (max_conns BETWEEN 1 AND 1000),"
    "  rate REAL NOT NULL CHECK (rate >= 0),"
    "  created_at INTEGER NOT NULL);"
    "CREATE TABLE campaigns ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  subject TEXT NOT NULL,"
    "  from_addr TEXT NOT NULL,"
    "  reply_to TEXT,"
    "  html TEXT,"
    "  text TEXT,"
    "  state TEXT NOT NULL CHECK (state = 'draft' OR state = 'scheduled' OR state = 'running'"
    "   OR state = 'paused' OR state = 'finished' OR state = 'cancelled'),"
    "  send_at INTEGER,"
    "  timezone TEXT,"
    "  team_id INTEGER REFERENCES teams(id) ON DELETE SET NULL,"
    "  owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  started_at INTEGER,"
    "  finished_at INTEGER,"
    "  CHECK (html IS NOT NULL OR text IS NOT NULL));"
    "CREATE TABLE campaign_lists ("
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,"
    "  list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE RESTRICT,"
    "  PRIMARY KEY (campaign_id, list_id)) WITHOUT ROWID;"
    "CREATE INDEX campaign_lists_list ON campaign_lists(list_id);"
    "CREATE TABLE deliveries ("
    "  id INTEGER PRIMARY KEY,"
    "  campaign_id INTEGER NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,"
    "  subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,"
    "  email TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status = 'queued' OR status = 'sending' OR status = 'sent'"
    "   OR status = 'deferred' OR status = 'failed'),"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  next_at INTEGER NOT NULL DEFAULT 0,"
    "  last_reply TEXT,"
    "  relay_id INTEGER REFERENCES relays(id) ON DELETE SET NULL,"
    "  message_id TEXT,"
    "  maybe_duplicate INTEGER NOT NULL DEFAULT 0,"
    "  updated_at INTEGER NOT NULL,"
    "  UNIQUE (campaign_id, subscriber_id));"
    /* (campaign_id, status) and then the rowid: the queued ones of a
     * campaign come out in id order without a sort. */
    "CREATE INDEX deliveries_todo ON deliveries(campaign_id, status);",

    /* 6: events, one row each: what happened to a campaign's message or a
     * list's subscriber (tracking, consent, inbound mail). A log that must
     * never refuse a row, so its ids are plain integers, not foreign keys:
     * a click on a deleted campaign's link is still a click. */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY,"
    "  kind TEXT NOT NULL CHECK (kind = 'open' OR kind = 'click' OR kind = 'unsubscribe'"
    "   OR kind = 'signup' OR kind = 'confirm' OR kind = 'bounce' OR kind = 'complaint'"
    "   OR kind = 'reply'),"
    "  campaign_id INTEGER,"
    "  subscriber_id INTEGER,"
    "  list_id INTEGER,"
    "  data TEXT,"
    "  created_at INTEGER NOT NULL);"
    "CREATE INDEX events_campaign ON events(campaign_id, kind);"
    "CREATE INDEX events_subscriber ON events(subscriber_id);",

    /* 7: open and click tracking can be turned off per campaign (both on
     * by default, as they were before). */
    ("ALTER TABLE campaigns ADD COLUMN track_opens INTEGER NOT NULL DEFAULT 1;"
     "ALTER TABLE campaigns ADD COLUMN track_clicks INTEGER NOT NULL DEFAULT 1;"),
    /* 8: inbound mail (inbound/act.h, inbound/mailbox.h): the mailboxes
     * polled; every message taken in, keyed by where it came from so that
     * none is taken twice (the row is written in the transaction that
     * applies the message); soft bounces per address and campaign; replies
     * for the inbox, with what the inbox needs (routing, assignment, the
     * time of the first answer). The two indexes on deliveries are how a
     * returned message finds what it answers. */
    "CREATE TABLE mailboxes ("
    "  id INTEGER PRIMARY KEY,"
    "  url TEXT NOT NULL,"
    "  username TEXT NOT NULL DEFAULT '',"
    "  password TEXT NOT NULL DEFAULT '',"
    "  every INTEGER NOT NULL CHECK (every >= 1),"
    "  next_at INTEGER NOT NULL DEFAULT 0,"
    "  last_at INTEGER,"
    "  last_error TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  UNIQUE (url, username));"
    "CREATE TABLE inbound_messages ("
    "  id INTEGER PRIMARY KEY,"
    "  source TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  kind TEXT NOT NULL CHECK (kind = 'bounce' OR kind = 'complaint' OR kind = 'reply'"
    "   OR kind = 'other'),"
    "  note TEXT NOT NULL DEFAULT '',"
    "  message_id TEXT,"
    "  campaign_id INTEGER,"
    "  subscriber_id INTEGER,"
    "  size INTEGER NOT NULL DEFAULT 0,"
    "  keep INTEGER NOT NULL DEFAULT 0,"
    "  received_at INTEGER NOT NULL,"
    "  UNIQUE (source, key));"
    "CREATE TABLE soft_bounces ("
    "  address TEXT NOT NULL,"
    "  campaign_id INTEGER NOT NULL,"
    "  at INTEGER NOT NULL,"
    "  PRIMARY KEY (address, campaign_id)) WITHOUT ROWID;"
    "CREATE TABLE replies ("
    "  id INTEGER PRIMARY KEY,"
    "  inbound_id INTEGER REFERENCES inbound_messages(id) ON DELETE SET NULL,"
    "  campaign_id INTEGER REFERENCES campaigns(id) ON DELETE SET NULL,"
    "  subscriber_id INTEGER REFERENCES subscribers(id) ON DELETE SET NULL,"
    "  sender TEXT NOT NULL,"
    "  sender_name TEXT,"
    "  subject TEXT NOT NULL DEFAULT '',"
    "  body TEXT NOT NULL DEFAULT '',"
    "  message_id TEXT,"
    "  in_reply_to TEXT,"
    "  matched_by TEXT CHECK (matched_by IS NULL OR matched_by = 'verp'"
    "   OR matched_by = 'in-reply-to' OR matched_by = 'sender'),"
    "  owner_id INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  team_id INTEGER REFERENCES teams(id) ON DELETE SET NULL,"
    "  assigned_to INTEGER REFERENCES users(id) ON DELETE SET NULL,"
    "  status TEXT NOT NULL DEFAULT 'open' CHECK (status = 'open' OR status = 'answered'"
    "   OR status = 'closed'),"
    "  sent_at INTEGER,"
    "  received_at INTEGER NOT NULL,"
    "  first_response_at INTEGER);"
    "CREATE INDEX replies_assigned ON replies(assigned_to, status, received_at);"
    "CREATE INDEX replies_team ON replies(team_id, status, received_at);"
    "CREATE INDEX replies_campaign ON replies(campaign_id);"
    "CREATE INDEX replies_subscriber ON replies(subscriber_id);"
    "CREATE INDEX deliveries_message_id ON deliveries(message_id) WHERE message_id IS NOT NULL;"
    "CREATE INDEX deliveries_subscriber ON deliveries(subscriber_id);",
    /* 9: accounts (http/auth): login sessions and API tokens, each kept as
     * the SHA-256 of the secret the client holds, so a copy of the
     * database opens no session; failed logins, by account and by client
     * address, for the rate limit; and an owner for content blocks, so a
     * seller's templates are their own (http/perm). */
    "CREATE TABLE sessions ("
    "  id INTEGER PRIMARY KEY,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  csrf TEXT NOT NULL,"
    "  peer TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER NOT NULL);"
    "CREATE INDEX sessions_user ON sessions(user_id);"
    "CREATE INDEX sessions_expires ON sessions(expires_at);"
    "CREATE TABLE api_tokens ("
    "  id INTEGER PRIMARY KEY,"
    "  token_hash TEXT NOT NULL UNIQUE,"
    "  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,"
    "  name TEXT NOT NULL DEFAULT '',"
    "  created_at INTEGER NOT NULL,"
    "  expires_at INTEGER);"
    "CREATE INDEX api_tokens_user ON api_tokens(user_id);"
    "CREATE TABLE login_failures ("
    "  key TEXT NOT NULL,"
    "  at INTEGER NOT NULL);"
    "CREATE INDEX login_failures_key ON login_failures(key, at);"
    "ALTER TABLE content_blocks ADD COLUMN owner_id INTEGER REFERENCES users(id)"
    "  ON DELETE SET NULL;",
    /* 10: the delivery log's work index leaves out sent rows, nearly all of
     * a campaign's once it has run: a result then deletes an index entry
     * and adds none, and a commit writes one page fewer (bench/send at a
     * million recipients). A campaign's total comes from the UNIQUE index,
     * its sent count by difference (Q_CAMPAIGN_COUNTS). */
    "DROP INDEX deliveries_todo;"
    "CREATE INDEX deliveries_work ON deliveries(campaign_id, status) WHERE " NOT_SENT ";",
};
#define N_MIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int store_sqlite_latest_version(void)
{
    return N_MIGRATIONS;
}

/* ---- named queries ------------------------------------------------------ */

enum q {
    Q_BEGIN, Q_COMMIT, Q_ROLLBACK,
    Q_SETTING_GET, Q_SETTING_SET,
    Q_TEAM_ADD, Q_TEAM_FIND, Q_TEAM_GET, Q_TEAM_EACH,
    Q_USER_ADD, Q_USER_FIND, Q_USER_GET, Q_USER_EACH,
    Q_LIST_ADD, Q_LIST_FIND, Q_LIST_EACH, Q_LIST_DELETE,
    Q_SUB_ADD, Q_SUB_INSERT_IGNORE, Q_SUB_UPDATE_DATA, Q_SUB_BLOCKLIST,
    Q_SUB_FIND, Q_SUB_GET, Q_SUB_UPDATE, Q_SUB_DELETE,
    Q_MEMBER_INSERT_IGNORE, Q_MEMBER_SET, Q_MEMBER_EACH, Q_MEMBER_LISTS,
    Q_BULK_FIND, Q_BULK_INSERT, Q_BULK_UPDATE, Q_BULK_BLOCK, Q_BULK_MEMBER, Q_BULK_MAXID, Q_BULK_REFS,
    Q_SUPPRESS_ADD, Q_SUPPRESS_CHECK, Q_AUDIT_ADD, Q_COUNTS,
    Q_DKIM_KEY_ADD, Q_DKIM_KEY_EACH,
    Q_BLOCK_PUT, Q_BLOCK_GET, Q_BLOCK_EACH, Q_BLOCK_DELETE,
    Q_RELAY_ADD, Q_RELAY_EACH, Q_RELAY_DELETE,
    Q_CAMPAIGN_ADD, Q_CAMPAIGN_ADD_LIST, Q_CAMPAIGN_GET, Q_CAMPAIGN_EACH, Q_CAMPAIGN_LIST_NAMES,
    Q_CAMPAIGN_SET_STATE, Q_CAMPAIGN_FREEZE, Q_CAMPAIGN_COUNTS, Q_DELIVERY_EACH,
    Q_DELIVERY_EACH_STATUS, Q_DELIVERY_DUE, Q_DELIVERY_UPDATE,
    Q_DELIVERY_RESULT, Q_DELIVERY_REQUEUE,
    Q_EVENT_ADD, Q_UNSUBSCRIBE, Q_MEMBER_CONFIRM, Q_DELIVERY_TOTALS,
    Q_EVENT_COUNTS, Q_DELIVERY_GET, Q_DELIVERY_BY_MSGID, Q_DELIVERY_OF, Q_DELIVERY_LAST_TO,
    Q_SOFT_BOUNCE_ADD, Q_SOFT_BOUNCE_COUNT, Q_INBOUND_FIND, Q_INBOUND_ADD, Q_REPLY_ADD,
    Q_MAILBOX_ADD, Q_MAILBOX_EACH, Q_MAILBOX_DELETE, Q_MAILBOX_POLLED,
    /* accounts and the API (migration 9) */
    Q_SESSION_ADD, Q_SESSION_PURGE, Q_SESSION_GET, Q_SESSION_DELETE,
    Q_TOKEN_ADD, Q_TOKEN_FIND, Q_TOKEN_EACH, Q_TOKEN_DELETE,
    Q_LOGIN_FAIL_ADD, Q_LOGIN_FAIL_PRUNE, Q_LOGIN_FAIL_COUNT, Q_LOGIN_FAIL_CLEAR,
    Q_SUB_PAGE, Q_SUB_PAGE_TOTAL, Q_LIST_GET, Q_REPLY_PAGE, Q_REPLY_PAGE_TOTAL,
    Q_CAMPAIGN_COPY, Q_CAMPAIGN_LISTS_DROP, Q_CAMPAIGN_LISTS_MOVE, Q_CAMPAIGN_DELETE,
    Q_CAMPAIGN_SEND_AT,
    Q_COUNT
};

#define SUB_COLS "s.id, s.email, s.name, s.attribs, s.status, s.owner_id, s.team_id, " \
                 "s.timezone, s.locale, s.created_at, s.updated_at"

#define BLOCK_COLS "id, kind, name, title, body, data, team_id, created_at, updated_at, owner_id"

static const char *const queries[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SETTING_GET] = "SELECT value FROM settings WHERE key = :key",
    [Q_SETTING_SET] = "INSERT INTO settings (key, value) VALUES (:key, :value) "
                      "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [Q_TEAM_ADD] = "INSERT INTO teams (name, model, parent_id, created_at) "
                   "VALUES (:name, :model, :parent_id, :now)",
    [Q_TEAM_FIND] = "SELECT id, name, model, parent_id, created_at FROM teams WHERE name = :name",
    [Q_TEAM_GET] = "SELECT id, name, model, parent_id, created_at FROM teams WHERE id = :id",
    [Q_TEAM_EACH] = "SELECT id, name, model, parent_id, created_at FROM teams ORDER BY id",
    [Q_USER_ADD] = "INSERT INTO users (email, name, role, team_id, password_hash, created_at) "
                   "VALUES (:email, :name, :role, :team_id, :password_hash, :now)",
    [Q_USER_FIND] = "SELECT id, email, name, role, team_id, password_hash, created_at "
                    "FROM users WHERE email = :email",
    [Q_USER_GET] = "SELECT id, email, name, role, team_id, password_hash, created_at "
                   "FROM users WHERE id = :id",
    [Q_USER_EACH] = "SELECT id, email, name, role, team_id, password_hash, created_at "
                    "FROM users ORDER BY id",
    [Q_LIST_ADD] = "INSERT INTO lists (name, team_id, owner_id, optin, visibility, created_at) "
                   "VALUES (:name, :team_id, :owner_id, :optin, :visibility, :now)",
    [Q_LIST_FIND] = "SELECT id, name, team_id, owner_id, optin, visibility, created_at "
                    "FROM lists WHERE name = :name",
    [Q_LIST_EACH] =
        "SELECT l.id, l.name, l.team_id, l.owner_id, l.optin, l.visibility, l.created_at,"
        " (SELECT count(*) FROM memberships m WHERE m.list_id = l.id AND m.status = 'confirmed'),"
        " (SELECT count(*) FROM memberships m WHERE m.list_id = l.id AND m.status = 'unconfirmed'),"
        " (SELECT count(*) FROM memberships m WHERE m.list_id = l.id AND m.status = 'unsubscribed')"
        " FROM lists l ORDER BY l.id",
    [Q_LIST_DELETE] = "DELETE FROM lists WHERE id = :id",
    [Q_SUB_ADD] = "INSERT INTO subscribers (email, name, attribs, status, owner_id, team_id,"
                  " timezone, locale, created_at, updated_at) VALUES (:email, :name, :attribs,"
                  " :status, :owner_id, :team_id, :timezone, :locale, :now, :now)",
    [Q_SUB_INSERT_IGNORE] =
        "INSERT INTO subscribers (email, name, attribs, status, owner_id, team_id,"
        " timezone, locale, created_at, updated_at) VALUES (:email, :name, :attribs,"
        " :status, :owner_id, :team_id, :timezone, :locale, :now, :now)"
        " ON CONFLICT (email) DO NOTHING",
    /* Only touches the row (and updated_at) when something differs, so a
     * re-import of the same file changes nothing. */
    [Q_SUB_UPDATE_DATA] = "UPDATE subscribers SET name = :name, attribs = :attribs, updated_at = :now"
                          " WHERE email = :email AND (name IS NOT :name OR attribs IS NOT :attribs)"
                          " RETURNING id",
    [Q_SUB_BLOCKLIST] = "UPDATE subscribers SET status = 'blocklisted', updated_at = :now"
                        " WHERE email = :email AND status <> 'blocklisted' RETURNING id",
    [Q_SUB_FIND] = "SELECT " SUB_COLS " FROM subscribers s WHERE s.email = :email",
    [Q_SUB_GET] = "SELECT " SUB_COLS " FROM subscribers s WHERE s.id = :id",
    [Q_SUB_UPDATE] = "UPDATE subscribers SET email = :email, name = :name, attribs = :attribs,"
                     " status = :status, owner_id = :owner_id, team_id = :team_id,"
                     " timezone = :timezone, locale = :locale, updated_at = :now WHERE id = :id",
    [Q_SUB_DELETE] = "DELETE FROM subscribers WHERE id = :id",
    [Q_MEMBER_INSERT_IGNORE] =
        "INSERT INTO memberships (list_id, subscriber_id, status, created_at, confirmed_at,"
        " unsubscribed_at) VALUES (:list_id, :sub_id, :status, :now,"
        " CASE WHEN :status = 'confirmed' THEN :now END,"
        " CASE WHEN :status = 'unsubscribed' THEN :now END)"
        " ON CONFLICT (list_id, subscriber_id) DO NOTHING",
    [Q_MEMBER_SET] =
        "INSERT INTO memberships (list_id, subscriber_id, status, created_at, confirmed_at,"
        " unsubscribed_at) VALUES (:list_id, :sub_id, :status, :now,"
        " CASE WHEN :status = 'confirmed' THEN :now END,"
        " CASE WHEN :status = 'unsubscribed' THEN :now END)"
        " ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = excluded.status,"
        " confirmed_at = CASE WHEN excluded.status = 'confirmed' THEN :now ELSE confirmed_at END,"
        " unsubscribed_at = CASE WHEN excluded.status = 'unsubscribed' THEN :now"
        "   ELSE unsubscribed_at END"
        " WHERE memberships.status IS NOT excluded.status",
    [Q_MEMBER_EACH] = "SELECT " SUB_COLS ", m.status, m.created_at, m.confirmed_at,"
                      " m.unsubscribed_at FROM memberships m"
                      " JOIN subscribers s ON s.id = m.subscriber_id"
                      " WHERE m.list_id = :list_id ORDER BY m.subscriber_id",
    [Q_MEMBER_LISTS] = "SELECT l.name, m.status FROM memberships m JOIN lists l ON l.id = m.list_id"
                       " WHERE m.subscriber_id = :sub_id ORDER BY l.name",
    /* Bulk import: the batch is sorted by email in C, so these walk the
     * unique index on subscribers.email in order (its pages stay in the
     * cache) instead of at random. Parameters are bound by position (see
     * bulk_row_run), so keep their order. */
    [Q_BULK_FIND] = "SELECT id, name, attribs, timezone, locale, status FROM subscribers"
                    " WHERE email = :email",
    [Q_BULK_INSERT] = "INSERT INTO subscribers (email, name, attribs, status, owner_id, team_id,"
                      " timezone, locale, created_at, updated_at) VALUES (:email, :name,"
                      " :attribs, :status, :owner_id, :team_id, :timezone, :locale, :now, :now)",
    [Q_BULK_UPDATE] = "UPDATE subscribers SET name = :name, attribs = :attribs,"
                      " timezone = coalesce(:timezone, timezone), locale = coalesce(:locale, locale),"
                      " status = coalesce(:status, status), updated_at = :now WHERE id = :id",
    [Q_BULK_MAXID] = "SELECT coalesce(max(id), 0) FROM subscribers",
    [Q_BULK_REFS] = "SELECT EXISTS (SELECT 1 FROM lists WHERE id = :list_id)"
                    " AND (:owner_id IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = :owner_id))"
                    " AND (:team_id IS NULL OR EXISTS (SELECT 1 FROM teams WHERE id = :team_id))",
    [Q_BULK_BLOCK] = "UPDATE subscribers SET status = 'blocklisted', updated_at = :now WHERE id = :id",
    /* A new membership takes the row's status; an existing one changes
     * only to unsubscribed (an import never re-subscribes anyone). */
    [Q_BULK_MEMBER] = "INSERT INTO memberships (list_id, subscriber_id, status, created_at,"
                      " confirmed_at, unsubscribed_at) VALUES (:list_id, :sub_id, :status, :now,"
                      " CASE WHEN :status = 'confirmed' THEN :now END,"
                      " CASE WHEN :status = 'unsubscribed' THEN :now END)"
                      " ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = 'unsubscribed',"
                      " unsubscribed_at = excluded.created_at WHERE excluded.status = 'unsubscribed'"
                      " AND memberships.status <> 'unsubscribed'",
    [Q_SUPPRESS_ADD] = "INSERT INTO suppressions (address, reason, created_at)"
                       " VALUES (:address, :reason, :now)"
                       " ON CONFLICT (address) DO UPDATE SET reason = excluded.reason",
    [Q_EVENT_ADD] = "INSERT INTO events (kind, campaign_id, subscriber_id, list_id, data, created_at)"
                   " VALUES (:kind, :campaign_id, :subscriber_id, :list_id, :data, :at)",
    /* An unsubscribe from one list, from the lists of a campaign (list 0),
     * or from every list (both 0); memberships only change, never appear. */
    [Q_UNSUBSCRIBE] =
        "UPDATE memberships SET status = 'unsubscribed', unsubscribed_at = :now"
        " WHERE subscriber_id = :sub_id AND status != 'unsubscribed' AND"
        " (list_id = :list_id OR (:list_id = 0 AND :campaign_id = 0) OR (:list_id = 0 AND"
        "  list_id IN (SELECT list_id FROM campaign_lists WHERE campaign_id = :campaign_id)))",
    [Q_MEMBER_CONFIRM] = "UPDATE memberships SET status = 'confirmed', confirmed_at = :now"
                         " WHERE list_id = :list_id AND subscriber_id = :sub_id"
                         " AND status = 'unconfirmed'",
    [Q_DELIVERY_TOTALS] = "SELECT status, count(*) FROM deliveries GROUP BY status",
    [Q_SUPPRESS_CHECK] = "SELECT 1 FROM suppressions WHERE address = :address",
    [Q_AUDIT_ADD] = "INSERT INTO audit_log (at, actor_id, actor, action, object_type, object_id,"
                    " detail) VALUES (:now, :actor_id, :actor, :action, :object_type,"
                    " :object_id, :detail)",
    [Q_COUNTS] = "SELECT (SELECT count(*) FROM teams), (SELECT count(*) FROM users),"
                 " (SELECT count(*) FROM lists), (SELECT count(*) FROM subscribers),"
                 " (SELECT count(*) FROM memberships), (SELECT count(*) FROM suppressions),"
                 " (SELECT count(*) FROM audit_log)",
    [Q_DKIM_KEY_ADD] = "INSERT INTO dkim_keys (domain, selector, algo, private_key, created_at)"
                       " VALUES (:domain, :selector, :algo, :private_key, :now)",
    [Q_DKIM_KEY_EACH] = "SELECT id, domain, selector, algo, private_key, created_at FROM dkim_keys"
                        " WHERE :domain IS NULL OR domain = :domain ORDER BY domain, selector",
    /* Replacing keeps the id and created_at, so references to the block
     * (a campaign's record of what it used) stay valid. */
    [Q_BLOCK_PUT] = "INSERT INTO content_blocks (kind, name, title, body, data, team_id,"
                    " owner_id, created_at, updated_at) VALUES (:kind, :name, :title, :body, :data,"
                    " :team_id, :owner_id, :now, :now)"
                    " ON CONFLICT (name) DO UPDATE SET kind = excluded.kind,"
                    " title = excluded.title, body = excluded.body, data = excluded.data,"
                    " team_id = excluded.team_id, updated_at = excluded.updated_at,"
                    " owner_id = coalesce(excluded.owner_id, owner_id) RETURNING id",
    [Q_BLOCK_GET] = "SELECT " BLOCK_COLS " FROM content_blocks WHERE name = :name",
    [Q_BLOCK_EACH] = "SELECT " BLOCK_COLS " FROM content_blocks"
                     " WHERE :kind IS NULL OR kind = :kind ORDER BY kind, name",
    [Q_BLOCK_DELETE] = "DELETE FROM content_blocks WHERE name = :name",
    [Q_RELAY_ADD] = "INSERT INTO relays (url, max_conns, rate, created_at)"
                    " VALUES (:url, :max_conns, :rate, :now)",
    [Q_RELAY_EACH] = "SELECT id, url, max_conns, rate, created_at FROM relays ORDER BY id",
    [Q_RELAY_DELETE] = "DELETE FROM relays WHERE id = :id",
    [Q_CAMPAIGN_ADD] =
        "INSERT INTO campaigns (name, subject, from_addr, reply_to, html, text, state, send_at,"
        " timezone, team_id, owner_id, created_at, updated_at, track_opens, track_clicks)"
        " VALUES (:name, :subject, :from, :reply_to, :html, :text, :state, :send_at, :timezone,"
        " :team_id, :owner_id, :now, :now, :track_opens, :track_clicks)",
    [Q_CAMPAIGN_ADD_LIST] = "INSERT OR IGNORE INTO campaign_lists (campaign_id, list_id)"
                            " VALUES (:campaign_id, :list_id)",
#define CAMPAIGN_COLS                                                                          \
    "id, name, subject, from_addr, reply_to, html, text, state, send_at, timezone, team_id,"  \
    " owner_id, created_at, updated_at, started_at, finished_at, track_opens, track_clicks"
    [Q_CAMPAIGN_GET] = "SELECT " CAMPAIGN_COLS " FROM campaigns WHERE id = :id",
    [Q_CAMPAIGN_EACH] = "SELECT " CAMPAIGN_COLS " FROM campaigns ORDER BY id DESC",
    [Q_CAMPAIGN_LIST_NAMES] = "SELECT l.name FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id"
                              " WHERE cl.campaign_id = :id ORDER BY l.name",
    [Q_CAMPAIGN_SET_STATE] =
        "UPDATE campaigns SET state = :to, updated_at = :now,"
        " started_at = CASE WHEN :to = 'running' THEN coalesce(started_at, :now) ELSE started_at END,"
        " finished_at = CASE WHEN :to = 'finished' OR :to = 'cancelled' THEN :now"
        "  ELSE finished_at END"
        " WHERE id = :id AND state = :from",
    /* The audience, frozen: driven from the memberships of the campaign's
     * lists (their primary key is (list_id, subscriber_id)); OR IGNORE
     * makes a subscriber on several lists one delivery. */
    [Q_CAMPAIGN_FREEZE] =
        "INSERT OR IGNORE INTO deliveries (campaign_id, subscriber_id, email, status, next_at,"
        " updated_at)"
        " SELECT :id, s.id, s.email, 'queued', 0, :now"
        " FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id"
        " JOIN memberships m ON m.list_id = cl.list_id"
        " JOIN subscribers s ON s.id = m.subscriber_id"
        " WHERE cl.campaign_id = :id"
        "  AND (m.status = 'confirmed' OR (m.status = 'unconfirmed' AND l.optin = 'single'))"
        "  AND s.status = 'enabled'"
        "  AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.address = s.email)"
        " ORDER BY s.id",
    /* The statuses other than sent from the work index, then the total (a
     * NULL status) from the UNIQUE (campaign_id, subscriber_id) index. */
    [Q_CAMPAIGN_COUNTS] = "SELECT status, count(*) FROM deliveries WHERE campaign_id = :id"
                          " AND " NOT_SENT " GROUP BY status"
                          " UNION ALL SELECT NULL, count(*) FROM deliveries WHERE campaign_id = :id",
#define DELIVERY_COLS                                                                          \
    "id, campaign_id, subscriber_id, email, status, attempts, next_at, last_reply, relay_id,"   \
    " message_id, maybe_duplicate, updated_at"
    [Q_DELIVERY_EACH] = "SELECT " DELIVERY_COLS " FROM deliveries WHERE campaign_id = :id"
                        " ORDER BY id",
    /* wanted: checked at send time, so an unsubscribe, a blocklisting or
     * a suppression after the freeze still stops the message. */
    [Q_DELIVERY_DUE] =
        "SELECT d.id, d.campaign_id, d.subscriber_id, d.email, d.status, d.attempts, d.next_at,"
        " d.last_reply, d.relay_id, d.message_id, d.maybe_duplicate, d.updated_at,"
        " s.name, s.attribs, s.timezone, s.locale,"
        " s.status = 'enabled'"
        "  AND EXISTS (SELECT 1 FROM campaign_lists cl JOIN lists l ON l.id = cl.list_id"
        "   JOIN memberships m ON m.list_id = cl.list_id AND m.subscriber_id = s.id"
        "   WHERE cl.campaign_id = d.campaign_id AND (m.status = 'confirmed'"
        "    OR (m.status = 'unconfirmed' AND l.optin = 'single')))"
        "  AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.address = s.email)"
        " FROM deliveries d LEFT JOIN subscribers s ON s.id = d.subscriber_id"
        /* Two index walks, not one OR: with the OR SQLite read every
         * delivery of the campaign, sent ones too, and sorted them, on every
         * call (quadratic over a campaign; bench/send found it). */
        " WHERE d.id IN (SELECT id FROM (SELECT id FROM deliveries WHERE campaign_id = :id"
        "   AND status = 'queued' ORDER BY id LIMIT :limit)"
        "  UNION ALL SELECT id FROM (SELECT id FROM deliveries WHERE campaign_id = :id"
        "   AND status = 'deferred' AND next_at <= :now ORDER BY id LIMIT :limit))"
        " ORDER BY d.id LIMIT :limit",
    [Q_DELIVERY_UPDATE] =
        "UPDATE deliveries SET status = :status, attempts = :attempts, next_at = :next_at,"
        " last_reply = :last_reply, relay_id = :relay_id, message_id = :message_id,"
        " maybe_duplicate = :maybe_dup, updated_at = :now WHERE id = :id",
    /* The same without message_id: SQLite rewrites an index entry for
     * every column in SET even when its value stays, and a result keeps
     * the Message-ID its claim wrote (a fifth of the update's time). */
    [Q_DELIVERY_RESULT] =
        "UPDATE deliveries SET status = :status, attempts = :attempts, next_at = :next_at,"
        " last_reply = :last_reply, relay_id = :relay_id,"
        " maybe_duplicate = :maybe_dup, updated_at = :now WHERE id = :id",
    [Q_DELIVERY_REQUEUE] =
        "UPDATE deliveries SET status = 'queued', next_at = 0, updated_at = :now,"
        " maybe_duplicate = maybe_duplicate OR :maybe_dup"
        " WHERE campaign_id = :id AND status = :status AND " NOT_SENT,
    /* Never asked for sent rows (failures, and the rows of a run that
     * stopped): NOT_SENT lets them come from the work index. */
    [Q_DELIVERY_EACH_STATUS] = "SELECT " DELIVERY_COLS " FROM deliveries"
                               " WHERE campaign_id = :id AND status = :status AND " NOT_SENT
                               " ORDER BY id",
    [Q_EVENT_COUNTS] = "SELECT kind, count(*) FROM events WHERE campaign_id = :id GROUP BY kind",
    [Q_DELIVERY_GET] = "SELECT " DELIVERY_COLS " FROM deliveries WHERE id = :id",
    [Q_DELIVERY_BY_MSGID] = "SELECT " DELIVERY_COLS " FROM deliveries WHERE message_id = :mid"
                            " ORDER BY id DESC LIMIT 1",
    [Q_DELIVERY_OF] = "SELECT " DELIVERY_COLS " FROM deliveries WHERE campaign_id = :id"
                      " AND subscriber_id = :sub_id",
    /* Through the subscriber: deliveries are indexed by subscriber, not by
     * address; a deleted subscriber's deliveries are no one's any more. */
    [Q_DELIVERY_LAST_TO] = "SELECT d.id, d.campaign_id, d.subscriber_id, d.email, d.status,"
                           " d.attempts, d.next_at, d.last_reply, d.relay_id, d.message_id,"
                           " d.maybe_duplicate, d.updated_at"
                           " FROM subscribers s JOIN deliveries d ON d.subscriber_id = s.id"
                           " WHERE s.email = :email AND d.status <> 'queued'"
                           " ORDER BY d.id DESC LIMIT 1",
    [Q_SOFT_BOUNCE_ADD] = "INSERT INTO soft_bounces (address, campaign_id, at)"
                          " VALUES (:address, :campaign_id, :at)"
                          " ON CONFLICT (address, campaign_id) DO NOTHING",
    [Q_SOFT_BOUNCE_COUNT] = "SELECT count(*) FROM soft_bounces WHERE address = :address",
    [Q_INBOUND_FIND] = "SELECT keep FROM inbound_messages WHERE source = :source AND key = :key",
    [Q_INBOUND_ADD] = "INSERT INTO inbound_messages (source, key, kind, note, message_id,"
                      " campaign_id, subscriber_id, size, keep, received_at) VALUES (:source,"
                      " :key, :kind, :note, :message_id, :campaign_id, :subscriber_id, :size,"
                      " :keep, :now)",
    [Q_REPLY_ADD] = "INSERT INTO replies (inbound_id, campaign_id, subscriber_id, sender,"
                    " sender_name, subject, body, message_id, in_reply_to, matched_by, owner_id,"
                    " team_id, assigned_to, sent_at, received_at) VALUES (:inbound_id,"
                    " :campaign_id, :subscriber_id, :sender, :sender_name, :subject, :body,"
                    " :message_id, :in_reply_to, :matched_by, :owner_id, :team_id,"
                    " :assigned_to, :sent_at, :received_at)",
    [Q_MAILBOX_ADD] = "INSERT INTO mailboxes (url, username, password, every, next_at,"
                      " created_at) VALUES (:url, :username, :password, :every, 0, :now)",
    [Q_MAILBOX_EACH] = "SELECT id, url, username, password, every, next_at, last_at, last_error,"
                       " created_at FROM mailboxes ORDER BY id",
    [Q_MAILBOX_DELETE] = "DELETE FROM mailboxes WHERE id = :id",
    [Q_MAILBOX_POLLED] = "UPDATE mailboxes SET next_at = :next_at, last_error = :error,"
                         " last_at = CASE WHEN :at > 0 THEN :at ELSE last_at END WHERE id = :id",
    [Q_SESSION_ADD] = "INSERT INTO sessions (token_hash, user_id, csrf, peer, created_at, expires_at)"
                      " VALUES (:token_hash, :user_id, :csrf, :peer, :now, :expires_at)",
    [Q_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_at <= :now",
    [Q_SESSION_GET] = "SELECT id, token_hash, user_id, csrf, peer, created_at, expires_at"
                      " FROM sessions WHERE token_hash = :token_hash",
    [Q_SESSION_DELETE] = "DELETE FROM sessions WHERE token_hash = :token_hash",
    [Q_TOKEN_ADD] = "INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at)"
                    " VALUES (:token_hash, :user_id, :name, :now, :expires_at)",
    [Q_TOKEN_FIND] = "SELECT id, token_hash, user_id, name, created_at, expires_at"
                     " FROM api_tokens WHERE token_hash = :token_hash",
    [Q_TOKEN_EACH] = "SELECT id, token_hash, user_id, name, created_at, expires_at"
                     " FROM api_tokens WHERE :user_id IS NULL OR user_id = :user_id ORDER BY id",
    [Q_TOKEN_DELETE] = "DELETE FROM api_tokens WHERE id = :id",
    [Q_LOGIN_FAIL_ADD] = "INSERT INTO login_failures (key, at) VALUES (:key, :now)",
    [Q_LOGIN_FAIL_PRUNE] = "DELETE FROM login_failures WHERE key = :key AND at < :since",
    [Q_LOGIN_FAIL_COUNT] = "SELECT count(*) FROM login_failures WHERE key = :key AND at >= :since",
    [Q_LOGIN_FAIL_CLEAR] = "DELETE FROM login_failures WHERE key = :key",
    /* A page by id: the cursor is the last id seen, so a page never
     * repeats or skips a row when rows are added or removed meanwhile. */
    [Q_SUB_PAGE] = "SELECT " SUB_COLS " FROM subscribers s WHERE s.id > :after"
                   " AND ((:owner_id IS NULL AND :team_id IS NULL) OR s.owner_id = :owner_id"
                   "  OR s.team_id = :team_id) ORDER BY s.id LIMIT :limit",
    [Q_SUB_PAGE_TOTAL] = "SELECT count(*) FROM subscribers s"
                         " WHERE (:owner_id IS NULL AND :team_id IS NULL)"
                         "  OR s.owner_id = :owner_id OR s.team_id = :team_id",
    [Q_LIST_GET] =
        "SELECT l.id, l.name, l.team_id, l.owner_id, l.optin, l.visibility, l.created_at,"
        " (SELECT count(*) FROM memberships m WHERE m.list_id = l.id AND m.status = 'confirmed'),"
        " (SELECT count(*) FROM memberships m WHERE m.list_id = l.id AND m.status = 'unconfirmed'),"
        " (SELECT count(*) FROM memberships m WHERE m.list_id = l.id AND m.status = 'unsubscribed')"
        " FROM lists l WHERE l.id = :id",
    [Q_REPLY_PAGE] = "SELECT id, campaign_id, subscriber_id, sender, sender_name, subject, body,"
                     " status, owner_id, team_id, assigned_to, received_at FROM replies"
                     " WHERE id > :after AND ((:owner_id IS NULL AND :team_id IS NULL)"
                     "  OR owner_id = :owner_id OR team_id = :team_id) ORDER BY id LIMIT :limit",
    [Q_REPLY_PAGE_TOTAL] = "SELECT count(*) FROM replies"
                           " WHERE (:owner_id IS NULL AND :team_id IS NULL)"
                           "  OR owner_id = :owner_id OR team_id = :team_id",
    [Q_CAMPAIGN_COPY] =
        "UPDATE campaigns SET (name, subject, from_addr, reply_to, html, text, send_at, timezone,"
        " track_opens, track_clicks) = (SELECT name, subject, from_addr, reply_to, html, text,"
        " send_at, timezone, track_opens, track_clicks FROM campaigns WHERE id = :from),"
        " updated_at = :now WHERE id = :id AND state = 'draft'",
    [Q_CAMPAIGN_LISTS_DROP] = "DELETE FROM campaign_lists WHERE campaign_id = :id",
    [Q_CAMPAIGN_LISTS_MOVE] = "UPDATE campaign_lists SET campaign_id = :id WHERE campaign_id = :from",
    [Q_CAMPAIGN_DELETE] = "DELETE FROM campaigns WHERE id = :id",
    [Q_CAMPAIGN_SEND_AT] = "UPDATE campaigns SET send_at = :send_at, updated_at = :now"
                           " WHERE id = :id AND state = 'draft'",
};

/* A bulk batch: rows kept in C until the flush sorts and writes them. The
 * strings of every row live one after another in text (NUL-terminated), so a
 * batch costs two allocations that are reused from batch to batch; rows hold
 * offsets, since text moves when it grows. */
enum { F_EMAIL, F_NAME, F_ATTRIBS, F_TZ, F_LOCALE, F_STATUS, F_SUBSCRIPTION, F_COUNT };

typedef struct bulk_row {
    size_t off[F_COUNT];  /* offsets in the batch's text; NONE when NULL */
    int len[F_COUNT];     /* their lengths, so binding does not strlen again */
    uint64_t key;         /* the email's first 8 bytes, big-endian: sorts most pairs */
    uint64_t seq;         /* order in the file */
    int64_t id;   /* the subscriber's id once found or given */
    uint8_t act;  /* what the flush does with the subscriber (enum bulk_act) */
    bool block;   /* ...and whether it blocklists them */
    bool dup;     /* same email as the row before it in the sorted batch */
} bulk_row;

typedef struct bulk_batch {
    bulk_row *rows;
    size_t n, cap;
    char *text;
    size_t len, text_cap;
    bulk_row **ord; /* the rows sorted by email (batch_sort), n of them */
    size_t ord_cap;
} bulk_batch;

/* Kinds of many-rows-per-statement bulk statements (see multi_sql). */
enum multi_kind { MULTI_INSERT, MULTI_MEMBER };
#define MULTI_KINDS 2

typedef struct sq {
    store base;
    sqlite3 *db;
    sqlite3_stmt *st[Q_COUNT];
    bulk_opts bulk;   /* the open bulk session, if any */
    bool bulk_open;
    bulk_batch batch; /* its rows not yet flushed */
    /* The batch a background writer is writing (bulk_opts.background). */
    bulk_batch wbatch;
    pthread_t writer;
    bool writing;
    int wrc;
    bulk_stats wstats;
    td_error werr;
    struct multi *multi[MULTI_KINDS]; /* bulk statements for BULK_K rows (enum multi_kind) */
} sq;

static const struct store_ops sqlite_ops;

/* ---- helpers -------------------------------------------------------------- */

/* sq_fail maps an SQLite result to a TD_E* code with a message. */
static int sq_fail(sq *q, int rc, td_error *e, const char *what)
{
    int ext = sqlite3_extended_errcode(q->db);
    const char *msg = sqlite3_errmsg(q->db);
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return td_err_set(e, TD_ETEMP, "%s: the database is busy, try again (%s)", what, msg);
    case SQLITE_CONSTRAINT:
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
            return td_err_set(e, TD_EEXISTS, "%s: already exists", what);
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return td_err_set(e, TD_EINVAL, "%s: it refers to something that does not exist "
                                            "or is still in use", what);
        return td_err_set(e, TD_EINVAL, "%s: a value is not allowed (%s)", what, msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
        return td_err_set(e, TD_EIO, "%s: %s", what, msg);
    }
    return td_err_set(e, TD_EDB, "%s: %s", what, msg);
}

static sqlite3_stmt *stmt(sq *q, enum q id, td_error *e)
{
    if (!q->st[id]) {
        int rc = sqlite3_prepare_v3(q->db, queries[id], -1, SQLITE_PREPARE_PERSISTENT, &q->st[id],
                                    NULL);
        if (rc != SQLITE_OK) {
            sq_fail(q, rc, e, "preparing a query");
            return NULL;
        }
    }
    return q->st[id];
}

static void bind_text(sqlite3_stmt *st, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

static void bind_int(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0)
        sqlite3_bind_int64(st, i, v);
}

/* An id of 0 means "none": stored as NULL. */
static void bind_id(sqlite3_stmt *st, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(st, name);
    if (i > 0) {
        if (v)
            sqlite3_bind_int64(st, i, v);
        else
            sqlite3_bind_null(st, i);
    }
}

static void bind_now(sqlite3_stmt *st)
{
    bind_int(st, ":now", (int64_t)time(NULL));
}

static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

/* step runs a statement that returns no rows; done() is the caller's. */
static int step_exec(sq *q, sqlite3_stmt *st, td_error *e, const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW)
        return TD_OK;
    return sq_fail(q, rc, e, what);
}

static int exec_sql(sq *q, const char *sql, td_error *e, const char *what)
{
    char *err = NULL;
    if (sqlite3_exec(q->db, sql, NULL, NULL, &err) != SQLITE_OK) {
        int code = td_err_set(e, TD_EDB, "%s: %s", what, err ? err : "failed");
        sqlite3_free(err);
        return code;
    }
    return TD_OK;
}

/* ---- open, migrate, close -------------------------------------------------- */

static int sq_schema_version(store *s, int *v, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st;
    *v = 0;
    int rc = sqlite3_prepare_v2(q->db,
                                "SELECT coalesce(max(version), 0) FROM schema_migrations", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(q, rc, e, "reading the schema version");
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? TD_OK : sq_fail(q, rc, e, "reading the schema version");
}

static int migrate(sq *q, int max_version, td_error *e)
{
    int rc = exec_sql(q,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
                      e, "creating the migrations table");
    if (rc)
        return rc;
    int v;
    if ((rc = sq_schema_version(&q->base, &v, e)))
        return rc;
    if (v > N_MIGRATIONS)
        return td_err_set(e, TD_EINVAL,
                          "the database has schema version %d, newer than this tidings "
                          "(%d): upgrade tidings",
                          v, N_MIGRATIONS);
    for (int i = v; i < max_version && i < N_MIGRATIONS; i++) {
        if ((rc = exec_sql(q, "BEGIN IMMEDIATE", e, "starting a migration")))
            return rc;
        char rec[160];
        snprintf(rec, sizeof rec,
                 "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)", i + 1,
                 (long long)time(NULL));
        if ((rc = exec_sql(q, migrations[i], e, "applying a migration")) ||
            (rc = exec_sql(q, rec, e, "recording a migration"))) {
            exec_sql(q, "ROLLBACK", NULL, "");
            return td_err_set(e, rc, "migration %d failed: %s", i + 1, e ? e->msg : "");
        }
        if ((rc = exec_sql(q, "COMMIT", e, "committing a migration")))
            return rc;
    }
    return TD_OK;
}

int store_sqlite_open(const char *path, int max_version, store **out, td_error *e)
{
    *out = NULL;
    /* SQLite's memory statistics take a global mutex on every allocation;
     * nothing here reads them. Must precede the first sqlite3 call, and
     * SQLITE_MISUSE after initialisation is harmless. */
    static bool configured;
    if (!configured) {
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
        configured = true;
    }
    sq *q = xcalloc(1, sizeof *q);
    q->base.ops = &sqlite_ops;
    int rc = sqlite3_open_v2(path, &q->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        td_err_set(e, TD_EIO, "cannot open the database %s: %s", path,
                   q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
        sqlite3_close(q->db);
        free(q);
        return TD_EIO;
    }
    sqlite3_extended_result_codes(q->db, 1);
    sqlite3_busy_timeout(q->db, 5000);
    /* WAL lets readers (tracking, reports) run beside the writer; NORMAL is
     * durable across process crashes in WAL mode, which is what we need. */
    /* 8 KiB pages, a balance measured with bench/import and bench/send:
     * bigger pages mean shallower B-trees and fewer page splits on bulk
     * inserts (4 KiB pages cost a million-row import a third more time than
     * 8 or 16 KiB), while a delivery commit writes each page it touched in
     * full, about five per message sent (16 KiB pages cost sending ~30 us of
     * CPU a message more than 8 KiB). Only takes effect on a new database,
     * so it must come before journal_mode. */
    rc = exec_sql(q,
                  "PRAGMA page_size = 8192; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                  " PRAGMA foreign_keys = ON; PRAGMA cache_size = -16000;"
                  " PRAGMA temp_store = MEMORY;",
                  e, "setting up the database");
    if (!rc)
        rc = migrate(q, max_version, e);
    if (rc) {
        if (e && rc == TD_EDB && strstr(e->msg, "not a database"))
            rc = td_err_set(e, TD_EINVAL, "%s is not a Tidings database (not SQLite)", path);
        sqlite3_close(q->db);
        free(q);
        return rc;
    }
    *out = &q->base;
    return TD_OK;
}



static void batch_free(bulk_batch *b);
struct multi;
static void multi_free(struct multi *m);

static void sq_close(store *s)
{
    sq *q = (sq *)s;
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(q->st[i]);
    for (int i = 0; i < MULTI_KINDS; i++)
        multi_free(q->multi[i]);
    /* Fold the WAL back so the database is one file at rest. */
    sqlite3_exec(q->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
    sqlite3_close(q->db);
    batch_free(&q->batch);
    batch_free(&q->wbatch);
    free(q);
}

/* ---- transactions and settings ------------------------------------------------ */

static int run_simple(store *s, enum q id, td_error *e, const char *what)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, id, e);
    if (!st)
        return TD_EDB;
    int rc = step_exec(q, st, e, what);
    done(st);
    return rc;
}

static int sq_begin(store *s, td_error *e) { return run_simple(s, Q_BEGIN, e, "starting a transaction"); }
static int sq_commit(store *s, td_error *e) { return run_simple(s, Q_COMMIT, e, "committing"); }
static void sq_rollback(store *s)
{
    if (!sqlite3_get_autocommit(((sq *)s)->db))
        run_simple(s, Q_ROLLBACK, NULL, "rolling back");
}

static int sq_setting_get(store *s, const char *key, char **value, td_error *e)
{
    sq *q = (sq *)s;
    *value = NULL;
    sqlite3_stmt *st = stmt(q, Q_SETTING_GET, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":key", key);
    int rc = sqlite3_step(st);
    int res = TD_OK;
    if (rc == SQLITE_ROW)
        *value = col_str(st, 0);
    else if (rc == SQLITE_DONE)
        res = td_err_set(e, TD_ENOTFOUND, "no setting '%s'", key);
    else
        res = sq_fail(q, rc, e, "reading a setting");
    done(st);
    return res;
}

static int sq_setting_set(store *s, const char *key, const char *value, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SETTING_SET, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":key", key);
    bind_text(st, ":value", value);
    int rc = step_exec(q, st, e, "saving a setting");
    done(st);
    return rc;
}

/* Runs an INSERT and returns the new row id. */
static int insert_id(sq *q, sqlite3_stmt *st, int64_t *id, td_error *e, const char *what)
{
    int rc = step_exec(q, st, e, what);
    if (!rc && id)
        *id = sqlite3_last_insert_rowid(q->db);
    done(st);
    return rc;
}

/* Runs a SELECT expected to give at most one row, filling it with fill(). */
static int select_one(sq *q, sqlite3_stmt *st, void (*fill)(sqlite3_stmt *, void *), void *out,
                      td_error *e, const char *what)
{
    int rc = sqlite3_step(st);
    int res = TD_OK;
    if (rc == SQLITE_ROW)
        fill(st, out);
    else if (rc == SQLITE_DONE)
        res = td_err_set(e, TD_ENOTFOUND, "%s: not found", what);
    else
        res = sq_fail(q, rc, e, what);
    done(st);
    return res;
}

/* ---- teams ------------------------------------------------------------------- */

static void fill_team(sqlite3_stmt *st, void *p)
{
    team_rec *t = p;
    t->id = sqlite3_column_int64(st, 0);
    t->name = col_str(st, 1);
    t->model = col_str(st, 2);
    t->parent_id = sqlite3_column_int64(st, 3);
    t->created_at = sqlite3_column_int64(st, 4);
}

static int sq_team_add(store *s, const team_rec *t, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TEAM_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":name", t->name);
    bind_text(st, ":model", t->model);
    bind_id(st, ":parent_id", t->parent_id);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the team");
}

static int sq_team_find(store *s, const char *name, team_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TEAM_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":name", name);
    return select_one(q, st, fill_team, out, e, "team");
}

static int sq_team_get(store *s, int64_t id, team_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TEAM_GET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return select_one(q, st, fill_team, out, e, "team");
}

/* Walks every row of st, filling a record with fill() and passing it to cb. */
static int each_row(sq *q, sqlite3_stmt *st, void (*fill)(sqlite3_stmt *, void *),
                    void (*clear)(void *), void *rec, int (*cb)(void *, const void *), void *ud,
                    td_error *e, const char *what)
{
    int rc, res = TD_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fill(st, rec);
        res = cb(ud, rec);
        clear(rec);
        if (res)
            break;
    }
    if (!res && rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, what);
    done(st);
    return res;
}

static void clear_team(void *p) { team_rec_clear(p); }
static void clear_user(void *p) { user_rec_clear(p); }
static void clear_list(void *p) { list_rec_clear(p); }

static int sq_team_each(store *s, team_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TEAM_EACH, e);
    if (!st)
        return TD_EDB;
    team_rec t = {0};
    return each_row(q, st, fill_team, clear_team, &t, (int (*)(void *, const void *))cb, ud, e,
                    "listing teams");
}

/* ---- users ------------------------------------------------------------------- */

static void fill_user(sqlite3_stmt *st, void *p)
{
    user_rec *u = p;
    u->id = sqlite3_column_int64(st, 0);
    u->email = col_str(st, 1);
    u->name = col_str(st, 2);
    u->role = col_str(st, 3);
    u->team_id = sqlite3_column_int64(st, 4);
    u->password_hash = col_str(st, 5);
    u->created_at = sqlite3_column_int64(st, 6);
}

static int sq_user_add(store *s, const user_rec *u, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_USER_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":email", u->email);
    bind_text(st, ":name", u->name ? u->name : "");
    bind_text(st, ":role", u->role);
    bind_id(st, ":team_id", u->team_id);
    bind_text(st, ":password_hash", u->password_hash);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the user");
}

static int sq_user_find(store *s, const char *email, user_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_USER_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":email", email);
    return select_one(q, st, fill_user, out, e, "user");
}

static int sq_user_get(store *s, int64_t id, user_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_USER_GET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return select_one(q, st, fill_user, out, e, "user");
}

static int sq_user_each(store *s, user_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_USER_EACH, e);
    if (!st)
        return TD_EDB;
    user_rec u = {0};
    return each_row(q, st, fill_user, clear_user, &u, (int (*)(void *, const void *))cb, ud, e,
                    "listing users");
}

/* ---- lists ------------------------------------------------------------------- */

static void fill_list(sqlite3_stmt *st, void *p)
{
    list_rec *l = p;
    l->id = sqlite3_column_int64(st, 0);
    l->name = col_str(st, 1);
    l->team_id = sqlite3_column_int64(st, 2);
    l->owner_id = sqlite3_column_int64(st, 3);
    l->optin = col_str(st, 4);
    l->visibility = col_str(st, 5);
    l->created_at = sqlite3_column_int64(st, 6);
    if (sqlite3_column_count(st) > 7) {
        l->n_confirmed = sqlite3_column_int64(st, 7);
        l->n_unconfirmed = sqlite3_column_int64(st, 8);
        l->n_unsubscribed = sqlite3_column_int64(st, 9);
    }
}

static int sq_list_add(store *s, const list_rec *l, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LIST_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":name", l->name);
    bind_id(st, ":team_id", l->team_id);
    bind_id(st, ":owner_id", l->owner_id);
    bind_text(st, ":optin", l->optin);
    bind_text(st, ":visibility", l->visibility);
    bind_now(st);
    return insert_id(q, st, id, e, "creating the list");
}

static int sq_list_find(store *s, const char *name, list_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LIST_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":name", name);
    return select_one(q, st, fill_list, out, e, "list");
}

static int sq_list_each(store *s, list_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LIST_EACH, e);
    if (!st)
        return TD_EDB;
    list_rec l = {0};
    return each_row(q, st, fill_list, clear_list, &l, (int (*)(void *, const void *))cb, ud, e,
                    "listing lists");
}

static int delete_by_id(store *s, enum q id_q, int64_t id, td_error *e, const char *what)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, id_q, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    int rc = step_exec(q, st, e, what);
    if (!rc && sqlite3_changes(q->db) == 0)
        rc = td_err_set(e, TD_ENOTFOUND, "%s: not found", what);
    done(st);
    return rc;
}

static int sq_list_delete(store *s, int64_t id, td_error *e)
{
    return delete_by_id(s, Q_LIST_DELETE, id, e, "deleting the list");
}

/* ---- subscribers ----------------------------------------------------------------- */

static void fill_sub_at(sqlite3_stmt *st, sub_rec *r, int c)
{
    r->id = sqlite3_column_int64(st, c + 0);
    r->email = col_str(st, c + 1);
    r->name = col_str(st, c + 2);
    r->attribs = col_str(st, c + 3);
    r->status = col_str(st, c + 4);
    r->owner_id = sqlite3_column_int64(st, c + 5);
    r->team_id = sqlite3_column_int64(st, c + 6);
    r->timezone = col_str(st, c + 7);
    r->locale = col_str(st, c + 8);
    r->created_at = sqlite3_column_int64(st, c + 9);
    r->updated_at = sqlite3_column_int64(st, c + 10);
}

static void fill_sub(sqlite3_stmt *st, void *p) { fill_sub_at(st, p, 0); }

static void bind_sub(sqlite3_stmt *st, const sub_rec *r)
{
    bind_text(st, ":email", r->email);
    bind_text(st, ":name", r->name ? r->name : "");
    bind_text(st, ":attribs", r->attribs ? r->attribs : "{}");
    bind_text(st, ":status", r->status ? r->status : "enabled");
    bind_id(st, ":owner_id", r->owner_id);
    bind_id(st, ":team_id", r->team_id);
    bind_text(st, ":timezone", r->timezone);
    bind_text(st, ":locale", r->locale);
    bind_now(st);
}

static int sq_sub_add(store *s, const sub_rec *r, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUB_ADD, e);
    if (!st)
        return TD_EDB;
    bind_sub(st, r);
    return insert_id(q, st, id, e, "adding the subscriber");
}

/* sub_id_of looks up the id of an existing subscriber by email. */
static int sub_id_of(sq *q, const char *email, int64_t *id, td_error *e)
{
    sqlite3_stmt *st = stmt(q, Q_SUB_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":email", email);
    int rc = sqlite3_step(st), res = TD_OK;
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        res = td_err_set(e, TD_ENOTFOUND, "subscriber not found");
    else
        res = sq_fail(q, rc, e, "finding the subscriber");
    done(st);
    return res;
}

/* An update that RETURNs the id when it changed a row. */
static int update_returning(sq *q, sqlite3_stmt *st, int64_t *id, bool *changed, td_error *e)
{
    int rc = sqlite3_step(st), res = TD_OK;
    *changed = false;
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(st, 0);
        *changed = true;
        rc = sqlite3_step(st);
    }
    if (rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, "updating the subscriber");
    done(st);
    return res;
}

static int sq_sub_upsert(store *s, const sub_rec *r, sub_mode mode, int64_t *id,
                         sub_outcome *outcome, td_error *e)
{
    sq *q = (sq *)s;
    *outcome = SUB_UNCHANGED;
    sqlite3_stmt *st = stmt(q, Q_SUB_INSERT_IGNORE, e);
    if (!st)
        return TD_EDB;
    bind_sub(st, r);
    int rc = step_exec(q, st, e, "adding the subscriber");
    int inserted = !rc && sqlite3_changes(q->db) > 0;
    if (inserted)
        *id = sqlite3_last_insert_rowid(q->db);
    done(st);
    if (rc)
        return rc;
    if (inserted) {
        *outcome = SUB_CREATED;
        return TD_OK;
    }
    bool changed = false;
    if (mode == SUB_MODE_UPSERT || mode == SUB_MODE_BLOCKLIST) {
        st = stmt(q, mode == SUB_MODE_UPSERT ? Q_SUB_UPDATE_DATA : Q_SUB_BLOCKLIST, e);
        if (!st)
            return TD_EDB;
        bind_text(st, ":email", r->email);
        bind_text(st, ":name", r->name ? r->name : "");
        bind_text(st, ":attribs", r->attribs ? r->attribs : "{}");
        bind_now(st);
        if ((rc = update_returning(q, st, id, &changed, e)))
            return rc;
    }
    if (changed) {
        *outcome = SUB_UPDATED;
        return TD_OK;
    }
    return sub_id_of(q, r->email, id, e);
}

static int sq_sub_find(store *s, const char *email, sub_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUB_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":email", email);
    return select_one(q, st, fill_sub, out, e, "subscriber");
}

static int sq_sub_get(store *s, int64_t id, sub_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUB_GET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return select_one(q, st, fill_sub, out, e, "subscriber");
}

static int sq_sub_update(store *s, const sub_rec *r, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUB_UPDATE, e);
    if (!st)
        return TD_EDB;
    bind_sub(st, r);
    bind_int(st, ":id", r->id);
    int rc = step_exec(q, st, e, "updating the subscriber");
    if (!rc && sqlite3_changes(q->db) == 0)
        rc = td_err_set(e, TD_ENOTFOUND, "updating the subscriber: not found");
    done(st);
    return rc;
}

static int sq_sub_delete(store *s, int64_t id, td_error *e)
{
    return delete_by_id(s, Q_SUB_DELETE, id, e, "deleting the subscriber");
}

/* ---- memberships ------------------------------------------------------------------ */

static int sq_member_set(store *s, int64_t list_id, int64_t sub_id, const char *status,
                         bool keep_existing, sub_outcome *outcome, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, keep_existing ? Q_MEMBER_INSERT_IGNORE : Q_MEMBER_SET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":list_id", list_id);
    bind_int(st, ":sub_id", sub_id);
    bind_text(st, ":status", status);
    bind_now(st);
    int rc = step_exec(q, st, e, "setting the membership");
    if (!rc && outcome)
        *outcome = sqlite3_changes(q->db) > 0 ? SUB_CREATED : SUB_UNCHANGED;
    done(st);
    return rc;
}

static int sq_member_each(store *s, int64_t list_id, member_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MEMBER_EACH, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":list_id", list_id);
    int rc, res = TD_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        /* Borrowed strings straight from SQLite: export walks millions of rows
         * and must not allocate per row. */
        member_rec m = {0};
        sub_rec *r = &m.sub;
        r->id = sqlite3_column_int64(st, 0);
        r->email = (char *)sqlite3_column_text(st, 1);
        r->name = (char *)sqlite3_column_text(st, 2);
        r->attribs = (char *)sqlite3_column_text(st, 3);
        r->status = (char *)sqlite3_column_text(st, 4);
        r->owner_id = sqlite3_column_int64(st, 5);
        r->team_id = sqlite3_column_int64(st, 6);
        r->timezone = (char *)sqlite3_column_text(st, 7);
        r->locale = (char *)sqlite3_column_text(st, 8);
        r->created_at = sqlite3_column_int64(st, 9);
        r->updated_at = sqlite3_column_int64(st, 10);
        m.status = (char *)sqlite3_column_text(st, 11);
        m.created_at = sqlite3_column_int64(st, 12);
        m.confirmed_at = sqlite3_column_int64(st, 13);
        m.unsubscribed_at = sqlite3_column_int64(st, 14);
        if ((res = cb(ud, &m)))
            break;
    }
    if (!res && rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, "reading the list's members");
    done(st);
    return res;
}

static int sq_member_lists(store *s, int64_t sub_id, membership_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MEMBER_LISTS, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":sub_id", sub_id);
    int rc, res = TD_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((res = cb(ud, (const char *)sqlite3_column_text(st, 0),
                      (const char *)sqlite3_column_text(st, 1))))
            break;
    if (!res && rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, "reading memberships");
    done(st);
    return res;
}

/* ---- bulk import ------------------------------------------------------------------- */

#define NONE ((size_t)-1)

static void batch_free(bulk_batch *b)
{
    free(b->rows);
    free(b->text);
    free(b->ord);
    memset(b, 0, sizeof *b);
}

static size_t batch_str(bulk_batch *b, const char *v, size_t len)
{
    if (!v)
        return NONE;
    size_t n = len + 1;
    if (b->len + n > b->text_cap) {
        size_t cap = b->text_cap ? b->text_cap : 1 << 20;
        while (b->len + n > cap)
            cap *= 2;
        b->text = xrealloc(b->text, cap);
        b->text_cap = cap;
    }
    memcpy(b->text + b->len, v, n);
    b->len += n;
    return b->len - n;
}

static int sq_bulk_begin(store *s, const bulk_opts *o, td_error *e)
{
    (void)e;
    sq *q = (sq *)s;
    q->bulk = *o;
    q->batch.n = q->batch.len = 0;
    q->bulk_open = true;
    return TD_OK;
}

static int sq_bulk_add(store *s, const sub_rec *r, const char *subscription, td_error *e)
{
    sq *q = (sq *)s;
    if (!q->bulk_open)
        return td_err_set(e, TD_EINTERNAL, "no bulk import is open");
    /* The CHECK constraints are not evaluated on bulk writes (see
     * batch_commit), so what they check is checked here, in the caller's
     * thread, off the writer's path. */
    const char *attribs = r->attribs ? r->attribs : "{}";
    if (!jsonstr_is_object(attribs, strlen(attribs)))
        return td_err_set(e, TD_EINVAL, "the attributes of %s are not a JSON object", r->email);
    if (r->status && !model_sub_status_ok(r->status))
        return td_err_set(e, TD_EINVAL, "'%s' is not a subscriber status", r->status);
    if (subscription && !model_member_status_ok(subscription))
        return td_err_set(e, TD_EINVAL, "'%s' is not a subscription status", subscription);
    bulk_batch *b = &q->batch;
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4096;
        b->rows = xrealloc(b->rows, b->cap * sizeof *b->rows);
    }
    bulk_row *row = &b->rows[b->n];
    row->seq = b->n++;
    const char *v[F_COUNT] = {r->email,    r->name ? r->name : "", r->attribs ? r->attribs : "{}",
                              r->timezone, r->locale,             r->status,
                              subscription};
    for (int f = 0; f < F_COUNT; f++) {
        row->len[f] = v[f] ? (int)strlen(v[f]) : 0;
        row->off[f] = batch_str(b, v[f], (size_t)row->len[f]);
    }
    row->key = 0;
    for (int i = 0; i < 8; i++)
        row->key = row->key << 8 | (i < row->len[F_EMAIL] ? (unsigned char)r->email[i] : 0);
    return TD_OK;
}

/* The text of the batch being sorted: qsort has no context argument. */
static _Thread_local const char *sort_text;

static int row_cmp(const void *a, const void *b)
{
    const bulk_row *x = *(const bulk_row *const *)a, *y = *(const bulk_row *const *)b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    int c = strcmp(sort_text + x->off[F_EMAIL], sort_text + y->off[F_EMAIL]);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static const char *row_str(const bulk_batch *b, size_t off)
{
    return off == NONE ? NULL : b->text + off;
}

static void bind_pos(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_pos_id(sqlite3_stmt *st, int i, int64_t v)
{
    if (v)
        sqlite3_bind_int64(st, i, v);
    else
        sqlite3_bind_null(st, i);
}

static bool col_eq(sqlite3_stmt *st, int i, const char *v)
{
    const char *c = (const char *)sqlite3_column_text(st, i);
    if (!c || !v)
        return !c && !v;
    return !strcmp(c, v);
}

enum bulk_act { ACT_NEW, ACT_SAME, ACT_CHANGE, ACT_BLOCK };

/* row_bind binds field f of a row, NULL when absent. */
static void row_bind(sqlite3_stmt *st, int at, const bulk_batch *b, const bulk_row *r, int f)
{
    if (r->off[f] == NONE)
        sqlite3_bind_null(st, at);
    else
        sqlite3_bind_text(st, at, b->text + r->off[f], r->len[f], SQLITE_STATIC);
}

/* new_status is the status of a subscriber a row creates. */
static const char *new_status(const sq *q, const bulk_batch *b, const bulk_row *r)
{
    const char *st = row_str(b, r->off[F_STATUS]);
    return q->bulk.mode == SUB_MODE_BLOCKLIST || (st && !strcmp(st, "blocklisted"))
               ? "blocklisted"
               : "enabled";
}

/* decide sets r->act and r->block for a row whose subscriber exists, from
 * the Q_BULK_FIND row in st. A row blocklists in blocklist mode or when its
 * status column says so; no import lifts a blocklisting. */
static void decide(const sq *q, const bulk_batch *b, bulk_row *r, sqlite3_stmt *st)
{
    r->id = sqlite3_column_int64(st, 0);
    r->block = !strcmp(new_status(q, b, r), "blocklisted") && !col_eq(st, 5, "blocklisted");
    const char *tz = row_str(b, r->off[F_TZ]), *locale = row_str(b, r->off[F_LOCALE]);
    if (q->bulk.mode == SUB_MODE_UPSERT &&
        (r->block || !col_eq(st, 1, row_str(b, r->off[F_NAME])) ||
         !col_eq(st, 2, row_str(b, r->off[F_ATTRIBS])) || (tz && !col_eq(st, 3, tz)) ||
         (locale && !col_eq(st, 4, locale))))
        r->act = ACT_CHANGE;
    else
        r->act = r->block ? ACT_BLOCK : ACT_SAME;
}

/* apply_existing runs the update decide chose, counting it. */
static int apply_existing(sq *q, const bulk_batch *b, const bulk_row *r, int64_t now,
                          bulk_stats *bs, td_error *e)
{
    if (r->act == ACT_SAME) {
        bs->unchanged++;
        return TD_OK;
    }
    sqlite3_stmt *st = stmt(q, r->act == ACT_CHANGE ? Q_BULK_UPDATE : Q_BULK_BLOCK, e);
    if (!st)
        return TD_EDB;
    int p = 1;
    if (r->act == ACT_CHANGE) {
        row_bind(st, p++, b, r, F_NAME);
        row_bind(st, p++, b, r, F_ATTRIBS);
        row_bind(st, p++, b, r, F_TZ);
        row_bind(st, p++, b, r, F_LOCALE);
        bind_pos(st, p++, r->block ? "blocklisted" : NULL);
    }
    sqlite3_bind_int64(st, p++, now);
    sqlite3_bind_int64(st, p, r->id);
    int rc = step_exec(q, st, e, "updating a subscriber");
    sqlite3_reset(st);
    if (!rc)
        bs->updated++;
    return rc;
}

/* bulk_row_run writes one row: finds the subscriber by email; inserts,
 * updates or leaves it by the session's mode; then adds the membership. */
static int bulk_row_run(sq *q, const bulk_batch *b, bulk_row *row, int64_t now,
                        bulk_stats *bs, td_error *e)
{
    sqlite3_stmt *st = stmt(q, Q_BULK_FIND, e);
    if (!st)
        return TD_EDB;
    row_bind(st, 1, b, row, F_EMAIL);
    int rc = sqlite3_step(st);
    int64_t id = 0;
    if (rc == SQLITE_ROW) {
        decide(q, b, row, st);
        id = row->id;
    } else if (rc != SQLITE_DONE) {
        rc = sq_fail(q, rc, e, "looking up a subscriber");
        sqlite3_reset(st);
        return rc;
    }
    sqlite3_reset(st);

    if (!id) {
        if (!(st = stmt(q, Q_BULK_INSERT, e)))
            return TD_EDB;
        row_bind(st, 1, b, row, F_EMAIL);
        row_bind(st, 2, b, row, F_NAME);
        row_bind(st, 3, b, row, F_ATTRIBS);
        sqlite3_bind_text(st, 4, new_status(q, b, row), -1, SQLITE_STATIC);
        bind_pos_id(st, 5, q->bulk.owner_id);
        bind_pos_id(st, 6, q->bulk.team_id);
        row_bind(st, 7, b, row, F_TZ);
        row_bind(st, 8, b, row, F_LOCALE);
        sqlite3_bind_int64(st, 9, now);
        rc = step_exec(q, st, e, "adding a subscriber");
        sqlite3_reset(st);
        if (rc)
            return rc;
        id = sqlite3_last_insert_rowid(q->db);
        bs->created++;
    } else if ((rc = apply_existing(q, b, row, now, bs, e))) {
        return rc;
    }

    if (!(st = stmt(q, Q_BULK_MEMBER, e)))
        return TD_EDB;
    const char *status = row_str(b, row->off[F_SUBSCRIPTION]);
    sqlite3_bind_int64(st, 1, q->bulk.list_id);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_text(st, 3, status ? status : q->bulk.default_status, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    rc = step_exec(q, st, e, "adding a list membership");
    sqlite3_reset(st);
    if (rc)
        return rc;
    bs->memberships += (uint64_t)sqlite3_changes(q->db);
    return TD_OK;
}

/* ---- bulk import, many rows per statement ---- *
 *
 * A statement per row costs as much in sqlite3_step/reset and cursor set-up as
 * the row's own B-tree work, so the flush inserts subscribers and adds
 * memberships BULK_K rows at a time with generated statements (named
 * parameters :id0, :email0, ...). Lookups stay one per row: an IN list of
 * BULK_K values was measured no cheaper (SQLite builds a temporary index for
 * it). Rows of the same email after the first, and the rare updates, go
 * through bulk_row_run one by one. */

#define BULK_K 64


static char *multi_sql(enum multi_kind kind, int k)
{
    buf b;
    buf_init(&b, BUF_NOCAP);
    switch (kind) {
    case MULTI_INSERT:
        buf_puts(&b, "INSERT INTO subscribers (id, email, name, attribs, status, owner_id, team_id,"
                     " timezone, locale, created_at, updated_at) VALUES ");
        for (int i = 0; i < k; i++)
            buf_printf(&b,
                       "%s(:id%d, :email%d, :name%d, :attribs%d, :status%d, :owner_id,"
                       " :team_id, :tz%d, :locale%d, :now, :now)",
                       i ? ", " : "", i, i, i, i, i, i, i);
        /* Existing addresses are left alone here; RETURNING names the rows
         * that went in, and only the others are looked up. */
        buf_puts(&b, " ON CONFLICT (email) DO NOTHING RETURNING id");
        break;
    case MULTI_MEMBER:
        buf_puts(&b, "INSERT INTO memberships (list_id, subscriber_id, status, created_at,"
                     " confirmed_at, unsubscribed_at) VALUES ");
        for (int i = 0; i < k; i++)
            buf_printf(&b,
                       "%s(:list_id, :sub%d, :st%d, :now, CASE WHEN :st%d = 'confirmed' THEN :now"
                       " END, CASE WHEN :st%d = 'unsubscribed' THEN :now END)",
                       i ? ", " : "", i, i, i, i);
        buf_puts(&b, " ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = 'unsubscribed',"
                     " unsubscribed_at = excluded.created_at WHERE excluded.status = 'unsubscribed'"
                     " AND memberships.status <> 'unsubscribed'");
        break;
    }
    char *sql = buf_steal(&b);
    buf_free(&b);
    return sql;
}

/* A bulk statement for k rows, with the position of each row's parameters
 * (looked up once: sqlite3_bind_parameter_index is a linear search). */
#define MULTI_FIELDS 7
struct multi {
    sqlite3_stmt *st;
    int k;
    int pos[BULK_K][MULTI_FIELDS];
};

static const char *const multi_fields[MULTI_KINDS][MULTI_FIELDS] = {
    [MULTI_INSERT] = {":id%d", ":email%d", ":name%d", ":attribs%d", ":tz%d", ":locale%d",
                      ":status%d"},
    [MULTI_MEMBER] = {":sub%d", ":st%d"},
};

static void multi_free(struct multi *m)
{
    if (m) {
        sqlite3_finalize(m->st);
        free(m);
    }
}

/* multi_get returns the statement for k rows: kept for k == BULK_K, made
 * afresh for the shorter last chunk (multi_put frees it then). */
static struct multi *multi_get(sq *q, enum multi_kind kind, int k, td_error *e)
{
    if (k == BULK_K && q->multi[kind]) {
        sqlite3_reset(q->multi[kind]->st);
        return q->multi[kind];
    }
    char *sql = multi_sql(kind, k);
    struct multi *m = xcalloc(1, sizeof *m);
    m->k = k;
    int rc = sqlite3_prepare_v3(q->db, sql, -1, k == BULK_K ? SQLITE_PREPARE_PERSISTENT : 0,
                                &m->st, NULL);
    free(sql);
    if (rc != SQLITE_OK) {
        sq_fail(q, rc, e, "preparing a bulk query");
        multi_free(m);
        return NULL;
    }
    for (int i = 0; i < k; i++)
        for (int f = 0; f < MULTI_FIELDS && multi_fields[kind][f]; f++) {
            char name[32];
            snprintf(name, sizeof name, multi_fields[kind][f], i);
            m->pos[i][f] = sqlite3_bind_parameter_index(m->st, name);
        }
    if (k == BULK_K)
        q->multi[kind] = m;
    return m;
}

static void multi_put(sq *q, struct multi *m)
{
    for (int i = 0; i < MULTI_KINDS; i++)
        if (m == q->multi[i]) {
            sqlite3_reset(m->st);
            return;
        }
    multi_free(m);
}

static void bind_at(sqlite3_stmt *st, int at, const char *v)
{
    if (at > 0)
        v ? sqlite3_bind_text(st, at, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, at);
}

static void bind_named_int(sqlite3_stmt *st, const char *name, int64_t v, bool zero_is_null)
{
    int at = sqlite3_bind_parameter_index(st, name);
    if (at > 0)
        zero_is_null && !v ? sqlite3_bind_null(st, at) : sqlite3_bind_int64(st, at, v);
}

/* bulk_find looks up k rows (distinct emails, sorted) and sets their id and
 * act from what the database holds. */
static int bulk_find(sq *q, const bulk_batch *b, bulk_row **rows, int k, td_error *e)
{
    sqlite3_stmt *st = stmt(q, Q_BULK_FIND, e);
    if (!st)
        return TD_EDB;
    for (int i = 0; i < k; i++) {
        bulk_row *r = rows[i];
        r->id = 0;
        r->act = ACT_NEW;
        row_bind(st, 1, b, r, F_EMAIL);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            decide(q, b, r, st);
        } else if (rc != SQLITE_DONE) {
            rc = sq_fail(q, rc, e, "looking up a subscriber");
            sqlite3_reset(st);
            return rc;
        }
        sqlite3_reset(st);
    }
    return TD_OK;
}

static int bulk_insert(sq *q, const bulk_batch *b, bulk_row **rows, int k, int64_t now,
                       td_error *e)
{
    struct multi *m = multi_get(q, MULTI_INSERT, k, e);
    if (!m)
        return TD_EDB;
    sqlite3_stmt *st = m->st;
    bind_named_int(st, ":owner_id", q->bulk.owner_id, true);
    bind_named_int(st, ":team_id", q->bulk.team_id, true);
    bind_named_int(st, ":now", now, false);
    for (int i = 0; i < k; i++) {
        const bulk_row *r = rows[i];
        sqlite3_bind_int64(st, m->pos[i][0], r->id);
        for (int f = F_EMAIL; f <= F_LOCALE; f++)
            row_bind(st, m->pos[i][1 + f], b, r, f);
        bind_at(st, m->pos[i][6], new_status(q, b, r));
    }
    /* The chunk's ids are consecutive: a returned id names its row. */
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t at = sqlite3_column_int64(st, 0) - rows[0]->id;
        if (at >= 0 && at < k)
            rows[at]->act = ACT_NEW;
    }
    rc = rc == SQLITE_DONE ? TD_OK : sq_fail(q, rc, e, "adding subscribers");
    multi_put(q, m);
    return rc;
}

static int bulk_members(sq *q, const bulk_batch *b, bulk_row **rows, int k, int64_t now,
                        uint64_t *added, td_error *e)
{
    struct multi *m = multi_get(q, MULTI_MEMBER, k, e);
    if (!m)
        return TD_EDB;
    sqlite3_stmt *st = m->st;
    bind_named_int(st, ":list_id", q->bulk.list_id, false);
    bind_named_int(st, ":now", now, false);
    for (int i = 0; i < k; i++) {
        sqlite3_bind_int64(st, m->pos[i][0], rows[i]->id);
        const char *status = row_str(b, rows[i]->off[F_SUBSCRIPTION]);
        bind_at(st, m->pos[i][1], status ? status : q->bulk.default_status);
    }
    int rc = step_exec(q, st, e, "adding list memberships");
    if (!rc)
        *added += (uint64_t)sqlite3_changes(q->db);
    multi_put(q, m);
    return rc;
}

/* bulk_write writes a batch, sorted by email in ord, inside the open
 * transaction. */
static int bulk_write(sq *q, bulk_batch *b, bulk_row **ord, int64_t now, bulk_stats *bs,
                      td_error *e)
{
    /* The rows that start a run of one email, in email order. */
    bulk_row **first = xmalloc(b->n * sizeof *first);
    size_t nfirst = 0;
    for (size_t i = 0; i < b->n; i++) {
        bulk_row *r = ord[i];
        r->dup = i > 0 && r->key == ord[i - 1]->key &&
                 !strcmp(row_str(b, r->off[F_EMAIL]), row_str(b, ord[i - 1]->off[F_EMAIL]));
        if (!r->dup)
            first[nfirst++] = r;
    }
    int rc = TD_OK;
    /* Every row is first offered as a new subscriber, with the next ids in
     * email order (this transaction holds the write lock, so nothing else
     * takes them meanwhile); those whose address exists are then looked up
     * and updated as the mode says. A fresh import so costs one statement
     * per 64 rows instead of a lookup per row. */
    int64_t next = 0;
    sqlite3_stmt *mx = stmt(q, Q_BULK_MAXID, e);
    if (!mx)
        rc = TD_EDB;
    else if (sqlite3_step(mx) == SQLITE_ROW)
        next = sqlite3_column_int64(mx, 0) + 1;
    else
        rc = sq_fail(q, sqlite3_errcode(q->db), e, "reading the last subscriber id");
    if (mx)
        sqlite3_reset(mx);
    for (size_t i = 0; i < nfirst; i++) {
        first[i]->id = next++;
        first[i]->act = ACT_SAME; /* until the insert returns it */
    }
    for (size_t i = 0; !rc && i < nfirst; i += BULK_K)
        rc = bulk_insert(q, b, first + i, (int)(nfirst - i < BULK_K ? nfirst - i : BULK_K), now, e);
    bulk_row **old = xmalloc((nfirst ? nfirst : 1) * sizeof *old);
    size_t nold = 0;
    for (size_t i = 0; !rc && i < nfirst; i++) {
        if (first[i]->act == ACT_NEW)
            bs->created++;
        else
            old[nold++] = first[i];
    }
    for (size_t i = 0; !rc && i < nold; i += BULK_K)
        rc = bulk_find(q, b, old + i, (int)(nold - i < BULK_K ? nold - i : BULK_K), e);
    for (size_t i = 0; !rc && i < nold; i++) {
        if (old[i]->act == ACT_NEW) /* refused by the insert, yet not there */
            rc = td_err_set(e, TD_EINTERNAL, "adding %s: the address is neither new nor stored",
                            row_str(b, old[i]->off[F_EMAIL]));
        else
            rc = apply_existing(q, b, old[i], now, bs, e);
    }
    free(old);
    for (size_t i = 0; !rc && i < nfirst; i += BULK_K)
        rc = bulk_members(q, b, first + i, (int)(nfirst - i < BULK_K ? nfirst - i : BULK_K), now,
                          &bs->memberships, e);
    /* Later rows of an email, in file order: each sees the one before. */
    for (size_t i = 0; !rc && i < b->n; i++)
        if (ord[i]->dup)
            rc = bulk_row_run(q, b, ord[i], now, bs, e);
    free(first);
    return rc;
}

/* batch_sort fills b->ord with the rows sorted by email (then file order).
 * Through pointers: a row is ~100 bytes, and a sort moves what it sorts many
 * times over. Called in the caller's thread, so the sort (a fifth of the
 * writer's time when it sorted) overlaps the writing of the batch before. */
static void batch_sort(bulk_batch *b)
{
    if (b->n == 0)
        return; /* qsort's array may not be NULL, even for no elements */
    if (b->ord_cap < b->n) {
        b->ord_cap = b->cap;
        b->ord = xrealloc(b->ord, b->ord_cap * sizeof *b->ord);
    }
    for (size_t i = 0; i < b->n; i++)
        b->ord[i] = &b->rows[i];
    sort_text = b->text;
    qsort(b->ord, b->n, sizeof *b->ord, row_cmp);
    sort_text = NULL;
}

/* batch_layout copies batch src into dst (emptied first) in src's sorted
 * order, rows and strings alike, so the writer walks memory in order:
 * following src's pointers into its unsorted arrays cost the writer a cache
 * miss per row (8% of its time, measured with perf). */
static void batch_layout(bulk_batch *dst, const bulk_batch *src)
{
    if (dst->cap < src->n) {
        dst->cap = src->cap;
        dst->rows = xrealloc(dst->rows, dst->cap * sizeof *dst->rows);
    }
    if (dst->ord_cap < src->n) {
        dst->ord_cap = src->cap;
        dst->ord = xrealloc(dst->ord, dst->ord_cap * sizeof *dst->ord);
    }
    if (dst->text_cap < src->len) {
        dst->text_cap = src->text_cap;
        dst->text = xrealloc(dst->text, dst->text_cap);
    }
    size_t at = 0;
    for (size_t i = 0; i < src->n; i++) {
        bulk_row *r = &dst->rows[i];
        *r = *src->ord[i];
        for (int f = 0; f < F_COUNT; f++) {
            if (r->off[f] == NONE)
                continue;
            size_t l = (size_t)r->len[f] + 1;
            memcpy(dst->text + at, src->text + r->off[f], l);
            r->off[f] = at;
            at += l;
        }
        dst->ord[i] = r;
    }
    dst->n = src->n;
    dst->len = at;
}

/* batch_commit writes batch b (sorted by batch_sort) in one transaction and
 * empties it; adds its counts to *bs when it committed. */
static int batch_commit(sq *q, bulk_batch *b, bulk_stats *bs, td_error *e)
{
    store *s = &q->base;
    if (b->n == 0)
        return TD_OK;
    bulk_row **ord = b->ord;
    /* One transaction per batch: a crash leaves whole batches or nothing,
     * and the counts are added only once the batch is committed. */
    bulk_stats part = {0};
    /* The CHECK constraints are not evaluated for bulk rows: every value
     * was checked in C before it was added (addresses, UTF-8, the JSON of
     * the attributes, enumerated statuses: audience/import), and
     * json_valid() alone was 14% of a bulk write. Every other write path
     * keeps them. */
    sqlite3_exec(q->db, "PRAGMA ignore_check_constraints = ON", NULL, NULL, NULL);
    /* Nor are the foreign keys checked row by row (13% of a bulk write):
     * they hold by construction. The list, owner and team are checked once
     * inside the batch's transaction, which holds the write lock, so none
     * can be deleted before it commits; every subscriber id a membership
     * names was read or inserted in that same transaction. (The pragma
     * cannot change inside a transaction, hence before BEGIN.) */
    sqlite3_exec(q->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL);
    int rc = sq_begin(s, e);
    if (!rc) {
        sqlite3_stmt *st = stmt(q, Q_BULK_REFS, e);
        if (!st)
            rc = TD_EDB;
        else {
            bind_int(st, ":list_id", q->bulk.list_id);
            bind_id(st, ":owner_id", q->bulk.owner_id);
            bind_id(st, ":team_id", q->bulk.team_id);
            int r = sqlite3_step(st);
            if (r != SQLITE_ROW)
                rc = sq_fail(q, r, e, "checking the import's list");
            else if (!sqlite3_column_int(st, 0))
                rc = td_err_set(e, TD_ENOTFOUND,
                                "the list, its owner or its team was deleted during the import");
            done(st);
        }
    }
    if (!rc)
        rc = bulk_write(q, b, ord, (int64_t)time(NULL), &part, e);
    if (!rc)
        rc = sq_commit(s, e);
    if (rc)
        sq_rollback(s);
    sqlite3_exec(q->db, "PRAGMA ignore_check_constraints = OFF", NULL, NULL, NULL);
    sqlite3_exec(q->db, "PRAGMA foreign_keys = ON", NULL, NULL, NULL);
    if (!rc) {
        bs->created += part.created;
        bs->updated += part.updated;
        bs->unchanged += part.unchanged;
        bs->memberships += part.memberships;
    }
    b->n = b->len = 0;
    return rc;
}

static void *writer_main(void *arg)
{
    sq *q = arg;
    q->wrc = batch_commit(q, &q->wbatch, &q->wstats, &q->werr);
    return NULL;
}

/* writer_wait waits for the background batch, if any; adds its counts. */
static int writer_wait(sq *q, bulk_stats *bs, td_error *e)
{
    if (!q->writing)
        return TD_OK;
    pthread_join(q->writer, NULL);
    q->writing = false;
    if (q->wrc) {
        if (e)
            *e = q->werr;
        return q->wrc;
    }
    bs->created += q->wstats.created;
    bs->updated += q->wstats.updated;
    bs->unchanged += q->wstats.unchanged;
    bs->memberships += q->wstats.memberships;
    return TD_OK;
}

static int sq_bulk_flush(store *s, bulk_stats *bs, td_error *e)
{
    sq *q = (sq *)s;
    if (!q->bulk_open)
        return td_err_set(e, TD_EINTERNAL, "no bulk import is open");
    batch_sort(&q->batch);
    if (!q->bulk.background)
        return batch_commit(q, &q->batch, bs, e);
    int rc = writer_wait(q, bs, e);
    if (rc || q->batch.n == 0) {
        q->batch.n = q->batch.len = 0;
        return rc;
    }
    /* Hand a sorted copy of the batch to a writer; refill this one. */
    batch_layout(&q->wbatch, &q->batch);
    q->batch.n = q->batch.len = 0;
    memset(&q->wstats, 0, sizeof q->wstats);
    q->wrc = 0;
    if (pthread_create(&q->writer, NULL, writer_main, q) != 0) {
        /* No thread: write it here. */
        return batch_commit(q, &q->wbatch, bs, e);
    }
    q->writing = true;
    return TD_OK;
}

static int sq_bulk_wait(store *s, bulk_stats *bs, td_error *e)
{
    return writer_wait((sq *)s, bs, e);
}

static void sq_bulk_end(store *s)
{
    sq *q = (sq *)s;
    if (!q->bulk_open)
        return;
    bulk_stats ignored = {0};
    writer_wait(q, &ignored, NULL);
    q->batch.n = q->batch.len = 0;
    q->bulk_open = false;
}

/* ---- suppressions, audit, counts ----------------------------------------------------- */

static int sq_suppress_add(store *s, const char *address, const char *reason, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUPPRESS_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":address", address);
    bind_text(st, ":reason", reason);
    bind_now(st);
    int rc = step_exec(q, st, e, "suppressing the address");
    done(st);
    return rc;
}

static int sq_suppress_check(store *s, const char *address, bool *yes, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUPPRESS_CHECK, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":address", address);
    int rc = sqlite3_step(st), res = TD_OK;
    *yes = rc == SQLITE_ROW;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, "checking the suppression list");
    done(st);
    return res;
}

static int sq_event_add(store *s, const event_rec *ev, size_t n, td_error *e)
{
    sq *q = (sq *)s;
    int rc = TD_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        if (!model_event_kind_ok(ev[i].kind))
            return td_err_set(e, TD_EINVAL, "'%s' is not an event kind", ev[i].kind ? ev[i].kind : "");
        sqlite3_stmt *st = stmt(q, Q_EVENT_ADD, e);
        if (!st)
            return TD_EDB;
        bind_text(st, ":kind", ev[i].kind);
        bind_id(st, ":campaign_id", ev[i].campaign_id);
        bind_id(st, ":subscriber_id", ev[i].subscriber_id);
        bind_id(st, ":list_id", ev[i].list_id);
        bind_text(st, ":data", ev[i].data);
        bind_int(st, ":at", ev[i].at ? ev[i].at : (int64_t)time(NULL));
        rc = step_exec(q, st, e, "storing an event");
        done(st);
    }
    return rc;
}

static int sq_unsubscribe(store *s, int64_t sub_id, int64_t list_id, int64_t campaign_id,
                          int64_t now, uint64_t *n, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_UNSUBSCRIBE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":sub_id", sub_id);
    bind_int(st, ":list_id", list_id);
    bind_int(st, ":campaign_id", campaign_id);
    bind_int(st, ":now", now);
    int rc = step_exec(q, st, e, "unsubscribing");
    if (!rc && n)
        *n = (uint64_t)sqlite3_changes(q->db);
    done(st);
    return rc;
}

static int sq_member_confirm(store *s, int64_t list_id, int64_t sub_id, int64_t now,
                             bool *changed, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MEMBER_CONFIRM, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":list_id", list_id);
    bind_int(st, ":sub_id", sub_id);
    bind_int(st, ":now", now);
    int rc = step_exec(q, st, e, "confirming the subscription");
    if (changed)
        *changed = !rc && sqlite3_changes(q->db) > 0;
    done(st);
    return rc;
}

static int sq_audit_add(store *s, const audit_rec *a, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_AUDIT_ADD, e);
    if (!st)
        return TD_EDB;
    bind_id(st, ":actor_id", a->actor_id);
    bind_text(st, ":actor", a->actor ? a->actor : "system");
    bind_text(st, ":action", a->action);
    bind_text(st, ":object_type", a->object_type);
    bind_id(st, ":object_id", a->object_id);
    bind_text(st, ":detail", a->detail);
    bind_now(st);
    int rc = step_exec(q, st, e, "writing the audit log");
    done(st);
    return rc;
}

static int sq_counts(store *s, store_counts *c, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_COUNTS, e);
    if (!st)
        return TD_EDB;
    int rc = sqlite3_step(st), res = TD_OK;
    if (rc == SQLITE_ROW) {
        c->teams = sqlite3_column_int64(st, 0);
        c->users = sqlite3_column_int64(st, 1);
        c->lists = sqlite3_column_int64(st, 2);
        c->subscribers = sqlite3_column_int64(st, 3);
        c->memberships = sqlite3_column_int64(st, 4);
        c->suppressions = sqlite3_column_int64(st, 5);
        c->audit = sqlite3_column_int64(st, 6);
    } else {
        res = sq_fail(q, rc, e, "counting");
    }
    done(st);
    return res;
}

/* ---- DKIM keys ---------------------------------------------------------------- */

static void fill_dkim_key(sqlite3_stmt *st, void *p)
{
    dkim_key_rec *k = p;
    k->id = sqlite3_column_int64(st, 0);
    k->domain = col_str(st, 1);
    k->selector = col_str(st, 2);
    k->algo = col_str(st, 3);
    k->private_key = col_str(st, 4);
    k->created_at = sqlite3_column_int64(st, 5);
}

static void clear_dkim_key(void *p) { dkim_key_rec_clear(p); }

static int sq_dkim_key_add(store *s, const dkim_key_rec *k, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DKIM_KEY_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":domain", k->domain);
    bind_text(st, ":selector", k->selector);
    bind_text(st, ":algo", k->algo);
    bind_text(st, ":private_key", k->private_key);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the DKIM key");
}

static int sq_dkim_key_each(store *s, const char *domain, dkim_key_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DKIM_KEY_EACH, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":domain", domain);
    dkim_key_rec k = {0};
    return each_row(q, st, fill_dkim_key, clear_dkim_key, &k,
                    (int (*)(void *, const void *))cb, ud, e, "listing DKIM keys");
}

/* ---- content blocks ------------------------------------------------------------ */

static void fill_block(sqlite3_stmt *st, void *p)
{
    block_rec *b = p;
    b->id = sqlite3_column_int64(st, 0);
    b->kind = col_str(st, 1);
    b->name = col_str(st, 2);
    b->title = col_str(st, 3);
    b->body = col_str(st, 4);
    b->data = col_str(st, 5);
    b->team_id = sqlite3_column_int64(st, 6);
    b->created_at = sqlite3_column_int64(st, 7);
    b->updated_at = sqlite3_column_int64(st, 8);
    b->owner_id = sqlite3_column_int64(st, 9);
}

static void clear_block(void *p) { block_rec_clear(p); }

/* block_data checks that data[0..n) is one JSON object and writes its
 * canonical form to out (capped at BLOCK_MAX_DATA). */
static int block_data(const char *data, size_t n, buf *out, td_error *e)
{
    if (n > BLOCK_MAX_DATA)
        return td_err_set(e, TD_ETOOBIG, "the block's data is larger than %u bytes",
                          (unsigned)BLOCK_MAX_DATA);
    json_error_t je;
    json_t *v = json_loadb(data, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!v) {
        /* jansson quotes the bad token, which is the caller's input: keep
         * the message on one line */
        for (char *p = je.text; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
        return td_err_set(e, TD_EINVAL, "the block's data is not JSON: line %d, column %d: %s",
                          je.line, je.column, je.text);
    }
    int rc = TD_OK;
    if (!json_is_object(v))
        rc = td_err_set(e, TD_EINVAL, "the block's data must be a JSON object ({...})");
    else if (jsonstr_value(out, v))
        rc = td_err_set(e, TD_ETOOBIG, "the block's data is larger than %u bytes",
                        (unsigned)BLOCK_MAX_DATA);
    json_decref(v);
    return rc;
}

/* block_check refuses what the schema would, with a message that says
 * which field and why (the CHECKs would only say "constraint failed"). */
static int block_check(const block_rec *b, td_error *e)
{
    if (!model_block_kind_ok(b->kind))
        return td_err_set(e, TD_EINVAL, "a block's kind is article or product");
    if (!model_block_name_ok(b->name))
        return td_err_set(e, TD_EINVAL, "a block's name is 1 to %d of a-z, 0-9 and '-'",
                          BLOCK_MAX_NAME);
    if (!b->title || !*b->title)
        return td_err_set(e, TD_EINVAL, "the block has no title");
    size_t n = strlen(b->title), bad;
    if (n > BLOCK_MAX_TITLE)
        return td_err_set(e, TD_ETOOBIG, "the block's title is longer than %d bytes",
                          BLOCK_MAX_TITLE);
    if (!utf8_valid(b->title, n, NULL) || utf8_has_ctl(b->title, n))
        return td_err_set(e, TD_EINVAL, "the block's title must be one line of UTF-8 text");
    if (!b->body)
        return td_err_set(e, TD_EINVAL, "the block has no body");
    n = strlen(b->body);
    if (n > BLOCK_MAX_BODY)
        return td_err_set(e, TD_ETOOBIG, "the block's body is larger than %u bytes",
                          (unsigned)BLOCK_MAX_BODY);
    if (!utf8_valid(b->body, n, &bad))
        return td_err_set(e, TD_EINVAL, "the block's body is not UTF-8 (byte %zu)", bad);
    return TD_OK;
}

static int sq_block_put(store *s, const block_rec *b, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    buf data;
    buf_init(&data, BLOCK_MAX_DATA);
    const char *raw = b->data ? b->data : "{}";
    int rc = block_check(b, e);
    if (!rc)
        rc = block_data(raw, strlen(raw), &data, e);
    sqlite3_stmt *st = rc ? NULL : stmt(q, Q_BLOCK_PUT, e);
    if (!rc && !st)
        rc = TD_EDB;
    if (!rc) {
        bind_text(st, ":kind", b->kind);
        bind_text(st, ":name", b->name);
        bind_text(st, ":title", b->title);
        bind_text(st, ":body", b->body);
        bind_text(st, ":data", data.data);
        bind_id(st, ":team_id", b->team_id);
        bind_id(st, ":owner_id", b->owner_id);
        bind_now(st);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            if (id)
                *id = sqlite3_column_int64(st, 0);
        } else {
            rc = sq_fail(q, r, e, "saving the block");
        }
        done(st);
    }
    buf_free(&data);
    return rc;
}

static int sq_block_get(store *s, const char *name, block_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_BLOCK_GET, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":name", name);
    return select_one(q, st, fill_block, out, e, "block");
}

static int sq_block_each(store *s, const char *kind, block_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_BLOCK_EACH, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":kind", kind);
    block_rec b = {0};
    return each_row(q, st, fill_block, clear_block, &b, (int (*)(void *, const void *))cb, ud,
                    e, "listing blocks");
}

static int sq_block_delete(store *s, const char *name, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_BLOCK_DELETE, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":name", name);
    int rc = step_exec(q, st, e, "deleting the block");
    done(st);
    if (!rc && sqlite3_changes(q->db) == 0)
        rc = td_err_set(e, TD_ENOTFOUND, "block: not found");
    return rc;
}

/* ---- relays ---------------------------------------------------------------------- */

static void fill_relay(sqlite3_stmt *st, void *p)
{
    relay_rec *r = p;
    r->id = sqlite3_column_int64(st, 0);
    r->url = col_str(st, 1);
    r->max_conns = sqlite3_column_int(st, 2);
    r->rate = sqlite3_column_double(st, 3);
    r->created_at = sqlite3_column_int64(st, 4);
}

static void clear_relay(void *p) { relay_rec_clear(p); }

static int sq_relay_add(store *s, const relay_rec *r, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_RELAY_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":url", r->url);
    bind_int(st, ":max_conns", r->max_conns);
    int at = sqlite3_bind_parameter_index(st, ":rate");
    sqlite3_bind_double(st, at, r->rate);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the relay");
}

static int sq_relay_each(store *s, relay_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_RELAY_EACH, e);
    if (!st)
        return TD_EDB;
    relay_rec r = {0};
    return each_row(q, st, fill_relay, clear_relay, &r, (int (*)(void *, const void *))cb, ud, e,
                    "listing relays");
}

static int sq_relay_delete(store *s, int64_t id, td_error *e)
{
    return delete_by_id(s, Q_RELAY_DELETE, id, e, "deleting the relay");
}

/* ---- campaigns --------------------------------------------------------------------- */

static void fill_campaign(sqlite3_stmt *st, void *p)
{
    campaign_rec *c = p;
    c->id = sqlite3_column_int64(st, 0);
    c->name = col_str(st, 1);
    c->subject = col_str(st, 2);
    c->from = col_str(st, 3);
    c->reply_to = col_str(st, 4);
    c->html = col_str(st, 5);
    c->text = col_str(st, 6);
    c->state = col_str(st, 7);
    c->send_at = sqlite3_column_int64(st, 8);
    c->timezone = col_str(st, 9);
    c->team_id = sqlite3_column_int64(st, 10);
    c->owner_id = sqlite3_column_int64(st, 11);
    c->created_at = sqlite3_column_int64(st, 12);
    c->updated_at = sqlite3_column_int64(st, 13);
    c->started_at = sqlite3_column_int64(st, 14);
    c->finished_at = sqlite3_column_int64(st, 15);
    c->no_track_opens = sqlite3_column_int(st, 16) == 0;
    c->no_track_clicks = sqlite3_column_int(st, 17) == 0;
}

static void clear_campaign(void *p) { campaign_rec_clear(p); }

static int sq_campaign_add(store *s, const campaign_rec *c, const int64_t *list_ids,
                           size_t nlists, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    int rc = sq_begin(s, e);
    if (rc)
        return rc;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_ADD, e);
    if (!st) {
        sq_rollback(s);
        return TD_EDB;
    }
    bind_text(st, ":name", c->name);
    bind_text(st, ":subject", c->subject);
    bind_text(st, ":from", c->from);
    bind_text(st, ":reply_to", c->reply_to);
    bind_text(st, ":html", c->html);
    bind_text(st, ":text", c->text);
    bind_text(st, ":state", c->state ? c->state : "draft");
    bind_id(st, ":send_at", c->send_at);
    bind_text(st, ":timezone", c->timezone);
    bind_id(st, ":team_id", c->team_id);
    bind_id(st, ":owner_id", c->owner_id);
    bind_int(st, ":track_opens", !c->no_track_opens);
    bind_int(st, ":track_clicks", !c->no_track_clicks);
    bind_now(st);
    int64_t cid = 0;
    rc = insert_id(q, st, &cid, e, "adding the campaign");
    for (size_t i = 0; !rc && i < nlists; i++) {
        if (!(st = stmt(q, Q_CAMPAIGN_ADD_LIST, e))) {
            rc = TD_EDB;
            break;
        }
        bind_int(st, ":campaign_id", cid);
        bind_int(st, ":list_id", list_ids[i]);
        rc = step_exec(q, st, e, "adding the campaign's list");
        done(st);
        if (rc && e && strstr(e->msg, "FOREIGN KEY"))
            rc = td_err_set(e, TD_ENOTFOUND, "a list of the campaign does not exist");
    }
    if (!rc)
        rc = sq_commit(s, e);
    if (rc)
        sq_rollback(s);
    else if (id)
        *id = cid;
    return rc;
}

static int sq_campaign_get(store *s, int64_t id, campaign_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_GET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return select_one(q, st, fill_campaign, out, e, "campaign");
}

static int sq_campaign_each(store *s, campaign_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_EACH, e);
    if (!st)
        return TD_EDB;
    campaign_rec c = {0};
    return each_row(q, st, fill_campaign, clear_campaign, &c, (int (*)(void *, const void *))cb,
                    ud, e, "listing campaigns");
}

static int sq_campaign_list_names(store *s, int64_t id, name_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_LIST_NAMES, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    int rc, res = TD_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((res = cb(ud, (const char *)sqlite3_column_text(st, 0))))
            break;
    if (!res && rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, "listing the campaign's lists");
    done(st);
    return res;
}

static int sq_campaign_set_state(store *s, int64_t id, const char *from, const char *to,
                                 int64_t now, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_SET_STATE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    bind_text(st, ":from", from);
    bind_text(st, ":to", to);
    bind_int(st, ":now", now);
    int rc = step_exec(q, st, e, "changing the campaign's state");
    int changed = sqlite3_changes(q->db);
    done(st);
    if (rc || changed)
        return rc;
    campaign_rec c = {0};
    rc = sq_campaign_get(s, id, &c, e);
    if (!rc)
        rc = td_err_set(e, TD_EDENIED, "the campaign is %s now, not %s", c.state, from);
    campaign_rec_clear(&c);
    return rc;
}

static int sq_campaign_freeze(store *s, int64_t id, int64_t now, uint64_t *added, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_FREEZE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    bind_int(st, ":now", now);
    int rc = step_exec(q, st, e, "freezing the campaign's audience");
    if (!rc && added)
        *added = (uint64_t)sqlite3_changes(q->db);
    done(st);
    return rc;
}

static int sq_campaign_counts(store *s, int64_t id, campaign_counts *c, td_error *e)
{
    sq *q = (sq *)s;
    memset(c, 0, sizeof *c);
    sqlite3_stmt *st = stmt(q, id ? Q_CAMPAIGN_COUNTS : Q_DELIVERY_TOTALS, e);
    if (!st)
        return TD_EDB;
    if (id)
        bind_int(st, ":id", id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *status = (const char *)sqlite3_column_text(st, 0);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
        if (!status) { /* the campaign's total */
            c->total = n;
            continue;
        }
        if (!id)
            c->total += n;
        if (!strcmp(status, "queued"))
            c->queued = n;
        else if (!strcmp(status, "sending"))
            c->sending = n;
        else if (!strcmp(status, "sent"))
            c->sent = n;
        else if (!strcmp(status, "deferred"))
            c->deferred = n;
        else if (!strcmp(status, "failed"))
            c->failed = n;
    }
    int res = rc == SQLITE_DONE ? TD_OK : sq_fail(q, rc, e, "counting deliveries");
    done(st);
    if (id) /* sent rows are not in the work index: by difference */
        c->sent = c->total - c->queued - c->sending - c->deferred - c->failed;
    return res;
}

static void fill_delivery(sqlite3_stmt *st, void *p)
{
    delivery_rec *d = p;
    d->id = sqlite3_column_int64(st, 0);
    d->campaign_id = sqlite3_column_int64(st, 1);
    d->subscriber_id = sqlite3_column_int64(st, 2);
    d->email = col_str(st, 3);
    d->status = col_str(st, 4);
    d->attempts = sqlite3_column_int(st, 5);
    d->next_at = sqlite3_column_int64(st, 6);
    d->last_reply = col_str(st, 7);
    d->relay_id = sqlite3_column_int64(st, 8);
    d->message_id = col_str(st, 9);
    d->maybe_duplicate = sqlite3_column_int(st, 10) != 0;
    d->updated_at = sqlite3_column_int64(st, 11);
}

static void clear_delivery(void *p) { delivery_rec_clear(p); }

static int sq_delivery_each(store *s, int64_t campaign_id, const char *status, delivery_cb cb,
                            void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, status ? Q_DELIVERY_EACH_STATUS : Q_DELIVERY_EACH, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", campaign_id);
    if (status)
        bind_text(st, ":status", status);
    delivery_rec d = {0};
    return each_row(q, st, fill_delivery, clear_delivery, &d, (int (*)(void *, const void *))cb,
                    ud, e, "listing deliveries");
}

static int sq_delivery_due(store *s, int64_t campaign_id, int64_t now, unsigned limit,
                           due_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DELIVERY_DUE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", campaign_id);
    bind_int(st, ":now", now);
    bind_int(st, ":limit", limit);
    int rc, res = TD_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        due_rec r = {0};
        fill_delivery(st, &r.d);
        r.sub.id = r.d.subscriber_id;
        r.sub.email = xstrdup(r.d.email);
        r.sub.name = col_str(st, 12);
        r.sub.attribs = col_str(st, 13);
        r.sub.timezone = col_str(st, 14);
        r.sub.locale = col_str(st, 15);
        r.wanted = sqlite3_column_int(st, 16) != 0;
        res = cb(ud, &r);
        delivery_rec_clear(&r.d);
        sub_rec_clear(&r.sub);
        if (res)
            break;
    }
    if (!res && rc != SQLITE_DONE)
        res = sq_fail(q, rc, e, "reading due deliveries");
    done(st);
    return res;
}

static int sq_delivery_update(store *s, const delivery_rec *d, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, d->message_id ? Q_DELIVERY_UPDATE : Q_DELIVERY_RESULT, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", d->id);
    bind_text(st, ":status", d->status);
    bind_int(st, ":attempts", d->attempts);
    bind_int(st, ":next_at", d->next_at);
    bind_text(st, ":last_reply", d->last_reply);
    bind_id(st, ":relay_id", d->relay_id);
    if (d->message_id)
        bind_text(st, ":message_id", d->message_id);
    bind_int(st, ":maybe_dup", d->maybe_duplicate);
    bind_now(st);
    int rc = step_exec(q, st, e, "recording a delivery");
    done(st);
    return rc;
}

static int sq_delivery_requeue(store *s, int64_t campaign_id, const char *status, bool maybe_dup,
                               int64_t now, uint64_t *n, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DELIVERY_REQUEUE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", campaign_id);
    bind_text(st, ":status", status);
    bind_int(st, ":maybe_dup", maybe_dup);
    bind_int(st, ":now", now);
    int rc = step_exec(q, st, e, "requeueing deliveries");
    if (!rc && n)
        *n = (uint64_t)sqlite3_changes(q->db);
    done(st);
    return rc;
}

/* ---- inbound mail ----------------------------------------------------------- */

static int sq_event_counts(store *s, int64_t id, event_counts *c, td_error *e)
{
    sq *q = (sq *)s;
    memset(c, 0, sizeof *c);
    sqlite3_stmt *st = stmt(q, Q_EVENT_COUNTS, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *k = (const char *)sqlite3_column_text(st, 0);
        uint64_t n = (uint64_t)sqlite3_column_int64(st, 1);
        if (!k)
            continue;
        if (!strcmp(k, "open"))
            c->open = n;
        else if (!strcmp(k, "click"))
            c->click = n;
        else if (!strcmp(k, "unsubscribe"))
            c->unsubscribe = n;
        else if (!strcmp(k, "bounce"))
            c->bounce = n;
        else if (!strcmp(k, "complaint"))
            c->complaint = n;
        else if (!strcmp(k, "reply"))
            c->reply = n;
    }
    int res = rc == SQLITE_DONE ? TD_OK : sq_fail(q, rc, e, "counting events");
    done(st);
    return res;
}

static int sq_delivery_get(store *s, int64_t id, delivery_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DELIVERY_GET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return select_one(q, st, fill_delivery, out, e, "delivery");
}

static int sq_delivery_by_message_id(store *s, const char *mid, delivery_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DELIVERY_BY_MSGID, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":mid", mid);
    return select_one(q, st, fill_delivery, out, e, "delivery");
}

static int sq_delivery_of(store *s, int64_t campaign_id, int64_t sub_id, delivery_rec *out,
                          td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DELIVERY_OF, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", campaign_id);
    bind_int(st, ":sub_id", sub_id);
    return select_one(q, st, fill_delivery, out, e, "delivery");
}

static int sq_delivery_last_to(store *s, const char *email, delivery_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_DELIVERY_LAST_TO, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":email", email);
    return select_one(q, st, fill_delivery, out, e, "delivery");
}

static int sq_soft_bounce_add(store *s, const char *address, int64_t campaign_id, int64_t at,
                              int64_t *count, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SOFT_BOUNCE_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":address", address);
    bind_int(st, ":campaign_id", campaign_id);
    bind_int(st, ":at", at);
    int rc = step_exec(q, st, e, "counting a soft bounce");
    done(st);
    if (rc)
        return rc;
    if (!(st = stmt(q, Q_SOFT_BOUNCE_COUNT, e)))
        return TD_EDB;
    bind_text(st, ":address", address);
    rc = sqlite3_step(st);
    int res = TD_OK;
    if (rc == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        res = sq_fail(q, rc, e, "counting soft bounces");
    done(st);
    return res;
}

static int sq_inbound_find(store *s, const char *source, const char *key, bool *found, bool *keep,
                           td_error *e)
{
    sq *q = (sq *)s;
    *found = *keep = false;
    sqlite3_stmt *st = stmt(q, Q_INBOUND_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":source", source);
    bind_text(st, ":key", key);
    int rc = sqlite3_step(st), res = TD_OK;
    if (rc == SQLITE_ROW) {
        *found = true;
        *keep = sqlite3_column_int(st, 0) != 0;
    } else if (rc != SQLITE_DONE) {
        res = sq_fail(q, rc, e, "looking up a message taken in");
    }
    done(st);
    return res;
}

static int sq_inbound_add(store *s, const inbound_rec *r, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_INBOUND_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":source", r->source);
    bind_text(st, ":key", r->key);
    bind_text(st, ":kind", r->kind);
    bind_text(st, ":note", r->note ? r->note : "");
    bind_text(st, ":message_id", r->message_id);
    bind_id(st, ":campaign_id", r->campaign_id);
    bind_id(st, ":subscriber_id", r->subscriber_id);
    bind_int(st, ":size", r->size);
    bind_int(st, ":keep", r->keep);
    bind_now(st);
    return insert_id(q, st, id, e, "recording a message taken in");
}

static int sq_reply_add(store *s, const reply_rec *r, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_REPLY_ADD, e);
    if (!st)
        return TD_EDB;
    bind_id(st, ":inbound_id", r->inbound_id);
    bind_id(st, ":campaign_id", r->campaign_id);
    bind_id(st, ":subscriber_id", r->subscriber_id);
    bind_text(st, ":sender", r->sender);
    bind_text(st, ":sender_name", r->sender_name);
    bind_text(st, ":subject", r->subject ? r->subject : "");
    bind_text(st, ":body", r->body ? r->body : "");
    bind_text(st, ":message_id", r->message_id);
    bind_text(st, ":in_reply_to", r->in_reply_to);
    bind_text(st, ":matched_by", r->matched_by);
    bind_id(st, ":owner_id", r->owner_id);
    bind_id(st, ":team_id", r->team_id);
    bind_id(st, ":assigned_to", r->assigned_to);
    bind_id(st, ":sent_at", r->sent_at);
    bind_int(st, ":received_at", r->received_at ? r->received_at : (int64_t)time(NULL));
    return insert_id(q, st, id, e, "storing the reply");
}

static void fill_mailbox(sqlite3_stmt *st, void *p)
{
    mailbox_rec *m = p;
    m->id = sqlite3_column_int64(st, 0);
    m->url = col_str(st, 1);
    m->username = col_str(st, 2);
    m->password = col_str(st, 3);
    m->every = sqlite3_column_int(st, 4);
    m->next_at = sqlite3_column_int64(st, 5);
    m->last_at = sqlite3_column_int64(st, 6);
    m->last_error = col_str(st, 7);
    m->created_at = sqlite3_column_int64(st, 8);
}

static void clear_mailbox(void *p) { mailbox_rec_clear(p); }

static int sq_mailbox_add(store *s, const mailbox_rec *m, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MAILBOX_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":url", m->url);
    bind_text(st, ":username", m->username ? m->username : "");
    bind_text(st, ":password", m->password ? m->password : "");
    bind_int(st, ":every", m->every);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the mailbox");
}

static int sq_mailbox_each(store *s, mailbox_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MAILBOX_EACH, e);
    if (!st)
        return TD_EDB;
    mailbox_rec m = {0};
    return each_row(q, st, fill_mailbox, clear_mailbox, &m, (int (*)(void *, const void *))cb, ud,
                    e, "listing mailboxes");
}

static int sq_mailbox_delete(store *s, int64_t id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MAILBOX_DELETE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    int rc = step_exec(q, st, e, "removing the mailbox");
    int n = sqlite3_changes(q->db);
    done(st);
    if (!rc && !n)
        rc = td_err_set(e, TD_ENOTFOUND, "there is no mailbox %lld", (long long)id);
    return rc;
}

static int sq_mailbox_polled(store *s, int64_t id, int64_t at, int64_t next_at, const char *error,
                             td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_MAILBOX_POLLED, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    bind_int(st, ":at", at);
    bind_int(st, ":next_at", next_at);
    bind_text(st, ":error", error);
    int rc = step_exec(q, st, e, "recording the mailbox's poll");
    done(st);
    return rc;
}

/* ---- accounts and the API ------------------------------------------------- */

static void fill_session(sqlite3_stmt *st, void *p)
{
    session_rec *r = p;
    r->id = sqlite3_column_int64(st, 0);
    r->token_hash = col_str(st, 1);
    r->user_id = sqlite3_column_int64(st, 2);
    r->csrf = col_str(st, 3);
    r->peer = col_str(st, 4);
    r->created_at = sqlite3_column_int64(st, 5);
    r->expires_at = sqlite3_column_int64(st, 6);
}

/* Expired sessions go when a new one comes: their number stays that of
 * the logins of one session lifetime. */
static int sq_session_add(store *s, const session_rec *r, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SESSION_PURGE, e);
    if (!st)
        return TD_EDB;
    bind_now(st);
    int rc = step_exec(q, st, e, "removing expired sessions");
    done(st);
    if (rc || !(st = stmt(q, Q_SESSION_ADD, e)))
        return rc ? rc : TD_EDB;
    bind_text(st, ":token_hash", r->token_hash);
    bind_int(st, ":user_id", r->user_id);
    bind_text(st, ":csrf", r->csrf);
    bind_text(st, ":peer", r->peer ? r->peer : "");
    bind_int(st, ":expires_at", r->expires_at);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the session");
}

static int sq_session_get(store *s, const char *token_hash, session_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SESSION_GET, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":token_hash", token_hash);
    return select_one(q, st, fill_session, out, e, "session");
}

static int run_changes(sq *q, sqlite3_stmt *st, td_error *e, const char *what)
{
    int rc = step_exec(q, st, e, what);
    done(st);
    if (!rc && sqlite3_changes(q->db) == 0)
        rc = td_err_set(e, TD_ENOTFOUND, "%s: not found", what);
    return rc;
}

static int sq_session_delete(store *s, const char *token_hash, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SESSION_DELETE, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":token_hash", token_hash);
    return run_changes(q, st, e, "session");
}

static void fill_token(sqlite3_stmt *st, void *p)
{
    token_rec *r = p;
    r->id = sqlite3_column_int64(st, 0);
    r->token_hash = col_str(st, 1);
    r->user_id = sqlite3_column_int64(st, 2);
    r->name = col_str(st, 3);
    r->created_at = sqlite3_column_int64(st, 4);
    r->expires_at = sqlite3_column_int64(st, 5);
}

static void clear_token(void *p) { token_rec_clear(p); }

static int sq_token_add(store *s, const token_rec *r, int64_t *id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TOKEN_ADD, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":token_hash", r->token_hash);
    bind_int(st, ":user_id", r->user_id);
    bind_text(st, ":name", r->name ? r->name : "");
    bind_id(st, ":expires_at", r->expires_at);
    bind_now(st);
    return insert_id(q, st, id, e, "adding the token");
}

static int sq_token_find(store *s, const char *token_hash, token_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TOKEN_FIND, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":token_hash", token_hash);
    return select_one(q, st, fill_token, out, e, "token");
}

static int sq_token_each(store *s, int64_t user_id, token_cb cb, void *ud, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TOKEN_EACH, e);
    if (!st)
        return TD_EDB;
    bind_id(st, ":user_id", user_id);
    token_rec t = {0};
    return each_row(q, st, fill_token, clear_token, &t, (int (*)(void *, const void *))cb, ud, e,
                    "listing tokens");
}

static int sq_token_delete(store *s, int64_t id, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_TOKEN_DELETE, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return run_changes(q, st, e, "token");
}

/* Rows older than the window are of no use: each failure prunes its key. */
static int sq_login_fail_add(store *s, const char *key, int64_t now, int64_t since, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LOGIN_FAIL_PRUNE, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":key", key);
    bind_int(st, ":since", since);
    int rc = step_exec(q, st, e, "pruning login failures");
    done(st);
    if (rc || !(st = stmt(q, Q_LOGIN_FAIL_ADD, e)))
        return rc ? rc : TD_EDB;
    bind_text(st, ":key", key);
    bind_int(st, ":now", now);
    rc = step_exec(q, st, e, "recording a login failure");
    done(st);
    return rc;
}

static int count_one(sq *q, sqlite3_stmt *st, int64_t *n, td_error *e, const char *what)
{
    int rc = sqlite3_step(st);
    int res = TD_OK;
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int64(st, 0);
    else
        res = sq_fail(q, rc, e, what);
    done(st);
    return res;
}

static int sq_login_fail_count(store *s, const char *key, int64_t since, int64_t *n, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LOGIN_FAIL_COUNT, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":key", key);
    bind_int(st, ":since", since);
    return count_one(q, st, n, e, "counting login failures");
}

static int sq_login_fail_clear(store *s, const char *key, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LOGIN_FAIL_CLEAR, e);
    if (!st)
        return TD_EDB;
    bind_text(st, ":key", key);
    int rc = step_exec(q, st, e, "clearing login failures");
    done(st);
    return rc;
}

static void clear_sub_p(void *p) { sub_rec_clear(p); }

static void bind_scope(sqlite3_stmt *st, const store_scope *f)
{
    bind_id(st, ":owner_id", f ? f->owner_id : 0);
    bind_id(st, ":team_id", f ? f->team_id : 0);
}

static int sq_sub_page(store *s, const store_scope *f, int64_t after, unsigned limit,
                       sub_cb cb, void *ud, int64_t *total, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_SUB_PAGE_TOTAL, e);
    if (!st)
        return TD_EDB;
    bind_scope(st, f);
    int rc = count_one(q, st, total, e, "counting subscribers");
    if (rc || !(st = stmt(q, Q_SUB_PAGE, e)))
        return rc ? rc : TD_EDB;
    bind_scope(st, f);
    bind_int(st, ":after", after);
    bind_int(st, ":limit", limit);
    sub_rec r = {0};
    return each_row(q, st, fill_sub, clear_sub_p, &r, (int (*)(void *, const void *))cb, ud, e,
                    "listing subscribers");
}

static int sq_list_get(store *s, int64_t id, list_rec *out, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_LIST_GET, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    return select_one(q, st, fill_list, out, e, "list");
}

static int sq_reply_page(store *s, const store_scope *f, int64_t after, unsigned limit,
                         reply_view_cb cb, void *ud, int64_t *total, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_REPLY_PAGE_TOTAL, e);
    if (!st)
        return TD_EDB;
    bind_scope(st, f);
    int rc = count_one(q, st, total, e, "counting replies");
    if (rc || !(st = stmt(q, Q_REPLY_PAGE, e)))
        return rc ? rc : TD_EDB;
    bind_scope(st, f);
    bind_int(st, ":after", after);
    bind_int(st, ":limit", limit);
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        reply_view v = {
            .id = sqlite3_column_int64(st, 0),
            .campaign_id = sqlite3_column_int64(st, 1),
            .subscriber_id = sqlite3_column_int64(st, 2),
            .sender = (const char *)sqlite3_column_text(st, 3),
            .sender_name = (const char *)sqlite3_column_text(st, 4),
            .subject = (const char *)sqlite3_column_text(st, 5),
            .body = (const char *)sqlite3_column_text(st, 6),
            .status = (const char *)sqlite3_column_text(st, 7),
            .owner_id = sqlite3_column_int64(st, 8),
            .team_id = sqlite3_column_int64(st, 9),
            .assigned_to = sqlite3_column_int64(st, 10),
            .received_at = sqlite3_column_int64(st, 11),
        };
        if ((rc = cb(ud, &v)))
            break;
    }
    if (!rc && r != SQLITE_DONE && r != SQLITE_ROW)
        rc = sq_fail(q, r, e, "listing replies");
    done(st);
    return rc;
}

/* Runs the statement of query id with :id and :from bound; done() after. */
static int run_pair(sq *q, enum q qid, int64_t id, int64_t from, td_error *e, const char *what)
{
    sqlite3_stmt *st = stmt(q, qid, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    bind_int(st, ":from", from);
    bind_now(st);
    int rc = step_exec(q, st, e, what);
    done(st);
    return rc;
}

static int sq_campaign_update_from(store *s, int64_t id, int64_t from_id, td_error *e)
{
    sq *q = (sq *)s;
    int rc = sq_begin(s, e);
    if (rc)
        return rc;
    rc = run_pair(q, Q_CAMPAIGN_COPY, id, from_id, e, "updating the campaign");
    bool copied = !rc && sqlite3_changes(q->db) == 1;
    if (!rc && copied &&
        !(rc = run_pair(q, Q_CAMPAIGN_LISTS_DROP, id, from_id, e, "updating the campaign's lists")))
        rc = run_pair(q, Q_CAMPAIGN_LISTS_MOVE, id, from_id, e, "updating the campaign's lists");
    if (!rc)
        rc = run_pair(q, Q_CAMPAIGN_DELETE, from_id, 0, e, "removing the new version");
    if (!rc)
        rc = sq_commit(s, e);
    if (rc) {
        sq_rollback(s);
        return rc;
    }
    if (!copied)
        return td_err_set(e, TD_EDENIED, "campaign %lld is no draft (or is gone): only a draft "
                          "changes", (long long)id);
    return TD_OK;
}

static int sq_campaign_set_send_at(store *s, int64_t id, int64_t send_at, td_error *e)
{
    sq *q = (sq *)s;
    sqlite3_stmt *st = stmt(q, Q_CAMPAIGN_SEND_AT, e);
    if (!st)
        return TD_EDB;
    bind_int(st, ":id", id);
    bind_id(st, ":send_at", send_at);
    bind_now(st);
    int rc = step_exec(q, st, e, "setting the send time");
    done(st);
    if (!rc && sqlite3_changes(q->db) == 0)
        rc = td_err_set(e, TD_EDENIED, "campaign %lld is no draft: its send time is set",
                        (long long)id);
    return rc;
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .setting_get = sq_setting_get,
    .setting_set = sq_setting_set,
    .team_add = sq_team_add,
    .team_find = sq_team_find,
    .team_get = sq_team_get,
    .team_each = sq_team_each,
    .user_add = sq_user_add,
    .user_find = sq_user_find,
    .user_get = sq_user_get,
    .user_each = sq_user_each,
    .list_add = sq_list_add,
    .list_find = sq_list_find,
    .list_each = sq_list_each,
    .list_delete = sq_list_delete,
    .sub_add = sq_sub_add,
    .sub_upsert = sq_sub_upsert,
    .sub_find = sq_sub_find,
    .sub_get = sq_sub_get,
    .sub_update = sq_sub_update,
    .sub_delete = sq_sub_delete,
    .member_set = sq_member_set,
    .member_each = sq_member_each,
    .member_lists = sq_member_lists,
    .bulk_begin = sq_bulk_begin,
    .bulk_add = sq_bulk_add,
    .bulk_flush = sq_bulk_flush,
    .bulk_wait = sq_bulk_wait,
    .bulk_end = sq_bulk_end,
    .event_add = sq_event_add,
    .unsubscribe = sq_unsubscribe,
    .member_confirm = sq_member_confirm,
    .suppress_add = sq_suppress_add,
    .suppress_check = sq_suppress_check,
    .audit_add = sq_audit_add,
    .counts = sq_counts,
    .dkim_key_add = sq_dkim_key_add,
    .dkim_key_each = sq_dkim_key_each,
    .block_put = sq_block_put,
    .block_get = sq_block_get,
    .block_each = sq_block_each,
    .block_delete = sq_block_delete,
    .relay_add = sq_relay_add,
    .relay_each = sq_relay_each,
    .relay_delete = sq_relay_delete,
    .campaign_add = sq_campaign_add,
    .campaign_get = sq_campaign_get,
    .campaign_each = sq_campaign_each,
    .campaign_list_names = sq_campaign_list_names,
    .campaign_set_state = sq_campaign_set_state,
    .campaign_freeze = sq_campaign_freeze,
    .campaign_counts = sq_campaign_counts,
    .delivery_each = sq_delivery_each,
    .delivery_due = sq_delivery_due,
    .delivery_update = sq_delivery_update,
    .delivery_requeue = sq_delivery_requeue,
    .event_counts = sq_event_counts,
    .delivery_get = sq_delivery_get,
    .delivery_by_message_id = sq_delivery_by_message_id,
    .delivery_of = sq_delivery_of,
    .delivery_last_to = sq_delivery_last_to,
    .soft_bounce_add = sq_soft_bounce_add,
    .inbound_find = sq_inbound_find,
    .inbound_add = sq_inbound_add,
    .reply_add = sq_reply_add,
    .mailbox_add = sq_mailbox_add,
    .mailbox_each = sq_mailbox_each,
    .mailbox_delete = sq_mailbox_delete,
    .mailbox_polled = sq_mailbox_polled,
    .session_add = sq_session_add,
    .session_get = sq_session_get,
    .session_delete = sq_session_delete,
    .token_add = sq_token_add,
    .token_find = sq_token_find,
    .token_each = sq_token_each,
    .token_delete = sq_token_delete,
    .login_fail_add = sq_login_fail_add,
    .login_fail_count = sq_login_fail_count,
    .login_fail_clear = sq_login_fail_clear,
    .sub_page = sq_sub_page,
    .list_get = sq_list_get,
    .reply_page = sq_reply_page,
    .campaign_update_from = sq_campaign_update_from,
    .campaign_set_send_at = sq_campaign_set_send_at,
};
