/* campaign/view: a campaign's message rendered again for one recipient
 * (see view.h). It sets up what the delivery worker sets up for a whole
 * campaign (delivery/worker.c setup), for one message: the context of
 * campaign/context, the first list's name, the sender, the content
 * library. */
#include "campaign/view.h"

#include <stdlib.h>
#include <string.h>

#include "campaign/blocks.h"
#include "campaign/context.h"
#include "mime/addr.h"
#include "mime/msg.h"
#include "tmpl/tmpl.h"
#include "util/xalloc.h"

static int take_first(void *ud, const char *name)
{
    char **first = ud;
    if (!*first)
        *first = xstrdup(name);
    return 1;
}

static int render(const char *what, const char *src, msg_context *mc, bool html, json_t *data,
                  blocks *b, buf *out, td_error *e)
{
    tmpl *t = NULL;
    td_error te = {0};
    int rc = tmpl_compile(src, strlen(src), &t, &te);
    if (rc)
        return td_err_set(e, rc, "%s: %s", what, te.msg);
    tmpl_helper h = msg_context_helper(mc, html);
    rc = tmpl_render_with(t, data, blocks_partial, b, &h, 1, out, e);
    tmpl_free(t);
    return rc;
}

/* The text part in a page: escaped, in a <pre> that wraps. */
static void text_page(buf *out, const char *s, size_t n, const char *title)
{
    buf_puts(out, "<!doctype html>\n<html><head><meta charset=\"utf-8\">"
                  "<meta name=\"viewport\" content=\"width=device-width\">"
                  "<meta name=\"robots\" content=\"noindex\"><title>");
    for (int pass = 0; pass < 2; pass++) {
        const char *p = pass ? s : title;
        size_t len = pass ? n : strlen(title);
        for (size_t i = 0; i < len; i++) {
            switch (p[i]) {
            case '&': buf_puts(out, "&amp;"); break;
            case '<': buf_puts(out, "&lt;"); break;
            case '>': buf_puts(out, "&gt;"); break;
            case '"': buf_puts(out, "&quot;"); break;
            default: buf_putc(out, p[i]); break;
            }
        }
        if (!pass)
            buf_puts(out, "</title></head><body>\n<pre dir=\"auto\" style=\"white-space:"
                          "pre-wrap;font-family:sans-serif\">");
    }
    buf_puts(out, "</pre>\n</body></html>\n");
}

int campaign_view(store *s, int64_t campaign_id, int64_t subscriber_id, buf *html,
                  char **subject, td_error *e)
{
    *subject = NULL;
    campaign_rec c = {0};
    sub_rec sub = {0};
    char *base = NULL, *secret = NULL, *sender_name = NULL, *list = NULL;
    addr from = {0};
    blocks *b = NULL;
    json_t *data = NULL;
    buf subj, body;
    buf_init(&subj, BUF_NOCAP);
    buf_init(&body, BUF_NOCAP);
    int rc = store_campaign_get(s, campaign_id, &c, e);
    if (!rc)
        rc = store_sub_get(s, subscriber_id, &sub, e);
    if (!rc && !(rc = store_setting_get(s, "public_url", &base, e)))
        rc = store_setting_get(s, "secret", &secret, e);
    if (!rc)
        rc = addr_parse_mailbox(c.from, &sender_name, &from, e);
    if (rc)
        goto out;
    store_campaign_list_names(s, campaign_id, take_first, &list, NULL);
    msg_context mc = {.base_url = base,
                      .campaign_id = campaign_id,
                      .campaign_name = c.name,
                      .subject = c.subject,
                      .list_name = list ? list : "",
                      .sender_name = sender_name ? sender_name : "",
                      .sender_email = from.address};
    track_key(secret, mc.key);
    b = blocks_new(s, 0);
    if (!(data = msg_context_data(&mc, &sub, e))) {
        rc = TD_EINVAL;
        goto out;
    }
    if ((rc = blocks_attach(b, data, e)) ||
        (rc = render("the subject", c.subject, &mc, false, data, b, &subj, e)))
        goto out;
    size_t sl = msg_text_unescape(subj.data, subj.len);
    json_object_set_new(json_object_get(data, "campaign"), "subject",
                        json_stringn(subj.data ? subj.data : "", sl));
    *subject = xstrndup(subj.data ? subj.data : "", sl);
    if (c.html) {
        rc = render("the HTML template", c.html, &mc, true, data, b, html, e);
    } else if (!(rc = render("the text template", c.text ? c.text : "", &mc, false, data, b,
                             &body, e))) {
        size_t n = msg_text_unescape(body.data, body.len);
        text_page(html, body.data ? body.data : "", n, *subject);
    }
out:
    if (rc) {
        free(*subject);
        *subject = NULL;
    }
    json_decref(data);
    blocks_free(b);
    buf_free(&subj);
    buf_free(&body);
    addr_clear(&from);
    free(sender_name);
    free(list);
    free(base);
    free(secret);
    sub_rec_clear(&sub);
    campaign_rec_clear(&c);
    return rc;
}
