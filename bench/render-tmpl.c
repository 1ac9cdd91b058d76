/* render-tmpl: renders/s of a campaign-sized template on one core.
 *
 * A 20 KB HTML email with 10 interpolations, and a section over 20 items
 * holding 20 links (each with an escaped URL and title). Build and run:
 *   make B=build/bench build/bench/libtidings.a
 *   cc -O2 -std=c11 -Isrc bench/render-tmpl.c build/bench/libtidings.a \
 *      $(pkg-config --cflags --libs jansson) -lunistring -o build/bench/render-tmpl
 *   build/bench/render-tmpl */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tmpl/tmpl.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    buf src;
    buf_init(&src, BUF_NOCAP);
    static const char *const vars[10] = {"first_name", "last_name", "email", "company", "city",
                                         "unsub_url", "view_url", "date", "seller", "code"};
    buf_puts(&src, "<!DOCTYPE html>\n<html>\n<head><title>News for {{first_name}}</title></head>\n"
                   "<body style=\"margin:0;padding:0\">\n");
    for (int i = 0; i < 10; i++)
        buf_printf(&src, "<p class=\"v%d\">{{%s}}</p>\n", i, vars[i]);
    buf_puts(&src, "{{#items}}\n<table class=\"item\"><tr><td>\n");
    for (int i = 0; i < 20; i++)
        buf_printf(&src, "  <a href=\"{{url}}?utm_source=tidings&amp;l=%d\">{{title}}</a>\n", i);
    buf_puts(&src, "</td></tr></table>\n{{/items}}\n");
    while (src.len < 20 * 1024) /* the rest is static HTML */
        buf_puts(&src, "<tr><td style=\"font-family:Arial,sans-serif;font-size:14px;color:#333\">"
                       "Static newsletter copy that every recipient receives alike.</td></tr>\n");
    buf_puts(&src, "</body>\n</html>\n");

    tmpl *t = NULL;
    td_error e;
    if (tmpl_compile(src.data, src.len, &t, &e)) {
        fprintf(stderr, "compile: %s\n", e.msg);
        return 1;
    }
    json_t *d = json_object();
    for (int i = 0; i < 10; i++)
        json_object_set_new(d, vars[i], json_string("Zo\xc3\xab & <co>"));
    json_t *items = json_array();
    for (int i = 0; i < 20; i++) {
        char url[64];
        snprintf(url, sizeof url, "https://example.com/p/%d?a=1&b=2", i);
        json_array_append_new(items, json_pack("{s:s, s:s}", "url", url, "title",
                                               "A \"quoted\" product title"));
    }
    json_object_set_new(d, "items", items);

    buf out;
    buf_init(&out, BUF_NOCAP);
    int n = 0;
    double t0 = now(), t1;
    do {
        for (int k = 0; k < 1000; k++) {
            buf_reset(&out);
            if (tmpl_render(t, d, NULL, NULL, &out, &e)) {
                fprintf(stderr, "render: %s\n", e.msg);
                return 1;
            }
        }
        n += 1000;
        t1 = now();
    } while (t1 - t0 < 3.0);
    printf("template %zu bytes, output %zu bytes: %.0f renders/s (%.1f us each, %.0f MB/s)\n",
           src.len, out.len, n / (t1 - t0), (t1 - t0) / n * 1e6,
           (double)out.len * n / (t1 - t0) / 1e6);
    buf_free(&out);
    buf_free(&src);
    json_decref(d);
    tmpl_free(t);
    return 0;
}
