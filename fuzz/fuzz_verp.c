/* fuzz_verp: libFuzzer target for the VERP return path as inbound mail
 * brings it back (inbound/act's match_verp): msg_verp_parse of the input as
 * an address, then track_verp_check of its token (and of the raw input).
 * Invariants: a token is accepted only when it is exactly what
 * track_verp_token makes for the id it names (up to the tag's case), and
 * never under another key or campaign. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mime/msg.h"
#include "track/token.h"

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__);          \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static uint8_t key[TRACK_KEY_LEN], other[TRACK_KEY_LEN];

static void check_token(int64_t campaign, const char *tok)
{
    int64_t id = track_verp_check(key, campaign, tok);
    if (!id)
        return;
    CHECK(id > 0);
    char made[TRACK_VERP_MAX + 1];
    track_verp_token(key, campaign, id, made);
    CHECK(strcasecmp(made, tok) == 0 && tok[0] == 'd');
    CHECK(track_verp_check(other, campaign, tok) == 0);
    CHECK(track_verp_check(key, campaign + 1, tok) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int keyed;
    if (!keyed) {
        track_key("fuzz secret", key);
        track_key("another secret", other);
        keyed = 1;
    }
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    check_token(7, s);
    msg_verp v;
    if (!msg_verp_parse(s, "bounces", &v, NULL)) {
        int64_t c = v.campaign[0] == 'c' ? strtoll(v.campaign + 1, NULL, 10) : 0;
        check_token(c > 0 ? c : 7, v.token);
    }
    /* A token made here, checked back: always accepted. */
    int64_t id = (int64_t)(size * 2654435761u % 1000000007u) + 1;
    char made[TRACK_VERP_MAX + 1];
    track_verp_token(key, 7, id, made);
    CHECK(track_verp_check(key, 7, made) == id);
    free(s);
    return 0;
}
