/* Unit tests for audience/import and audience/export on temporary databases:
 * a table of CSV inputs (RFC 4180 quoting, line endings, BOM, empty and
 * header-only files, wrong column counts, broken quotes, NUL bytes, invalid
 * UTF-8, CR/LF in every text field, duplicate addresses, attribute typing)
 * with the rows they must import and the lines they must refuse; a 10 MB
 * field; re-import; and import(export(list)) == list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audience/export.h"
#include "audience/import.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

/* ---- fixture ------------------------------------------------------------- */

struct fx {
    char dir[64], path[96];
    store *s;
    int64_t list;        /* "L", single opt-in */
    int64_t dlist;       /* "D", double opt-in */
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/tdimport.XXXXXX", tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/t.db", f->dir);
    td_error e = {0};
    if (store_open(f->path, &f->s, &e))
        return -1;
    list_rec l = {.name = "L", .optin = "single", .visibility = "private"};
    list_rec d = {.name = "D", .optin = "double", .visibility = "private"};
    if (store_list_add(f->s, &l, &f->list, &e) || store_list_add(f->s, &d, &f->dlist, &e))
        return -1;
    *state = f;
    return 0;
}

static void rm_db(const char *path)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    char p[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
    }
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->s);
    rm_db(f->path);
    char p[128];
    snprintf(p, sizeof p, "%s/other.db", f->dir);
    rm_db(p);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------------- */

struct result {
    int rc;
    td_error e;
    import_stats st;
    char rejects[4096]; /* "3,5," */
    char reasons[8192]; /* one per line */
    int bad_reason;     /* a reason did not start with "line N:" */
    int progress_calls;
    import_stats last_progress;
};

static void on_reject(void *ud, uint64_t line, const char *reason)
{
    struct result *r = ud;
    size_t n = strlen(r->rejects);
    snprintf(r->rejects + n, sizeof r->rejects - n, "%llu,", (unsigned long long)line);
    char want[32];
    snprintf(want, sizeof want, "line %llu: ", (unsigned long long)line);
    if (strncmp(reason, want, strlen(want)))
        r->bad_reason = 1;
    n = strlen(r->reasons);
    snprintf(r->reasons + n, sizeof r->reasons - n, "%s\n", reason);
}

static void on_progress(void *ud, const import_stats *st)
{
    struct result *r = ud;
    r->progress_calls++;
    r->last_progress = *st;
}

static FILE *file_of(const char *data, size_t len)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    if (len)
        assert_int_equal(fwrite(data, 1, len, f), len);
    rewind(f);
    return f;
}

static struct result run_import(store *s, int64_t list, const char *optin, sub_mode mode,
                                const char *data, size_t len, unsigned batch)
{
    struct result r;
    memset(&r, 0, sizeof r);
    FILE *in = file_of(data, len);
    import_opts o = {.list_id = list, .list_optin = optin, .mode = mode, .batch = batch,
                     .reject = on_reject, .progress = on_progress, .ud = &r};
    r.rc = import_csv(s, in, &o, &r.st, &r.e);
    fclose(in);
    return r;
}

static struct result imp(struct fx *f, const char *csv)
{
    return run_import(f->s, f->list, "single", SUB_MODE_SUBSCRIBE, csv, strlen(csv), 0);
}

/* dump describes a list: one line per member, sorted:
 * email|name|attribs|timezone|locale|membership|status. */
struct dump {
    buf b;
    store *s;
};

static int dump_one(void *ud, const member_rec *m)
{
    struct dump *d = ud;
    buf_printf(&d->b, "%s|%s|%s|%s|%s|%s|%s\n", m->sub.email, m->sub.name, m->sub.attribs,
               m->sub.timezone ? m->sub.timezone : "", m->sub.locale ? m->sub.locale : "",
               m->status, m->sub.status);
    return 0;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *dump(store *s, int64_t list)
{
    struct dump d;
    buf_init(&d.b, BUF_NOCAP);
    td_error e = {0};
    assert_int_equal(store_member_each(s, list, dump_one, &d, &e), TD_OK);
    /* Sorted, so that the order ids were given in does not matter. */
    size_t n = 0;
    for (size_t i = 0; i < d.b.len; i++)
        n += d.b.data[i] == '\n';
    char **lines = calloc(n + 1, sizeof *lines);
    char *save = NULL, *p = strtok_r(d.b.data, "\n", &save);
    for (size_t i = 0; p && i < n; p = strtok_r(NULL, "\n", &save))
        lines[i++] = p;
    qsort(lines, n, sizeof *lines, by_str);
    buf out;
    buf_init(&out, BUF_NOCAP);
    for (size_t i = 0; i < n; i++)
        buf_printf(&out, "%s\n", lines[i]);
    free(lines);
    buf_free(&d.b);
    char *text = buf_steal(&out);
    buf_free(&out);
    return text;
}

/* export_text exports a list into a string. */
static char *export_text(store *s, int64_t list, size_t *len, uint64_t *rows)
{
    FILE *f = tmpfile();
    td_error e = {0};
    assert_int_equal(export_csv(s, list, f, rows, &e), TD_OK);
    long n = ftell(f);
    rewind(f);
    char *out = malloc((size_t)n + 1);
    assert_int_equal(fread(out, 1, (size_t)n, f), (size_t)n);
    out[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return out;
}

static int64_t new_list(store *s, const char *name, const char *optin)
{
    list_rec l = {.name = (char *)name, .optin = (char *)optin, .visibility = "private"};
    int64_t id = 0;
    td_error e = {0};
    assert_int_equal(store_list_add(s, &l, &id, &e), TD_OK);
    return id;
}

/* ---- the table ---------------------------------------------------------------- */

#define M(email, name, attribs) email "|" name "|" attribs "||" "|confirmed|enabled\n"

static const struct icase {
    const char *what;
    const char *csv;
    size_t len; /* 0: strlen */
    int rc;
    uint64_t rows, invalid;
    const char *rejects; /* lines refused, "3,5," */
    const char *members; /* dump() of list L afterwards */
} cases[] = {
    {"quoted commas and quotes",
     "email,name,city\r\n\"a@x.com\",\"Smith, \"\"Jr\"\"\",\"Paris, FR\"\r\nb@x.com,Bo,\"\"\r\n",
     0, TD_OK, 2, 0, "",
     M("a@x.com", "Smith, \"Jr\"", "{\"city\":\"Paris, FR\"}") M("b@x.com", "Bo", "{}")},
    {"line break inside a quoted attribute; later line numbers right",
     "email,note\na@x.com,\"two\nlines\"\nnot-an-address,x\nc@x.com,\"x\r\ny\"\r\nbad@,y\n", 0,
     TD_OK, 4, 2, "4,7,",
     M("a@x.com", "", "{\"note\":\"two\\nlines\"}") M("c@x.com", "", "{\"note\":\"x\\r\\ny\"}")},
    {"LF, CRLF and mixed line endings; no final line ending",
     "email,name\na@x.com,A\r\nb@x.com,B\nc@x.com,C", 0, TD_OK, 3, 0, "",
     M("a@x.com", "A", "{}") M("b@x.com", "B", "{}") M("c@x.com", "C", "{}")},
    {"UTF-8 BOM before the header", "\xEF\xBB\xBF" "email,name\r\na@x.com,A\r\n", 0, TD_OK, 1, 0,
     "", M("a@x.com", "A", "{}")},
    {"blank lines are skipped and counted", "email,name\n\na@x.com,A\n\n\nb,B\n", 0, TD_OK, 2, 1,
     "6,", M("a@x.com", "A", "{}")},
    {"header only", "email,name,city\r\n", 0, TD_OK, 0, 0, "", ""},
    {"empty file", "", 0, TD_EINVAL, 0, 0, "", ""},
    {"blank lines only", "\r\n\n\n", 0, TD_EINVAL, 0, 0, "", ""},
    {"BOM only", "\xEF\xBB\xBF", 0, TD_EINVAL, 0, 0, "", ""},
    {"no email column", "name,city\nA,Paris\n", 0, TD_EINVAL, 0, 0, "", ""},
    {"a column named twice", "email,City,city\na@x.com,P,Q\n", 0, TD_EINVAL, 0, 0, "", ""},
    {"a column without a name", "email,,city\na@x.com,P,Q\n", 0, TD_EINVAL, 0, 0, "", ""},
    {"a header with a line break in a column name", "email,\"ci\nty\"\na@x.com,P\n", 0,
     TD_EINVAL, 0, 0, "", ""},
    {"wrong column counts", "email,name\na@x.com,A\nb@x.com\nc@x.com,C,extra\nd@x.com,D\n", 0,
     TD_OK, 4, 2, "3,4,", M("a@x.com", "A", "{}") M("d@x.com", "D", "{}")},
    {"unterminated quote at the end",
     "email,name\na@x.com,A\nb@x.com,\"B\n", 0, TD_OK, 2, 1, "3,", M("a@x.com", "A", "{}")},
    {"unterminated quote in the middle: the lines after it still import",
     "email,name\na@x.com,\"A\nb@x.com,B\nc@x.com,C\n", 0, TD_OK, 3, 1, "2,",
     M("b@x.com", "B", "{}") M("c@x.com", "C", "{}")},
    {"stray quote and text after a closing quote",
     "email,name\na@x.com,A\"x\nb@x.com,\"B\"x\nc@x.com,C\n", 0, TD_OK, 3, 2, "2,3,",
     M("c@x.com", "C", "{}")},
    {"NUL bytes in each column", "email,name,city\na@x.com,A\0B,P\nb@x\0.com,B,P\nc@x.com,C,P\0\nd@x.com,D,P\n",
     sizeof "email,name,city\na@x.com,A\0B,P\nb@x\0.com,B,P\nc@x.com,C,P\0\nd@x.com,D,P\n" - 1,
     TD_OK, 4, 3, "2,3,4,", M("d@x.com", "D", "{\"city\":\"P\"}")},
    {"invalid UTF-8 in each column",
     "email,name,city\na@x.com,\xff,P\nb\xc3@x.com,B,P\nc@x.com,C,\xed\xa0\x80\nd@x.com,"
     "\xd9\x84\xd9\x8a\xd9\x84\xd9\x89,P\n",
     0, TD_OK, 4, 3, "2,3,4,",
     M("d@x.com", "\xd9\x84\xd9\x8a\xd9\x84\xd9\x89", "{\"city\":\"P\"}")},
    {"CR/LF in every text field",
     "email,name,timezone,locale,subscription\n"
     "\"a@x.com\r\n\",A,,,\n"              /* 2: email */
     "b@x.com,\"B\nB\",,,\n"               /* 4: name */
     "c@x.com,\"C\rC\",,,\n"               /* 6: name, lone CR */
     "d@x.com,D,\"Asia/Bangkok\n\",,\n"    /* 7: time zone */
     "e@x.com,E,,\"th\r\nTH\",\n"          /* 9: locale */
     "f@x.com,F,,,\"confirmed\n\"\n"       /* 11: subscription */
     "g@x.com,G\rG,,,\n"                   /* 13: lone CR outside quotes */
     "h@x.com,H,Asia/Bangkok,th-TH,confirmed\n",
     0, TD_OK, 8, 7, "2,4,6,7,9,11,13,",
     "h@x.com|H|{}|Asia/Bangkok|th-TH|confirmed|enabled\n"},
    {"duplicate addresses differing in the case of the domain: one subscriber",
     "email,name\nann@Example.COM,First\nann@example.com,Second\nANN@EXAMPLE.com,Other\n", 0,
     TD_OK, 3, 0, "", M("ANN@example.com", "Other", "{}") M("ann@example.com", "First", "{}")},
    {"spaces around cells are trimmed; an empty email is refused",
     "email , name\n  a@x.com\t,  A  \n   ,B\n", 0, TD_OK, 2, 1, "3,", M("a@x.com", "A", "{}")},
    {"numbers stay numbers, everything else is text",
     "email,int,neg,real,exp,zip,phone,word,empty,zero,truth\n"
     "a@x.com,42,-7,2.5,1e3,01234,+3312,12a,,0,true\n",
     0, TD_OK, 1, 0, "",
     M("a@x.com", "", "{\"exp\":1000,\"int\":42,\"neg\":-7,\"phone\":\"+3312\",\"real\":2.5,"
                      "\"truth\":\"true\",\"word\":\"12a\",\"zero\":0,\"zip\":\"01234\"}")},
    {"the attributes column: canonical JSON; a column of the same name wins",
     "email,attributes,city\n"
     "a@x.com,\"{ \"\"b\"\": [1, 2], \"\"a\"\": \"\"x\"\", \"\"city\"\": \"\"Rome\"\" }\",Paris\n"
     "b@x.com,\"{\"\"k\"\":\"\"line\\nbreak\"\"}\",\n"
     "c@x.com,[1],\n"
     "d@x.com,{not json,\n"
     "e@x.com,\"{\"\"k\"\":1,\"\"k\"\":2}\",\n"
     "f@x.com,\"{\"\"k\"\":\"\"raw\nbreak\"\"}\",\n"
     "g@x.com,,\n",
     0, TD_OK, 7, 4, "4,5,6,7,",
     M("a@x.com", "", "{\"a\":\"x\",\"b\":[1,2],\"city\":\"Paris\"}")
     M("b@x.com", "", "{\"k\":\"line\\nbreak\"}") M("g@x.com", "", "{}")},
    {"subscription column: statuses, refusals",
     "email,subscription\na@x.com,confirmed\nb@x.com,unconfirmed\nc@x.com,unsubscribed\n"
     "d@x.com,maybe\ne@x.com,\n",
     0, TD_OK, 5, 1, "5,",
     "a@x.com||{}|||confirmed|enabled\nb@x.com||{}|||unconfirmed|enabled\n"
     "c@x.com||{}|||unsubscribed|enabled\ne@x.com||{}|||confirmed|enabled\n"},
    {"time zone and locale checked",
     "email,timezone,locale\na@x.com,Asia/Bangkok,th-TH\nb@x.com,Mars/Olympus,en\n"
     "c@x.com,../../etc/passwd,en\nd@x.com,UTC,not a locale\ne@x.com,,\n",
     0, TD_OK, 5, 3, "3,4,5,",
     "a@x.com||{}|Asia/Bangkok|th-TH|confirmed|enabled\ne@x.com||{}|||confirmed|enabled\n"},
    {"SQL metacharacters stored verbatim",
     "email,name,note\n"
     "a@x.com,'; DROP TABLE subscribers; --,\"\"\"; DROP TABLE lists; --\"\n"
     "\"o'brien--@x.com\",x' OR '1'='1,%_\\\n",
     0, TD_OK, 2, 0, "",
     M("a@x.com", "'; DROP TABLE subscribers; --", "{\"note\":\"\\\"; DROP TABLE lists; --\"}")
     M("o'brien--@x.com", "x' OR '1'='1", "{\"note\":\"%_\\\\\"}")},
    {"Arabic, Thai and IDN", "email,name\nlayla@\xd9\x85\xd8\xab\xd8\xa7\xd9\x84.example,"
     "\xd9\x84\xd9\x8a\xd9\x84\xd9\x89\nsomchai@example.co.th,\xe0\xb8\xaa\xe0\xb8\xa1\n",
     0, TD_OK, 2, 0, "",
     M("layla@xn--mgbh0fb.example", "\xd9\x84\xd9\x8a\xd9\x84\xd9\x89", "{}")
     M("somchai@example.co.th", "\xe0\xb8\xaa\xe0\xb8\xa1", "{}")},
    {"a name over 256 bytes is refused",
     "email,name\na@x.com,"
     "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN"
     "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN"
     "NNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNNN"
     "\nb@x.com,B\n",
     0, TD_OK, 2, 1, "2,", M("b@x.com", "B", "{}")},
};

static void test_table(void **state)
{
    (void)state;
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct icase *c = &cases[i];
        void *st = NULL;
        assert_int_equal(setup(&st), 0);
        struct fx *f = st;
        size_t len = c->len ? c->len : strlen(c->csv);
        /* Twice: with the default batch, then one row per batch into a
         * fresh list (the result must not depend on batching). */
        for (int pass = 0; pass < 2; pass++) {
            int64_t list = pass ? new_list(f->s, "L1", "single") : f->list;
            struct result r = run_import(f->s, list, "single", SUB_MODE_SUBSCRIBE, c->csv, len,
                                         pass ? 1 : 0);
            char *d = dump(f->s, list);
            if (r.rc != c->rc || r.st.rows != c->rows || r.st.invalid != c->invalid ||
                strcmp(r.rejects, c->rejects) || strcmp(d, c->members) || r.bad_reason) {
                print_error("case %zu (%s), pass %d:\n  rc %s (%s), want %s\n"
                            "  rows %llu invalid %llu, want %llu %llu\n  refused lines '%s', "
                            "want '%s'%s\n  reasons:\n%s  members:\n%s  want:\n%s\n",
                            i, c->what, pass, td_strerror(r.rc), r.e.msg, td_strerror(c->rc),
                            (unsigned long long)r.st.rows, (unsigned long long)r.st.invalid,
                            (unsigned long long)c->rows, (unsigned long long)c->invalid,
                            r.rejects, c->rejects,
                            r.bad_reason ? " (a reason does not start with 'line N: ')" : "",
                            r.reasons, d, c->members);
                failed++;
            }
            if (r.rc && !r.e.msg[0]) {
                print_error("case %zu: failure without a message\n", i);
                failed++;
            }
            free(d);
        }
        teardown(&st);
    }
    if (failed)
        fail_msg("%d table cases failed", failed);
}

/* ---- big and streaming ---------------------------------------------------------- */

/* A 10 MB field, unquoted or quoted: its row is refused, its neighbours
 * import, and the lines after it are numbered right. */
static void test_ten_megabyte_field(void **state)
{
    struct fx *f = *state;
    static const char *const shapes[] = {"name", "quoted name", "attribute"};
    for (int k = 0; k < 3; k++) {
        buf b;
        buf_init(&b, BUF_NOCAP);
        buf_puts(&b, "email,name,city\r\nbefore@x.com,Before,P\r\n");
        buf_puts(&b, "huge@x.com,");
        if (k == 1)
            buf_putc(&b, '"');
        if (k == 2)
            buf_puts(&b, "H,");
        char chunk[1024];
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (char)('a' + i % 26);
        for (int i = 0; i < 10 * 1024; i++) /* 10 MiB of text */
            buf_append(&b, chunk, sizeof chunk);
        if (k == 1)
            buf_putc(&b, '"');
        if (k != 2)
            buf_puts(&b, ",P");
        buf_puts(&b, "\r\nafter@x.com,After,P\r\nnot-an-address,X,P\r\nlast@x.com,Last,P\r\n");
        assert_true(b.len > 10u * 1024 * 1024);
        int64_t list = new_list(f->s, shapes[k], "single");
        struct result r = run_import(f->s, list, "single", SUB_MODE_SUBSCRIBE, b.data, b.len, 0);
        buf_free(&b);
        if (r.rc || strcmp(r.rejects, "3,5,") || r.st.rows != 5 || r.st.invalid != 2)
            fail_msg("%s: rc %s (%s), refused lines '%s' (want 3,5,), rows %llu; reasons:\n%s",
                     shapes[k], td_strerror(r.rc), r.e.msg, r.rejects,
                     (unsigned long long)r.st.rows, r.reasons);
        char *d = dump(f->s, list);
        assert_string_equal(d, M("after@x.com", "After", "{\"city\":\"P\"}")
                                   M("before@x.com", "Before", "{\"city\":\"P\"}")
                                       M("last@x.com", "Last", "{\"city\":\"P\"}"));
        free(d);
        assert_true(r.st.bytes > 10u * 1024 * 1024);
    }
}

/* Many rows across many batches; progress reported as it goes and at the
 * end; a second import of the same file changes nothing. */
static void test_many_rows_and_reimport(void **state)
{
    struct fx *f = *state;
    enum { N = 30000 };
    buf b;
    buf_init(&b, BUF_NOCAP);
    buf_puts(&b, "email,name,city,orders\r\n");
    for (int i = 0; i < N; i++)
        buf_printf(&b, "user%d@example.com,Name %d,City %d,%d\r\n", i, i, i % 7, i % 50);
    for (int mode = 0; mode < 2; mode++) {
        sub_mode m = mode ? SUB_MODE_UPSERT : SUB_MODE_SUBSCRIBE;
        struct result r = run_import(f->s, f->list, "single", m, b.data, b.len, 7000);
        assert_int_equal(r.rc, TD_OK);
        assert_int_equal(r.st.rows, N);
        assert_int_equal(r.st.invalid, 0);
        assert_true(r.progress_calls >= N / 8192 + 1);
        assert_int_equal(r.last_progress.rows, N);
        assert_int_equal(r.last_progress.bytes, b.len);
        if (mode == 0) {
            assert_int_equal(r.st.created, N);
            assert_int_equal(r.st.memberships, N);
        }
        /* Again: nothing changes, in either mode. */
        r = run_import(f->s, f->list, "single", m, b.data, b.len, 0);
        assert_int_equal(r.rc, TD_OK);
        if (r.st.created || r.st.updated || r.st.memberships || r.st.unchanged != N)
            fail_msg("re-import (mode %d): created %llu updated %llu unchanged %llu "
                     "memberships %llu",
                     mode, (unsigned long long)r.st.created, (unsigned long long)r.st.updated,
                     (unsigned long long)r.st.unchanged, (unsigned long long)r.st.memberships);
    }
    buf_free(&b);
    store_counts c;
    td_error e = {0};
    assert_int_equal(store_counts_get(f->s, &c, &e), TD_OK);
    assert_int_equal(c.subscribers, N);
    assert_int_equal(c.memberships, N);
}

/* Re-importing leaves updated_at alone (nothing was written). */
static void test_reimport_touches_nothing(void **state)
{
    struct fx *f = *state;
    const char *csv = "email,name,attributes,city,timezone,locale\n"
                      "a@x.com,A,\"{\"\"z\"\":1,\"\"a\"\":[true,null]}\",Paris,Europe/Paris,fr\n"
                      "b@x.com,B,,,,\n";
    for (int m = 0; m < 3; m++) {
        sub_mode mode = m == 0 ? SUB_MODE_SUBSCRIBE : m == 1 ? SUB_MODE_UPSERT : SUB_MODE_BLOCKLIST;
        struct result r = run_import(f->s, f->list, "single", mode, csv, strlen(csv), 0);
        assert_int_equal(r.rc, TD_OK);
        char *before = dump(f->s, f->list);
        sub_rec s1 = {0};
        td_error e = {0};
        assert_int_equal(store_sub_find(f->s, "a@x.com", &s1, &e), TD_OK);
        sleep(1); /* so a rewrite would show in updated_at */
        r = run_import(f->s, f->list, "single", mode, csv, strlen(csv), 0);
        assert_int_equal(r.rc, TD_OK);
        if (r.st.created || r.st.updated || r.st.memberships || r.st.unchanged != 2)
            fail_msg("mode %d: re-import changed something: %llu %llu %llu", m,
                     (unsigned long long)r.st.created, (unsigned long long)r.st.updated,
                     (unsigned long long)r.st.memberships);
        char *after = dump(f->s, f->list);
        assert_string_equal(before, after);
        sub_rec s2 = {0};
        assert_int_equal(store_sub_find(f->s, "a@x.com", &s2, &e), TD_OK);
        assert_int_equal(s1.updated_at, s2.updated_at);
        sub_rec_clear(&s1);
        sub_rec_clear(&s2);
        free(before);
        free(after);
    }
}

/* Blocklist mode blocks every address and unsubscribes it from the list. */
static void test_blocklist_mode(void **state)
{
    struct fx *f = *state;
    struct result r = imp(f, "email,name\na@x.com,A\nb@x.com,B\n");
    assert_int_equal(r.rc, TD_OK);
    const char *block = "email\nb@x.com\nc@x.com\n";
    r = run_import(f->s, f->list, "single", SUB_MODE_BLOCKLIST, block, strlen(block), 0);
    assert_int_equal(r.rc, TD_OK);
    assert_int_equal(r.st.created, 1);
    assert_int_equal(r.st.updated, 1);
    char *d = dump(f->s, f->list);
    assert_string_equal(d, "a@x.com|A|{}|||confirmed|enabled\n"
                           "b@x.com|B|{}|||unsubscribed|blocklisted\n"
                           "c@x.com||{}|||unsubscribed|blocklisted\n");
    free(d);
}

/* A double opt-in list gets unconfirmed members unless the file says. */
static void test_double_optin(void **state)
{
    struct fx *f = *state;
    const char *csv = "email,subscription\na@x.com,\nb@x.com,confirmed\n";
    struct result r = run_import(f->s, f->dlist, "double", SUB_MODE_SUBSCRIBE, csv, strlen(csv), 0);
    assert_int_equal(r.rc, TD_OK);
    char *d = dump(f->s, f->dlist);
    assert_string_equal(d, "a@x.com||{}|||unconfirmed|enabled\nb@x.com||{}|||confirmed|enabled\n");
    free(d);
}

/* ---- export and round trips ------------------------------------------------------- */

/* The rows of a list that exercise the format: quoting, line breaks in
 * attributes, scripts, statuses, time zones, JSON of every type. */
static const char roundtrip_csv[] =
    "email,name,attributes,city,orders,timezone,locale,subscription\r\n"
    "layla@example.com,\xd9\x84\xd9\x8a\xd9\x84\xd9\x89 \xd8\xad\xd8\xaf\xd8\xa7\xd8\xaf,,"
    "Cairo,3,Africa/Cairo,ar-EG,confirmed\r\n"
    "somchai@example.co.th,\xe0\xb8\xaa\xe0\xb8\xa1\xe0\xb8\x8a\xe0\xb8\xb2\xe0\xb8\xa2,"
    "\"{\"\"vip\"\":true,\"\"tags\"\":[\"\"a\"\",\"\"b\"\"],\"\"x\"\":null,\"\"o\"\":{\"\"k\"\":0.5}}\","
    "Bangkok,12,Asia/Bangkok,th-TH,unconfirmed\r\n"
    "\"o'brien@example.net\",\"O'Brien, \"\"Bob\"\"\",,\"Dublin\nnorth side\",,,,unsubscribed\r\n"
    "quoted@example.org, spaced ,,\" lead and trail \",-2,,,\r\n"
    "drop@example.org,'; DROP TABLE subscribers; --,,\"\"\"quoted\"\"\",2.25,UTC,en,\r\n"
    "idn@b\xc3\xbc" "cher.example,B\xc3\xbc" "cher,,\xef\xbb\xbf" "bom-like,0,,,confirmed\r\n";

static void test_export_import_roundtrip(void **state)
{
    struct fx *f = *state;
    struct result r = run_import(f->s, f->list, "single", SUB_MODE_SUBSCRIBE, roundtrip_csv,
                                 sizeof roundtrip_csv - 1, 0);
    assert_int_equal(r.rc, TD_OK);
    if (r.st.invalid)
        fail_msg("the round-trip rows were refused:\n%s", r.reasons);
    char *orig = dump(f->s, f->list);
    size_t len;
    uint64_t rows = 0;
    char *csv = export_text(f->s, f->list, &len, &rows);
    assert_int_equal(rows, 6);
    assert_memory_equal(csv, "email,name,attributes,timezone,locale,subscription,status\r\n", 59);

    /* Into another list of the same database: the same members. */
    int64_t l2 = new_list(f->s, "copy", "double");
    r = run_import(f->s, l2, "double", SUB_MODE_SUBSCRIBE, csv, len, 0);
    assert_int_equal(r.rc, TD_OK);
    assert_int_equal(r.st.invalid, 0);
    assert_int_equal(r.st.created, 0);
    char *copy = dump(f->s, l2);
    assert_string_equal(copy, orig);

    /* Into a fresh database: the same list. */
    char other[128];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    store *s2 = NULL;
    td_error e = {0};
    assert_int_equal(store_open(other, &s2, &e), TD_OK);
    int64_t l3 = new_list(s2, "fresh", "single");
    r = run_import(s2, l3, "single", SUB_MODE_SUBSCRIBE, csv, len, 0);
    assert_int_equal(r.rc, TD_OK);
    assert_int_equal(r.st.created, 6);
    char *fresh = dump(s2, l3);
    assert_string_equal(fresh, orig);

    /* And its export is byte for byte the first export. */
    size_t len2;
    char *csv2 = export_text(s2, l3, &len2, NULL);
    assert_int_equal(len2, len);
    assert_memory_equal(csv2, csv, len);
    /* Re-importing the export in upsert mode changes nothing. */
    r = run_import(f->s, f->list, "single", SUB_MODE_UPSERT, csv, len, 0);
    assert_int_equal(r.rc, TD_OK);
    assert_int_equal(r.st.updated, 0);
    assert_int_equal(r.st.unchanged, 6);
    store_close(s2);
    free(orig);
    free(copy);
    free(fresh);
    free(csv);
    free(csv2);
}

/* import_export_import imports csv into list L, exports L, imports the
 * export into a fresh list, and returns that import's result; *orig gets
 * dump(L) and *out the export. */
static struct result import_export_import(struct fx *f, const char *csv, sub_mode mode2,
                                          int64_t into, char **orig, char **out, size_t *len)
{
    struct result r = imp(f, csv);
    assert_int_equal(r.rc, TD_OK);
    assert_int_equal(r.st.invalid, 0);
    *orig = dump(f->s, f->list);
    *out = export_text(f->s, f->list, len, NULL);
    return run_import(f->s, into ? into : new_list(f->s, "copy", "single"), "single", mode2, *out,
                      *len, 0);
}

/* A number cell beyond what JSON readers hold (a 20-digit integer, a real
 * that overflows a double) must come back from an export: import took it,
 * so import(export(list)) must take it too. */
static void test_export_import_big_numbers(void **state)
{
    struct fx *f = *state;
    char *orig, *out;
    size_t len;
    struct result r = import_export_import(f,
                                           "email,big,huge\n"
                                           "a@x.com,12345678901234567890,1e400\n"
                                           "b@x.com,1,2\n",
                                           SUB_MODE_SUBSCRIBE, 0, &orig, &out, &len);
    free(orig);
    free(out);
    if (r.st.invalid)
        fail_msg("an exported row was refused on import:\n%s", r.reasons);
}

/* Importing a list's own export in upsert mode rewrites nothing: number
 * cells (4.1, 1.50, -0) are stored in the same text whether they came from
 * a column or from the attributes JSON of an export. */
static void test_reimport_export_keeps_numbers(void **state)
{
    struct fx *f = *state;
    char *orig, *out;
    size_t len;
    struct result r = import_export_import(f,
                                           "email,score,trail,neg0,int\n"
                                           "a@x.com,4.1,1.50,-0,7\n",
                                           SUB_MODE_UPSERT, f->list, &orig, &out, &len);
    assert_int_equal(r.rc, TD_OK);
    char *after = dump(f->s, f->list);
    char msg[1024];
    int bad = r.st.updated || strcmp(orig, after);
    snprintf(msg, sizeof msg, "before %s  after  %s", orig, after);
    free(orig);
    free(after);
    free(out);
    if (bad)
        fail_msg("re-importing the export rewrote the attributes:\n  %s", msg);
}

/* Export keeps whether a subscriber is blocklisted: import(export(list))
 * must not turn a blocked address back into one that receives mail. */
static void test_export_keeps_blocklist(void **state)
{
    struct fx *f = *state;
    struct result r = imp(f, "email,name\nok@x.com,Ok\nblocked@x.com,Blocked\n");
    assert_int_equal(r.rc, TD_OK);
    const char *block = "email\nblocked@x.com\n";
    r = run_import(f->s, f->list, "single", SUB_MODE_BLOCKLIST, block, strlen(block), 0);
    assert_int_equal(r.rc, TD_OK);
    char *orig = dump(f->s, f->list);
    size_t len;
    char *out = export_text(f->s, f->list, &len, NULL);
    char other[128];
    snprintf(other, sizeof other, "%s/other.db", f->dir);
    store *s2 = NULL;
    td_error e = {0};
    assert_int_equal(store_open(other, &s2, &e), TD_OK);
    int64_t l2 = new_list(s2, "L", "single");
    r = run_import(s2, l2, "single", SUB_MODE_SUBSCRIBE, out, len, 0);
    assert_int_equal(r.rc, TD_OK);
    char *fresh = dump(s2, l2);
    store_close(s2);
    char msg[1024];
    int bad = strcmp(orig, fresh) != 0;
    snprintf(msg, sizeof msg, "exported:\n%s  imported:\n%s", orig, fresh);
    free(orig);
    free(fresh);
    free(out);
    if (bad)
        fail_msg("import(export(list)) differs:\n  %s", msg);
}

/* An empty list exports as its header alone, which imports as nothing. */
static void test_export_empty(void **state)
{
    struct fx *f = *state;
    size_t len;
    uint64_t rows = 9;
    char *out = export_text(f->s, f->list, &len, &rows);
    assert_int_equal(rows, 0);
    assert_string_equal(out, "email,name,attributes,timezone,locale,subscription,status\r\n");
    struct result r = run_import(f->s, f->list, "single", SUB_MODE_SUBSCRIBE, out, len, 0);
    assert_int_equal(r.rc, TD_OK);
    assert_int_equal(r.st.rows, 0);
    free(out);
}

/* Writing to a stream that fails is reported, not ignored. */
static void test_export_write_failure(void **state)
{
    struct fx *f = *state;
    struct result r = imp(f, "email\na@x.com\n");
    assert_int_equal(r.rc, TD_OK);
    FILE *full = fopen("/dev/full", "w");
    if (!full)
        skip();
    td_error e = {0};
    assert_int_equal(export_csv(f->s, f->list, full, NULL, &e), TD_EIO);
    assert_true(e.msg[0] != '\0');
    fclose(full);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test_setup_teardown(test_ten_megabyte_field, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rows_and_reimport, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reimport_touches_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blocklist_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_double_optin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_import_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_import_big_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reimport_export_keeps_numbers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_keeps_blocklist, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_export_write_failure, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
