/* Fuzz target for util/csv: reads the input (through fmemopen, with small
 * caps) record by record and checks the reader's promises: it ends, line
 * numbers only go up, good fields are valid UTF-8 without NUL and within the
 * caps, errors name a line, and every good record survives writer -> reader.
 * The first byte picks options: bit 0 puts the input just across the 64 KiB
 * read boundary (after blank lines), bit 1 a tiny record cap. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/csv.h"
#include "util/err.h"
#include "util/utf8.h"

#define FIELD_CAP 64
#define MAX_FIELDS 16

/* round_trip writes rec and reads it back: the same fields must come out. */
static void round_trip(const csv_record *rec)
{
    buf out;
    buf_init(&out, BUF_NOCAP);
    if (csv_format_record(&out, rec->fields, rec->lens, rec->nfields) != 0)
        abort();
    FILE *f = fmemopen(out.data, out.len, "r");
    if (!f)
        abort();
    csv_reader *r = csv_reader_new(f, 0, 0);
    csv_record back;
    td_error e;
    if (csv_next(r, &back, &e) != 0 || back.nfields != rec->nfields || back.line != 1)
        abort();
    for (size_t i = 0; i < rec->nfields; i++)
        if (back.lens[i] != rec->lens[i] || memcmp(back.fields[i], rec->fields[i], rec->lens[i]))
            abort();
    if (csv_next(r, &back, &e) != TD_ENOTFOUND)
        abort();
    csv_reader_free(r);
    fclose(f);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opt = data[0];
    data++;
    size--;
    size_t pad = (opt & 1) ? 65536 - 32 + (opt >> 2) % 40 : 0;
    size_t record_cap = (opt & 2) ? 24 : 256;
    size_t total = pad + size;
    if (total == 0)
        return 0; /* fmemopen wants at least one byte */
    char *in = malloc(total);
    if (!in)
        abort();
    memset(in, '\n', pad);
    memcpy(in + pad, data, size);
    size_t nl = 0;
    for (size_t i = 0; i < total; i++)
        nl += in[i] == '\n';

    FILE *f = fmemopen(in, total, "r");
    if (!f)
        abort();
    csv_reader *r = csv_reader_new(f, FIELD_CAP, record_cap);
    csv_reader_set_max_fields(r, MAX_FIELDS);
    csv_record rec;
    td_error e;
    size_t last = 0, n = 0;
    uint64_t bytes = 0;
    int rc;
    while ((rc = csv_next(r, &rec, &e)) != TD_ENOTFOUND) {
        if (++n > 2 * total + 2)
            abort(); /* every record starts after the one before */
        if (rec.line <= last || rec.line > nl + 1)
            abort();
        last = rec.line;
        if (csv_reader_bytes(r) < bytes || csv_reader_bytes(r) > total)
            abort();
        bytes = csv_reader_bytes(r);
        if (rc == TD_EINVAL) {
            if (strncmp(e.msg, "line ", 5) != 0)
                abort();
            continue;
        }
        if (rc != 0 || rec.nfields == 0 || rec.nfields > MAX_FIELDS)
            abort();
        for (size_t i = 0; i < rec.nfields; i++) {
            if (rec.lens[i] > FIELD_CAP || strlen(rec.fields[i]) != rec.lens[i] ||
                !utf8_valid(rec.fields[i], rec.lens[i], NULL))
                abort();
        }
        round_trip(&rec);
    }
    if (csv_next(r, &rec, &e) != TD_ENOTFOUND || csv_reader_bytes(r) != total ||
        csv_reader_lines(r) > nl + 1)
        abort();
    csv_reader_free(r);
    fclose(f);
    free(in);
    return 0;
}
