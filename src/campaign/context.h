/* campaign/context: what a campaign template sees for one recipient, and
 * the {{#track}}...{{/track}} helper that makes a link click-tracked.
 *
 * The data (a JSON object, docs/internals/campaign-templates.md):
 *   subscriber  {id, email, name, first_name, attributes{...}, timezone, locale}
 *   list        {id, name}
 *   campaign    {id, name, subject}
 *   sender      {name, first_name, email}   the first person of a seller's newsletter
 *   unsubscribe_url, preferences_url, view_url, open_url   signed, per recipient
 * Every URL starts from the platform's public base URL (the 'public_url'
 * setting). Content blocks (articles, products) come in as partials, from
 * the caller's partial function. */
#ifndef TD_CAMPAIGN_CONTEXT_H
#define TD_CAMPAIGN_CONTEXT_H

#include <jansson.h>
#include <stdbool.h>

#include "store/model.h"
#include "tmpl/tmpl.h"
#include "track/token.h"
#include "util/buf.h"
#include "util/err.h"

/* What is the same for every recipient of a campaign. Strings are borrowed
 * and must outlive the context. */
typedef struct msg_context msg_context;
struct msg_track_helper { /* the track helper's state, html and text */
    msg_context *c;
    bool html;
};

struct msg_context {
    const char *base_url;         /* public base URL, e.g. https://news.example.com */
    uint8_t key[TRACK_KEY_LEN];   /* from track_key(secret) */
    int64_t campaign_id;
    const char *campaign_name, *subject;
    int64_t list_id;
    const char *list_name;
    const char *sender_name, *sender_email;
    /* Per recipient, set by msg_context_data: */
    int64_t subscriber_id;
    struct msg_track_helper helper[2]; /* private to msg_context_helper */
    /* Optional (msg_context_memo_on): the recipient's click URLs made so
     * far, so that a link of the HTML made again in the text is not signed
     * twice. NULL: each is made anew. */
    struct msg_track_memo *memo;
};

/* msg_context_memo_on gives c a memo of its own (for a context that makes
 * many messages); msg_context_memo_off frees it. A copied context must get
 * its own. While the memo is on, the list and sender objects are made once
 * and shared by every recipient's data: the fields of c must not change,
 * and those two objects must not be changed. (The campaign object is the
 * recipient's own: the delivery worker sets its subject.) */
void msg_context_memo_on(msg_context *c);
void msg_context_memo_off(msg_context *c);

/* msg_context_data returns a new JSON object (the caller json_decref's it)
 * for subscriber s, and makes c the context of that recipient for the
 * track helper. Returns NULL with e set when s's attributes are not a JSON
 * object or a URL cannot be made. */
json_t *msg_context_data(msg_context *c, const sub_rec *s, td_error *e);

/* msg_context_helper returns the template helper named "track", bound to c:
 * {{#track}}https://shop.example/item?id={{id}}{{/track}} renders as the
 * signed click URL, for the current recipient, that redirects there. The
 * content must be an http or https URL. For the HTML part (html true) it is
 * read as an attribute value, so entities such as &amp; are decoded first,
 * and the result is HTML-escaped; for the text part both are left as is. */
tmpl_helper msg_context_helper(msg_context *c, bool html);

#endif
