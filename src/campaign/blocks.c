/* campaign/blocks: content blocks as partials (see blocks.h and
 * docs/internals/blocks.md). */
#include "campaign/blocks.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

/* Longest name the resolver looks at: "product/" + a name + "/body". */
#define MAX_PARTIAL_NAME (sizeof "product/" - 1 + BLOCK_MAX_NAME + sizeof "/body" - 1)

struct blocks {
    store *st;
    int64_t team_id;
    json_t *data;   /* {"article": {NAME: {...}}, "product": {...}}, shared with attached data */
    json_t *bodies; /* {"KIND/NAME": body}: the bodies of the blocks loaded */
    buf out;        /* the last string returned */
    td_error err;   /* the first failure, err.code 0 when none */
};

blocks *blocks_new(store *st, int64_t team_id)
{
    blocks *b = xcalloc(1, sizeof *b);
    b->st = st;
    b->team_id = team_id;
    b->data = json_pack("{s{}s{}}", "article", "product");
    b->bodies = json_object();
    buf_init(&b->out, TMPL_MAX_SRC);
    return b;
}

void blocks_free(blocks *b)
{
    if (!b)
        return;
    json_decref(b->data);
    json_decref(b->bodies);
    buf_free(&b->out);
    free(b);
}

int blocks_attach(blocks *b, json_t *data, td_error *e)
{
    if (!json_is_object(data))
        return td_err_set(e, TD_EINVAL, "the template data must be a JSON object");
    json_object_set(data, BLOCKS_KEY, b->data);
    return 0;
}

int blocks_status(const blocks *b, td_error *e)
{
    if (b->err.code && e)
        *e = b->err;
    return b->err.code;
}

/* fail records the first failure; later ones are usually its echoes. */
static const char *fail(blocks *b, int code, const char *msg)
{
    if (!b->err.code)
        td_err_set(&b->err, code, "%s", msg);
    return NULL;
}

/* split_kind returns the length of name's kind ("article", "product") when
 * name starts with it and a '/', else 0. */
static size_t split_kind(const char *name)
{
    static const char *const kinds[] = {"article", "product"};
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(kinds[i]);
        if (!strncmp(name, kinds[i], n) && name[n] == '/')
            return n;
    }
    return 0;
}

bool blocks_is_name(const char *name)
{
    return name && split_kind(name) > 0;
}

/* block_object makes what the body sees: the data's keys, then title, name
 * and kind (which win over keys of the same name). NULL when the stored
 * data is not an object, which the schema does not allow. */
static json_t *block_object(const block_rec *r)
{
    json_t *o = json_loads(r->data ? r->data : "{}", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    /* The wrappers find the library by this key from inside a block too, so
     * a block's data must not hide it. */
    json_object_del(o, BLOCKS_KEY);
    json_object_set_new(o, "title", json_string(r->title));
    json_object_set_new(o, "name", json_string(r->name));
    json_object_set_new(o, "kind", json_string(r->kind));
    return o;
}

static const char *a_an(const char *kind)
{
    return kind[0] == 'a' ? "an" : "a";
}

/* load fetches block `slug` of `kind`, keeps its data and body, and
 * returns its wrapper. */
static const char *load(blocks *b, const char *kind, const char *slug, size_t *len)
{
    char msg[256];
    if (!model_block_name_ok(slug)) {
        snprintf(msg, sizeof msg, "'%s/...' names no block: a block's name is 1 to %d of a-z, "
                 "0-9 and '-'", kind, BLOCK_MAX_NAME);
        return fail(b, TD_ENOTFOUND, msg);
    }
    block_rec r = {0};
    td_error e = {0};
    int rc = store_block_get(b->st, slug, &r, &e);
    if (rc == TD_ENOTFOUND) {
        snprintf(msg, sizeof msg, "there is no %s '%s' in the content library", kind, slug);
        return fail(b, rc, msg);
    }
    if (rc)
        return fail(b, rc, e.msg);
    const char *res = NULL;
    json_t *obj = NULL;
    if (strcmp(r.kind, kind)) {
        snprintf(msg, sizeof msg, "'%s' in the content library is %s %s, not %s %s "
                 "(write {{> %s/%s}})", slug, a_an(r.kind), r.kind, a_an(kind), kind, r.kind,
                 slug);
        fail(b, TD_ENOTFOUND, msg);
    } else if (b->team_id && r.team_id && r.team_id != b->team_id) {
        snprintf(msg, sizeof msg, "the %s '%s' belongs to another team", kind, slug);
        fail(b, TD_EDENIED, msg);
    } else if (!(obj = block_object(&r))) {
        snprintf(msg, sizeof msg, "the %s '%s' has data that is not a JSON object", kind, slug);
        fail(b, TD_EINVAL, msg);
    } else {
        json_object_set_new(json_object_get(b->data, kind), slug, obj);
        char key[2 * MAX_PARTIAL_NAME];
        snprintf(key, sizeof key, "%s/%s", kind, slug);
        json_object_set_new(b->bodies, key, json_string(r.body));
        /* The body is a partial of its own rather than pasted between the
         * section tags: a body that changes its delimiters, or leaves a
         * section open, then cannot swallow the closing tag. Each tag stands
         * alone on its line, so the wrapper adds nothing to the output and
         * the indentation of a standalone {{> article/x}} reaches every
         * line of the body, as if the body had been included directly. */
        buf_reset(&b->out);
        if (buf_printf(&b->out,
                       "{{#" BLOCKS_KEY ".%s.%s}}\n{{> %s/%s/body}}\n{{/" BLOCKS_KEY ".%s.%s}}",
                       kind, slug, kind, slug, kind, slug) == 0) {
            res = b->out.data;
            *len = b->out.len;
        }
    }
    block_rec_clear(&r);
    return res;
}

const char *blocks_partial(void *ud, const char *name, size_t *len)
{
    blocks *b = ud;
    size_t k = split_kind(name);
    if (!k)
        return NULL;
    size_t n = strlen(name);
    char kind[8], slug[MAX_PARTIAL_NAME + 1];
    memcpy(kind, name, k);
    kind[k] = '\0';
    if (n - k - 1 > BLOCK_MAX_NAME + sizeof "/body" - 1) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s/...' names no block: the name is too long", kind);
        return fail(b, TD_ENOTFOUND, msg);
    }
    memcpy(slug, name + k + 1, n - k); /* with the NUL */
    char *sub = strchr(slug, '/');
    if (!sub)
        return load(b, kind, slug, len);
    if (strcmp(sub, "/body")) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s/...' names no block: a block's name has no '/'", kind);
        return fail(b, TD_ENOTFOUND, msg);
    }
    /* The body of a block loaded by its wrapper: the wrapper asks for it
     * right after it is compiled, so it is always there. */
    char key[2 * MAX_PARTIAL_NAME];
    snprintf(key, sizeof key, "%s/%.*s", kind, (int)(sub - slug), slug);
    json_t *body = json_object_get(b->bodies, key);
    if (!json_is_string(body))
        return NULL;
    *len = json_string_length(body);
    return json_string_value(body);
}

int blocks_check_body(const char *body, size_t len, td_error *e)
{
    tmpl *t = NULL;
    int rc = tmpl_compile(body, len, &t, e);
    tmpl_free(t);
    return rc;
}

const char *blocks_chain_partial(void *ud, const char *name, size_t *len)
{
    const blocks_chain *c = ud;
    const char *s = NULL;
    if (c->first && !blocks_is_name(name))
        s = c->first(c->first_ud, name, len);
    if (!s && c->second)
        s = c->second(c->second_ud, name, len);
    return s;
}
