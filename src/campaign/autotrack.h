/* autotrack: turns on open and click tracking in a campaign's HTML
 * template, as `tidings campaign create` stores it.
 *
 * Clicks: every link whose href is written as an http or https URL (it may
 * hold mustache tags, e.g. https://shop.example/?u={{subscriber.id}}) is
 * wrapped in the {{#track}}...{{/track}} helper of campaign/context, which
 * renders it as the recipient's signed /c/ URL. Links already wrapped, and
 * hrefs that are a tag alone ({{unsubscribe_url}}), a mailto: or an anchor,
 * are left as written. Opens: an <img> of {{open_url}} (the /o/ pixel) goes
 * before </body>, or at the end, unless the template shows {{open_url}}
 * itself. A template that changes the mustache delimiters is left alone
 * (its tags could not be told apart from text). Links in content blocks
 * (partials) are not rewritten: wrap them with {{#track}} in the block. */
#ifndef TD_CAMPAIGN_AUTOTRACK_H
#define TD_CAMPAIGN_AUTOTRACK_H

#include <stdbool.h>

/* autotrack_html returns a new string (the caller frees it): src with
 * click tracking when clicks and the open pixel when opens. Never fails
 * (allocation failure aborts). */
char *autotrack_html(const char *src, bool opens, bool clicks);

#endif
