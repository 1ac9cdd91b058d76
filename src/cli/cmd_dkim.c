/* cmd_dkim: `tidings dkim keygen|ls|sign`: DKIM keys of the sending domains
 * and their DNS records, and signing a message by hand. */
#include <ctype.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "mime/dkim.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/xalloc.h"

/* A message to sign by hand; campaign messages are far smaller. */
#define SIGN_INPUT_MAX (64u << 20)

static const char usage[] =
    "usage: tidings dkim keygen --domain D --selector S [--algo rsa|ed25519] [--json] [--db PATH]\n"
    "       tidings dkim ls [--json] [--db PATH]\n"
    "       tidings dkim sign --domain D [--db PATH] < MESSAGE > SIGNED\n"
    "\n"
    "keygen makes a key for sending domain D (rsa is 2048-bit RSA, the default;\n"
    "ed25519 is RFC 8463), stores it in the database and prints the DNS record\n"
    "to publish: a TXT record named S._domainkey.D. Messages from D are then\n"
    "signed with the newest key of each algorithm the domain has (two\n"
    "signatures when it has both). An international domain is stored and\n"
    "published in its A-label (xn--) form.\n"
    "\n"
    "ls lists every key with its DNS record.\n"
    "\n"
    "sign reads one complete message (header, empty line, body) on standard\n"
    "input and writes it on standard output with DKIM-Signature fields for D\n"
    "in front; LF line ends are turned into CRLF first, and a CRLF is added at\n"
    "the end when missing, as SMTP would. Use it to sign a hand-made message\n"
    "or to check a domain's keys from outside.\n";

static void print_zone_line(const char *name, const char *value)
{
    char *zone = dkim_txt_zone(value);
    printf("%s. IN TXT %s\n", name, zone);
    free(zone);
}

static void print_json_key(const dkim_key_rec *k, const char *name, const char *value)
{
    char *zone = dkim_txt_zone(value);
    printf("{\"id\":%lld,\"domain\":", (long long)k->id);
    cli_json_str(stdout, k->domain);
    printf(",\"selector\":");
    cli_json_str(stdout, k->selector);
    printf(",\"algo\":");
    cli_json_str(stdout, k->algo);
    printf(",\"created_at\":%lld,\"name\":", (long long)k->created_at);
    cli_json_str(stdout, name);
    printf(",\"value\":");
    cli_json_str(stdout, value);
    printf(",\"zone\":");
    cli_json_str(stdout, zone);
    printf("}\n");
    free(zone);
}

typedef struct ls_ctx {
    bool json;
    int failed;
} ls_ctx;

static int print_key(void *ud, const dkim_key_rec *k)
{
    ls_ctx *c = ud;
    td_error e = {0};
    char *value = NULL;
    if (dkim_txt_record(k->private_key, &value, &e)) {
        cli_error("key %lld (%s, selector %s): %s", (long long)k->id, k->domain, k->selector,
                  e.msg);
        c->failed = 1;
        return 0;
    }
    char *name = xasprintf("%s._domainkey.%s", k->selector, k->domain);
    if (c->json) {
        print_json_key(k, name, value);
    } else {
        char when[32] = "";
        time_t t = (time_t)k->created_at;
        struct tm tm;
        if (gmtime_r(&t, &tm))
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        printf("%-6lld %-30s %-20s %-8s %s\n", (long long)k->id, k->domain, k->selector, k->algo,
               when);
        fputs("       ", stdout);
        print_zone_line(name, value);
    }
    free(name);
    free(value);
    return 0;
}

static int do_keygen(const char *db, const char *domain, const char *selector, const char *algo,
                     bool json)
{
    td_error e = {0};
    dkim_algo a;
    if (dkim_algo_parse(algo, &a, &e))
        return cli_usage_error("dkim", "--algo must be rsa or ed25519");
    char *d = NULL, *sel = xstrdup(selector);
    for (char *p = sel; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int rc = EXIT_FAIL;
    char *pem = NULL, *value = NULL, *name = NULL;
    store *s = NULL;
    if (dkim_domain_normalize(domain, &d, &e) || dkim_selector_ok(sel, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    if (!(s = cli_open_store(db)))
        goto out;
    if (dkim_keygen(a, &pem, &value, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    dkim_key_rec k = {.domain = d, .selector = sel, .algo = (char *)dkim_algo_name(a),
                      .private_key = pem, .created_at = (int64_t)time(NULL)};
    int r = store_dkim_key_add(s, &k, &k.id, &e);
    if (r == TD_EEXISTS) {
        cli_error("%s has a key with selector '%s' already; choose another selector", d, sel);
        goto out;
    }
    if (r) {
        cli_error("%s", e.msg);
        goto out;
    }
    char detail[400];
    snprintf(detail, sizeof detail, "%s %s %s", d, sel, k.algo);
    cli_audit(s, "dkim.keygen", "dkim_key", k.id, detail);
    name = xasprintf("%s._domainkey.%s", sel, d);
    if (json) {
        print_json_key(&k, name, value);
    } else {
        printf("name:  %s\nvalue: %s\nzone:  ", name, value);
        print_zone_line(name, value);
    }
    rc = EXIT_OK;
out:
    store_close(s);
    free(name);
    free(value);
    free(pem);
    free(sel);
    free(d);
    return rc;
}

/* read_message reads stdin up to the cap, turning every LF not after a CR
 * into CRLF and ending the message with CRLF. 0, or EXIT_FAIL with the
 * error printed. */
static int read_message(buf *m)
{
    char chunk[65536];
    size_t n;
    char prev = '\0';
    while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) {
        for (size_t i = 0; i < n; i++) {
            if (chunk[i] == '\n' && prev != '\r' && buf_putc(m, '\r'))
                goto big;
            if (buf_putc(m, chunk[i]))
                goto big;
            prev = chunk[i];
        }
    }
    if (ferror(stdin)) {
        cli_error("cannot read the message from standard input");
        return EXIT_FAIL;
    }
    /* SMTP ends every message with CRLF: sign it as it will be sent. */
    if ((m->len < 2 || memcmp(m->data + m->len - 2, "\r\n", 2)) && buf_puts(m, "\r\n"))
        goto big;
    return 0;
big:
    cli_error("the message is over %u MB", SIGN_INPUT_MAX >> 20);
    return EXIT_FAIL;
}

static int do_sign(const char *db, const char *domain)
{
    td_error e = {0};
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    dkim_keyset *k = NULL;
    int r = dkim_keyset_load(s, domain, &k, &e);
    store_close(s);
    if (r) {
        if (r == TD_ENOTFOUND)
            cli_error("%s; make one with 'tidings dkim keygen'", e.msg);
        else
            cli_error("%s", e.msg);
        return EXIT_FAIL;
    }
    buf m, sig;
    buf_init(&m, SIGN_INPUT_MAX);
    buf_init(&sig, BUF_NOCAP);
    int rc = read_message(&m);
    if (!rc && dkim_keyset_sign(k, m.data, m.len, (int64_t)time(NULL), &sig, &e)) {
        cli_error("%s", e.msg);
        rc = EXIT_FAIL;
    }
    if (!rc) {
        fwrite(sig.data, 1, sig.len, stdout);
        fwrite(m.data, 1, m.len, stdout);
        if (fflush(stdout)) {
            cli_error("cannot write the signed message");
            rc = EXIT_FAIL;
        }
    }
    buf_free(&m);
    buf_free(&sig);
    dkim_keyset_free(k);
    return rc;
}

int cmd_dkim(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},     {"domain", required_argument, NULL, 'D'},
        {"selector", required_argument, NULL, 's'}, {"algo", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},         {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *domain = NULL, *selector = NULL, *algo = "rsa";
    bool json = false;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'D': domain = optarg; break;
        case 's': selector = optarg; break;
        case 'a': algo = optarg; break;
        case 'j': json = true; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("dkim", argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error("dkim", "say keygen, ls or sign");
    const char *sub = argv[optind++];
    if (optind < argc)
        return cli_usage_error("dkim", "unexpected argument '%s'", argv[optind]);
    if (!strcmp(sub, "keygen")) {
        if (!domain || !selector)
            return cli_usage_error("dkim", "keygen needs --domain and --selector");
        return do_keygen(db, domain, selector, algo, json);
    }
    if (!strcmp(sub, "ls")) {
        store *s = cli_open_store(db);
        if (!s)
            return EXIT_FAIL;
        ls_ctx ctx = {.json = json};
        td_error e = {0};
        if (!json)
            printf("%-6s %-30s %-20s %-8s %s\n", "ID", "DOMAIN", "SELECTOR", "ALGO", "CREATED");
        int r = store_dkim_key_each(s, NULL, print_key, &ctx, &e);
        if (r)
            cli_error("%s", e.msg);
        store_close(s);
        return r || ctx.failed ? EXIT_FAIL : EXIT_OK;
    }
    if (!strcmp(sub, "sign")) {
        if (!domain)
            return cli_usage_error("dkim", "sign needs --domain");
        return do_sign(db, domain);
    }
    return cli_usage_error("dkim", "unknown subcommand '%s'", sub);
}
