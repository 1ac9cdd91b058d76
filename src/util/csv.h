/* csv: a streaming RFC 4180 reader and writer for subscriber import/export.
 *
 * The reader pulls records one at a time from a FILE * (stdin works: it never
 * seeks) with memory bounded by its caps, not by the input. It accepts CRLF
 * or LF line endings (mixed too), quoted fields holding commas, doubled quotes
 * and line breaks, an optional UTF-8 BOM at the very start, a last line
 * without a line ending; it skips blank lines. Every field it returns is
 * valid UTF-8 without NUL bytes. It does not check the column count (the
 * caller does, with rec.nfields) and gives the header no special meaning.
 *
 * Bad records do not stop the stream. csv_next returns TD_EINVAL for a record
 * with invalid UTF-8, a NUL byte, a field over the field cap, a record over
 * the record cap or the field-count cap, a stray quote inside an unquoted
 * field, text after a closing quote, or a carriage return not followed by a
 * line feed outside quotes; e->msg names the line the record starts on, the
 * column and the problem; the next call returns the record after it.
 *
 * Recovery rule for broken quotes (the one error that can shift where every
 * later record starts): when a quoted field holding a line break
 *   - is still open at the end of input, or
 *   - makes its record pass the record cap, or
 *   - closes but is then followed by broken quoting (text after the closing
 *     quote, or a stray quote later in the record),
 * the record is reported as an unterminated (or broken) quote "starting at
 * line N", and reading resumes at physical line N + 1: those lines are read
 * again as records, so rows after a lone stray quote still come through. To
 * do this on a stream the reader keeps the raw bytes of a record's lines after
 * its first, at most the record cap. Re-reading is limited to the bytes read
 * from the input plus one record cap in total (so work stays linear however
 * the input is made); past that budget an open quote at the record cap is
 * reported and reading resumes after the next line ending, and one open at end
 * of input ends the input. A quoted field without a line break that runs to
 * the end of input is reported the same way (there are no later lines).
 *
 * The writer quotes a field only when needed and ends records with CRLF;
 * what it writes, the reader reads back identically. */
#ifndef TD_UTIL_CSV_H
#define TD_UTIL_CSV_H

#include "util/buf.h"
#include "util/err.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Defaults when 0 is passed to csv_reader_new. The field-count cap is
 * Excel's column limit: it bounds the per-field arrays (24 bytes a field). */
#define CSV_DEFAULT_FIELD_CAP ((size_t)1 << 20)  /* 1 MiB */
#define CSV_DEFAULT_RECORD_CAP ((size_t)4 << 20) /* 4 MiB of raw input */
#define CSV_DEFAULT_MAX_FIELDS ((size_t)16384)

typedef struct csv_reader csv_reader;

/* One record, borrowed from the reader: valid until the next csv_next or
 * csv_reader_free call. */
typedef struct csv_record {
    size_t nfields;
    const char *const *fields; /* each NUL-terminated, valid UTF-8 */
    const size_t *lens;        /* byte lengths (fields never contain NUL) */
    size_t line;               /* physical line where the record starts */
} csv_record;

/* csv_reader_new returns a reader on in, which stays the caller's (it is
 * neither closed nor seeked). field_cap bounds one field's decoded bytes,
 * record_cap one record's raw bytes, line endings included; 0 picks the
 * defaults above. Never fails (allocation failure aborts); free with
 * csv_reader_free. */
csv_reader *csv_reader_new(FILE *in, size_t field_cap, size_t record_cap);

/* csv_reader_set_max_fields sets the cap on fields per record (0: default). */
void csv_reader_set_max_fields(csv_reader *r, size_t max_fields);

/* csv_next reads the next record. Returns 0 with the record in *rec;
 * TD_ENOTFOUND at the end of input (and on every call after); TD_EINVAL when
 * this record is bad: e->msg says "line N: column C: why" (rec->line is N,
 * rec->nfields 0) and the next call goes on with the next record; TD_EIO when
 * reading failed (sticky). e may be NULL. */
int csv_next(csv_reader *r, csv_record *rec, td_error *e);

/* csv_reader_lines returns the physical lines read so far (for messages such
 * as "read 1000 lines"); lines read again after a broken quote count once. */
size_t csv_reader_lines(const csv_reader *r);

/* csv_reader_bytes returns the bytes of input consumed so far (for progress
 * bars); it never decreases. */
uint64_t csv_reader_bytes(const csv_reader *r);

/* csv_reader_free releases r and everything it lent; NULL is a no-op. */
void csv_reader_free(csv_reader *r);

/* csv_write_record writes one record of n fields to out, quoting a field only
 * when it holds a comma, quote, CR or LF, begins or ends with a space or tab,
 * or begins with a BOM (a lone empty field is written as ""), and ends it with
 * CRLF. lens may be NULL when every field is a NUL-terminated string. Returns
 * 0; TD_EINVAL when n is 0 or a field holds a NUL byte (nothing is written);
 * TD_EIO when writing failed. Fields that are not valid UTF-8 are written as
 * they are, but the reader will refuse them. */
int csv_write_record(FILE *out, const char *const *fields, const size_t *lens, size_t n);

/* csv_format_record appends the same bytes to out. Returns 0; TD_EINVAL as
 * above; TD_ETOOBIG when out's cap would be passed (out is then unchanged). */
int csv_format_record(buf *out, const char *const *fields, const size_t *lens, size_t n);

#endif
