/* campaign: creation and state changes (see campaign.h). */
#include "campaign/campaign.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "campaign/autotrack.h"
#include "mime/addr.h"
#include "tmpl/tmpl.h"
#include "util/text.h"
#include "util/xalloc.h"

static int check_template(const char *what, const char *src, td_error *e)
{
    tmpl *t = NULL;
    td_error te = {0};
    int rc = tmpl_compile(src, strlen(src), &t, &te);
    tmpl_free(t);
    if (rc)
        return td_err_set(e, rc, "%s: %s", what, te.msg);
    return TD_OK;
}

static int check_mailbox(const char *what, const char *s, td_error *e)
{
    char *name = NULL;
    addr a = {0};
    td_error ae = {0};
    int rc = addr_parse_mailbox(s, &name, &a, &ae);
    free(name);
    addr_clear(&a);
    if (rc)
        return td_err_set(e, TD_EINVAL, "%s: %s", what, ae.msg);
    return TD_OK;
}

int campaign_parse_time(const char *at, const char *tz, int64_t *out, td_error *e)
{
    int y, mo, d, h, mi, sec = 0, n = 0;
    char sep;
    bool ok = sscanf(at, "%4d-%2d-%2d%c%2d:%2d%n", &y, &mo, &d, &sep, &h, &mi, &n) == 6 &&
              (sep == ' ' || sep == 'T');
    const char *rest = at + (ok ? n : 0);
    if (ok && *rest == ':') {
        int m = 0;
        ok = sscanf(rest, ":%2d%n", &sec, &m) == 1;
        rest += m;
    }
    if (!ok || *rest)
        return td_err_set(e, TD_EINVAL,
                          "'%.40s' is not a time like 2026-12-01 09:30 (YYYY-MM-DD HH:MM)", at);
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 59 || h < 0 || mi < 0 || sec < 0)
        return td_err_set(e, TD_EINVAL, "'%.40s' is not a valid date and time", at);
    if (tz && !text_tz_ok(tz))
        return td_err_set(e, TD_EINVAL,
                          "'%.60s' is not a time zone this system knows (e.g. Asia/Bangkok)", tz);
    char *saved = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", tz ? tz : "UTC", 1);
    tzset();
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = sec, .tm_isdst = -1};
    time_t t = mktime(&tm);
    /* mktime normalises: 31 February or a time inside a DST gap comes back
     * as another day or hour. */
    bool exact = t != (time_t)-1 && tm.tm_year == y - 1900 && tm.tm_mon == mo - 1 &&
                 tm.tm_mday == d && tm.tm_hour == h && tm.tm_min == mi;
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
    if (!exact)
        return td_err_set(e, TD_EINVAL, "%.40s does not exist in %s", at, tz ? tz : "UTC");
    *out = (int64_t)t;
    return TD_OK;
}

int campaign_create(store *s, const campaign_spec *sp, int64_t now, int64_t *id, td_error *e)
{
    int rc;
    if (!sp->name || !*sp->name)
        return td_err_set(e, TD_EINVAL, "the campaign needs a name");
    if ((rc = text_check("the name", sp->name, strlen(sp->name), CAMPAIGN_MAX_NAME, e)))
        return rc;
    if (!sp->subject || !*sp->subject)
        return td_err_set(e, TD_EINVAL, "the campaign needs a subject");
    if ((rc = check_template("the subject", sp->subject, e)))
        return rc;
    if (!sp->html && !sp->text)
        return td_err_set(e, TD_EINVAL, "the campaign needs an HTML or a text template");
    if ((sp->html && (rc = check_template("the HTML template", sp->html, e))) ||
        (sp->text && (rc = check_template("the text template", sp->text, e))))
        return rc;
    if (!sp->from)
        return td_err_set(e, TD_EINVAL, "the campaign needs a From address");
    if ((rc = check_mailbox("the From address", sp->from, e)) ||
        (sp->reply_to && (rc = check_mailbox("the Reply-To address", sp->reply_to, e))))
        return rc;
    if (sp->nlists == 0)
        return td_err_set(e, TD_EINVAL, "the campaign needs at least one list");
    if (sp->nlists > CAMPAIGN_MAX_LISTS)
        return td_err_set(e, TD_EINVAL, "a campaign goes to at most %d lists", CAMPAIGN_MAX_LISTS);
    int64_t send_at = 0;
    if (sp->at) {
        if ((rc = campaign_parse_time(sp->at, sp->tz, &send_at, e)))
            return rc;
        if (send_at <= now)
            return td_err_set(e, TD_EINVAL, "the send time %s is in the past", sp->at);
    } else if (sp->tz) {
        return td_err_set(e, TD_EINVAL, "a time zone without a send time (--at) means nothing");
    }
    int64_t *ids = xcalloc(sp->nlists, sizeof *ids);
    for (size_t i = 0; i < sp->nlists; i++) {
        list_rec l = {0};
        rc = store_list_find(s, sp->lists[i], &l, e);
        ids[i] = l.id;
        list_rec_clear(&l);
        if (rc == TD_ENOTFOUND)
            rc = td_err_set(e, TD_ENOTFOUND, "there is no list '%.100s'", sp->lists[i]);
        if (rc) {
            free(ids);
            return rc;
        }
    }
    /* Tracking goes into the stored template, so the sender renders it
     * like any other {{#track}} link. */
    char *html = sp->html ? autotrack_html(sp->html, !sp->no_track_opens, !sp->no_track_clicks)
                          : NULL;
    if (html && (rc = check_template("the HTML template (with tracking)", html, e))) {
        free(html);
        free(ids);
        return rc;
    }
    campaign_rec c = {.name = (char *)sp->name,
                      .subject = (char *)sp->subject,
                      .from = (char *)sp->from,
                      .reply_to = (char *)sp->reply_to,
                      .html = html,
                      .no_track_opens = sp->no_track_opens,
                      .no_track_clicks = sp->no_track_clicks,
                      .text = (char *)sp->text,
                      .state = "draft",
                      .send_at = send_at,
                      .timezone = (char *)sp->tz,
                      .team_id = sp->team_id,
                      .owner_id = sp->owner_id};
    rc = store_campaign_add(s, &c, ids, sp->nlists, id, e);
    free(ids);
    free(html);
    return rc;
}

int campaign_start(store *s, int64_t id, int64_t now, const char **state, uint64_t *recipients,
                   td_error *e)
{
    *recipients = 0;
    int rc = store_begin(s, e);
    if (rc)
        return rc;
    campaign_rec c = {0};
    rc = store_campaign_get(s, id, &c, e);
    if (!rc && strcmp(c.state, "draft") && strcmp(c.state, "scheduled"))
        rc = td_err_set(e, TD_EDENIED, "campaign %lld is %s: only a draft or a scheduled campaign "
                        "starts", (long long)id, c.state);
    if (!rc && c.send_at > now) {
        if (!strcmp(c.state, "draft"))
            rc = store_campaign_set_state(s, id, "draft", "scheduled", now, e);
        *state = "scheduled";
    } else if (!rc) {
        rc = store_campaign_freeze(s, id, now, recipients, e);
        if (!rc)
            rc = store_campaign_set_state(s, id, c.state, "running", now, e);
        *state = "running";
    }
    campaign_rec_clear(&c);
    if (!rc)
        rc = store_commit(s, e);
    if (rc)
        store_rollback(s);
    return rc;
}

/* move tries each of the from states in turn. */
static int move(store *s, int64_t id, const char *const *from, size_t n, const char *to,
                int64_t now, const char *verb, td_error *e)
{
    int rc = TD_EDENIED;
    for (size_t i = 0; i < n && rc == TD_EDENIED; i++)
        rc = store_campaign_set_state(s, id, from[i], to, now, e);
    if (rc == TD_EDENIED) {
        campaign_rec c = {0};
        if (!store_campaign_get(s, id, &c, NULL))
            td_err_set(e, TD_EDENIED, "campaign %lld is %s: it cannot %s", (long long)id,
                       c.state, verb);
        campaign_rec_clear(&c);
    }
    return rc;
}

int campaign_pause(store *s, int64_t id, int64_t now, td_error *e)
{
    static const char *const from[] = {"running"};
    return move(s, id, from, 1, "paused", now, "be paused (only a running one can)", e);
}

int campaign_resume(store *s, int64_t id, int64_t now, td_error *e)
{
    static const char *const from[] = {"paused"};
    return move(s, id, from, 1, "running", now, "be resumed (only a paused one can)", e);
}

int campaign_cancel(store *s, int64_t id, int64_t now, td_error *e)
{
    static const char *const from[] = {"draft", "scheduled", "running", "paused"};
    return move(s, id, from, 4, "cancelled", now, "be cancelled (it is over already)", e);
}
