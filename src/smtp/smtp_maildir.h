/* smtp_maildir: the `maildir:/path` relay. Each finished message becomes one
 * file, written into tmp/ and renamed into new/ (the maildir protocol: a
 * reader never sees a partial file), with the envelope in front of it as
 * Return-Path and Delivered-To fields. Results are the SMTP client's
 * smtp_result, so the delivery layer treats both relays alike. */
#ifndef TD_SMTP_SMTP_MAILDIR_H
#define TD_SMTP_SMTP_MAILDIR_H

#include <stdbool.h>

#include "smtp/smtp_client.h"
#include "util/err.h"

typedef struct smtp_maildir smtp_maildir;

/* smtp_maildir_open returns a writer for the maildir at path (made, with its
 * tmp/, new/ and cur/, when missing; mode 0700), or NULL with TD_EIO and a
 * message in e. fsync: sync each file before its rename (what an MTA does
 * before it says 250; off only for benchmarks and tests). The caller frees
 * it with smtp_maildir_free. Safe to use from several threads at once. */
smtp_maildir *smtp_maildir_open(const char *path, bool fsync, td_error *e);

/* smtp_maildir_deliver writes m as one file and fills *out (overwritten;
 * free with smtp_result_clear): every recipient ok with code 250 and the
 * file's name, or, when writing failed (disk full, permissions), every one
 * temp with the system's reason and no file left behind. Returns 0 when *out
 * is filled, or TD_EINVAL for a message smtp_msg_check refuses (*out
 * zeroed). */
int smtp_maildir_deliver(smtp_maildir *md, const smtp_msg *m, smtp_result *out, td_error *e);

/* smtp_maildir_free releases md; NULL is a no-op. */
void smtp_maildir_free(smtp_maildir *md);

#endif
