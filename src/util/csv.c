/* csv: streaming RFC 4180 reader and writer (see csv.h).
 *
 * Written by hand, not on Debian's libcsv 3.0.3, for
 * reasons probed with small programs against that version:
 *   - Its callbacks get a field's bytes but no position, so the line a record
 *     starts on is only known by feeding it one physical line at a time, and
 *     lines inside quoted fields still have to be found by a second scan.
 *   - Its field buffer has no cap. The only hook is a realloc function that
 *     refuses; the parser then returns CSV_ENOMEM and stays failed (every
 *     later csv_parse consumes 0 bytes). Skipping the rest of an oversize
 *     field means finding where it ends, that is tracking quote state
 *     ourselves, outside libcsv.
 *   - After a strict-mode CSV_EPARSE (stray quote, text after a closing
 *     quote) it does not resynchronise: fed the rest, it glues it onto the
 *     broken field ("a,b\"c,d" gives fields "a", "bc", "d"). Recovering means
 *     re-initialising it and finding the next record start ourselves, again
 *     by tracking quote state.
 *   - An unterminated quote buffers the rest of the input in its field
 *     buffer; the recovery rule in csv.h needs the raw bytes of the lines
 *     after the record's first, which libcsv does not keep.
 *   - It ends records on a lone CR and trims spaces around unquoted fields by
 *     default (both against RFC 4180; the latter can be switched off).
 * Building on it would mean running a second quote-state machine beside it
 * that must agree with it byte for byte; one state machine is simpler and
 * faster. UTF-8 validation is libunistring's u8_check (util/utf8).
 *
 * Shape: input is read in 64 KiB chunks; each state consumes whole spans of
 * ordinary bytes (a table lookup per byte, then one memcpy), so the common
 * unquoted field costs a scan and a copy. A record's fields are stored one
 * after another, NUL-terminated, in one buffer; pointers are made at the end.
 * Positions are counted in "parse bytes" (bytes handed to the state machine,
 * re-read bytes included) so a record's raw length is a subtraction. */
#include "util/csv.h"

#include "util/utf8.h"
#include "util/xalloc.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK ((size_t)64 * 1024)

enum state {
    S_LINE,   /* at the start of a physical line, no record begun */
    S_FSTART, /* at the start of a field */
    S_UNQ,    /* inside an unquoted field */
    S_Q,      /* inside a quoted field */
    S_QQ,     /* inside a quoted field, just after a quote */
    S_CR,     /* after a CR outside quotes */
    S_SKIP,   /* discarding up to the next line ending */
};

/* Bytes that end a span: C_UNQ in an unquoted field, C_Q in a quoted one. */
enum { C_UNQ = 1, C_Q = 2 };
static const unsigned char cls[256] = {
    [','] = C_UNQ, ['\r'] = C_UNQ, ['\n'] = C_UNQ | C_Q, ['"'] = C_UNQ | C_Q, [0] = C_UNQ | C_Q,
};

/* Outcomes of the internal steps besides TD_* codes. */
enum { BLANK = -1, GO_ON = -2 };

/* Why a quoted field forces a re-read (see the rule in csv.h). */
enum quote_end { Q_EOF, Q_CAP, Q_BROKEN };

struct csv_reader {
    FILE *in;
    size_t field_cap, record_cap, max_fields;

    /* Input window [p, end), which began at win: normally in ib, the chunk
     * read last. While re-reading (replaying), the window is in rb, which
     * holds the kept lines, and the unread rest of ib waits in [m_p, m_end);
     * so a re-read copies only the kept lines, never the chunk. */
    unsigned char *ib, *rb, *win, *p, *end, *m_p, *m_end;
    bool replaying;
    uint64_t base;     /* parse bytes before ib[0] */
    uint64_t nread;    /* bytes read from in */
    uint64_t replayed; /* bytes re-read so far */
    bool started, eof, ioerr, done;
    unsigned char last_byte; /* last byte read from in */

    size_t line;  /* physical line at p */
    size_t maxlf; /* most line endings passed (line goes back on a re-read) */
    enum state state;

    /* The record being read. */
    uint64_t rec_pos; /* parse bytes at its first byte */
    size_t rec_line;
    size_t nf;            /* fields ended so far (stored or not) */
    buf data;             /* stored fields, each NUL-terminated */
    size_t *off, *lens;   /* per stored field */
    const char **ptrs;    /* made at the end of the record */
    size_t nalloc;        /* entries in off, lens, ptrs */
    size_t f_off, f_len;  /* current field in data */
    unsigned f_hi;        /* OR of its bytes: >= 0x80 means check UTF-8 */
    bool f_quoted, last_quoted;
    size_t q_line;        /* where the current field's quote opened */
    bool bad;             /* an error is recorded in why; store nothing */
    bool broken_seen;     /* a broken-quote event was handled */
    char why[400];

    /* Set when a quoted field crosses a line ending: the record may have to
     * be re-read from its second line, whose raw bytes are kept in raw (what
     * earlier chunks held) and [keep_from, p) (what this one holds). */
    bool crossed;
    size_t cross_line, cross_col;
    buf raw;
    const unsigned char *keep_from;
};

static uint64_t ppos(const csv_reader *r)
{
    return r->base + (uint64_t)(r->p - r->win);
}

csv_reader *csv_reader_new(FILE *in, size_t field_cap, size_t record_cap)
{
    csv_reader *r = xcalloc(1, sizeof *r);
    r->in = in;
    r->field_cap = field_cap ? field_cap : CSV_DEFAULT_FIELD_CAP;
    r->record_cap = record_cap ? record_cap : CSV_DEFAULT_RECORD_CAP;
    r->max_fields = CSV_DEFAULT_MAX_FIELDS;
    r->ib = xmalloc(CHUNK);
    r->win = r->p = r->end = r->ib;
    r->line = 1;
    r->state = S_LINE;
    buf_init(&r->data, BUF_NOCAP); /* bounded by the caps, checked here */
    buf_init(&r->raw, BUF_NOCAP);
    return r;
}

void csv_reader_set_max_fields(csv_reader *r, size_t max_fields)
{
    r->max_fields = max_fields ? max_fields : CSV_DEFAULT_MAX_FIELDS;
}

void csv_reader_free(csv_reader *r)
{
    if (!r)
        return;
    free(r->ib);
    free(r->rb);
    buf_free(&r->data);
    buf_free(&r->raw);
    free(r->off);
    free(r->lens);
    free(r->ptrs);
    free(r);
}

size_t csv_reader_lines(const csv_reader *r)
{
    size_t lf = r->line - 1 > r->maxlf ? r->line - 1 : r->maxlf;
    /* A last line without a line ending counts once the input has ended. */
    if (r->eof && r->p == r->end && !r->replaying && r->nread && r->last_byte != '\n')
        lf++;
    return lf;
}

uint64_t csv_reader_bytes(const csv_reader *r)
{
    /* While re-reading, the unread input is what waits in [m_p, m_end): the
     * same as when the re-read began, so the figure does not go back. */
    if (r->replaying)
        return r->nread - (uint64_t)(r->m_end - r->m_p);
    return r->nread - (uint64_t)(r->end - r->p);
}

/* fill moves to the next window once [p, end) is used up: back from the
 * kept lines to the rest of the chunk, or a new chunk. Returns 0 (at EOF the
 * window stays empty) or TD_EIO. */
static int fill(csv_reader *r)
{
    if (r->crossed)
        buf_append(&r->raw, r->keep_from, (size_t)(r->end - r->keep_from));
    r->base += (uint64_t)(r->end - r->win);
    if (r->replaying) {
        r->replaying = false;
        r->win = r->p = r->m_p;
        r->keep_from = r->p;
        r->end = r->m_end;
        if (r->p < r->end)
            return 0;
    }
    r->win = r->p = r->end = r->ib;
    r->keep_from = r->ib;
    if (r->eof)
        return 0;
    size_t n = fread(r->ib, 1, CHUNK, r->in);
    if (n < CHUNK) {
        if (ferror(r->in)) {
            r->ioerr = true;
            return TD_EIO;
        }
        r->eof = true;
    }
    r->end = r->ib + n;
    r->nread += n;
    if (n)
        r->last_byte = r->ib[n - 1];
    if (!r->started) {
        r->started = true;
        /* fread fills the whole chunk unless the input ends, so a BOM is
         * never split here. */
        if (n >= 3 && memcmp(r->ib, "\xEF\xBB\xBF", 3) == 0)
            r->p += 3;
    }
    return 0;
}

/* fail records the record's first error; col 0 means no column. */
static void fail(csv_reader *r, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(csv_reader *r, size_t col, const char *fmt, ...)
{
    if (r->bad)
        return;
    r->bad = true;
    int n = col ? snprintf(r->why, sizeof r->why, "line %zu: column %zu: ", r->rec_line, col)
                : snprintf(r->why, sizeof r->why, "line %zu: ", r->rec_line);
    if (n < 0 || (size_t)n >= sizeof r->why)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why + n, sizeof r->why - (size_t)n, fmt, ap);
    va_end(ap);
    if (r->line != r->rec_line) {
        size_t len = strlen(r->why);
        snprintf(r->why + len, sizeof r->why - len, " (on line %zu)", r->line);
    }
}

static void field_begin(csv_reader *r)
{
    r->f_off = r->data.len;
    r->f_len = 0;
    r->f_hi = 0;
    r->f_quoted = false;
}

static void rec_begin(csv_reader *r)
{
    buf_reset(&r->data);
    buf_reset(&r->raw);
    r->nf = 0;
    r->bad = r->broken_seen = r->crossed = false;
    r->rec_line = r->line;
    r->rec_pos = ppos(r);
    field_begin(r);
}

/* put adds n bytes of the current field, unless the record is bad already or
 * the field would pass its cap (then nothing more of it is stored). */
static inline void put(csv_reader *r, const unsigned char *s, size_t n)
{
    if (r->bad)
        return;
    if (n > r->field_cap - r->f_len) {
        fail(r, r->nf + 1, "field longer than %zu bytes", r->field_cap);
        return;
    }
    r->f_len += n;
    buf_append(&r->data, s, n);
}

static void check_record_cap(csv_reader *r)
{
    if (!r->bad && ppos(r) - r->rec_pos > r->record_cap)
        fail(r, 0, "record longer than %zu bytes", r->record_cap);
}

static void field_end(csv_reader *r)
{
    if (!r->bad) {
        size_t bad_off;
        if (r->nf >= r->max_fields) {
            fail(r, r->nf + 1, "more than %zu fields", r->max_fields);
        } else if ((r->f_hi & 0x80) &&
                   !utf8_valid(r->data.data + r->f_off, r->f_len, &bad_off)) {
            fail(r, r->nf + 1, "invalid UTF-8 at byte %zu of the field", bad_off + 1);
        } else {
            if (r->nf == r->nalloc) {
                r->nalloc = r->nalloc ? r->nalloc * 2 : 16;
                r->off = xrealloc(r->off, r->nalloc * sizeof *r->off);
                r->lens = xrealloc(r->lens, r->nalloc * sizeof *r->lens);
                r->ptrs = xrealloc(r->ptrs, r->nalloc * sizeof *r->ptrs);
            }
            r->off[r->nf] = r->f_off;
            r->lens[r->nf] = r->f_len;
            buf_append(&r->data, "", 1);
        }
    }
    r->nf++;
    r->last_quoted = r->f_quoted;
    check_record_cap(r);
    field_begin(r);
}

/* record_end finishes the record after its line ending (or EOF): 0 with
 * *rec filled, TD_EINVAL, or BLANK for a blank line (nothing to return). */
static int record_end(csv_reader *r, csv_record *rec, td_error *e)
{
    r->crossed = false;
    if (r->line - 1 > r->maxlf)
        r->maxlf = r->line - 1;
    rec->line = r->rec_line;
    if (r->bad)
        return td_err_set(e, TD_EINVAL, "%s", r->why);
    if (r->nf == 1 && r->lens[0] == 0 && !r->last_quoted)
        return BLANK;
    for (size_t i = 0; i < r->nf; i++)
        r->ptrs[i] = r->data.data + r->off[i];
    rec->nfields = r->nf;
    rec->fields = r->ptrs;
    rec->lens = r->lens;
    return 0;
}

/* can_reread is true when the record holds kept lines and re-reading them
 * stays within the budget (bytes read plus one record cap): linear work. */
static bool can_reread(const csv_reader *r)
{
    if (!r->crossed)
        return false;
    /* Copied: the kept lines, and when re-reading already, the rest of the
     * current kept lines, which must still come before the chunk. */
    const unsigned char *upto = r->replaying ? r->end : r->p;
    size_t cost = r->raw.len + (size_t)(upto - r->keep_from);
    return r->replayed + cost <= r->nread + r->record_cap;
}

/* quote_fail reports a record whose quoted field cannot be trusted (the rule
 * in csv.h; detail says what followed the quote for Q_BROKEN) and, budget
 * allowing, makes the reader re-read from the record's second line. Returns
 * TD_EINVAL. */
static int quote_fail(csv_reader *r, enum quote_end why, const char *detail, csv_record *rec,
                      td_error *e)
{
    bool again = can_reread(r);
    /* An open quote is the current field's; broken quoting is blamed on the
     * quote that first spanned a line. */
    size_t col = why == Q_BROKEN ? r->cross_col : r->nf + 1;
    size_t qline = why == Q_BROKEN ? r->cross_line : r->q_line;
    char then[96] = "";

    if (again)
        snprintf(then, sizeof then, "; reading resumes at line %zu", r->rec_line + 1);
    else if (why == Q_CAP)
        snprintf(then, sizeof then, "; reading resumes after the next line ending");
    else if (r->crossed)
        snprintf(then, sizeof then, "; the lines after line %zu could not be read",
                 r->rec_line);

    rec->line = r->rec_line;
    if (why == Q_EOF)
        td_err_set(e, TD_EINVAL,
                   "line %zu: column %zu: unterminated quote (opened on line %zu, still open at "
                   "the end of input)%s",
                   r->rec_line, col, qline, then);
    else if (why == Q_CAP)
        td_err_set(e, TD_EINVAL,
                   "line %zu: column %zu: unterminated quote (opened on line %zu, still open "
                   "after the record cap of %zu bytes)%s",
                   r->rec_line, col, qline, r->record_cap, then);
    else
        td_err_set(e, TD_EINVAL,
                   "line %zu: column %zu: broken quoting: the quote opened on line %zu spans "
                   "lines and ends in %s on line %zu%s",
                   r->rec_line, col, qline, detail, r->line, then);

    if (r->line - 1 > r->maxlf)
        r->maxlf = r->line - 1;
    if (again) {
        /* New window: the kept lines (and, when re-reading already, the rest
         * of the old window); the unread rest of the chunk waits. */
        size_t upto = (size_t)((r->replaying ? r->end : r->p) - r->keep_from);
        size_t n = r->raw.len + upto;
        unsigned char *nb = xmalloc(n ? n : 1);
        memcpy(nb, r->raw.data, r->raw.len);
        memcpy(nb + r->raw.len, r->keep_from, upto);
        r->base = ppos(r);
        if (!r->replaying) {
            r->m_p = r->p;
            r->m_end = r->end;
            r->replaying = true;
        }
        free(r->rb);
        r->rb = r->win = r->p = nb;
        r->end = nb + n;
        r->replayed += n;
        r->line = r->rec_line + 1;
        r->state = S_LINE;
    } else {
        r->state = why == Q_CAP ? S_SKIP : S_LINE;
    }
    r->crossed = false;
    buf_reset(&r->raw);
    return TD_EINVAL;
}

/* broken handles a stray quote or text after a closing quote: GO_ON to carry
 * on leniently (the record is bad), or what quote_fail returns when the
 * record holds a quoted line break (the opening quote was likely stray). */
static int broken(csv_reader *r, const char *what, const char *detail, csv_record *rec,
                  td_error *e)
{
    if (!r->broken_seen && can_reread(r)) {
        r->broken_seen = true;
        return quote_fail(r, Q_BROKEN, detail, rec, e);
    }
    r->broken_seen = true;
    fail(r, r->nf + 1, "%s", what);
    return GO_ON;
}

static int at_eof(csv_reader *r, csv_record *rec, td_error *e)
{
    switch (r->state) {
    case S_LINE:
    case S_SKIP:
        r->done = true;
        return TD_ENOTFOUND;
    case S_Q:
        return quote_fail(r, Q_EOF, NULL, rec, e);
    default: /* a field or a CR ends at EOF */
        field_end(r);
        r->state = S_LINE;
        return record_end(r, rec, e);
    }
}

int csv_next(csv_reader *r, csv_record *rec, td_error *e)
{
    memset(rec, 0, sizeof *rec);
    if (r->ioerr)
        return td_err_set(e, TD_EIO, "reading the CSV input failed");
    if (r->done)
        return TD_ENOTFOUND;
    for (;;) {
        int rc;
        if (r->p == r->end) {
            if (fill(r))
                return td_err_set(e, TD_EIO, "reading the CSV input failed near line %zu",
                                  r->line);
            if (r->p == r->end) {
                rc = at_eof(r, rec, e);
                if (rc == BLANK)
                    continue;
                return rc;
            }
            if (r->state != S_LINE && r->state != S_SKIP && ppos(r) - r->rec_pos > r->record_cap) {
                if (r->crossed && (r->state == S_Q || r->state == S_QQ))
                    return quote_fail(r, Q_CAP, NULL, rec, e);
                check_record_cap(r);
            }
        }

        switch (r->state) {
        case S_LINE:
            while (r->p < r->end && *r->p == '\n') {
                r->p++;
                r->line++;
            }
            if (r->p == r->end)
                continue;
            rec_begin(r);
            r->state = S_FSTART;
            /* fall through */
        case S_FSTART:
            if (*r->p == '"') {
                r->p++;
                r->f_quoted = true;
                r->q_line = r->line;
                r->state = S_Q;
                continue;
            }
            r->state = S_UNQ;
            /* fall through */
        case S_UNQ: {
            const unsigned char *s = r->p, *end = r->end;
            const unsigned char *q = s;
            unsigned hi = 0;
            while (q < end && !(cls[*q] & C_UNQ))
                hi |= *q++;
            r->p = (unsigned char *)q;
            r->f_hi |= hi;
            if (q > s)
                put(r, s, (size_t)(q - s));
            if (q == end)
                continue;
            switch (*q) {
            case ',':
                field_end(r);
                r->p++;
                r->state = S_FSTART;
                continue;
            case '\n':
                field_end(r);
                r->p++;
                r->line++;
                r->state = S_LINE;
                rc = record_end(r, rec, e);
                if (rc == BLANK)
                    continue;
                return rc;
            case '\r':
                r->p++;
                r->state = S_CR;
                continue;
            case '"':
                rc = broken(r, "stray quote in an unquoted field", "a stray quote", rec, e);
                if (rc != GO_ON)
                    return rc;
                r->p++; /* taken as text; the record is bad anyway */
                continue;
            default: /* NUL */
                fail(r, r->nf + 1, "NUL byte");
                r->p++;
                continue;
            }
        }
        case S_Q: {
            const unsigned char *s = r->p, *end = r->end;
            const unsigned char *q = s;
            unsigned hi = 0;
            while (q < end && !(cls[*q] & C_Q))
                hi |= *q++;
            r->p = (unsigned char *)q;
            r->f_hi |= hi;
            if (q > s)
                put(r, s, (size_t)(q - s));
            if (q == end)
                continue;
            switch (*q) {
            case '"':
                r->p++;
                r->state = S_QQ;
                continue;
            case '\n':
                put(r, q, 1);
                r->p++;
                r->line++;
                if (!r->crossed) {
                    r->crossed = true;
                    r->cross_line = r->q_line;
                    r->cross_col = r->nf + 1;
                    r->keep_from = r->p;
                    buf_reset(&r->raw);
                }
                if (ppos(r) - r->rec_pos > r->record_cap)
                    return quote_fail(r, Q_CAP, NULL, rec, e);
                continue;
            default: /* NUL */
                fail(r, r->nf + 1, "NUL byte");
                r->p++;
                continue;
            }
        }
        case S_QQ:
            switch (*r->p) {
            case '"': /* a doubled quote stands for one */
                put(r, r->p, 1);
                r->p++;
                r->state = S_Q;
                continue;
            case ',':
                field_end(r);
                r->p++;
                r->state = S_FSTART;
                continue;
            case '\n':
                field_end(r);
                r->p++;
                r->line++;
                r->state = S_LINE;
                rc = record_end(r, rec, e);
                if (rc == BLANK)
                    continue;
                return rc;
            case '\r':
                r->p++;
                r->state = S_CR;
                continue;
            default:
                rc = broken(r, "text after a closing quote", "a closing quote followed by text", rec, e);
                if (rc != GO_ON)
                    return rc;
                r->state = S_UNQ; /* read on as unquoted text */
                continue;
            }
        case S_CR:
            if (*r->p == '\n') {
                field_end(r);
                r->p++;
                r->line++;
                r->state = S_LINE;
                rc = record_end(r, rec, e);
                if (rc == BLANK)
                    continue;
                return rc;
            }
            fail(r, r->nf + 1,
                 "carriage return not followed by a line feed (line endings must be LF or CRLF)");
            r->state = S_UNQ; /* the CR was text; the next byte is read there */
            continue;
        case S_SKIP: {
            unsigned char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
            if (!nl) {
                r->p = r->end;
                continue;
            }
            r->p = nl + 1;
            r->line++;
            r->state = S_LINE;
            continue;
        }
        }
    }
}

/* ---- writer ---- */

struct sink {
    FILE *f;
    buf *b;
    int err;
};

static void emit(struct sink *k, const char *s, size_t n)
{
    if (k->err || n == 0)
        return;
    if (k->f) {
        if (fwrite(s, 1, n, k->f) != n)
            k->err = TD_EIO;
    } else if (buf_append(k->b, s, n)) {
        k->err = TD_ETOOBIG;
    }
}

static bool needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return false;
    if (s[0] == ' ' || s[0] == '\t' || s[n - 1] == ' ' || s[n - 1] == '\t')
        return true;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        return true; /* would be taken for a BOM at the start of a file */
    for (size_t i = 0; i < n; i++)
        if (cls[(unsigned char)s[i]] & C_UNQ)
            return true;
    return false;
}

static int write_record(struct sink *k, const char *const *fields, const size_t *lens, size_t n)
{
    if (n == 0)
        return TD_EINVAL;
    for (size_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : strlen(fields[i]);
        if (memchr(fields[i], '\0', len))
            return TD_EINVAL;
    }
    if (n == 1 && (lens ? lens[0] : strlen(fields[0])) == 0) {
        emit(k, "\"\"\r\n", 4); /* an empty line would be skipped as blank */
        return k->err;
    }
    for (size_t i = 0; i < n; i++) {
        const char *s = fields[i];
        size_t len = lens ? lens[i] : strlen(s);
        if (i)
            emit(k, ",", 1);
        if (!needs_quotes(s, len)) {
            emit(k, s, len);
            continue;
        }
        emit(k, "\"", 1);
        const char *q;
        while ((q = memchr(s, '"', len)) != NULL) {
            size_t m = (size_t)(q - s) + 1;
            emit(k, s, m);
            emit(k, "\"", 1);
            s += m;
            len -= m;
        }
        emit(k, s, len);
        emit(k, "\"", 1);
    }
    emit(k, "\r\n", 2);
    return k->err;
}

int csv_write_record(FILE *out, const char *const *fields, const size_t *lens, size_t n)
{
    struct sink k = {out, NULL, 0};
    return write_record(&k, fields, lens, n);
}

int csv_format_record(buf *out, const char *const *fields, const size_t *lens, size_t n)
{
    size_t was = out->len;
    struct sink k = {NULL, out, 0};
    int rc = write_record(&k, fields, lens, n);
    if (rc)
        buf_truncate(out, was);
    return rc;
}
