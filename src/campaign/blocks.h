/* campaign/blocks: the content library (articles and products the company
 * provides) as template partials, and a resolver that chains two others.
 *
 * A template includes a block by kind and name: {{> article/spring-sale}},
 * {{> product/blue-mug}}. Inside the block's body, the block itself is the
 * innermost context: {{title}}, {{name}}, {{kind}} and every key of its data
 * ({{price}}, {{url}}, {{image}}...) are the block's, and anything else is
 * looked up outside as usual ({{subscriber.first_name}}, {{#track}}). See
 * docs/internals/blocks.md for how (the resolver returns a small wrapper
 * whose section opens the block's data, which the caller attaches to the
 * template data with blocks_attach) and why. */
#ifndef TD_CAMPAIGN_BLOCKS_H
#define TD_CAMPAIGN_BLOCKS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "tmpl/tmpl.h"
#include "util/err.h"

/* The key blocks_attach sets in the template data; reserved. */
#define BLOCKS_KEY "__blocks"

typedef struct blocks blocks;

/* blocks_new returns a resolver over the library in st (borrowed: it must
 * outlive b). With team_id 0 every block is found; otherwise only
 * company-wide blocks and those of that team. The caller frees b with
 * blocks_free. */
blocks *blocks_new(store *st, int64_t team_id);

/* blocks_free releases b; NULL is a no-op. Template data that b was
 * attached to keeps its own reference to the blocks' data. */
void blocks_free(blocks *b);

/* blocks_attach sets data[BLOCKS_KEY] to b's blocks' data (shared, filled as
 * the resolver loads blocks), which the wrappers blocks_partial returns read.
 * Call it on every data object rendered with blocks_partial, before the
 * render: a template caches its partials, so the second recipient's render
 * does not ask the resolver again but needs the data all the same. Returns
 * 0, or TD_EINVAL when data is not a JSON object. */
int blocks_attach(blocks *b, json_t *data, td_error *e);

/* blocks_partial is a tmpl_partial_fn (ud: the blocks). For "KIND/NAME" it
 * loads the block and returns its wrapper; for "KIND/NAME/body" (which the
 * wrapper includes) the body of a block loaded before. Other names are not
 * the library's: NULL, and nothing recorded. The string is borrowed until
 * the next call or blocks_free. A block that is missing, of another kind or
 * of another team, or a database failure, gives NULL and is recorded for
 * blocks_status (a template's partials are asked for on its first render). */
const char *blocks_partial(void *ud, const char *name, size_t *len);

/* blocks_status returns 0, or the first failure blocks_partial met (its
 * code, with the message in e), so that a caller refuses a message with a
 * hole where a block should be. */
int blocks_status(const blocks *b, td_error *e);

/* blocks_is_name is true when name has the library's form, "KIND/..." with
 * KIND article or product. */
bool blocks_is_name(const char *name);

/* blocks_check_body is 0 when body[0..len) compiles as a template; else
 * TD_EINVAL or TD_ETOOBIG with "line L, column C: ..." in e. */
int blocks_check_body(const char *body, size_t len, td_error *e);

/* Two resolvers asked in turn: first, then second when first has none.
 * Either may be NULL. Names of the library's form (blocks_is_name) go to
 * second only: a partials folder cannot hold them (tmpl_dir refuses '/'),
 * and asking it would only log a refusal. */
typedef struct blocks_chain {
    tmpl_partial_fn first;
    void *first_ud;
    tmpl_partial_fn second;
    void *second_ud;
} blocks_chain;

/* blocks_chain_partial is a tmpl_partial_fn; ud is a blocks_chain, which
 * must outlive the renders. */
const char *blocks_chain_partial(void *ud, const char *name, size_t *len);

#endif
