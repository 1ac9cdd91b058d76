/* cmd_message: `tidings message --template FILE --data FILE.json --from ADDR
 * --to ADDR --subject S [--text FILE] [--partials DIR]` prints one complete
 * message exactly as it would be sent (CRLF line ends), for previews,
 * debugging and checks by other tools. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "campaign/blocks.h"
#include "campaign/context.h"
#include "cli/cli.h"
#include "cli/cli_tmpl.h"
#include "mime/addr.h"
#include "mime/dkim.h"
#include "mime/msg.h"
#include "store/store.h"
#include "tmpl/tmpl.h"
#include "tmpl/tmpl_dir.h"
#include "util/xalloc.h"

static const char usage[] =
    "usage: tidings message --template FILE --from ADDR --to ADDR --subject S\n"
    "                       [--data FILE.json] [--text FILE] [--partials DIR]\n"
    "                       [--reply-to ADDR] [--attach FILE]... [--unsubscribe-url URL]\n"
    "                       [--unsubscribe-mailto ADDR] [--list-id ID [--list-name NAME]]\n"
    "                       [--feedback-id ID] [--message-id ID] [--date SECONDS]\n"
    "                       [--sign] [--db PATH]\n"
    "\n"
    "Prints one complete message (headers and MIME body, CRLF line ends) exactly as\n"
    "it would be sent. --template is the HTML (a mustache file); --text a mustache\n"
    "file for the text version, which is otherwise made from the HTML. The subject\n"
    "is a mustache template too, rendered with the same data; it and the text\n"
    "version are plain text, so the HTML escapes {{var}} writes are undone there.\n"
    "Without --template the message is text only (then --text is required).\n"
    "From, To and Reply-To accept 'Name <addr>'. --attach adds a file (repeat it);\n"
    "its type comes from its extension (pdf, png, jpg, gif, txt, csv, ics, zip;\n"
    "else application/octet-stream). --date is seconds since 1970 (default: now);\n"
    "--message-id is id@domain (default: random @ the From domain); with both the\n"
    "output is the same on every run. Exit 1 with a message on standard error\n"
    "when a template, the data or a header value is refused.\n"
    "\n"
    "With a database (--db, $TIDINGS_DB, or ./tidings.db when it exists) the\n"
    "templates also see what campaign messages see: subscriber (the --to address\n"
    "as stored, if it is), sender (the From name and address), unsubscribe_url,\n"
    "preferences_url, view_url and open_url (signed, from the public URL set by\n"
    "`tidings init --public-url`), and {{#track}}URL{{/track}}, which makes a link\n"
    "click-tracked; keys in --data win over these. The unsubscribe URL then goes\n"
    "into List-Unsubscribe when it is https and --unsubscribe-url is not given.\n"
    "--sign signs the message with the DKIM keys of the From domain (made with\n"
    "`tidings dkim keygen`; both algorithms when both exist).\n"
    "With a database, {{> article/NAME}} and {{> product/NAME}} include blocks of\n"
    "the content library (`tidings block`), after --partials DIR is searched for\n"
    "other names; inside a block {{title}} and its data ({{price}}...) are its own.\n";

#define MAX_ATTACH_FILE (25u << 20)
#define MAX_MESSAGE (256u << 20)

static const char *guess_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".pdf", "application/pdf"}, {".png", "image/png"},         {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},     {".gif", "image/gif"},         {".txt", "text/plain"},
        {".csv", "text/csv"},        {".ics", "text/calendar"},     {".zip", "application/zip"},
        {".html", "text/html"},      {".json", "application/json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

static bool parse_date(const char *s, time_t *out)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || v <= 0 || v > 253402300799LL)
        return false;
    *out = (time_t)v;
    return true;
}

/* context_for sets up mc for a message from `from` to `to` and adds the
 * campaign-template keys to data where data has none of its own. */
static int context_for(store *st, const char *from, const char *to, msg_context *mc,
                       char **base_url, char **secret, json_t *data)
{
    td_error e = {0};
    if (store_setting_get(st, "public_url", base_url, &e) ||
        store_setting_get(st, "secret", secret, &e)) {
        cli_error("%s (run `tidings init` on this database)", e.msg);
        return -1;
    }
    mc->base_url = *base_url;
    track_key(*secret, mc->key);
    addr fa = {0}, ta = {0};
    char *fname = NULL, *tname = NULL;
    if (addr_parse_mailbox(from, &fname, &fa, &e) ||
        addr_parse_mailbox(to, &tname, &ta, &e)) {
        cli_error("%s", e.msg);
        free(fname);
        free(tname);
        addr_clear(&fa);
        addr_clear(&ta);
        return -1;
    }
    mc->sender_name = fname ? fname : xstrdup("");
    mc->sender_email = xstrdup(fa.address);
    sub_rec s = {0};
    bool stored = store_sub_find(st, ta.address, &s, NULL) == TD_OK;
    if (!stored) {
        s.email = xstrdup(ta.address);
        s.name = tname ? xstrdup(tname) : xstrdup("");
        s.attribs = xstrdup("{}");
    }
    free(tname);
    addr_clear(&fa);
    addr_clear(&ta);
    json_t *ctx = msg_context_data(mc, &s, &e);
    sub_rec_clear(&s);
    if (!ctx) {
        cli_error("%s", e.msg);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(ctx, key, v)
    {
        if (!json_object_get(data, key))
            json_object_set(data, key, v);
    }
    json_decref(ctx);
    return 0;
}

/* The text version gets the track helper without HTML decoding/escaping. */
static const tmpl_helper *text_helpers(tmpl_helper *h, size_t n, msg_context *mc)
{
    static _Thread_local tmpl_helper t[1];
    if (!n)
        return NULL;
    t[0] = msg_context_helper(mc, false);
    (void)h;
    return t;
}

int cmd_message(int argc, char **argv)
{
    static const struct option opts[] = {
        {"template", required_argument, NULL, 'T'},
        {"data", required_argument, NULL, 'd'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"subject", required_argument, NULL, 's'},
        {"text", required_argument, NULL, 'x'},
        {"partials", required_argument, NULL, 'p'},
        {"reply-to", required_argument, NULL, 'r'},
        {"attach", required_argument, NULL, 'a'},
        {"unsubscribe-url", required_argument, NULL, 'u'},
        {"unsubscribe-mailto", required_argument, NULL, 'm'},
        {"list-id", required_argument, NULL, 'l'},
        {"list-name", required_argument, NULL, 'L'},
        {"feedback-id", required_argument, NULL, 'F'},
        {"message-id", required_argument, NULL, 'i'},
        {"date", required_argument, NULL, 'D'},
        {"sign", no_argument, NULL, 'S'},
        {"db", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *tpath = NULL, *dpath = NULL, *from = NULL, *to = NULL, *subject = NULL;
    const char *xpath = NULL, *partials = NULL, *db = NULL;
    bool sign = false;
    const char *attach[MSG_MAX_ATTACHMENTS];
    size_t nattach = 0;
    msg_envelope_spec es = {0};
    msg_spec ms = {0};
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'T':
            tpath = optarg;
            break;
        case 'd':
            dpath = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 's':
            subject = optarg;
            break;
        case 'x':
            xpath = optarg;
            break;
        case 'p':
            partials = optarg;
            break;
        case 'r':
            es.reply_to = optarg;
            break;
        case 'a':
            if (nattach == MSG_MAX_ATTACHMENTS)
                return cli_usage_error("message", "at most %d attachments", MSG_MAX_ATTACHMENTS);
            attach[nattach++] = optarg;
            break;
        case 'u':
            ms.unsubscribe_url = optarg;
            break;
        case 'm':
            ms.unsubscribe_mailto = optarg;
            break;
        case 'l':
            es.list_id = optarg;
            break;
        case 'L':
            es.list_name = optarg;
            break;
        case 'F':
            es.feedback_id = optarg;
            break;
        case 'i':
            ms.message_id = optarg;
            break;
        case 'D':
            if (!parse_date(optarg, &ms.date))
                return cli_usage_error("message", "--date takes seconds since 1970, not '%s'",
                                       optarg);
            break;
        case 'S':
            sign = true;
            break;
        case 'B':
            db = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return EXIT_OK;
        default:
            return cli_bad_option("message", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("message", "unexpected argument '%s'", argv[optind]);
    if (!from || !to || !subject)
        return cli_usage_error("message", "--from, --to and --subject are required");
    if (!tpath && !xpath)
        return cli_usage_error("message", "give --template (HTML) or --text, or both");

    int rc = EXIT_FAIL;
    td_error e = {0};
    buf src, html, text, subj, out;
    buf_init(&src, BUF_NOCAP);
    buf_init(&html, BUF_NOCAP);
    buf_init(&text, BUF_NOCAP);
    buf_init(&subj, BUF_NOCAP);
    buf_init(&out, MAX_MESSAGE);
    buf files[MSG_MAX_ATTACHMENTS];
    msg_attachment atts[MSG_MAX_ATTACHMENTS];
    size_t nfiles = 0;
    msg_envelope *env = NULL;
    store *st = NULL;
    dkim_keyset *keys = NULL;
    msg_context mc = {0};
    char *base_url = NULL, *secret = NULL;
    tmpl_helper helpers[2];
    size_t nhelpers = 0;
    tmpl_dir *pdir = NULL;
    blocks *lib = NULL;
    blocks_chain chain = {0};
    buf signature;
    buf_init(&signature, BUF_NOCAP);
    json_t *data = cli_tmpl_data(dpath);
    if (!data)
        goto done;
    if (!json_is_object(data)) {
        cli_error("%s: the data must be a JSON object", dpath);
        goto done;
    }
    if (partials && tmpl_dir_open(partials, &pdir, &e)) {
        cli_error("%s", e.msg);
        goto done;
    }
    chain.first = pdir ? tmpl_dir_partial : NULL;
    chain.first_ud = pdir;
    /* The platform's context, when there is a database to take it from. */
    const char *dbpath = cli_db_path(db);
    bool have_db = db || sign || getenv("TIDINGS_DB") || access(dbpath, F_OK) == 0;
    if (have_db) {
        if (!(st = cli_open_store(db)))
            goto done;
        if (context_for(st, from, to, &mc, &base_url, &secret, data))
            goto done;
        helpers[nhelpers++] = msg_context_helper(&mc, true);
        lib = blocks_new(st, 0);
        blocks_attach(lib, data, NULL);
        chain.second = blocks_partial;
        chain.second_ud = lib;
        if (!ms.unsubscribe_url) {
            json_t *u = json_object_get(data, "unsubscribe_url");
            if (json_is_string(u) && !strncmp(json_string_value(u), "https://", 8))
                ms.unsubscribe_url = json_string_value(u);
        }
    }
    if (tpath) {
        if (cli_tmpl_read(tpath, TMPL_MAX_SRC, &src) ||
            cli_tmpl_render_fn(tpath, src.data, src.len, data, blocks_chain_partial, &chain,
                               helpers, nhelpers, &html))
            goto done;
        ms.html = html.data;
        ms.html_len = html.len;
    }
    if (xpath) {
        buf_reset(&src);
        if (cli_tmpl_read(xpath, TMPL_MAX_SRC, &src) ||
            cli_tmpl_render_fn(xpath, src.data, src.len, data, blocks_chain_partial, &chain,
                               text_helpers(helpers, nhelpers, &mc), nhelpers, &text))
            goto done;
        ms.text = text.data;
        ms.text_len = msg_text_unescape(text.data, text.len);
    }
    if (cli_tmpl_render_fn("the subject", subject, strlen(subject), data, blocks_chain_partial,
                           &chain, NULL, 0, &subj))
        goto done;
    /* A block that is not there would leave a hole in the message. */
    if (lib && blocks_status(lib, &e)) {
        cli_error("%s", e.msg);
        goto done;
    }
    ms.subject = subj.data;
    ms.subject_len = msg_text_unescape(subj.data, subj.len);
    for (size_t i = 0; i < nattach; i++) {
        buf_init(&files[i], BUF_NOCAP);
        nfiles++;
        if (cli_tmpl_read(attach[i], MAX_ATTACH_FILE, &files[i]))
            goto done;
        const char *base = strrchr(attach[i], '/');
        atts[i].filename = base ? base + 1 : attach[i];
        atts[i].content_type = guess_type(atts[i].filename);
        atts[i].data = files[i].data;
        atts[i].len = files[i].len;
    }
    ms.attachments = atts;
    ms.nattachments = nattach;
    ms.to = to;
    es.from = from;
    if (msg_envelope_new(&es, &env, &e)) {
        cli_error("%s", e.msg);
        goto done;
    }
    msg_info info;
    if (msg_build(env, &ms, &out, &info, &e)) {
        cli_error("%s", e.msg);
        goto done;
    }
    if (sign) {
        /* d= is the From domain: that is what DMARC aligns with. */
        const char *at = mc.sender_email ? strrchr(mc.sender_email, '@') : NULL;
        int r = TD_EINVAL;
        if (!at)
            td_err_set(&e, TD_EINVAL, "the From address has no domain to sign for");
        else
            r = dkim_keyset_load(st, at + 1, &keys, &e);
        if (r == TD_ENOTFOUND) {
            cli_error("there is no DKIM key for %s; make one with `tidings dkim keygen --domain "
                      "%s --selector S`",
                      at + 1, at + 1);
            goto done;
        }
        if (r || dkim_keyset_sign(keys, out.data, out.len, (int64_t)(ms.date ? ms.date : time(NULL)),
                                  &signature, &e)) {
            cli_error("%s", e.msg);
            goto done;
        }
    }
    if (fwrite(signature.data ? signature.data : "", 1, signature.len, stdout) != signature.len ||
        fwrite(out.data, 1, out.len, stdout) != out.len || fflush(stdout)) {
        cli_error("writing the message failed");
        goto done;
    }
    if (info.smtputf8)
        fprintf(stderr, "tidings: note: this message needs a relay that offers SMTPUTF8\n");
    rc = EXIT_OK;
done:
    json_decref(data);
    msg_envelope_free(env);
    dkim_keyset_free(keys);
    blocks_free(lib);
    tmpl_dir_free(pdir);
    if (st)
        store_close(st);
    free(base_url);
    free(secret);
    free((char *)mc.sender_name);
    free((char *)mc.sender_email);
    buf_free(&signature);
    for (size_t i = 0; i < nfiles; i++)
        buf_free(&files[i]);
    buf_free(&src);
    buf_free(&html);
    buf_free(&text);
    buf_free(&subj);
    buf_free(&out);
    return rc;
}
