/* smtp_maildir: write finished messages into a maildir (see smtp_maildir.h). */
#include "smtp/smtp_maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/xalloc.h"

struct smtp_maildir {
    char *path;
    char host[128]; /* this host's name, '/' and ':' escaped as maildir asks */
    bool fsync;
};

static atomic_ulong seq;

/* mkdir -p for an absolute path */
static int mkdirs(const char *path, td_error *e)
{
    char *p = xstrdup(path);
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (p[0] && mkdir(p, 0700) < 0 && errno != EEXIST) {
                int err = errno;
                td_err_set(e, TD_EIO, "cannot make the maildir %s: %s", p, strerror(err));
                free(p);
                return TD_EIO;
            }
            *s = c;
            if (!c)
                break;
        }
    }
    free(p);
    return TD_OK;
}

smtp_maildir *smtp_maildir_open(const char *path, bool fsync, td_error *e)
{
    static const char *subs[] = {"tmp", "new", "cur"};
    if (!path || path[0] != '/') {
        td_err_set(e, TD_EIO, "the maildir path must be absolute");
        return NULL;
    }
    if (mkdirs(path, e))
        return NULL;
    for (size_t i = 0; i < 3; i++) {
        char *d = xasprintf("%s/%s", path, subs[i]);
        if (mkdir(d, 0700) < 0 && errno != EEXIST) {
            td_err_set(e, TD_EIO, "cannot make %s: %s", d, strerror(errno));
            free(d);
            return NULL;
        }
        struct stat st;
        if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode)) {
            td_err_set(e, TD_EIO, "%s is not a directory", d);
            free(d);
            return NULL;
        }
        free(d);
    }
    smtp_maildir *md = xcalloc(1, sizeof *md);
    md->path = xstrdup(path);
    md->fsync = fsync;
    char hn[64];
    if (gethostname(hn, sizeof hn) < 0 || !hn[0])
        strcpy(hn, "localhost");
    hn[sizeof hn - 1] = '\0';
    size_t k = 0;
    for (const char *s = hn; *s && k + 5 < sizeof md->host; s++) {
        if (*s == '/' || *s == ':') {
            k += (size_t)snprintf(md->host + k, sizeof md->host - k, "\\%03o", (unsigned)*s);
        } else {
            md->host[k++] = *s;
        }
    }
    md->host[k] = '\0';
    return md;
}

void smtp_maildir_free(smtp_maildir *md)
{
    if (!md)
        return;
    free(md->path);
    free(md);
}

static void result_all(smtp_result *out, size_t nrcpt, int status, const smtp_reply *r)
{
    memset(out, 0, sizeof *out);
    out->nrcpt = nrcpt;
    out->rcpt = xcalloc(nrcpt, sizeof *out->rcpt);
    for (size_t i = 0; i < nrcpt; i++) {
        out->rcpt[i].status = status;
        smtp_reply_copy(&out->rcpt[i].reply, r);
    }
    smtp_reply_copy(&out->reply, r);
    out->status = status;
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

int smtp_maildir_deliver(smtp_maildir *md, const smtp_msg *m, smtp_result *out, td_error *e)
{
    memset(out, 0, sizeof *out);
    int rc = smtp_msg_check(m, e);
    if (rc)
        return rc;

    buf env;
    buf_init(&env, BUF_NOCAP);
    buf_printf(&env, "Return-Path: <%s>\r\n", m->from);
    for (size_t i = 0; i < m->nrcpt; i++)
        buf_printf(&env, "Delivered-To: %s\r\n", m->rcpt[i]);
    size_t size = env.len + m->len;

    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned long q = atomic_fetch_add(&seq, 1);
    char *name = xasprintf("%lld.M%06ldP%dQ%lu.%s,S=%zu", (long long)tv.tv_sec, (long)tv.tv_usec,
                           (int)getpid(), q, md->host, size);
    char *tmp = xasprintf("%s/tmp/%s", md->path, name);
    char *dst = xasprintf("%s/new/%s", md->path, name);

    smtp_reply r;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    const char *step = "create";
    if (fd >= 0) {
        struct iovec iov[2] = {{env.data, env.len}, {(void *)m->data, m->len}};
        step = "write";
        if (write_all(fd, iov, 2) == 0) {
            step = "sync";
            if (!md->fsync || fsync(fd) == 0) {
                step = "close";
                if (close(fd) == 0) {
                    fd = -1;
                    step = "rename";
                    if (rename(tmp, dst) == 0)
                        step = NULL;
                } else {
                    fd = -1;
                }
            }
        }
    }
    if (step) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        smtp_reply_set_local(&r, "4.3.0", "maildir %s: cannot %s the file: %s", md->path, step,
                             strerror(err));
        result_all(out, m->nrcpt, SMTP_TEMP, &r);
    } else {
        smtp_reply_set_local(&r, "2.0.0", "written to %s", dst);
        r.code = 250;
        result_all(out, m->nrcpt, SMTP_OK, &r);
    }
    smtp_reply_clear(&r);
    free(name);
    free(tmp);
    free(dst);
    buf_free(&env);
    return TD_OK;
}
