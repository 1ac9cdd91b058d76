/* subscriber: validation of subscriber records (see subscriber.h). */
#include "audience/subscriber.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "mime/addr.h"
#include "util/jsonstr.h"
#include "util/text.h"

char *subscriber_email(const char *s, size_t len, td_error *e)
{
    addr a = {0};
    if (addr_parse(s, len, &a, e))
        return NULL;
    char *out = a.address;
    a.address = NULL;
    addr_clear(&a);
    return out;
}

char *subscriber_attribs(const char *json, size_t len, td_error *e)
{
    if (len > SUB_ATTRIBS_MAX) {
        td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes", SUB_ATTRIBS_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!v) {
        td_err_set(e, TD_EINVAL, "the attributes are not valid JSON: %s (column %d)", je.text,
                   je.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        td_err_set(e, TD_EINVAL, "the attributes must be a JSON object like {\"city\": \"Paris\"}");
        return NULL;
    }
    buf b;
    buf_init(&b, BUF_NOCAP);
    jsonstr_value(&b, v);
    json_decref(v);
    if (b.len > SUB_ATTRIBS_MAX) {
        buf_free(&b);
        td_err_set(e, TD_EINVAL, "the attributes are larger than %d bytes", SUB_ATTRIBS_MAX);
        return NULL;
    }
    char *out = buf_steal(&b);
    buf_free(&b);
    return out;
}

int subscriber_check(const sub_rec *r, td_error *e)
{
    int rc;
    if (r->name && (rc = text_check("the name", r->name, strlen(r->name), SUB_NAME_MAX, e)))
        return rc;
    if (r->status && !model_sub_status_ok(r->status))
        return td_err_set(e, TD_EINVAL, "the status must be enabled or blocklisted, not '%s'",
                          r->status);
    if (r->timezone && *r->timezone && !text_tz_ok(r->timezone))
        return td_err_set(e, TD_EINVAL,
                          "'%.64s' is not a known time zone; use an IANA name like Asia/Bangkok",
                          r->timezone);
    if (r->locale && *r->locale && !text_locale_ok(r->locale))
        return td_err_set(e, TD_EINVAL, "'%.64s' is not a locale tag like en, th-TH or ar-EG",
                          r->locale);
    return TD_OK;
}
