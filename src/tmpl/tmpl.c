/* tmpl: mustache compiler and renderer (see tmpl.h and docs/internals/tmpl.md).
 *
 * Compiling is four passes over the source: tokenize (tags and their
 * positions, set-delimiter tags applied as they come), match open and close
 * tags, decide the whitespace each tag takes with it (the standalone rules,
 * including the parent/block pair rules of the inheritance module), and build
 * a tree of nodes whose text already has standalone lines removed. Rendering
 * walks that tree; the only per-render work is name lookup, escaping and
 * copying. Everything a template owns lives in one arena. */
#include "tmpl/tmpl.h"

#include "util/utf8.h"
#include "util/xalloc.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#define MAX_TAGS 200000       /* tags in one template */
#define MAX_NAME 1024         /* bytes in one tag name */
#define MAX_DELIM 32          /* bytes in a set delimiter */
#define MAX_PARTIALS 256      /* distinct partial names cached per template */
#define MAX_RENDER_DEPTH 1000 /* render recursion, sections and partials together */
#define MAX_INDENT 65536      /* bytes of indentation in force at once */

/* ---- arena ---------------------------------------------------------------- */

typedef struct arena {
    char *cur;
    size_t left;
    void **blk;
    size_t nblk, ablk;
} arena;

static void arena_keep(arena *a, void *p)
{
    if (a->nblk == a->ablk) {
        a->ablk = a->ablk ? a->ablk * 2 : 8;
        a->blk = xrealloc(a->blk, a->ablk * sizeof *a->blk);
    }
    a->blk[a->nblk++] = p;
}

static void *amalloc(arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n > a->left) {
        if (n >= 8192) { /* big: its own block, keep the current one */
            void *p = xmalloc(n);
            arena_keep(a, p);
            return p;
        }
        a->cur = xmalloc(16384);
        a->left = 16384;
        arena_keep(a, a->cur);
    }
    void *p = a->cur;
    a->cur += n;
    a->left -= n;
    return p;
}

static char *astrndup(arena *a, const char *s, size_t n)
{
    char *p = amalloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void arena_free(arena *a)
{
    for (size_t i = 0; i < a->nblk; i++)
        free(a->blk[i]);
    free(a->blk);
    memset(a, 0, sizeof *a);
}

/* ---- compiled form -------------------------------------------------------- */

enum { N_TEXT, N_VAR, N_SECTION, N_INVERTED, N_PARTIAL, N_PARENT, N_BLOCK, N_NOP };

typedef struct node node;
typedef struct nlist {
    node *v;
    size_t n;
} nlist;
typedef struct path {
    const char **part; /* NUL-terminated keys; n == 0 is the implicit iterator */
    size_t n;
} path;
typedef struct pentry pentry;

struct node {
    uint8_t type;
    uint8_t bol;   /* begins a source line: indentation goes first */
    uint8_t flag;  /* VAR: escape; PARTIAL/PARENT/BLOCK: standalone */
    uint8_t dyn;   /* PARTIAL/PARENT: the name is a path into the data */
    uint8_t intr;  /* BLOCK: content had its intrinsic indentation removed */
    const char *s; /* TEXT: bytes; PARTIAL/PARENT/BLOCK: NUL-terminated name */
    size_t n;
    const char *ind; /* PARTIAL/PARENT/BLOCK: indentation added to its lines */
    size_t ind_n;
    path p;        /* VAR, SECTION, INVERTED, dynamic PARTIAL/PARENT */
    nlist kids;    /* SECTION/INVERTED body, BLOCK content, PARENT arguments */
    pentry *pe;    /* static PARTIAL/PARENT: cache entry, set on first render */
};

struct pentry { /* one partial name, compiled once */
    char *name;
    size_t n;
    tmpl *t;   /* NULL when there is no such partial or it failed */
    char *err; /* compile error, or NULL */
};

struct tmpl {
    arena a;
    nlist root;
    pentry **cache; /* partials, owned by the top template only */
    size_t ncache;
    tmpl_limits lim;
};

/* ---- positions and messages ----------------------------------------------- */

/* pos_of gives the 1-based line and column (in characters) of offset off. */
static void pos_of(const char *s, size_t off, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        if (s[i] == '\n') {
            l++;
            c = 1;
        } else if (((unsigned char)s[i] & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

typedef struct cc { /* compile context */
    const char *src;
    size_t len;
    tmpl *t;
    td_error *e;
    char otag[MAX_DELIM + 1], ctag[MAX_DELIM + 1]; /* delimiters at the end */
    /* Equal names share one key array (see make_path): an open-addressed
     * table of the names made so far, by FNV-1a of the name. */
    struct name_slot {
        const char *name; /* in src; NULL: empty slot */
        size_t n;
        const char **part;
        size_t parts;
    } *names;
    size_t nnames, anames;
} cc;

static int cerr(cc *c, int code, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cerr(cc *c, int code, size_t off, const char *fmt, ...)
{
    size_t line, col;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* Quoted template text may hold line breaks and other controls: an
     * error stays one line, with them shown as \n, \t, \xHH. */
    char shown[sizeof msg * 4];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)msg; *p && n + 5 < sizeof shown; p++) {
        if (*p >= 0x20 && *p != 0x7f)
            shown[n++] = (char)*p;
        else if (*p == '\n' || *p == '\t' || *p == '\r') {
            shown[n++] = '\\';
            shown[n++] = *p == '\n' ? 'n' : *p == '\t' ? 't' : 'r';
        } else
            n += (size_t)snprintf(shown + n, sizeof shown - n, "\\x%02x", *p);
    }
    shown[n] = '\0';
    pos_of(c->src, off, &line, &col);
    return td_err_set(c->e, code, "line %zu, column %zu: %s", line, col, shown);
}

/* ---- pass 1: tokens ------------------------------------------------------- */

enum { T_VAR, T_RAW, T_SECTION, T_INVERTED, T_CLOSE, T_PARTIAL, T_PARENT, T_BLOCK, T_COMMENT,
       T_DELIM };

typedef struct tok {
    uint8_t kind, dyn, is_arg, lc, rc, sa; /* sa: standalone (tag or pair) */
    size_t start, end;   /* from the open delimiter to past the close one */
    size_t name, name_n; /* the trimmed name (after '*' for dynamic names) */
    size_t ls, ae;       /* line start before (when lc), past the line end (when rc) */
    size_t lcut, rcut;   /* where the text before ends and the text after starts */
    size_t match;        /* open <-> close */
    size_t ind, ind_n;   /* indentation (PARTIAL, PARENT, BLOCK) */
    bool intr;           /* BLOCK: ind is intrinsic indentation, remove it */
} tok;

typedef struct toks {
    tok *v;
    size_t n, a;
} toks;

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* find is memmem (a GNU extension, so not used): first byte by memchr. */
static const char *find(const char *hay, size_t hn, const char *needle, size_t nn)
{
    const char *end = hay + hn;
    while ((size_t)(end - hay) >= nn) {
        const char *p = memchr(hay, needle[0], (size_t)(end - hay) - nn + 1);
        if (!p)
            return NULL;
        if (memcmp(p, needle, nn) == 0)
            return p;
        hay = p + 1;
    }
    return NULL;
}

static int tokenize(cc *c, toks *tv)
{
    const char *s = c->src;
    size_t len = c->len, p = 0;
    char otag[MAX_DELIM + 1] = "{{", ctag[MAX_DELIM + 1] = "}}";
    size_t on = 2, cn = 2;

    for (;;) {
        const char *o = find(s + p, len - p, otag, on);
        if (!o) {
            memcpy(c->otag, otag, on + 1);
            memcpy(c->ctag, ctag, cn + 1);
            return 0;
        }
        size_t start = (size_t)(o - s), q = start + on;
        if (tv->n == MAX_TAGS)
            return cerr(c, TD_ETOOBIG, start, "too many tags (more than %d)", MAX_TAGS);
        if (tv->n == tv->a) {
            tv->a = tv->a ? tv->a * 2 : 64;
            tv->v = xrealloc(tv->v, tv->a * sizeof *tv->v);
        }
        tok *t = &tv->v[tv->n];
        memset(t, 0, sizeof *t);
        t->start = start;
        char sig = q < len ? s[q] : '\0';
        char close[MAX_DELIM + 2];
        size_t clen;
        if (sig == '{' || sig == '=') { /* {{{x}}} and {{=a b=}} end in "}" or "=" + ctag */
            close[0] = sig == '{' ? '}' : '=';
            memcpy(close + 1, ctag, cn);
            clen = cn + 1;
        } else {
            memcpy(close, ctag, cn);
            clen = cn;
        }
        close[clen] = '\0';
        size_t body = sig && strchr("{=#^/><$&!", sig) ? q + 1 : q;
        const char *ce = find(s + body, len - body, close, clen);
        if (!ce)
            return cerr(c, TD_EINVAL, start, "unterminated tag: expected '%s'", close);
        size_t bend = (size_t)(ce - s);
        t->end = bend + clen;
        switch (sig) {
        case '{': t->kind = T_RAW; break;
        case '&': t->kind = T_RAW; break;
        case '#': t->kind = T_SECTION; break;
        case '^': t->kind = T_INVERTED; break;
        case '/': t->kind = T_CLOSE; break;
        case '>': t->kind = T_PARTIAL; break;
        case '<': t->kind = T_PARENT; break;
        case '$': t->kind = T_BLOCK; break;
        case '!': t->kind = T_COMMENT; break;
        case '=': t->kind = T_DELIM; break;
        default: t->kind = T_VAR; break;
        }
        p = t->end;
        if (t->kind == T_COMMENT) {
            tv->n++;
            continue;
        }
        /* trim the name */
        size_t b = body, e = bend;
        while (b < e && is_ws(s[b]))
            b++;
        while (e > b && is_ws(s[e - 1]))
            e--;
        if (t->kind == T_DELIM) {
            size_t a1 = b, a2 = b;
            while (a2 < e && !is_ws(s[a2]))
                a2++;
            size_t b1 = a2;
            while (b1 < e && is_ws(s[b1]))
                b1++;
            size_t b2 = b1;
            while (b2 < e && !is_ws(s[b2]))
                b2++;
            if (a2 == a1 || b2 == b1 || b2 != e || a2 - a1 > MAX_DELIM || b2 - b1 > MAX_DELIM ||
                memchr(s + a1, '=', a2 - a1) || memchr(s + b1, '=', b2 - b1))
                return cerr(c, TD_EINVAL, start,
                            "bad set-delimiter tag: expected two delimiters of 1 to %d "
                            "characters, without '=' or spaces, like %s=<%% %%>=%s",
                            MAX_DELIM, otag, ctag);
            memcpy(otag, s + a1, a2 - a1);
            on = a2 - a1;
            otag[on] = '\0';
            memcpy(ctag, s + b1, b2 - b1);
            cn = b2 - b1;
            ctag[cn] = '\0';
            tv->n++;
            continue;
        }
        if ((t->kind == T_PARTIAL || t->kind == T_PARENT || t->kind == T_CLOSE) && b < e &&
            s[b] == '*') {
            t->dyn = 1;
            b++;
            while (b < e && is_ws(s[b]))
                b++;
        }
        if (b == e)
            return cerr(c, TD_EINVAL, start, "empty tag: expected a name");
        if (e - b > MAX_NAME)
            return cerr(c, TD_ETOOBIG, start, "tag name longer than %d bytes", MAX_NAME);
        for (size_t i = b; i < e; i++)
            if (is_ws(s[i]) || s[i] == '\0')
                return cerr(c, TD_EINVAL, start, "bad tag name '%.*s': expected no spaces%s",
                            (int)(e - b > 60 ? 60 : e - b), s + b,
                            memchr(s + b, '\n', e - b) ? " (is a closing delimiter missing?)" : "");
        t->name = b;
        t->name_n = e - b;
        tv->n++;
    }
}

/* ---- pass 2: matching ----------------------------------------------------- */

static const char *kind_word(int k)
{
    switch (k) {
    case T_INVERTED: return "inverted section";
    case T_PARENT: return "parent";
    case T_BLOCK: return "block";
    default: return "section";
    }
}

static int match(cc *c, toks *tv)
{
    const char *s = c->src;
    size_t *stk = xmalloc((TMPL_MAX_NEST + 1) * sizeof *stk), sp = 0;
    int rc = 0;
    for (size_t i = 0; i < tv->n; i++) {
        tok *t = &tv->v[i];
        if (t->kind == T_SECTION || t->kind == T_INVERTED || t->kind == T_PARENT ||
            t->kind == T_BLOCK) {
            if (sp == TMPL_MAX_NEST) {
                rc = cerr(c, TD_ETOOBIG, t->start, "sections nested more than %d deep",
                          TMPL_MAX_NEST);
                goto out;
            }
            if (t->kind == T_BLOCK && sp && tv->v[stk[sp - 1]].kind == T_PARENT)
                t->is_arg = 1;
            stk[sp++] = i;
        } else if (t->kind == T_CLOSE) {
            int tl = (int)(t->end - t->start > 80 ? 80 : t->end - t->start);
            if (!sp) {
                rc = cerr(c, TD_EINVAL, t->start, "closing tag %.*s has no open section", tl,
                          s + t->start);
                goto out;
            }
            tok *o = &tv->v[stk[sp - 1]];
            if (o->dyn != t->dyn || o->name_n != t->name_n ||
                memcmp(s + o->name, s + t->name, t->name_n) != 0) {
                rc = cerr(c, TD_EINVAL, t->start,
                          "closing tag %.*s does not match the open %s '%s%.*s'", tl,
                          s + t->start, kind_word(o->kind), o->dyn ? "*" : "", (int)o->name_n,
                          s + o->name);
                goto out;
            }
            o->match = i;
            t->match = stk[--sp];
        }
    }
    if (sp) {
        tok *o = &tv->v[stk[sp - 1]];
        size_t ol, oc;
        pos_of(s, o->start, &ol, &oc);
        rc = cerr(c, TD_EINVAL, c->len,
                  "unclosed %s '%s%.*s' (opened at line %zu, column %zu): expected %s/%s%.*s%s",
                  kind_word(o->kind), o->dyn ? "*" : "", (int)o->name_n, s + o->name, ol, oc,
                  c->otag, o->dyn ? "*" : "", (int)o->name_n, s + o->name, c->ctag);
    }
out:
    free(stk);
    return rc;
}

/* ---- pass 3: whitespace --------------------------------------------------- */

static void clearance(const char *s, size_t len, tok *t)
{
    size_t p = t->start;
    while (p > 0 && (s[p - 1] == ' ' || s[p - 1] == '\t'))
        p--;
    t->lc = p == 0 || s[p - 1] == '\n';
    t->ls = p;
    size_t q = t->end;
    while (q < len && (s[q] == ' ' || s[q] == '\t'))
        q++;
    if (q == len) {
        t->rc = 1;
        t->ae = q;
    } else if (s[q] == '\n') {
        t->rc = 1;
        t->ae = q + 1;
    } else if (s[q] == '\r' && q + 1 < len && s[q + 1] == '\n') {
        t->rc = 1;
        t->ae = q + 2;
    } else {
        t->rc = 0;
    }
}

/* intrinsic gives the indentation of the line after open tag o (which ends
 * its line): the block's content is written at that indentation. */
static void intrinsic(const char *s, size_t len, tok *o)
{
    size_t p = o->ae;
    while (p < len && (s[p] == ' ' || s[p] == '\t'))
        p++;
    o->ind = o->ae;
    o->ind_n = p - o->ae;
    o->intr = true;
}

static void whitespace(cc *c, toks *tv)
{
    const char *s = c->src;
    for (size_t i = 0; i < tv->n; i++) {
        tok *t = &tv->v[i];
        t->lcut = t->start;
        t->rcut = t->end;
        clearance(s, c->len, t);
    }
    for (size_t i = 0; i < tv->n; i++) {
        tok *t = &tv->v[i];
        switch (t->kind) {
        case T_SECTION:
        case T_INVERTED:
        case T_COMMENT:
        case T_DELIM:
        case T_PARTIAL:
            if (t->lc && t->rc) {
                t->sa = 1;
                t->lcut = t->ls;
                t->rcut = t->ae;
                t->ind = t->ls;
                t->ind_n = t->start - t->ls;
            }
            break;
        case T_CLOSE: {
            tok *o = &tv->v[t->match];
            if (o->kind == T_SECTION || o->kind == T_INVERTED) {
                if (t->lc && t->rc) {
                    t->sa = 1;
                    t->lcut = t->ls;
                    t->rcut = t->ae;
                }
            } else if (o->kind == T_PARENT) {
                if (t->rc && (t->lc || o->lc))
                    t->rcut = t->ae;
            } else if (o->is_arg) {
                /* an argument block is an inline template: its closing
                 * tag takes the indentation before it, never a newline */
                if (t->lc)
                    t->lcut = t->ls;
            } else if (t->lc && t->rc) {
                t->lcut = t->ls;
                t->rcut = t->ae;
            }
            break;
        }
        case T_PARENT: {
            tok *cl = &tv->v[t->match];
            if (t->lc && (t->rc || cl->rc)) {
                t->sa = 1;
                t->lcut = t->ls;
                t->ind = t->ls;
                t->ind_n = t->start - t->ls;
            }
            break;
        }
        case T_BLOCK: {
            tok *cl = &tv->v[t->match];
            if (t->is_arg) {
                if (t->rc) {
                    t->rcut = t->ae;
                    intrinsic(s, c->len, t);
                }
                break;
            }
            if (t->lc && t->rc) {
                t->lcut = t->ls;
                t->rcut = t->ae;
            }
            if (t->lc && cl->rc) { /* a standalone pair: indentation applies */
                t->sa = 1;
                t->lcut = t->ls;
                if (t->rc) {
                    intrinsic(s, c->len, t);
                } else {
                    t->ind = t->ls;
                    t->ind_n = t->start - t->ls;
                }
            }
            break;
        }
        default:
            break;
        }
    }
}

/* ---- pass 4: tree --------------------------------------------------------- */

typedef struct nvec {
    node *v;
    size_t n, a;
    size_t open; /* token index of the open tag, or SIZE_MAX at the root */
} nvec;

static node *nvec_add(nvec *v)
{
    if (v->n == v->a) {
        v->a = v->a ? v->a * 2 : 8;
        v->v = xrealloc(v->v, v->a * sizeof *v->v);
    }
    node *n = &v->v[v->n++];
    memset(n, 0, sizeof *n);
    return n;
}

static nlist nvec_commit(arena *a, nvec *v)
{
    nlist l = {NULL, v->n};
    if (v->n) {
        l.v = amalloc(a, v->n * sizeof *l.v);
        memcpy(l.v, v->v, v->n * sizeof *l.v);
    }
    free(v->v);
    memset(v, 0, sizeof *v);
    return l;
}

static bool at_bol(const char *s, size_t off)
{
    return off == 0 || s[off - 1] == '\n';
}

static uint64_t name_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

/* name_find gives the slot of name s[0..n): the one holding it, or the
 * empty one where it goes. The table is kept at most half full. */
static struct name_slot *name_find(cc *c, const char *s, size_t n)
{
    if (2 * (c->nnames + 1) > c->anames) {
        struct name_slot *old = c->names;
        size_t was = c->anames;
        c->anames = was ? 2 * was : 64;
        c->names = xcalloc(c->anames, sizeof *c->names);
        for (size_t i = 0; i < was; i++)
            if (old[i].name)
                *name_find(c, old[i].name, old[i].n) = old[i];
        free(old);
    }
    size_t mask = c->anames - 1, i = (size_t)name_hash(s, n) & mask;
    while (c->names[i].name && (c->names[i].n != n || memcmp(c->names[i].name, s, n)))
        i = (i + 1) & mask;
    return &c->names[i];
}

/* make_path splits a dotted name into its keys. Every use of one name in a
 * template gets the same key array: lookup's memo knows a name by it. */
static int make_path(cc *c, const tok *t, path *p)
{
    const char *s = c->src + t->name;
    size_t n = t->name_n;
    if (n == 1 && s[0] == '.') {
        p->n = 0;
        p->part = NULL;
        return 0;
    }
    struct name_slot *seen = name_find(c, s, n);
    if (seen->name) {
        p->part = seen->part;
        p->n = seen->parts;
        return 0;
    }
    size_t parts = 1;
    for (size_t i = 0; i < n; i++)
        parts += s[i] == '.';
    p->part = amalloc(&c->t->a, parts * sizeof *p->part);
    p->n = 0;
    size_t b = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (i == b)
                return cerr(c, TD_EINVAL, t->start,
                            "bad name '%.*s': expected names separated by single dots",
                            (int)(n > 60 ? 60 : n), s);
            p->part[p->n++] = astrndup(&c->t->a, s + b, i - b);
            b = i + 1;
        }
    }
    *seen = (struct name_slot){s, n, p->part, p->n};
    c->nnames++;
    return 0;
}

/* dedent removes prefix x from the start of every source line in l: a
 * block's content loses the indentation it was written at (see the doc). */
static void dedent(arena *a, nlist *l, const char *x, size_t xn)
{
    for (size_t i = 0; i < l->n; i++) {
        node *n = &l->v[i];
        switch (n->type) {
        case N_TEXT: {
            char *o = amalloc(a, n->n + 1);
            size_t on = 0;
            for (size_t j = 0; j < n->n;) {
                bool ls = j == 0 ? n->bol : n->s[j - 1] == '\n';
                if (ls && n->n - j >= xn && memcmp(n->s + j, x, xn) == 0) {
                    j += xn;
                    continue;
                }
                o[on++] = n->s[j++];
            }
            n->s = o;
            n->n = on;
            break;
        }
        case N_SECTION:
        case N_INVERTED:
            dedent(a, &n->kids, x, xn);
            break;
        case N_PARTIAL:
        case N_PARENT:
        case N_BLOCK:
            if (n->flag && n->ind_n >= xn && memcmp(n->ind, x, xn) == 0) {
                n->ind += xn;
                n->ind_n -= xn;
            }
            if (n->type == N_PARENT) {
                for (size_t k = 0; k < n->kids.n; k++)
                    if (!n->kids.v[k].intr)
                        dedent(a, &n->kids.v[k].kids, x, xn);
            } else if (n->type == N_BLOCK && !n->intr) {
                dedent(a, &n->kids, x, xn);
            }
            break;
        default:
            break;
        }
    }
}

static int build(cc *c, toks *tv)
{
    const char *s = c->src;
    arena *a = &c->t->a;
    nvec *st = xcalloc(TMPL_MAX_NEST + 2, sizeof *st);
    size_t sp = 0, prev = 0;
    int rc = 0;
    st[0].open = SIZE_MAX;

    for (size_t i = 0; i <= tv->n; i++) {
        tok *t = i < tv->n ? &tv->v[i] : NULL;
        nvec *cur = &st[sp];
        bool in_parent = cur->open != SIZE_MAX && tv->v[cur->open].kind == T_PARENT;
        size_t lcut = t ? t->lcut : c->len;
        if (lcut > prev && !in_parent) {
            node *n = nvec_add(cur);
            n->type = N_TEXT;
            n->bol = at_bol(s, prev);
            n->s = s + prev;
            n->n = lcut - prev;
        }
        if (!t)
            break;
        prev = t->rcut > prev ? t->rcut : prev;
        bool bol = !t->sa && at_bol(s, t->start);
        switch (t->kind) {
        case T_VAR:
        case T_RAW: {
            if (in_parent)
                break;
            node *n = nvec_add(cur);
            n->type = N_VAR;
            n->bol = bol;
            n->flag = t->kind == T_VAR;
            if ((rc = make_path(c, t, &n->p)))
                goto out;
            break;
        }
        case T_COMMENT:
        case T_DELIM:
            if (bol && t->lcut == t->start && !in_parent) {
                node *nop = nvec_add(cur);
                nop->type = N_NOP;
                nop->bol = 1;
            }
            break;
        case T_PARTIAL: {
            if (in_parent)
                break;
            node *pn = nvec_add(cur);
            pn->type = N_PARTIAL;
            pn->bol = bol;
            pn->flag = t->sa;
            pn->ind = s + t->ind;
            pn->ind_n = t->ind_n;
            pn->dyn = t->dyn;
            if (t->dyn) {
                if ((rc = make_path(c, t, &pn->p)))
                    goto out;
            } else {
                pn->s = astrndup(a, s + t->name, t->name_n);
                pn->n = t->name_n;
            }
            break;
        }
        case T_SECTION:
        case T_INVERTED:
        case T_PARENT:
        case T_BLOCK:
            sp++;
            memset(&st[sp], 0, sizeof st[sp]);
            st[sp].open = i;
            break;
        case T_CLOSE: {
            tok *o = &tv->v[t->match];
            nlist kids = nvec_commit(a, &st[sp]);
            sp--;
            cur = &st[sp];
            in_parent = cur->open != SIZE_MAX && tv->v[cur->open].kind == T_PARENT;
            if (in_parent && o->kind != T_BLOCK)
                break; /* only blocks count inside a parent */
            node *n = nvec_add(cur);
            n->kids = kids;
            n->bol = !o->sa && o->lcut == o->start && o->rcut == o->end && at_bol(s, o->start);
            switch (o->kind) {
            case T_SECTION:
            case T_INVERTED:
                n->type = o->kind == T_SECTION ? N_SECTION : N_INVERTED;
                if ((rc = make_path(c, o, &n->p)))
                    goto out;
                break;
            case T_PARENT:
                n->type = N_PARENT;
                n->flag = o->sa;
                n->ind = s + o->ind;
                n->ind_n = o->ind_n;
                n->dyn = o->dyn;
                if (o->dyn) {
                    if ((rc = make_path(c, o, &n->p)))
                        goto out;
                } else {
                    n->s = astrndup(a, s + o->name, o->name_n);
                    n->n = o->name_n;
                }
                break;
            case T_BLOCK:
                n->type = N_BLOCK;
                n->flag = o->sa;
                n->s = astrndup(a, s + o->name, o->name_n);
                n->n = o->name_n;
                n->ind = s + o->ind;
                n->ind_n = o->ind_n;
                if (o->intr) {
                    n->intr = 1;
                    if (o->ind_n)
                        dedent(a, &n->kids, n->ind, n->ind_n);
                }
                if (o->is_arg) { /* an argument's own indentation is not used */
                    n->flag = 0;
                    n->ind_n = 0;
                }
                break;
            }
            break;
        }
        }
    }
    c->t->root = nvec_commit(a, &st[0]);
out:
    for (size_t k = 0; k <= sp; k++)
        free(st[k].v);
    free(st);
    return rc;
}

static int compile(const char *src, size_t len, tmpl **out, td_error *e)
{
    *out = NULL;
    if (len > TMPL_MAX_SRC)
        return td_err_set(e, TD_ETOOBIG, "template is %zu bytes, more than the %u allowed", len,
                          (unsigned)TMPL_MAX_SRC);
    size_t bad = 0;
    if (!utf8_valid(src, len, &bad)) {
        size_t line, col;
        pos_of(src, bad, &line, &col);
        return td_err_set(e, TD_EINVAL,
                          "line %zu, column %zu: invalid UTF-8 at byte offset %zu: expected "
                          "UTF-8 text",
                          line, col, bad);
    }
    tmpl *t = xcalloc(1, sizeof *t);
    t->lim.max_output = 16u << 20;
    t->lim.max_depth = 64;
    t->lim.max_steps = 20000000;
    char *copy = amalloc(&t->a, len + 1);
    memcpy(copy, src, len);
    copy[len] = '\0';
    cc c = {.src = copy, .len = len, .t = t, .e = e, .otag = "{{", .ctag = "}}"};
    toks tv = {0};
    int rc = tokenize(&c, &tv);
    if (!rc)
        rc = match(&c, &tv);
    if (!rc) {
        whitespace(&c, &tv);
        rc = build(&c, &tv);
    }
    free(tv.v);
    free(c.names);
    if (rc) {
        tmpl_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int tmpl_compile(const char *src, size_t len, tmpl **out, td_error *e)
{
    return compile(src, len, out, e);
}

/* clear_pe forgets the cache entries static partial nodes point at (depth
 * is bounded by TMPL_MAX_NEST). */
static void clear_pe(nlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        node *n = &l->v[i];
        n->pe = NULL;
        if (n->type == N_PARENT)
            for (size_t k = 0; k < n->kids.n; k++)
                clear_pe(&n->kids.v[k].kids);
        else
            clear_pe(&n->kids);
    }
}

void tmpl_forget_partials(tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncache; i++) {
        tmpl_free(t->cache[i]->t);
        free(t->cache[i]->name);
        free(t->cache[i]->err);
        free(t->cache[i]);
    }
    free(t->cache);
    t->cache = NULL;
    t->ncache = 0;
    clear_pe(&t->root);
}

void tmpl_free(tmpl *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->ncache; i++) {
        tmpl_free(t->cache[i]->t);
        free(t->cache[i]->name);
        free(t->cache[i]->err);
        free(t->cache[i]);
    }
    free(t->cache);
    arena_free(&t->a);
    free(t);
}

void tmpl_set_limits(tmpl *t, const tmpl_limits *l)
{
    if (l->max_output)
        t->lim.max_output = l->max_output;
    if (l->max_depth)
        t->lim.max_depth = l->max_depth;
    if (l->max_steps)
        t->lim.max_steps = l->max_steps;
}

/* ---- rendering ------------------------------------------------------------ */

#define ROOT_MEMO_BITS 6
#define ROOT_MEMO (1u << ROOT_MEMO_BITS)

typedef struct rs {
    tmpl *top;
    tmpl_partial_fn fn;
    void *ud;
    buf *out;
    size_t start, cap;
    td_error *e;
    json_t **ctx; /* context stack, top at ctx[nctx-1] */
    size_t nctx, actx;
    const nlist **args; /* parent arguments in force, outermost first */
    size_t nargs, aargs;
    char *ib; /* indentation strings, stacked */
    size_t ibn, iba;
    unsigned pdepth, depth;
    size_t steps;
    const tmpl_helper *helpers;
    size_t nhelpers;
    buf **scratch; /* call_helper's buffers, one per helper nesting level */
    size_t nscratch, hdepth;
    /* Names resolved against the data alone (no section context pushed),
     * by the address of their shared key array (make_path): the data does
     * not change during a render, and a campaign template looks up the same
     * few dotted names over and over (three in each tracked link), each a
     * chain of hash lookups. */
    struct {
        const char **part;
        json_t *v;
    } memo[ROOT_MEMO];
} rs;

static int emit(rs *r, const char *p, size_t n)
{
    if (r->out->len - r->start + n > r->cap)
        return td_err_set(r->e, TD_ETOOBIG, "rendered output passes the cap of %zu bytes",
                          r->cap);
    if (buf_append(r->out, p, n))
        return td_err_set(r->e, TD_ETOOBIG, "rendered output passes the output buffer's cap");
    return 0;
}

static const char *const esc[256] = {
    ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&#39;",
};

static int emit_escaped(rs *r, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *x = esc[(unsigned char)s[i]];
        if (x) {
            int rc;
            if (i > run && (rc = emit(r, s + run, i - run)))
                return rc;
            if ((rc = emit(r, x, strlen(x))))
                return rc;
            run = i + 1;
        }
    }
    return n > run ? emit(r, s + run, n - run) : 0;
}

/* emit_value writes a data string, escaped or not, with each invalid UTF-8
 * sequence replaced by U+FFFD so the message stays valid UTF-8. */
static int emit_value(rs *r, const char *s, size_t n, bool escape)
{
    /* ASCII, most values (ids, codes, URLs), needs no UTF-8 check */
    size_t a = 0;
    while (a < n && !(s[a] & 0x80))
        a++;
    if (a == n)
        return escape ? emit_escaped(r, s, n) : emit(r, s, n);
    while (n) {
        const uint8_t *bad = u8_check((const uint8_t *)s, n);
        size_t good = bad ? (size_t)((const char *)bad - s) : n;
        int rc = escape ? emit_escaped(r, s, good) : emit(r, s, good);
        if (rc || !bad)
            return rc;
        if ((rc = emit(r, "\xEF\xBF\xBD", 3)))
            return rc;
        ucs4_t uc;
        int skip = u8_mbtouc(&uc, bad, n - good);
        if (skip < 1)
            skip = 1;
        s += good + (size_t)skip;
        n -= good + (size_t)skip;
    }
    return 0;
}

/* scalar_str formats a string, number or boolean as the spec interpolates
 * it; other values (null, objects, arrays) give NULL. */
static const char *scalar_str(json_t *v, char *tmp, size_t tn, size_t *len)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        *len = json_string_length(v);
        return json_string_value(v);
    case JSON_INTEGER: {
        /* By hand: snprintf was a tenth of a campaign message's render (an
         * id in every tracked link). Written backwards from tmp's end. */
        json_int_t iv = json_integer_value(v);
        unsigned long long u = iv < 0 ? 0ULL - (unsigned long long)iv : (unsigned long long)iv;
        char *p = tmp + tn;
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (iv < 0)
            *--p = '-';
        *len = (size_t)(tmp + tn - p);
        return p;
    }
    case JSON_REAL: {
        double d = json_real_value(v);
        for (int prec = 15; prec <= 17; prec++) { /* shortest that reads back */
            snprintf(tmp, tn, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
        *len = strlen(tmp);
        return tmp;
    }
    case JSON_TRUE:
        *len = 4;
        return "true";
    case JSON_FALSE:
        *len = 5;
        return "false";
    default:
        return NULL;
    }
}

static json_t *lookup(rs *r, const path *p)
{
    if (p->n == 0)
        return r->ctx[r->nctx - 1];
    /* Fibonacci hashing of the address: its top bits */
    size_t slot = (size_t)(((uint64_t)(uintptr_t)p->part * 0x9E3779B97F4A7C15ull) >>
                           (64 - ROOT_MEMO_BITS));
    if (r->nctx == 1 && r->memo[slot].part == p->part)
        return r->memo[slot].v;
    json_t *v = NULL;
    for (size_t i = r->nctx; i-- > 0;) {
        if (json_is_object(r->ctx[i]) && (v = json_object_get(r->ctx[i], p->part[0])))
            break;
    }
    for (size_t k = 1; v && k < p->n; k++)
        v = json_is_object(v) ? json_object_get(v, p->part[k]) : NULL;
    if (r->nctx == 1) {
        r->memo[slot].part = p->part;
        r->memo[slot].v = v;
    }
    return v;
}

/* truthy follows the spec's `!!data`: false, null, missing, an empty list,
 * an empty string and the number 0 are all false. */
static bool truthy(json_t *v)
{
    if (!v)
        return false;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return false;
    case JSON_ARRAY: return json_array_size(v) > 0;
    case JSON_STRING: return json_string_length(v) > 0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_REAL: return json_real_value(v) != 0.0;
    default: return true;
    }
}

static int push_ctx(rs *r, json_t *v)
{
    if (r->nctx == r->actx) {
        r->actx *= 2;
        r->ctx = xrealloc(r->ctx, r->actx * sizeof *r->ctx);
    }
    r->ctx[r->nctx++] = v;
    return 0;
}

/* push_indent puts cur + add on the indentation stack at *off; TD_ETOOBIG
 * past MAX_INDENT (nested indented partials would otherwise grow it as the
 * square of the depth). */
static int push_indent(rs *r, size_t cur, size_t cur_n, const char *add, size_t add_n,
                       size_t *off_out)
{
    size_t off = r->ibn;
    if (cur_n + add_n > MAX_INDENT)
        return td_err_set(r->e, TD_ETOOBIG, "indentation of nested partials passes %d bytes",
                          MAX_INDENT);
    if (r->iba < r->ibn + cur_n + add_n) {
        while (r->iba < r->ibn + cur_n + add_n)
            r->iba = r->iba ? r->iba * 2 : 256;
        r->ib = xrealloc(r->ib, r->iba);
    }
    memmove(r->ib + off, r->ib + cur, cur_n);
    memcpy(r->ib + off + cur_n, add, add_n);
    r->ibn += cur_n + add_n;
    *off_out = off;
    return 0;
}

static int render_list(rs *r, const nlist *l, size_t ind, size_t ind_n, bool first_bol);

/* partial finds (compiling on first use) the partial called name; *out is
 * NULL when there is none. */
static int partial(rs *r, const char *name, size_t n, pentry **out)
{
    tmpl *top = r->top;
    *out = NULL;
    if (!r->fn)
        return 0;
    for (size_t i = 0; i < top->ncache; i++) {
        pentry *pe = top->cache[i];
        if (pe->n == n && memcmp(pe->name, name, n) == 0) {
            *out = pe;
            break;
        }
    }
    if (!*out) {
        if (top->ncache == MAX_PARTIALS)
            return td_err_set(r->e, TD_ETOOBIG, "more than %d distinct partials", MAX_PARTIALS);
        pentry *pe = xcalloc(1, sizeof *pe);
        pe->name = xstrndup(name, n);
        pe->n = n;
        size_t len = 0;
        const char *src = r->fn(r->ud, pe->name, &len);
        if (src) {
            td_error ce;
            td_err_clear(&ce);
            if (compile(src, len, &pe->t, &ce))
                pe->err = xstrdup(ce.msg);
        }
        top->cache = xrealloc(top->cache, (top->ncache + 1) * sizeof *top->cache);
        top->cache[top->ncache++] = pe;
        *out = pe;
    }
    if ((*out)->err)
        return td_err_set(r->e, TD_EINVAL, "partial '%.*s': %s", (int)(n > 80 ? 80 : n), name,
                          (*out)->err);
    return 0;
}

/* include renders a partial or parent node. */
static int include(rs *r, node *n, size_t ind, size_t ind_n)
{
    pentry *pe = n->pe;
    int rc;
    if (!pe) {
        if (n->dyn) {
            char tmp[64];
            size_t len = 0;
            json_t *v = lookup(r, &n->p);
            const char *name = v ? scalar_str(v, tmp, sizeof tmp, &len) : NULL;
            if (!name)
                return 0;
            if ((rc = partial(r, name, len, &pe)))
                return rc;
        } else {
            if ((rc = partial(r, n->s, n->n, &pe)))
                return rc;
            if (r->fn)
                n->pe = pe;
        }
    }
    if (!pe || !pe->t)
        return 0;
    if (r->pdepth >= r->top->lim.max_depth)
        return td_err_set(r->e, TD_ETOOBIG,
                          "partials nested more than %u deep (is partial '%s' recursive?)",
                          r->top->lim.max_depth, pe->name);
    size_t mark = r->ibn, off = 0, off_n = 0;
    if (n->flag) { /* standalone: its lines get our indentation and its own */
        if ((rc = push_indent(r, ind, ind_n, n->ind, n->ind_n, &off)))
            return rc;
        off_n = ind_n + n->ind_n;
    }
    bool pushed = false;
    if (n->type == N_PARENT && n->kids.n) {
        if (r->nargs == r->aargs) {
            r->aargs = r->aargs ? r->aargs * 2 : 8;
            r->args = xrealloc(r->args, r->aargs * sizeof *r->args);
        }
        r->args[r->nargs++] = &n->kids;
        pushed = true;
    }
    r->pdepth++;
    rc = render_list(r, &pe->t->root, off, off_n, false);
    r->pdepth--;
    if (pushed)
        r->nargs--;
    r->ibn = mark;
    return rc;
}

static int block(rs *r, node *n, size_t ind, size_t ind_n)
{
    const nlist *content = &n->kids;
    for (size_t i = 0; i < r->nargs; i++) { /* the outermost argument wins */
        const nlist *a = r->args[i];
        size_t k;
        for (k = 0; k < a->n; k++)
            if (a->v[k].n == n->n && memcmp(a->v[k].s, n->s, n->n) == 0)
                break;
        if (k < a->n) {
            content = &a->v[k].kids;
            break;
        }
    }
    if (!n->flag)
        return render_list(r, content, ind, ind_n, false);
    size_t mark = r->ibn, off;
    int rc = push_indent(r, ind, ind_n, n->ind, n->ind_n, &off);
    if (!rc)
        rc = render_list(r, content, off, ind_n + n->ind_n, true);
    r->ibn = mark;
    return rc;
}

static int text(rs *r, const node *n, size_t ind, size_t ind_n, bool bol)
{
    if (!ind_n)
        return emit(r, n->s, n->n);
    int rc;
    if (bol && (rc = emit(r, r->ib + ind, ind_n)))
        return rc;
    const char *p = n->s, *end = n->s + n->n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return emit(r, p, (size_t)(end - p));
        if ((rc = emit(r, p, (size_t)(nl + 1 - p))))
            return rc;
        p = nl + 1;
        if (p < end && (rc = emit(r, r->ib + ind, ind_n)))
            return rc;
    }
    return 0;
}

static const tmpl_helper *find_helper(rs *r, const path *p)
{
    if (p->n != 1)
        return NULL;
    for (size_t i = 0; i < r->nhelpers; i++)
        if (!strcmp(r->helpers[i].name, p->part[0]))
            return &r->helpers[i];
    return NULL;
}

/* call_helper renders the section's content into a scratch buffer (same
 * caps: its bytes count against the output cap as if emitted) and appends
 * what the helper makes of it. The buffers live as long as the render (a
 * campaign message calls a helper for each of its tracked links, and a
 * buffer made and grown for each call was a tenth of the render). */
static int call_helper(rs *r, const tmpl_helper *h, const node *n, size_t ind, size_t ind_n)
{
    if (r->hdepth == r->nscratch) {
        r->scratch = xrealloc(r->scratch, (r->nscratch + 1) * sizeof *r->scratch);
        r->scratch[r->nscratch] = xmalloc(sizeof(buf));
        buf_init(r->scratch[r->nscratch++], BUF_NOCAP);
    }
    buf *scratch = r->scratch[r->hdepth++];
    buf_reset(scratch);
    buf *saved = r->out;
    size_t saved_start = r->start;
    r->out = scratch;
    r->start = 0;
    int rc = render_list(r, &n->kids, ind, ind_n, false);
    r->out = saved;
    r->start = saved_start;
    if (!rc) {
        size_t before = r->out->len;
        rc = h->fn(h->ud, scratch->data ? scratch->data : "", scratch->len, r->out, r->e);
        if (!rc && r->out->len - r->start > r->cap) {
            buf_truncate(r->out, before);
            rc = td_err_set(r->e, TD_ETOOBIG, "rendered output passes the cap of %zu bytes",
                            r->cap);
        }
    }
    r->hdepth--;
    return rc;
}

static int render_list(rs *r, const nlist *l, size_t ind, size_t ind_n, bool first_bol)
{
    int rc = 0;
    if (++r->depth > MAX_RENDER_DEPTH) {
        rc = td_err_set(r->e, TD_ETOOBIG, "template nests more than %d deep when rendered",
                        MAX_RENDER_DEPTH);
        goto out;
    }
    for (size_t i = 0; i < l->n; i++) {
        node *n = &l->v[i];
        bool bol = n->bol || (i == 0 && first_bol);
        if (++r->steps > r->top->lim.max_steps) {
            rc = td_err_set(r->e, TD_ETOOBIG, "rendering took more than %zu steps",
                            r->top->lim.max_steps);
            goto out;
        }
        if (n->type == N_TEXT) {
            if ((rc = text(r, n, ind, ind_n, bol)))
                goto out;
            continue;
        }
        if (bol && ind_n && (rc = emit(r, r->ib + ind, ind_n)))
            goto out;
        switch (n->type) {
        case N_VAR: {
            json_t *v = lookup(r, &n->p);
            char tmp[64];
            size_t len = 0;
            const char *s = v ? scalar_str(v, tmp, sizeof tmp, &len) : NULL;
            if (s && len && (rc = emit_value(r, s, len, n->flag)))
                goto out;
            break;
        }
        case N_SECTION: {
            const tmpl_helper *h = find_helper(r, &n->p);
            if (h) {
                if ((rc = call_helper(r, h, n, ind, ind_n)))
                    goto out;
                break;
            }
            json_t *v = lookup(r, &n->p);
            if (!truthy(v))
                break;
            if (json_is_array(v)) {
                for (size_t k = 0; k < json_array_size(v); k++) {
                    push_ctx(r, json_array_get(v, k));
                    rc = render_list(r, &n->kids, ind, ind_n, false);
                    r->nctx--;
                    if (rc)
                        goto out;
                }
            } else {
                push_ctx(r, v);
                rc = render_list(r, &n->kids, ind, ind_n, false);
                r->nctx--;
                if (rc)
                    goto out;
            }
            break;
        }
        case N_INVERTED:
            if (!truthy(lookup(r, &n->p)) && (rc = render_list(r, &n->kids, ind, ind_n, false)))
                goto out;
            break;
        case N_PARTIAL:
        case N_PARENT:
            if ((rc = include(r, n, ind, ind_n)))
                goto out;
            break;
        case N_BLOCK:
            if ((rc = block(r, n, ind, ind_n)))
                goto out;
            break;
        default:
            break;
        }
    }
out:
    r->depth--;
    return rc;
}

int tmpl_render(tmpl *t, json_t *data, tmpl_partial_fn partials, void *ud, buf *out,
                td_error *e)
{
    return tmpl_render_with(t, data, partials, ud, NULL, 0, out, e);
}

int tmpl_render_with(tmpl *t, json_t *data, tmpl_partial_fn partials, void *ud,
                     const tmpl_helper *helpers, size_t nhelpers, buf *out, td_error *e)
{
    rs r = {0};
    r.helpers = helpers;
    r.nhelpers = nhelpers;
    r.top = t;
    r.fn = partials;
    r.ud = ud;
    r.out = out;
    r.start = out->len;
    r.cap = t->lim.max_output;
    r.e = e;
    r.actx = 16;
    r.ctx = xmalloc(r.actx * sizeof *r.ctx);
    r.iba = 256;
    r.ib = xmalloc(r.iba);
    json_t *empty = NULL;
    if (!data)
        data = empty = json_object();
    r.ctx[r.nctx++] = data;
    int rc = render_list(&r, &t->root, 0, 0, false);
    if (rc)
        buf_truncate(out, r.start);
    json_decref(empty);
    free(r.ctx);
    free(r.args);
    free(r.ib);
    for (size_t i = 0; i < r.nscratch; i++) {
        buf_free(r.scratch[i]);
        free(r.scratch[i]);
    }
    free(r.scratch);
    return rc;
}
