/* html2text: the text/plain version of an HTML message, for when a template
 * has no text version of its own.
 *
 * Parsed with libxml2's HTML parser (SAX, no tree), which copes with the
 * HTML found in email (unclosed tags, tables, entities). The text:
 * - h1 underlined with '=', h2 with '-', h3..h6 prefixed with "### ";
 * - paragraphs, headings, lists, quotes and tables apart by blank lines,
 *   <br> a line break, <hr> a line of dashes, <pre> kept verbatim;
 * - list items with "* " or "1. " (ol start= honoured), nested lists
 *   indented under their item, blockquotes prefixed with "> ";
 * - links as "text [1]" with a "Links:" list at the end ("[1] URL"); a link
 *   whose text is its URL, a "#fragment" and a javascript: link get no
 *   number; the same URL keeps one number; at most HTML2TEXT_MAX_LINKS
 *   numbers (links after that keep their text only);
 * - images as their alt text (nothing when alt is empty: spacers, pixels);
 * - head, title, script, style, template and elements styled display:none
 *   (preheaders) dropped; entities decoded; &nbsp; a space that is not
 *   collapsed; control characters dropped;
 * - text in logical order as written, right-to-left scripts untouched (no
 *   reordering, no marks added);
 * - wrapped at `width` display columns on Unicode line-break opportunities
 *   (UAX #14, libunistring), so no UTF-8 sequence is ever split and a word
 *   longer than the width stays whole; lines end with "\n", no trailing
 *   blanks. */
#ifndef TD_MIME_HTML2TEXT_H
#define TD_MIME_HTML2TEXT_H

#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

#define HTML2TEXT_WIDTH 72              /* default wrap width in columns */
#define HTML2TEXT_MAX_INPUT (16u << 20) /* largest HTML accepted, bytes */
#define HTML2TEXT_MAX_LINKS 1000        /* numbered links per document */

/* html2text appends the text of html[0..len) to out, wrapped at width
 * columns (0: HTML2TEXT_WIDTH; at least 20). html must be UTF-8 (a charset
 * named inside it is ignored). Returns 0; TD_EINVAL for invalid UTF-8 or a
 * NUL byte (the message gives the offset); TD_ETOOBIG past
 * HTML2TEXT_MAX_INPUT or out's cap. On failure out is put back to its length
 * at entry. Safe to call from several threads at once. */
int html2text(const char *html, size_t len, unsigned width, buf *out, td_error *e);

#endif
