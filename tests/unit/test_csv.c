/* Unit tests for util/csv: the reader's table of cases (each also run with
 * the interesting bytes placed across the 64 KiB read boundary), caps and
 * memory bounds, a pipe as input, one million rows, and writer round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/csv.h"
#include "util/err.h"
#include "util/xalloc.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
#include <sanitizer/allocator_interface.h>
#endif

/* heap_in_use returns the bytes the program has allocated now. */
static size_t heap_in_use(void)
{
#ifdef HAVE_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

/* render appends "LINE:f1|f2" with \n, \r, | and \ escaped, or "!LINE:msg". */
static void render(buf *out, int rc, const csv_record *rec, const td_error *e)
{
    if (rc == TD_EINVAL) {
        buf_printf(out, "!%zu:%s", rec->line, e->msg);
        return;
    }
    buf_printf(out, "%zu:", rec->line);
    for (size_t i = 0; i < rec->nfields; i++) {
        if (i)
            buf_putc(out, '|');
        assert_int_equal(strlen(rec->fields[i]), rec->lens[i]);
        for (size_t j = 0; j < rec->lens[i]; j++) {
            char c = rec->fields[i][j];
            if (c == '\n')
                buf_puts(out, "\\n");
            else if (c == '\r')
                buf_puts(out, "\\r");
            else if (c == '|' || c == '\\')
                buf_printf(out, "\\%c", c);
            else
                buf_putc(out, c);
        }
    }
}

#define MAXOUT 8

struct rcase {
    const char *name;
    const char *in;
    size_t len;           /* 0: strlen(in) */
    size_t field_cap;     /* 0: default */
    size_t record_cap;    /* 0: default */
    bool no_shift;        /* starts with a BOM: cannot be moved */
    const char *want[MAXOUT]; /* "L:fields" or "!L:substring of the message" */
};

static const struct rcase cases[] = {
    {"simple", "a,b\nc,d\n", 0, 0, 0, false, {"1:a|b", "2:c|d"}},
    {"quoted",
     "\"a,b\",\"x\"\"y\"\"\",\"l1\r\nl2\",\"m1\nm2\"\r\nz\r\n",
     0, 0, 0, false,
     {"1:a,b|x\"y\"|l1\\r\\nl2|m1\\nm2", "4:z"}},
    {"quoted empty and quote only", "\"\",\"\"\"\"\n\"\"\n", 0, 0, 0, false, {"1:|\"", "2:"}},
    {"bom", "\xEF\xBB\xBF" "email,name\r\nx@y.z,X\r\n", 0, 0, 0, true,
     {"1:email|name", "2:x@y.z|X"}},
    {"bom only at start", "a\n\xEF\xBB\xBF" "b\n", 0, 0, 0, false, {"1:a", "2:\xEF\xBB\xBF" "b"}},
    {"bom then quote", "\xEF\xBB\xBF\"a\",b\n", 0, 0, 0, true, {"1:a|b"}},
    {"crlf", "a,b\r\nc,d\r\n", 0, 0, 0, false, {"1:a|b", "2:c|d"}},
    {"mixed endings", "a\r\nb\nc\r\nd\n", 0, 0, 0, false, {"1:a", "2:b", "3:c", "4:d"}},
    {"no final newline", "a,b\nc,d", 0, 0, 0, false, {"1:a|b", "2:c|d"}},
    {"no final newline quoted", "a\n\"b,c\"", 0, 0, 0, false, {"1:a", "2:b,c"}},
    {"final cr", "a\nb\r", 0, 0, 0, false, {"1:a", "2:b"}},
    {"trailing comma at eof", "a,", 0, 0, 0, false, {"1:a|"}},
    {"blank lines", "\n\na\n\r\n\nb\n\n", 0, 0, 0, false, {"3:a", "6:b"}},
    {"empty file", "", 0, 0, 0, false, {NULL}},
    {"only blank lines", "\n\r\n\n", 0, 0, 0, false, {NULL}},
    {"header only", "email,name\n", 0, 0, 0, false, {"1:email|name"}},
    {"empty fields", ",,\n\"\"\n,\"\"\n", 0, 0, 0, false, {"1:||", "2:", "3:|"}},
    {"spaces kept", " a , b \n", 0, 0, 0, false, {"1: a | b "}},
    {"ragged rows", "a,b,c\nd\ne,f\n", 0, 0, 0, false, {"1:a|b|c", "2:d", "3:e|f"}},
    {"arabic and thai",
     "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7,\"\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1,\"\n", 0, 0,
     0, false,
     {"1:\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7|\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1,"}},
    {"unterminated quote in the middle", "h\na,\"b\nc,d\ne,f\n", 0, 0, 0, false,
     {"1:h",
      "!2:line 2: column 2: unterminated quote (opened on line 2, still open at the end of input)"
      "; reading resumes at line 3",
      "3:c|d", "4:e|f"}},
    {"unterminated quote after a good quoted field", "a,\"x\ny\",\"b\nc\nd,e\n", 0, 0, 0, false,
     {"!1:column 3: unterminated quote (opened on line 2", "!2:unterminated quote", "3:c",
      "4:d|e"}},
    {"unterminated quote on the last line", "a\n\"bc", 0, 0, 0, false,
     {"1:a", "!2:column 1: unterminated quote (opened on line 2, still open at the end of input)"}},
    {"unterminated quote over the record cap", "h\na,\"b\nc,d\ne,f\ng,h\ni,j\nk,l\n", 0, 0, 12,
     false,
     {"1:h", "!2:still open after the record cap of 12 bytes); reading resumes at line 3",
      "3:c|d", "4:e|f", "5:g|h", "6:i|j", "7:k|l"}},
    {"stray quote", "a,b\"c,d\ne,f\n", 0, 0, 0, false,
     {"!1:line 1: column 2: stray quote in an unquoted field", "2:e|f"}},
    {"stray quote then a quoted line break", "h\nab\"c,\"x\ny\",z\nq\n", 0, 0, 0, false,
     {"1:h", "!2:column 1: stray quote", "4:q"}},
    {"text after closing quote", "\"a\"b,c\nd\n", 0, 0, 0, false,
     {"!1:column 1: text after a closing quote", "2:d"}},
    {"broken quoting across lines", "h\nx,\"y\nok1\nok2,\"z\"w\nok3\n", 0, 0, 0, false,
     {"1:h", "!2:column 2: broken quoting: the quote opened on line 2 spans lines and ends in a "
      "closing quote followed by text on line 4; reading resumes at line 3",
      "3:ok1", "!4:column 2: text after a closing quote", "5:ok3"}},
    {"invalid utf-8", "a\n\xff,b\nc,\xc0\xaf\nd\n", 0, 0, 0, false,
     {"1:a", "!2:line 2: column 1: invalid UTF-8", "!3:column 2: invalid UTF-8", "4:d"}},
    {"invalid utf-8 in a later line of the record", "\"a\nb\xff\",c\nd\n", 0, 0, 0, false,
     {"!1:column 1: invalid UTF-8 at byte 4 of the field", "3:d"}},
    {"surrogate", "\xed\xa0\x80\nok\n", 0, 0, 0, false, {"!1:invalid UTF-8", "2:ok"}},
    {"nul byte", "a\nb\0c,d\ne\n", 10, 0, 0, false, {"1:a", "!2:column 1: NUL byte", "3:e"}},
    {"nul in quotes, later line", "\"a\nb\0\",c\nd\n", 11, 0, 0, false,
     {"!1:column 1: NUL byte (on line 2)", "3:d"}},
    {"bare cr", "a\rb\nc\n", 0, 0, 0, false, {"!1:carriage return not followed", "2:c"}},
    {"cr cr lf", "a\r\r\nb\n", 0, 0, 0, false, {"!1:carriage return", "2:b"}},
    {"field cap", "abcd,e\nabcde,f\n\"abcdef\",g\n\"ab\"\"c\"\n\"ab\"\"cd\"\nok\n", 0, 4, 0,
     false,
     {"1:abcd|e", "!2:column 1: field longer than 4 bytes", "!3:field longer than 4 bytes",
      "4:ab\"c", "!5:field longer", "6:ok"}},
    {"record cap", "a,b,c\nabcdefghij,k\nok\n", 0, 0, 8, false,
     {"1:a|b|c", "!2:record longer than 8 bytes", "3:ok"}},
};

/* run_case reads in (after pad blank lines) and checks it against c->want. */
static void run_case(const struct rcase *c, size_t pad)
{
    size_t len = c->len ? c->len : strlen(c->in);
    char *data = xmalloc(pad + len + 1);
    memset(data, '\n', pad);
    memcpy(data + pad, c->in, len);
    FILE *f = fmemopen(data, pad + len, "r");
    assert_non_null(f);
    csv_reader *r = csv_reader_new(f, c->field_cap, c->record_cap);
    csv_record rec;
    td_error e;
    buf got;
    buf_init(&got, BUF_NOCAP);
    size_t n = 0;
    int rc;
    while ((rc = csv_next(r, &rec, &e)) != TD_ENOTFOUND) {
        assert_true(rc == 0 || rc == TD_EINVAL);
        buf_reset(&got);
        render(&got, rc, &rec, &e);
        const char *w = n < MAXOUT ? c->want[n] : NULL;
        if (!w)
            fail_msg("%s (pad %zu): unexpected record %s", c->name, pad, got.data);
        /* Compare with the line shifted by the padding. */
        bool err = w[0] == '!';
        size_t wline = strtoul(w + err, NULL, 10) + pad;
        const char *wrest = strchr(w, ':') + 1;
        if (err != (rc == TD_EINVAL) || rec.line != wline)
            fail_msg("%s (pad %zu): record %zu: got %s, want %s", c->name, pad, n, got.data, w);
        const char *grest = strchr(got.data, ':') + 1;
        if (err ? strstr(grest, wrest) == NULL && !(pad && strstr(wrest, "line "))
                : strcmp(grest, wrest) != 0)
            fail_msg("%s (pad %zu): record %zu: got %s, want %s", c->name, pad, n, got.data, w);
        n++;
    }
    if (n < MAXOUT && c->want[n])
        fail_msg("%s (pad %zu): missing %s", c->name, pad, c->want[n]);
    assert_int_equal(csv_next(r, &rec, &e), TD_ENOTFOUND); /* and stays at the end */
    assert_int_equal(csv_reader_bytes(r), pad + len);
    buf_free(&got);
    csv_reader_free(r);
    fclose(f);
    free(data);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], 0);
}

/* The reader reads 64 KiB at a time: every case again with its first bytes
 * at each offset around that boundary (blank lines before it are skipped, so
 * only the line numbers move). */
static void test_table_across_chunks(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].no_shift)
            continue;
        for (size_t pad = 65536 - 24; pad <= 65536; pad++)
            run_case(&cases[i], pad);
    }
}

static void test_line_count(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        size_t lines;
    } t[] = {{"", 0}, {"a", 1}, {"a\n", 1}, {"a\nb", 2}, {"\n\n", 2}, {"\"a\nb\"\n", 2}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char data[16];
        size_t len = strlen(t[i].in);
        memcpy(data, t[i].in, len);
        FILE *f = fmemopen(data, len ? len : 1, "r");
        if (!len)
            fgetc(f); /* fmemopen wants a size of 1 or more: read it away */
        csv_reader *r = csv_reader_new(f, 0, 0);
        csv_record rec;
        while (csv_next(r, &rec, NULL) != TD_ENOTFOUND)
            ;
        assert_int_equal(csv_reader_lines(r), t[i].lines);
        csv_reader_free(r);
        fclose(f);
    }
}

/* A 10 MB field is reported as oversize while memory stays near the cap,
 * quoted or not, and the next row is fine. */
static void test_huge_field(void **state)
{
    (void)state;
    for (int quoted = 0; quoted < 2; quoted++) {
        FILE *f = tmpfile();
        assert_non_null(f);
        fputs("email,name\n", f);
        if (quoted)
            fputc('"', f);
        for (int i = 0; i < 10 * 1024; i++) {
            char kb[1024];
            memset(kb, 'x', sizeof kb);
            fwrite(kb, 1, sizeof kb, f);
        }
        if (quoted)
            fputc('"', f);
        fputs(",y\nnext@example.com,Next\n", f);
        rewind(f);

        size_t before = heap_in_use();
        csv_reader *r = csv_reader_new(f, 0, 0);
        csv_record rec;
        td_error e;
        assert_int_equal(csv_next(r, &rec, &e), 0);
        assert_int_equal(csv_next(r, &rec, &e), TD_EINVAL);
        assert_int_equal(rec.line, 2);
        assert_non_null(strstr(e.msg, "line 2: column 1: field longer than 1048576 bytes"));
        size_t used = heap_in_use() - before;
        assert_true(used < (size_t)3 << 20); /* one field cap plus buffers */
        assert_int_equal(csv_next(r, &rec, &e), 0);
        assert_int_equal(rec.line, 3);
        assert_int_equal(rec.nfields, 2);
        assert_string_equal(rec.fields[0], "next@example.com");
        assert_int_equal(csv_next(r, &rec, &e), TD_ENOTFOUND);
        csv_reader_free(r);
        fclose(f);
    }
}

/* A record of 100,000 fields: refused by the field-count cap and by a record
 * cap below its size, read whole when both allow it; the next row is fine. */
static void test_many_fields(void **state)
{
    (void)state;
    const size_t nf = 100000;
    buf in;
    buf_init(&in, BUF_NOCAP);
    for (size_t i = 0; i < nf; i++)
        buf_puts(&in, i ? ",a" : "a");
    buf_puts(&in, "\r\nlast,row\r\n");

    for (int mode = 0; mode < 3; mode++) {
        FILE *f = fmemopen(in.data, in.len, "r");
        csv_reader *r = csv_reader_new(f, 0, mode == 1 ? 20000 : 0);
        if (mode == 2)
            csv_reader_set_max_fields(r, nf);
        csv_record rec;
        td_error e;
        int rc = csv_next(r, &rec, &e);
        if (mode == 0) {
            assert_int_equal(rc, TD_EINVAL);
            assert_non_null(strstr(e.msg, "line 1: column 16385: more than 16384 fields"));
        } else if (mode == 1) {
            assert_int_equal(rc, TD_EINVAL);
            assert_non_null(strstr(e.msg, "line 1: record longer than 20000 bytes"));
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(rec.nfields, nf);
            assert_string_equal(rec.fields[nf - 1], "a");
        }
        assert_int_equal(csv_next(r, &rec, &e), 0);
        assert_int_equal(rec.line, 2);
        assert_string_equal(rec.fields[1], "row");
        assert_int_equal(csv_next(r, &rec, &e), TD_ENOTFOUND);
        csv_reader_free(r);
        fclose(f);
    }
    buf_free(&in);
}

/* pipe_from returns a read stream fed by a child process writing data: a
 * non-seekable input like stdin. */
static FILE *pipe_from(const char *data, size_t len, pid_t *pid)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    *pid = fork();
    assert_true(*pid >= 0);
    if (*pid == 0) {
        close(fd[0]);
        while (len) {
            ssize_t w = write(fd[1], data, len);
            if (w <= 0)
                _exit(1);
            data += w;
            len -= (size_t)w;
        }
        _exit(0);
    }
    close(fd[1]);
    return fdopen(fd[0], "r");
}

/* An unterminated quote early in a 300 KB piped input: every row after it
 * comes through, with its line number, although the kept lines span several
 * reads. */
static void test_unterminated_on_pipe(void **state)
{
    (void)state;
    const size_t rows = 30000;
    buf in;
    buf_init(&in, BUF_NOCAP);
    buf_puts(&in, "email,name\r\nbad@example.com,\"Bad\r\n");
    for (size_t i = 0; i < rows; i++)
        buf_printf(&in, "user%zu@example.com,User %zu\r\n", i, i);

    for (int cap = 0; cap < 2; cap++) {
        pid_t pid;
        FILE *f = pipe_from(in.data, in.len, &pid);
        /* cap 1: a record cap far below the rest of the input */
        csv_reader *r = csv_reader_new(f, 0, cap ? 5000 : 0);
        csv_record rec;
        td_error e;
        assert_int_equal(csv_next(r, &rec, &e), 0);
        assert_int_equal(csv_next(r, &rec, &e), TD_EINVAL);
        assert_int_equal(rec.line, 2);
        assert_non_null(strstr(e.msg, "line 2: column 2: unterminated quote (opened on line 2"));
        assert_non_null(strstr(e.msg, "reading resumes at line 3"));
        for (size_t i = 0; i < rows; i++) {
            assert_int_equal(csv_next(r, &rec, &e), 0);
            assert_int_equal(rec.line, i + 3);
            char want[64];
            snprintf(want, sizeof want, "user%zu@example.com", i);
            assert_string_equal(rec.fields[0], want);
        }
        assert_int_equal(csv_next(r, &rec, &e), TD_ENOTFOUND);
        assert_int_equal(csv_reader_lines(r), rows + 2);
        assert_int_equal(csv_reader_bytes(r), in.len);
        csv_reader_free(r);
        fclose(f);
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    buf_free(&in);
}

/* Re-reading is budgeted: an input made only of quotes that each reopen a
 * multi-line field must still be read in linear time. */
static void test_reread_budget(void **state)
{
    (void)state;
    buf in;
    buf_init(&in, BUF_NOCAP);
    for (int i = 0; i < 20000; i++)
        buf_puts(&in, "a,\"b\n");
    FILE *f = fmemopen(in.data, in.len, "r");
    csv_reader *r = csv_reader_new(f, 0, 0);
    csv_record rec;
    td_error e;
    size_t last = 0, n = 0;
    int rc;
    clock_t t0 = clock();
    while ((rc = csv_next(r, &rec, &e)) != TD_ENOTFOUND) {
        assert_true(rc == 0 || rc == TD_EINVAL);
        assert_true(rec.line > last);
        last = rec.line;
        n++;
    }
    assert_true(n >= 1);
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 5.0);
    csv_reader_free(r);
    fclose(f);
    buf_free(&in);
}

/* One million small rows from a temporary file: all counted, quickly. */
static void test_million_rows(void **state)
{
    (void)state;
    FILE *f = tmpfile();
    assert_non_null(f);
    fputs("email,first_name,last_name\n", f);
    for (int i = 0; i < 1000000; i++)
        fprintf(f, "user%d@example.com,First%d,\"Last, %d\"\r\n", i, i, i % 1000);
    long size = ftell(f);
    rewind(f);

    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    csv_reader *r = csv_reader_new(f, 0, 0);
    csv_record rec;
    td_error e;
    size_t n = 0, fields = 0;
    int rc;
    while ((rc = csv_next(r, &rec, &e)) == 0) {
        n++;
        fields += rec.nfields;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    assert_int_equal(rc, TD_ENOTFOUND);
    assert_int_equal(n, 1000001);
    assert_int_equal(fields, 3 * n);
    assert_int_equal(csv_reader_lines(r), 1000001);
    assert_int_equal(csv_reader_bytes(r), (uint64_t)size);
    double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    print_message("1,000,001 records, %ld bytes in %.3f s: %.2f M records/s\n", size, t,
                  (double)n / t / 1e6);
    assert_true(t < 10.0); /* about 0.15 s optimised; sanitizers are slower */
    csv_reader_free(r);
    fclose(f);
}

/* Random records of awkward pieces: what the writer writes, the reader reads
 * back identically; the FILE and buf writers agree byte for byte. */
static void test_round_trip(void **state)
{
    (void)state;
    static const char *const piece[] = {
        "a", "Z9", ",", "\"", "\n", "\r\n", "\r", " ", "\t", "", "x y", "\xEF\xBB\xBF",
        "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", /* Arabic */
        "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\x94\xe0\xb8\xb5", /* Thai */
        "user@example.com", "\"\"", "'", ";",
    };
    const size_t npiece = sizeof piece / sizeof piece[0];
    enum { NREC = 3000, MAXF = 7 };
    srand(42);
    char *fld[NREC][MAXF];
    size_t len[NREC][MAXF], nf[NREC];
    FILE *f = tmpfile();
    buf whole;
    buf_init(&whole, BUF_NOCAP);
    for (size_t i = 0; i < NREC; i++) {
        nf[i] = 1 + (size_t)rand() % MAXF;
        for (size_t j = 0; j < nf[i]; j++) {
            buf b;
            buf_init(&b, BUF_NOCAP);
            int k = rand() % 6;
            for (int m = 0; m < k; m++)
                buf_puts(&b, piece[(size_t)rand() % npiece]);
            len[i][j] = b.len;
            fld[i][j] = buf_steal(&b);
            buf_free(&b);
        }
        assert_int_equal(csv_write_record(f, (const char *const *)fld[i], len[i], nf[i]), 0);
        assert_int_equal(csv_format_record(&whole, (const char *const *)fld[i], len[i], nf[i]),
                         0);
    }
    /* the two writers agree */
    long size = ftell(f);
    assert_int_equal((size_t)size, whole.len);
    rewind(f);
    char *disk = xmalloc(whole.len + 1);
    assert_int_equal(fread(disk, 1, whole.len, f), whole.len);
    assert_memory_equal(disk, whole.data, whole.len);
    free(disk);
    rewind(f);

    csv_reader *r = csv_reader_new(f, 0, 0);
    csv_record rec;
    td_error e;
    for (size_t i = 0; i < NREC; i++) {
        int rc = csv_next(r, &rec, &e);
        if (rc)
            fail_msg("record %zu: %s", i, e.msg);
        assert_int_equal(rec.nfields, nf[i]);
        for (size_t j = 0; j < nf[i]; j++) {
            assert_int_equal(rec.lens[j], len[i][j]);
            assert_memory_equal(rec.fields[j], fld[i][j], len[i][j]);
            free(fld[i][j]);
        }
    }
    assert_int_equal(csv_next(r, &rec, &e), TD_ENOTFOUND);
    csv_reader_free(r);
    fclose(f);
    buf_free(&whole);
}

static void test_writer(void **state)
{
    (void)state;
    static const struct {
        const char *f[3];
        size_t n;
        const char *want; /* NULL: TD_EINVAL */
    } t[] = {
        {{"a", "b", "c"}, 3, "a,b,c\r\n"},
        {{"a,b", "say \"hi\"", "x\ny"}, 3, "\"a,b\",\"say \"\"hi\"\"\",\"x\ny\"\r\n"},
        {{" lead", "trail ", "in side"}, 3, "\" lead\",\"trail \",in side\r\n"},
        {{"", "", ""}, 3, ",,\r\n"},
        {{""}, 1, "\"\"\r\n"},
        {{"cr\r"}, 1, "\"cr\r\"\r\n"},
        {{"\xEF\xBB\xBF" "x"}, 1, "\"\xEF\xBB\xBF" "x\"\r\n"},
        {{"a"}, 0, NULL},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        int rc = csv_format_record(&b, t[i].f, NULL, t[i].n);
        if (!t[i].want) {
            assert_int_equal(rc, TD_EINVAL);
        } else {
            assert_int_equal(rc, 0);
            assert_string_equal(b.data, t[i].want);
        }
        buf_free(&b);
    }
    /* a NUL inside a field is refused and nothing is written */
    const char *nul[] = {"ok", "a\0b"};
    size_t lens[] = {2, 3};
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_puts(&b, "kept");
    assert_int_equal(csv_format_record(&b, nul, lens, 2), TD_EINVAL);
    assert_string_equal(b.data, "kept");
    buf_free(&b);
    /* a buffer cap is reported and the buffer left as it was */
    buf_init(&b, 6);
    const char *two[] = {"abc", "def"};
    assert_int_equal(csv_format_record(&b, two, NULL, 2), TD_ETOOBIG);
    assert_int_equal(b.len, 0);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_across_chunks),
        cmocka_unit_test(test_line_count),
        cmocka_unit_test(test_huge_field),
        cmocka_unit_test(test_many_fields),
        cmocka_unit_test(test_unterminated_on_pipe),
        cmocka_unit_test(test_reread_budget),
        cmocka_unit_test(test_million_rows),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
