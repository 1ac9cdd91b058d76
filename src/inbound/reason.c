/* reason: the rule table that names why a delivery failed (see reason.h).
 *
 * Order matters: the first matching rule wins, so the narrow phrases come
 * before the broad ones. Sender-side rejections come before the recipient
 * rules because "Sender address rejected: Domain not found" is about our
 * domain, not the recipient's; a "try again" DNS failure comes before
 * hostunknown because it is temporary. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "inbound/reason.h"

#include "util/err.h"

#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define REASON_SCAN_MAX 16384

typedef struct rule {
    const char *reason;
    bool specific;
    const char *re;
} rule;

/* Patterns see lower-case text with runs of white space folded to one
 * space. */
static const rule rules[] = {
    /* Our own sender address or domain was refused. */
    {"rejected", true,
     "sender address rejected|sender (domain|address) (is )?(invalid|unknown|not allowed|rejected)"
     "|sender verify failed|sender rejected|domain of sender address|from: ?domain is invalid"
     "|provide a valid from|envelope sender (is )?(invalid|rejected)|sender denied"
     "|mail from:? ?<[^>]*> ?(rejected|refused|not accepted)|your (e-?mail|address) is redundant"},
    {"mailboxfull", true,
     "mailbox (is |was )?full|mail ?box full|over ?quota|quota (has been |was )?exceeded|exceeded (the |his |her |their )?"
     "(storage |mailbox |disk )?quota|disk quota|quota full|mailbox size limit|insufficient (disk )?space"
     "|too many messages in (this|the) mailbox|mailfolder is full|(storage|mailbox) (space )?(is )?(full|exhausted)"
     "|not enough (storage|space)|user has exceeded|exceeds? (his |her |the )?(mailbox |storage )?(size|quota)"
     "|their mailbox is full|is over the allowed quota|mailbox has exceeded"},
    {"mesgtoobig", true,
     "message (is )?too (big|large)|message size exceeds|size (limit )?exceeded|mail size limit|message length exceeds"
     "|exceeds? (the )?(fixed )?maximum (allowed )?(message )?size|too large for|message exceeds|size of (the )?message"},
    {"exceedlimit", true, "exceeds? (the )?(recipient|header|line) limit|message header size|too many (header|recipients? for)"},
    {"suspend", true,
     "account (has been |is |was )?(disabled|suspended|deactivated|locked|frozen|expired|inactive|on hold)"
     "|mailbox (has been |is |was )?(disabled|suspended|deactivated|locked|frozen|inactive|not active)"
     "|(user|recipient) (account )?(is )?(disabled|suspended|deactivated|inactive)|discontinued|account is not active"
     "|user account disabled|temporarily (disabled|suspended)"
     "|(account|mailbox)[^.;]{0,40} (is|has been|was) (disabled|suspended|deactivated|inactive)"},
    {"hasmoved", true, "has moved|address (has )?changed|no longer (valid|with)|user has moved|mailbox has moved"},
    {"notaccept", true,
     "null mx|does not accept (e-?)?mail|not accepting (network )?(messages|mail)|no mail (is )?accepted"
     "|accepts no mail|not accept(ing)? (any )?(e-?)?mail"},
    {"networkerror", true,
     "name service error.{0,160}try again|host not found, try again|temporary failure in name resolution"
     "|network (is )?unreachable|no route to host|lost connection with|dns (lookup )?(temporary )?failure"
     "|malformed or unexpected name server reply|too many hops|mail (forwarding )?loop|routing loop"},
    {"hostunknown", true,
     "host (or domain name )?not found|unknown host|host unknown|domain (name )?(does not|doesn't) exist"
     "|domain (name )?not found|no such domain|domain unknown|unknown domain|unrouteable (mail )?domain"
     "|unroutable (address|domain)|couldn't find any host|could not find (a|any) mail exchanger"
     "|no (mx|dns|a) records? (found )?for|mx (record )?not found|nxdomain|illegal host/domain"
     "|name or service not known|invalid domain|domain is not (valid|reachable)|recipient domain .{0,40} not found"
     "|(^|[ <(\\[])([a-z0-9-]+\\.)+[a-z]{2,}>? does not exist"},
    {"userunknown", true,
     "user ?unknown|unknown (user|recipient|mailbox|address|local ?part|e-?mail address)|no such (user|mailbox|recipient|person|address|account)"
     "|(user|mailbox|recipient|address|account|addressee)( name)? (does not|doesn't|did not) exist"
     "|(user|mailbox|recipient|address|addressee|e-?mail account) (was |is )?(not found|not known|unknown|invalid|not recognized)"
     "|(recipient|user) name is not recognized|not listed in (the )?(domino )?(public )?(name and address book|directory)"
     "|invalid (recipient|mailbox|user|address|e-?mail address)|bad (recipient|destination mailbox|address)"
     "|not a valid (user|recipient|mailbox|address)|no (mailbox|account) (here )?by that name|no mailbox here"
     "|recipient address rejected: (access denied|invalid user|unknown|user)|(user|recipient) (does not|doesn't) exist"
     "|email account that you tried to reach does not exist|doesn't have an? .{1,80} account|does not have an? .{1,80} account"
     "|is not a (known|valid) user|address (is )?(unknown|invalid|not valid|does not exist|not present)"
     "|mailbox (is )?(unavailable|not available) or (access denied|not found)|utilisateur inconnu|unbekannter (benutzer|empf)"
     "|destinatario (inesistente|desconocido)|no existe|adresse (inconnue|invalide)|badrcptto|not in my validrcptto"
     "|address (couldn't|could not|can't|cannot) be found|recipient address rejected\\. \\(in reply to rcpt to command\\)"
     "|resolver\\.adr\\.recipnotfound|recipnotfound|recipient not found|user not exist|addressee unknown"},
    {"norelaying", true,
     "relay(ing)? (access )?(denied|not (permitted|allowed))|insecure mail relay|unable to relay|not permitted to relay"
     "|we do not relay|relay not permitted|no relaying|not allowed to relay|relaying (is )?(prohibited|denied)"},
    {"authfailure", true,
     "dmarc|spf (check )?(fail|softfail|validation)|dkim (signature|check|validation|fail)|unauthenticated e?mail"
     "|sender policy framework|5\\.7\\.2[3-6]\\b"},
    {"requireptr", true,
     "ptr record|reverse dns|rdns|reverse (hostname|lookup|dns)|no ptr|cannot find your (reverse )?hostname"
     "|client host name (not|unknown)|cannot resolve your address|hostname (does not|doesn't) resolve"},
    {"badreputation", true, "reputation"},
    {"failedstarttls", true, "starttls|tls (negotiation|handshake) failed|requires? (a )?(secure|tls) connection"},
    {"spamdetected", true,
     "blacklisted url|uribl|surbl|spam ?(content|detected|message|score)|classified as spam|identified as spam"
     "|considered (as )?spam|looks like spam|message (is |was )?(considered |determined to be )?(spam|junk)|junk mail"
     "|\\bspam\\b(?!haus)|unsolicited|bulk mail"},
    {"virusdetected", true, "virus|malware|infected|trojan|worm"},
    {"blocked", true,
     "blocked|block ?list|black ?list|spamhaus|dnsbl|\\brbl\\b|listed (on|in|at|by)|banned|access denied"
     "|ip (address )?(is )?(not allowed|rejected|refused)|invalid ip for sending|connection refused by"
     "|not allowed to send|refused to talk|bloqu|you are not allowed|client host .{0,60} rejected|poor reputation"
     "|service refus"},
    {"toomanyconn", true,
     "too many (connections|concurrent|simultaneous|recipients|messages)|connection (rate )?limit|rate limit"
     "|frequency limit|throttl|exceeded .{0,30}rate|too many sessions|too much mail|sending rate"},
    {"policyviolation", true,
     "policy (violation|reasons)|violat\\w* .{0,30}polic|not accepted for policy|message not allowed|prohibited"
     "|content presents a potential|acceptable use"},
    {"notcompliantrfc", true, "rfc ?5322|rfc ?2822|rfc ?822|not (rfc|standards?) compliant|multiple addresses in from"},
    {"securityerror", true,
     "authentication (is )?required|must (be )?authenticat|encryption required|not authorized|unauthori[sz]ed"
     "|security (policy|error)|certificate"},
    {"contenterror", true, "invalid (header|mime|content)|content (error|rejected)|line too long|malformed (message|mime)"},
    {"systemerror", true,
     "internal (server |system )?error|system error|queue file write error|local configuration error"
     "|server (is )?(busy|unavailable)|ldap|insufficient system|temporary local problem|resources temporarily unavailable"
     "|i/o error|out of memory"},
    {"mailererror", true,
     "pipe to \\||x-unix|mailer error|command (died|failed|not found)|procmail|program (failed|exited)"
     "|delivery program|exit status|no such file or directory"},
    {"syntaxerror", true, "syntax error|command unrecognized|unrecognized command|bad sequence of commands"},
    {"expired", true,
     "retry timeout exceeded|failing for a long time|queue too long|not delivered within|delivery time expired"
     "|message expired|expired after|message timed out|could not be delivered for|delivery (attempts? )?(has |have )?expired"
     "|maximum (retry|delivery|queue) time|too long in (the )?queue|will be retried|has been delayed|delivery (is )?delayed"
     "|timed? ?out|no answer from|not responding|unable to (connect|contact)|could not connect"
     "|did not accept our requests to connect|socket error|connection (refused|reset)"},
    /* Generic: the status code knows better when it is precise. */
    {"rejected", false, "rejected|refused|denied|not accepted|permanent(ly)? (failure|error)"},
    {"filtered", false, "filter|mailbox unavailable|not (been )?delivered|undeliverable"},
};

#define NRULES (sizeof rules / sizeof rules[0])

static pcre2_code *compiled[NRULES];
static int init_rc = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void do_init(void)
{
    for (size_t i = 0; i < NRULES; i++) {
        int err;
        PCRE2_SIZE off;
        compiled[i] = pcre2_compile((PCRE2_SPTR)rules[i].re, PCRE2_ZERO_TERMINATED, 0, &err, &off, NULL);
        if (!compiled[i]) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(err, msg, sizeof msg);
            fprintf(stderr, "reason: rule %zu (%s) does not compile at %zu: %s\n", i, rules[i].reason,
                    (size_t)off, (char *)msg);
            init_rc = TD_EINTERNAL;
            return;
        }
        /* JIT is an optimisation; without it the interpreter runs. */
        (void)pcre2_jit_compile(compiled[i], PCRE2_JIT_COMPLETE);
    }
    init_rc = 0;
}

int reason_init(void)
{
    pthread_once(&once, do_init);
    return init_rc;
}

/* fold lower-cases ASCII and folds white space runs into one space, so that
 * a phrase wrapped over two lines still matches. Returns the length. */
static size_t fold(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    bool sp = true;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            if (!sp)
                out[o++] = ' ';
            sp = true;
            continue;
        }
        sp = false;
        out[o++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    out[o] = '\0';
    return o;
}

static bool match(size_t i, const char *s, size_t n, pcre2_match_data *md)
{
    return pcre2_match(compiled[i], (PCRE2_SPTR)s, n, 0, 0, md, NULL) >= 0;
}

const char *reason_from_text(const char *text, size_t len, bool *specific)
{
    if (specific)
        *specific = false;
    if (!text || !len || reason_init() != 0)
        return NULL;
    static _Thread_local char low[REASON_SCAN_MAX + 1];
    size_t n = fold(text, len, low, sizeof low);
    pcre2_match_data *md = pcre2_match_data_create(4, NULL);
    const char *found = NULL;
    for (size_t i = 0; i < NRULES && !found; i++)
        if (match(i, low, n, md)) {
            found = rules[i].reason;
            if (specific)
                *specific = rules[i].specific;
        }
    pcre2_match_data_free(md);
    return found;
}

/* Parses "c.s.d" into its numbers; false when status is not a code. */
static bool split_status(const char *st, int *c, int *s, int *d)
{
    if (!st)
        return false;
    char tail;
    return sscanf(st, "%d.%d.%d%c", c, s, d, &tail) >= 3;
}

const char *reason_from_status(const char *status)
{
    int c, s, d;
    if (!split_status(status, &c, &s, &d) || s > 9 || d > 99)
        return NULL;
    if (c == 2)
        return "delivered";
    switch (s * 100 + d) {
    case 101: return "userunknown";
    case 102: return "hostunknown";
    case 103: return "userunknown";
    case 106: return "hasmoved";
    case 107: return "rejected";
    case 108: return "rejected";
    case 110: return "notaccept";
    case 201: return "suspend";
    case 202: return "mailboxfull";
    case 203: return "exceedlimit";
    case 204: return "systemerror";
    case 301: return "mailboxfull";
    case 302: return "notaccept";
    case 303: return "contenterror";
    case 304: return "mesgtoobig";
    case 305: return "systemerror";
    case 401: return c == 5 ? "userunknown" : "expired"; /* Exchange Online: 5.4.1 access denied */
    case 402: return "expired";
    case 403: return "systemerror";
    case 404: return "hostunknown";
    case 405: return "toomanyconn";
    case 406: return "networkerror";
    case 407: return "expired";
    case 701: return "securityerror";
    case 713: return "suspend";
    case 723: case 724: case 725: case 726: return "authfailure";
    case 727: return "notaccept";
    default: break;
    }
    if (s == 5)
        return "syntaxerror";
    if (s == 6)
        return "contenterror";
    if (s == 7 && d != 0)
        return "securityerror";
    return NULL;
}

void reason_pseudo_status(const char *reason, int cls, char out[16])
{
    static const struct {
        const char *reason;
        const char *sd;
    } map[] = {
        {"userunknown", "1.1"},   {"hostunknown", "1.2"},   {"hasmoved", "1.6"},     {"notaccept", "1.10"},
        {"rejected", "1.8"},      {"suspend", "2.1"},       {"mailboxfull", "2.2"},  {"exceedlimit", "2.3"},
        {"mesgtoobig", "3.4"},    {"systemerror", "3.0"},   {"expired", "4.7"},      {"networkerror", "4.6"},
        {"toomanyconn", "4.5"},   {"norelaying", "7.1"},    {"blocked", "7.1"},      {"spamdetected", "7.1"},
        {"virusdetected", "7.1"}, {"policyviolation", "7.1"}, {"securityerror", "7.0"}, {"authfailure", "7.26"},
        {"requireptr", "7.25"},   {"filtered", "2.0"},      {"contenterror", "6.0"}, {"syntaxerror", "5.2"},
        {"failedstarttls", "7.10"}, {"badreputation", "7.1"}, {"notcompliantrfc", "6.0"},
    };
    if (cls != 2 && cls != 4 && cls != 5)
        cls = 5;
    const char *sd = "0.0";
    for (size_t i = 0; reason && i < sizeof map / sizeof map[0]; i++)
        if (!strcmp(map[i].reason, reason)) {
            sd = map[i].sd;
            break;
        }
    snprintf(out, 16, "%d.%s", cls, sd);
}

bool reason_is_hard(const char *reason, int cls)
{
    if (!reason || cls != 5)
        return false;
    return !strcmp(reason, "userunknown") || !strcmp(reason, "hostunknown") || !strcmp(reason, "hasmoved") ||
           !strcmp(reason, "notaccept");
}

bool reason_is_temporary_text(const char *text, size_t len)
{
    static const char *const phrases[] = {
        "delayed", "will be retried", "warning message only", "retry timeout exceeded",
        "failing for a long time", "will retry", "will keep trying", "temporary failure",
        "temporarily deferred", "deferred", "this is a temporary",
    };
    if (!text)
        return false;
    if (len > REASON_SCAN_MAX)
        len = REASON_SCAN_MAX;
    static _Thread_local char low[REASON_SCAN_MAX + 1];
    fold(text, len, low, sizeof low);
    for (size_t i = 0; i < sizeof phrases / sizeof phrases[0]; i++)
        if (strstr(low, phrases[i]))
            return true;
    return false;
}
