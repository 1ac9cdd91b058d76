/* tmpl_dir: mustache partials read from a folder (see tmpl_dir.h). */
#include "tmpl/tmpl_dir.h"

#include "tmpl/tmpl.h"
#include "util/log.h"
#include "util/xalloc.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PARTIAL_NAME 200

struct tmpl_dir {
    char *dir;
    char *last; /* contents returned by the last call */
};

int tmpl_dir_open(const char *dir, tmpl_dir **out, td_error *e)
{
    struct stat st;
    *out = NULL;
    if (stat(dir, &st) != 0)
        return td_err_set(e, errno == ENOENT ? TD_ENOTFOUND : TD_EIO, "partials folder %s: %s",
                          dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return td_err_set(e, TD_EIO, "partials folder %s: not a folder", dir);
    tmpl_dir *d = xcalloc(1, sizeof *d);
    d->dir = xstrdup(dir);
    *out = d;
    return 0;
}

/* name_ok refuses names that could leave the folder or hide a file. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MAX_PARTIAL_NAME || name[0] == '.' || strstr(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '/' || c == '\\' || c < 0x20 || c == 0x7f)
            return false;
    }
    return true;
}

const char *tmpl_dir_partial(void *ud, const char *name, size_t *len)
{
    tmpl_dir *d = ud;
    free(d->last);
    d->last = NULL;
    if (!name_ok(name)) {
        char safe[64];
        size_t i;
        for (i = 0; name[i] && i < sizeof safe - 1; i++)
            safe[i] = (unsigned char)name[i] < 0x20 || name[i] == 0x7f ? '?' : name[i];
        safe[i] = '\0';
        log_warn("partial name refused name=%s reason=outside-folder", safe);
        return NULL;
    }
    char *path = xasprintf("%s/%s.mustache", d->dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno != ENOENT)
            log_warn("partial unreadable path=%s error=\"%s\"", path, strerror(errno));
        free(path);
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *s = xmalloc(cap);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            s = xrealloc(s, cap);
        }
        size_t got = fread(s + n, 1, cap - n, f);
        n += got;
        if (n > TMPL_MAX_SRC) {
            log_warn("partial too big path=%s max=%u", path, (unsigned)TMPL_MAX_SRC);
            free(s);
            s = NULL;
            break;
        }
        if (got == 0) {
            if (ferror(f)) {
                log_warn("partial unreadable path=%s", path);
                free(s);
                s = NULL;
            }
            break;
        }
    }
    fclose(f);
    free(path);
    d->last = s;
    *len = n;
    return s;
}

void tmpl_dir_free(tmpl_dir *d)
{
    if (!d)
        return;
    free(d->last);
    free(d->dir);
    free(d);
}
