/* perm: the permission rules (see perm.h), as one table. */
#include "http/perm.h"

#include <string.h>

enum role { R_ADMIN, R_DIRECTOR, R_DESIGNER, R_OPERATOR, R_SELLER, R_RESPONDER, R_COUNT };

static const char *const role_names[R_COUNT] = {"admin",    "director", "designer",
                                                "operator", "seller",   "responder"};

/* Letters make the table readable: - none, o own, t team, a all; one
 * letter per action in perm_act's order: read create update delete send. */
static const char *const rules[R_COUNT][PERM_OBJ_COUNT] = {
    /*              subscriber list     campaign template reply    user     team     relay    dkim     token */
    [R_ADMIN]     = {"aaaa-", "aaaa-", "aaaaa", "aaaa-", "a----", "aaaa-", "aaaa-", "aaaa-", "aaaa-", "aaaa-"},
    [R_DIRECTOR]  = {"a----", "a----", "a---a", "a----", "a----", "a----", "a----", "-----", "-----", "oo-o-"},
    [R_DESIGNER]  = {"-----", "-----", "a----", "aaaa-", "-----", "o----", "t----", "-----", "-----", "oo-o-"},
    [R_OPERATOR]  = {"tttt-", "tttt-", "ttttt", "tttt-", "t----", "t----", "t----", "-----", "-----", "oo-o-"},
    [R_SELLER]    = {"oooo-", "oooo-", "ooooo", "oooo-", "o----", "o----", "t----", "-----", "-----", "oo-o-"},
    [R_RESPONDER] = {"-----", "-----", "-----", "-----", "t----", "o----", "t----", "-----", "-----", "oo-o-"},
};

static int role_of(const char *name)
{
    for (int r = 0; name && r < R_COUNT; r++)
        if (!strcmp(name, role_names[r]))
            return r;
    return -1;
}

perm_scope_t perm_scope(const perm_actor *a, perm_obj o, perm_act act)
{
    int r = role_of(a->role);
    if (r < 0 || (unsigned)o >= PERM_OBJ_COUNT || (unsigned)act >= PERM_ACT_COUNT)
        return PERM_SC_NONE;
    const char *rule = rules[r][o];
    if (strlen(rule) <= (size_t)act)
        return PERM_SC_NONE;
    switch (rule[act]) {
    case 'a': return PERM_SC_ALL;
    case 't': return a->team_id ? PERM_SC_TEAM : PERM_SC_OWN;
    case 'o': return PERM_SC_OWN;
    default: return PERM_SC_NONE;
    }
}

bool perm_allow(const perm_actor *a, perm_obj o, perm_act act, int64_t owner_id,
                int64_t team_id)
{
    perm_scope_t sc = perm_scope(a, o, act);
    bool own = owner_id && owner_id == a->user_id;
    /* A company-wide template is everyone's to read and use. */
    if (sc != PERM_SC_NONE && o == PERM_TEMPLATE && act == PERM_READ && !owner_id && !team_id)
        return true;
    switch (sc) {
    case PERM_SC_ALL: return true;
    case PERM_SC_TEAM: return own || (team_id && team_id == a->team_id);
    case PERM_SC_OWN: return own;
    default: return false;
    }
}

const char *perm_obj_name(perm_obj o)
{
    static const char *const n[PERM_OBJ_COUNT] = {
        "subscriber", "list", "campaign", "template", "reply",
        "user",       "team", "relay",    "dkim key", "token"};
    return (unsigned)o < PERM_OBJ_COUNT ? n[o] : "object";
}

const char *perm_act_name(perm_act a)
{
    static const char *const n[PERM_ACT_COUNT] = {"read", "create", "update", "delete", "send"};
    return (unsigned)a < PERM_ACT_COUNT ? n[a] : "act";
}
