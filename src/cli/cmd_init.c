/* cmd_init: `tidings init`: create or migrate the database, create the
 * server secret and settings, and optionally the first admin. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "audience/subscriber.h"
#include "store/store.h"
#include "util/secret.h"
#include "util/text.h"

#define DEFAULT_PUBLIC_URL "http://127.0.0.1:8080" /* serve's default --listen */

static const char usage[] =
    "usage: tidings init [--db PATH] [--admin-email EMAIL --admin-password-file FILE]\n"
    "                    [--admin-name NAME] [--public-url URL]\n"
    "\n"
    "Creates the database (or upgrades an older one in place), the server's\n"
    "signing secret, and with --admin-email the first admin user. Running it\n"
    "again is safe: nothing that exists is changed except --public-url.\n"
    "\n"
    "  --db PATH                  database file (default $TIDINGS_DB or ./tidings.db)\n"
    "  --admin-email EMAIL        create an admin user with this address\n"
    "  --admin-password-file FILE read the admin's password from FILE's first line ('-': stdin)\n"
    "  --admin-name NAME          the admin's display name\n"
    "  --public-url URL           base URL of every link in messages (default " DEFAULT_PUBLIC_URL ")\n";

static bool url_ok(const char *u)
{
    return (!strncmp(u, "http://", 7) || !strncmp(u, "https://", 8)) && strlen(u) < 512 &&
           !text_check("url", u, strlen(u), 512, NULL) && !strpbrk(u, " \"<>");
}

int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"admin-email", required_argument, NULL, 'e'},
        {"admin-password-file", required_argument, NULL, 'p'},
        {"admin-name", required_argument, NULL, 'n'},
        {"public-url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = NULL, *email = NULL, *pwfile = NULL, *name = "", *url = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'e': email = optarg; break;
        case 'p': pwfile = optarg; break;
        case 'n': name = optarg; break;
        case 'u': url = optarg; break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("init", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (email && !pwfile)
        return cli_usage_error("init", "--admin-email needs --admin-password-file");
    if (pwfile && !email)
        return cli_usage_error("init", "--admin-password-file needs --admin-email");
    if (url && !url_ok(url))
        return cli_usage_error("init", "--public-url must be an http:// or https:// URL");

    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    int rc = EXIT_FAIL;
    td_error e = {0};
    char *val = NULL, *norm = NULL, *pw = NULL, *hash = NULL;

    if (store_setting_get(s, "secret", &val, &e) == TD_ENOTFOUND) {
        char *secret = secret_random_hex(32);
        int r = store_setting_set(s, "secret", secret, &e);
        free(secret);
        if (r) {
            cli_error("%s", e.msg);
            goto out;
        }
    }
    free(val);
    val = NULL;
    if (url || store_setting_get(s, "public_url", &val, &e) == TD_ENOTFOUND) {
        if (store_setting_set(s, "public_url", url ? url : DEFAULT_PUBLIC_URL, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
    }

    if (email) {
        if (!(norm = subscriber_email(email, strlen(email), &e))) {
            cli_error("the admin email is not valid: %s", e.msg);
            goto out;
        }
        if (text_check("the admin name", name, strlen(name), 256, &e)) {
            cli_error("%s", e.msg);
            goto out;
        }
        user_rec u = {0};
        if (store_user_find(s, norm, &u, &e) == TD_OK) {
            printf("user %s exists already; left as it is\n", norm);
            user_rec_clear(&u);
        } else {
            if (!(pw = cli_read_secret_file(pwfile)))
                goto out;
            if (!(hash = secret_hash_password(pw, strlen(pw), &e))) {
                cli_error("%s", e.msg);
                goto out;
            }
            user_rec nu = {.email = norm, .name = (char *)name, .role = "admin",
                           .password_hash = hash};
            int64_t id;
            if (store_user_add(s, &nu, &id, &e)) {
                cli_error("%s", e.msg);
                goto out;
            }
            cli_audit(s, "user.add", "user", id, "{\"role\":\"admin\",\"via\":\"init\"}");
            printf("admin %s created\n", norm);
        }
    }
    int v = 0;
    store_schema_version(s, &v, &e);
    printf("database %s ready (schema version %d)\n", cli_db_path(db), v);
    rc = EXIT_OK;
out:
    if (pw) {
        memset(pw, 0, strlen(pw));
        free(pw);
    }
    free(hash);
    free(norm);
    free(val);
    store_close(s);
    return rc;
}
