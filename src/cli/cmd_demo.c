/* cmd_demo: `tidings demo`: a demo database with teams of every model, users
 * of every role, central and seller lists, and a few thousand subscribers
 * with Arabic, Thai and Latin names; then a summary. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"
#include "util/utf8.h"
#include "util/secret.h"

static const char usage[] =
    "usage: tidings demo [--db PATH] [--subscribers N]\n"
    "\n"
    "Creates a demo database (default ./tidings-demo.db, replaced if it exists)\n"
    "with teams, users, lists and N subscribers (default 3000) whose names are in\n"
    "Arabic, Thai and Latin script, and prints a summary. Every demo user's\n"
    "password is 'demo-password'. $TIDINGS_DB is not used: demo replaces its\n"
    "file, and must never replace your real database by accident.\n";

static const char *const arabic_first[] = {"ليلى", "محمد", "فاطمة", "أحمد", "نور", "يوسف",
                                           "سارة", "عمر", "مريم", "خالد", "هدى", "كريم"};
static const char *const arabic_last[] = {"حداد", "الخطيب", "منصور", "السيد", "نصار",
                                          "العلي", "حسن", "يوسف", "الشامي", "عيسى"};
static const char *const arabic_latin[] = {"layla", "mohamed", "fatima", "ahmed", "nour", "youssef",
                                           "sara", "omar", "mariam", "khaled", "huda", "karim"};
static const char *const thai_first[] = {"สมชาย", "สมหญิง", "ประยุทธ", "วิไล", "อรุณ", "จันทร์",
                                         "กมล", "ศิริ", "ธนา", "พิมพ์"};
static const char *const thai_last[] = {"ใจดี", "ศรีสุข", "วงศ์ไทย", "บุญมา", "แก้วมณี",
                                        "รัตนา", "ทองดี", "สุขสันต์"};
static const char *const thai_latin[] = {"somchai", "somying", "prayut", "wilai", "arun",
                                         "chan", "kamol", "siri", "thana", "pim"};
static const char *const latin_first[] = {"Anna", "Lucas", "Sofía", "Noah", "Élodie", "Mateo",
                                          "Zoë", "Jonas", "Inès", "Björn", "Chloé", "Piotr"};
static const char *const latin_last[] = {"Müller", "García", "Dubois", "Rossi", "Nowak",
                                         "Jensen", "O'Brien", "Silva", "Kowalski", "Ångström"};
static const char *const latin_ascii[] = {"mueller", "garcia", "dubois", "rossi", "nowak",
                                          "jensen", "obrien", "silva", "kowalski", "angstrom"};
static const char *const cities[] = {"Cairo", "Dubai", "Bangkok", "Chiang Mai", "Paris", "Lyon",
                                     "Berlin", "Madrid", "Amman", "Beirut", "Phuket", "Lisbon"};
static const char *const plans[] = {"free", "pro", "business"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A small deterministic generator, so every demo is the same. */
static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}
#define PICK(a) (a)[rnd() % N(a)]

struct ids {
    int64_t t_hq, t_mkt, t_mena, t_th, t_eu;
    int64_t u_admin, u_dir, u_des, u_op, u_resp, sellers[6];
    int64_t l_news, l_updates, l_seller[6];
};

static int add_team(store *s, const char *name, const char *model, int64_t parent, int64_t *id,
                    td_error *e)
{
    team_rec t = {.name = (char *)name, .model = (char *)model, .parent_id = parent};
    return store_team_add(s, &t, id, e);
}

static int add_user(store *s, const char *email, const char *name, const char *role,
                    int64_t team, const char *hash, int64_t *id, td_error *e)
{
    user_rec u = {.email = (char *)email, .name = (char *)name, .role = (char *)role,
                  .team_id = team, .password_hash = (char *)hash};
    return store_user_add(s, &u, id, e);
}

static int add_list(store *s, const char *name, int64_t team, int64_t owner, const char *optin,
                    const char *vis, int64_t *id, td_error *e)
{
    list_rec l = {.name = (char *)name, .team_id = team, .owner_id = owner,
                  .optin = (char *)optin, .visibility = (char *)vis};
    return store_list_add(s, &l, id, e);
}

static int build_org(store *s, struct ids *x, td_error *e)
{
    char *hash = secret_hash_password("demo-password", 13, e);
    if (!hash)
        return TD_EINTERNAL;
    int rc;
    static const struct {
        const char *email, *name;
    } sellers[6] = {
        {"layla.haddad@tidings.example", "ليلى حداد"},
        {"omar.nassar@tidings.example", "عمر نصار"},
        {"somchai.jaidee@tidings.example", "สมชาย ใจดี"},
        {"wilai.srisuk@tidings.example", "วิไล ศรีสุข"},
        {"anna.mueller@tidings.example", "Anna Müller"},
        {"lucas.garcia@tidings.example", "Lucas García"},
    };
    static const char *const seller_lists[6] = {
        "عملاء ليلى (Layla's customers)", "عملاء عمر (Omar's customers)",
        "ลูกค้าของสมชาย (Somchai's customers)", "ลูกค้าของวิไล (Wilai's customers)",
        "Annas Kunden (Anna's customers)", "Clientes de Lucas (Lucas's customers)"};
    if ((rc = add_team(s, "Head Office", "central", 0, &x->t_hq, e)) ||
        (rc = add_team(s, "Central Marketing", "central", x->t_hq, &x->t_mkt, e)) ||
        (rc = add_team(s, "Sales MENA", "catalyst", x->t_hq, &x->t_mena, e)) ||
        (rc = add_team(s, "Sales Thailand", "local", x->t_hq, &x->t_th, e)) ||
        (rc = add_team(s, "Sales Europe", "local", x->t_hq, &x->t_eu, e)) ||
        (rc = add_user(s, "admin@tidings.example", "Admin", "admin", x->t_hq, hash, &x->u_admin,
                       e)) ||
        (rc = add_user(s, "director@tidings.example", "Mariam Mansour", "director", x->t_mkt,
                       hash, &x->u_dir, e)) ||
        (rc = add_user(s, "designer@tidings.example", "Élodie Dubois", "designer", x->t_mkt,
                       hash, &x->u_des, e)) ||
        (rc = add_user(s, "operator@tidings.example", "Piotr Nowak", "operator", x->t_mkt, hash,
                       &x->u_op, e)) ||
        (rc = add_user(s, "inbox@tidings.example", "กมล รัตนา", "responder", x->t_mkt, hash,
                       &x->u_resp, e)))
        goto out;
    int64_t seller_team[6] = {x->t_mena, x->t_mena, x->t_th, x->t_th, x->t_eu, x->t_eu};
    for (int i = 0; i < 6; i++)
        if ((rc = add_user(s, sellers[i].email, sellers[i].name, "seller", seller_team[i], hash,
                           &x->sellers[i], e)) ||
            (rc = add_list(s, seller_lists[i], seller_team[i], x->sellers[i], "single", "private",
                           &x->l_seller[i], e)))
            goto out;
    if ((rc = add_list(s, "Newsletter", x->t_mkt, x->u_op, "double", "public", &x->l_news, e)) ||
        (rc = add_list(s, "Product updates", x->t_mkt, x->u_op, "single", "public",
                       &x->l_updates, e)))
        goto out;
out:
    free(hash);
    return rc;
}

static int build_subscribers(store *s, const struct ids *x, int n, td_error *e)
{
    static const char *const domains[] = {"example.com", "example.net", "mail.example.org",
                                          "xn--bcher-kva.example", "xn--12co0c3b4eva.example"};
    static const char *const tzs[] = {"Africa/Cairo", "Asia/Dubai", "Asia/Bangkok",
                                      "Europe/Paris", "Europe/Berlin", "Asia/Amman"};
    static const char *const locales[] = {"ar-EG", "ar-AE", "th-TH", "fr-FR", "de-DE", "ar-JO"};
    int rc = TD_OK;
    for (int i = 0; i < n && !rc; i++) {
        if (i % 1000 == 0 && (rc = store_begin(s, e)))
            return rc;
        char name[256], email[256], attribs[512];
        int script = (int)(rnd() % 3), seller;
        if (script == 0) {
            size_t f = rnd() % N(arabic_first);
            snprintf(name, sizeof name, "%s %s", arabic_first[f], PICK(arabic_last));
            snprintf(email, sizeof email, "%s.%d@%s", arabic_latin[f], i, PICK(domains));
            seller = (int)(rnd() % 2);
        } else if (script == 1) {
            size_t f = rnd() % N(thai_first);
            snprintf(name, sizeof name, "%s %s", thai_first[f], PICK(thai_last));
            snprintf(email, sizeof email, "%s.%d@%s", thai_latin[f], i, PICK(domains));
            seller = 2 + (int)(rnd() % 2);
        } else {
            size_t l = rnd() % N(latin_last);
            snprintf(name, sizeof name, "%s %s", PICK(latin_first), latin_last[l]);
            snprintf(email, sizeof email, "%s.%d@%s", latin_ascii[l], i, PICK(domains));
            seller = 4 + (int)(rnd() % 2);
        }
        snprintf(attribs, sizeof attribs,
                 "{\"city\":\"%s\",\"orders\":%u,\"plan\":\"%s\",\"score\":%u.%u}",
                 PICK(cities), rnd() % 40, PICK(plans), rnd() % 100, rnd() % 10);
        int tz = script == 0 ? (int)(rnd() % 2) * 5 : script == 1 ? 2 : 3 + (int)(rnd() % 2);
        int64_t team = script == 0 ? x->t_mena : script == 1 ? x->t_th : x->t_eu;
        sub_rec r = {.email = email, .name = name, .attribs = attribs, .status = "enabled",
                     .owner_id = x->sellers[seller], .team_id = team,
                     .timezone = (char *)tzs[tz], .locale = (char *)locales[tz]};
        if (i % 97 == 0)
            r.status = "blocklisted";
        int64_t id;
        sub_outcome out;
        if ((rc = store_sub_upsert(s, &r, SUB_MODE_SUBSCRIBE, &id, &out, e)))
            break;
        /* Everyone is a customer of one seller; most read the newsletter
         * (some still unconfirmed, a few gone); some get product updates. */
        unsigned roll = rnd() % 100;
        const char *news = roll < 70 ? "confirmed" : roll < 85 ? "unconfirmed" : "unsubscribed";
        if ((rc = store_member_set(s, x->l_seller[seller], id, "confirmed", true, NULL, e)) ||
            (roll < 95 && (rc = store_member_set(s, x->l_news, id, news, true, NULL, e))) ||
            (roll % 3 == 0 &&
             (rc = store_member_set(s, x->l_updates, id, "confirmed", true, NULL, e))))
            break;
        if (i % 1000 == 999 || i == n - 1)
            rc = store_commit(s, e);
    }
    if (rc)
        store_rollback(s);
    return rc;
}

static int print_list_line(void *ud, const list_rec *l)
{
    (void)ud;
    printf("  ");
    utf8_pad(stdout, l->name, 40);
    printf(" %-6s %-7s %6lld confirmed %5lld unconfirmed %5lld unsubscribed\n",
           l->optin, l->visibility, (long long)l->n_confirmed, (long long)l->n_unconfirmed,
           (long long)l->n_unsubscribed);
    return 0;
}

static int print_team_line(void *ud, const team_rec *t)
{
    (void)ud;
    printf("  %-20s %s\n", t->name, t->model);
    return 0;
}

static int print_user_line(void *ud, const user_rec *u)
{
    (void)ud;
    printf("  %-10s %-34s %s\n", u->role, u->email, u->name); /* name last: no padding */
    return 0;
}

int cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"subscribers", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {0},
    };
    const char *db = "./tidings-demo.db";
    long n = 3000;
    int c;
    char *end;
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': db = optarg; break;
        case 'n':
            errno = 0;
            n = strtol(optarg, &end, 10);
            if (errno || *end || n < 0 || n > 10000000)
                return cli_usage_error("demo", "--subscribers wants a number from 0 to 10000000");
            break;
        case 'h': fputs(usage, stdout); return EXIT_OK;
        default: return cli_bad_option("demo", argv);
        }
    }
    if (optind < argc)
        return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (secret_init()) {
        cli_error("libsodium failed to start");
        return EXIT_FAIL;
    }
    /* The demo owns its file: start from nothing every time. */
    for (const char *sfx = ""; sfx; sfx = !*sfx ? "-wal" : !strcmp(sfx, "-wal") ? "-shm" : NULL) {
        char p[4096];
        snprintf(p, sizeof p, "%s%s", db, sfx);
        if (unlink(p) && errno != ENOENT) {
            cli_error("cannot replace %s: %s", p, strerror(errno));
            return EXIT_FAIL;
        }
    }
    store *s = cli_open_store(db);
    if (!s)
        return EXIT_FAIL;
    td_error e = {0};
    struct ids x = {0};
    int rc = EXIT_FAIL;
    char *secret = secret_random_hex(32);
    if (store_setting_set(s, "secret", secret, &e) ||
        store_setting_set(s, "public_url", "http://127.0.0.1:8080", &e) ||
        build_org(s, &x, &e) || build_subscribers(s, &x, (int)n, &e)) {
        cli_error("building the demo failed: %s", e.msg);
        goto out;
    }
    cli_audit(s, "demo.create", "database", 0, NULL);
    store_counts k;
    if (store_counts_get(s, &k, &e)) {
        cli_error("%s", e.msg);
        goto out;
    }
    printf("Tidings demo database: %s\n\n", db);
    printf("%lld teams, %lld users, %lld lists, %lld subscribers, %lld memberships\n\n",
           (long long)k.teams, (long long)k.users, (long long)k.lists, (long long)k.subscribers,
           (long long)k.memberships);
    printf("Teams:\n");
    store_team_each(s, print_team_line, NULL, &e);
    printf("\nUsers (password: demo-password):\n");
    store_user_each(s, print_user_line, NULL, &e);
    printf("\nLists:\n");
    store_list_each(s, print_list_line, NULL, &e);
    printf("\nTry: tidings export --db %s --list Newsletter | head\n", db);
    rc = EXIT_OK;
out:
    free(secret);
    store_close(s);
    return rc;
}
