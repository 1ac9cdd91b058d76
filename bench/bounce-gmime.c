/* bounce-gmime: the reference for bench/bounce: reads each file argument
 * (the first 4 MiB, as `tidings bounce` does) and only parses it with
 * GMime, visiting every part, with no classification. bench/bounce builds
 * it with cc and pkg-config; it links GMime only. */
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>

#define CAP (4u << 20)

static void count(GMimeObject *parent, GMimeObject *part, gpointer ud)
{
    (void)parent;
    (void)part;
    (*(size_t *)ud)++;
}

int main(int argc, char **argv)
{
    g_mime_init();
    char *data = malloc(CAP);
    size_t parts = 0;
    int rc = 0;
    for (int i = 1; i < argc && data; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            rc = 1;
            continue;
        }
        size_t n = fread(data, 1, CAP, f);
        fclose(f);
        GMimeStream *s = g_mime_stream_mem_new_with_buffer(data, n);
        GMimeParser *p = g_mime_parser_new_with_stream(s);
        GMimeMessage *m = g_mime_parser_construct_message(p, NULL);
        if (m) {
            g_mime_message_foreach(m, count, &parts);
            g_object_unref(m);
        }
        g_object_unref(p);
        g_object_unref(s);
    }
    printf("%zu\n", parts);
    free(data);
    g_mime_shutdown();
    return rc;
}
