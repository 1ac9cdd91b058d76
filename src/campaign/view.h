/* campaign/view: a campaign's message as one recipient got it, for the
 * "view in browser" link (/v/TOKEN).
 *
 * The page is rendered again from the campaign's templates with the
 * recipient's data (campaign/context, the content library for partials),
 * as the delivery worker renders the message: the same subject, body and
 * signed links. Nothing is stored per message to make this possible. */
#ifndef TD_CAMPAIGN_VIEW_H
#define TD_CAMPAIGN_VIEW_H

#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

/* campaign_view appends to html a whole HTML page: the campaign's HTML part
 * for subscriber_id, or its text part in a <pre> when it has no HTML; and
 * sets *subject (the caller frees) to the rendered subject. Returns 0,
 * TD_ENOTFOUND when the campaign or subscriber is gone, or the error that
 * rendering met. */
int campaign_view(store *s, int64_t campaign_id, int64_t subscriber_id, buf *html,
                  char **subject, td_error *e);

#endif
