/* import: subscribers from CSV into a list, streaming, in batched
 * transactions, reporting each invalid row by line and importing the rest.
 *
 * Columns (header row, names matched case-insensitively): email (required),
 * name, attributes (a JSON object), timezone, locale, subscription
 * (confirmed | unconfirmed | unsubscribed: the membership to create). Every
 * other column becomes an attribute; a cell that is a JSON number becomes a
 * number, an empty cell sets nothing. Re-importing a file changes nothing. An
 * existing unsubscribed membership is never turned back into a subscription. */
#ifndef TD_AUDIENCE_IMPORT_H
#define TD_AUDIENCE_IMPORT_H

#include <stdint.h>
#include <stdio.h>

#include "store/store.h"

typedef struct import_stats {
    uint64_t rows;        /* data rows read (valid or not) */
    uint64_t created;     /* new subscribers */
    uint64_t updated;     /* existing subscribers changed (upsert, blocklist) */
    uint64_t unchanged;   /* existing subscribers left as they were */
    uint64_t memberships; /* memberships created or changed */
    uint64_t invalid;     /* rows refused */
    uint64_t bytes;       /* input consumed */
} import_stats;

typedef struct import_opts {
    int64_t list_id;
    const char *list_optin; /* single | double: default membership status */
    sub_mode mode;
    int64_t team_id, owner_id; /* set on new subscribers; 0 for none */
    unsigned batch;            /* rows per transaction (0: 50,000) */
    /* Called for each refused row with its line and reason. */
    void (*reject)(void *ud, uint64_t line, const char *reason);
    /* Called about every 8192 rows, and at the end, for progress display. */
    void (*progress)(void *ud, const import_stats *st);
    void *ud;
} import_opts;

/* import_csv reads CSV from in and imports it. Returns 0 when the file was
 * read to its end (invalid rows do not make it fail: see stats->invalid);
 * TD_EINVAL when the header is unusable; TD_EIO/TD_EDB/TD_ETEMP when reading
 * or storing failed (batches committed before that stay: importing again is
 * safe). */
int import_csv(store *s, FILE *in, const import_opts *o, import_stats *stats, td_error *e);

#endif
