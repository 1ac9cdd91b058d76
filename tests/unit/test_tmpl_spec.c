/* Runs every case of the mustache spec (every JSON file in shared/spec/mustache, read at
 * run time) through tmpl and fails listing each case that does not match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tmpl/tmpl.h"

static const char *spec_partial(void *ud, const char *name, size_t *len)
{
    json_t *v = json_object_get((json_t *)ud, name);
    if (!json_is_string(v))
        return NULL;
    *len = json_string_length(v);
    return json_string_value(v);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* spec_dir finds the folder: $TIDINGS_SHARED, the repo's ../shared (tests
 * run from the repo root), then /work/shared. */
static const char *spec_dir(char *tmp, size_t n)
{
    const char *env = getenv("TIDINGS_SHARED");
    const char *cands[] = {env, "../shared", "/work/shared"};
    for (size_t i = 0; i < 3; i++) {
        if (!cands[i])
            continue;
        snprintf(tmp, n, "%s/spec/mustache", cands[i]);
        DIR *d = opendir(tmp);
        if (d) {
            closedir(d);
            return tmp;
        }
    }
    return NULL;
}

static void test_spec(void **state)
{
    (void)state;
    char dir[4096];
    assert_non_null(spec_dir(dir, sizeof dir)); /* no spec folder: fail, do not skip */
    DIR *d = opendir(dir);
    char *files[64];
    size_t nf = 0;
    struct dirent *de;
    while ((de = readdir(d)) && nf < 64) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
            files[nf++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(files, nf, sizeof *files, by_name);
    assert_true(nf >= 8);

    int total = 0, passed = 0;
    for (size_t f = 0; f < nf; f++) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        json_error_t je;
        json_t *doc = json_load_file(path, JSON_DECODE_ANY, &je);
        if (!doc)
            fail_msg("%s: %s", path, je.text);
        json_t *tests = json_object_get(doc, "tests");
        size_t i;
        json_t *tc;
        json_array_foreach(tests, i, tc) {
            const char *name = json_string_value(json_object_get(tc, "name"));
            json_t *tpl = json_object_get(tc, "template");
            const char *want = json_string_value(json_object_get(tc, "expected"));
            json_t *partials = json_object_get(tc, "partials");
            total++;
            tmpl *t = NULL;
            td_error e;
            td_err_clear(&e);
            int rc = tmpl_compile(json_string_value(tpl), json_string_length(tpl), &t, &e);
            buf out;
            buf_init(&out, BUF_NOCAP);
            if (!rc)
                rc = tmpl_render(t, json_object_get(tc, "data"), spec_partial, partials, &out,
                                 &e);
            if (rc) {
                printf("FAIL %s / %s: error %s\n", files[f], name, e.msg);
            } else if (strcmp(out.data, want) != 0) {
                char *w = json_dumps(json_string(want), JSON_ENCODE_ANY);
                json_t *g = json_string(out.data);
                char *gs = json_dumps(g, JSON_ENCODE_ANY);
                printf("FAIL %s / %s:\n  want %s\n  got  %s\n", files[f], name, w, gs);
                free(w);
                free(gs);
                json_decref(g);
            } else {
                passed++;
            }
            buf_free(&out);
            tmpl_free(t);
        }
        json_decref(doc);
        free(files[f]);
    }
    printf("mustache spec: %d/%d passed\n", passed, total);
    assert_int_equal(passed, total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
