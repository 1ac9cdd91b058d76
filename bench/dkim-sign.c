/* dkim-sign: DKIM signatures/s of mime/dkim on one core, beside OpenSSL's
 * raw signing rate measured in the same run (`openssl speed -seconds 3
 * rsa2048 ed25519`), for a campaign-sized message: a multipart/alternative
 * newsletter of about 25 KB (20 KB of HTML in quoted-printable, its text
 * version) with the List-* fields. The ratio is the signer's share of the
 * render + MIME + sign pipeline's target (issue 3, item 8): what is left of
 * each message's time budget for everything else. Run: make bench-dkim */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mime/dkim.h"
#include "util/buf.h"

#define SECONDS 3.0

/* CPU time of the process: `openssl speed` divides by user CPU time too
 * (unless -elapsed), so both figures hold on a machine that is shared. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void build_message(buf *m)
{
    buf_puts(m, "From: =?UTF-8?B?2YXYsdit2KjYpyDYqNmD?= <news@example.com>\r\n"
                "To: =?UTF-8?B?4Liq4Lin4Lix4Liq4LiU4Li1?= <somchai@example.org>\r\n"
                "Subject: =?UTF-8?B?2YbYtNix2Kkg2LTZh9ix2YrYqSDZhdmGINiq2YrYr9mK2YbYrNiy?=\r\n"
                "Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n"
                "Message-ID: <c42.s1234.8f3a@example.com>\r\n"
                "MIME-Version: 1.0\r\n"
                "Content-Type: multipart/alternative; boundary=\"=_b1\"\r\n"
                "List-Unsubscribe: <https://example.com/u/AbCdEf0123456789>,\r\n"
                " <mailto:unsub+AbCdEf0123456789@example.com>\r\n"
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
                "List-Id: Monthly news <news.example.com>\r\n"
                "Feedback-ID: c42:l7:tidings\r\n"
                "\r\n--=_b1\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    for (int i = 0; i < 60; i++)
        buf_printf(m, "Paragraph %d of the text version, with a link [%d] to read =\r\nmore.\r\n\r\n",
                   i, i);
    buf_puts(m, "--=_b1\r\nContent-Type: text/html; charset=utf-8\r\n"
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n");
    size_t start = m->len;
    while (m->len - start < 20 * 1024)
        buf_puts(m, "<tr><td style=3D\"font-family:Arial,sans-serif;font-size:14px;color:#33=\r\n"
                    "3\"><a href=3D\"https://example.com/c/Zm9vYmFyYmF6cXV4\">Static copy</a>=\r\n"
                    "</td></tr>\r\n");
    buf_puts(m, "\r\n--=_b1--\r\n");
}

/* Signatures per second of signers[0..n) over msg, for SECONDS. */
static double rate(dkim_signer **s, size_t n, const buf *msg)
{
    buf out;
    buf_init(&out, BUF_NOCAP);
    td_error e;
    long count = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 20; i++) {
            buf_reset(&out);
            if (dkim_sign(s, n, msg->data, msg->len, 1700000000, &out, &e)) {
                fprintf(stderr, "dkim-sign: %s\n", e.msg);
                exit(1);
            }
        }
        count += 20;
    } while ((t = now() - t0) < SECONDS);
    buf_free(&out);
    return (double)count / t;
}

/* openssl speed's sign/s for rsa2048 and ed25519, from its summary lines. */
static int openssl_speed(double *rsa, double *ed)
{
    FILE *p = popen("openssl speed -seconds 3 rsa2048 ed25519 2>/dev/null", "r");
    if (!p)
        return -1;
    char line[512];
    *rsa = *ed = 0;
    while (fgets(line, sizeof line, p)) {
        double a, b, sign, verify;
        if (sscanf(line, "rsa 2048 bits %lfs %lfs %lf %lf", &a, &b, &sign, &verify) == 4)
            *rsa = sign;
        char *q = strstr(line, "EdDSA (Ed25519)");
        if (q && sscanf(q + 15, " %lfs %lfs %lf %lf", &a, &b, &sign, &verify) == 4)
            *ed = sign;
    }
    return pclose(p) == 0 && *rsa > 0 && *ed > 0 ? 0 : -1;
}

int main(void)
{
    buf msg;
    buf_init(&msg, BUF_NOCAP);
    build_message(&msg);

    td_error e;
    char *pem_r, *txt_r, *pem_e, *txt_e;
    dkim_signer *s[2];
    if (dkim_keygen(DKIM_RSA_SHA256, &pem_r, &txt_r, &e) ||
        dkim_keygen(DKIM_ED25519_SHA256, &pem_e, &txt_e, &e) ||
        dkim_signer_new("example.com", "r1", pem_r, &s[0], &e) ||
        dkim_signer_new("example.com", "e1", pem_e, &s[1], &e)) {
        fprintf(stderr, "dkim-sign: %s\n", e.msg);
        return 1;
    }
    printf("message: %zu bytes; %.0f s per measurement, one core\n", msg.len, SECONDS);
    double r = rate(&s[0], 1, &msg);
    double d = rate(&s[1], 1, &msg);
    double both = rate(s, 2, &msg);
    double or, oe;
    if (openssl_speed(&or, &oe)) {
        fprintf(stderr, "dkim-sign: could not run or read `openssl speed`\n");
        return 1;
    }
    printf("%-26s %12s %12s %8s %16s\n", "", "tidings/s", "openssl/s", "ratio",
           "overhead/msg");
    printf("%-26s %12.0f %12.0f %7.1f%% %13.1f us\n", "rsa-sha256 (2048)", r, or,
           100 * r / or, 1e6 / r - 1e6 / or);
    printf("%-26s %12.0f %12.0f %7.1f%% %13.1f us\n", "ed25519-sha256", d, oe, 100 * d / oe,
           1e6 / d - 1e6 / oe);
    printf("%-26s %12.0f %12.0f %7.1f%% %13.1f us\n", "both (two signatures)", both,
           1 / (1 / or + 1 / oe), 100 * both * (1 / or + 1 / oe),
           1e6 / both - 1e6 * (1 / or + 1 / oe));
    dkim_signer_free(s[0]);
    dkim_signer_free(s[1]);
    free(pem_r);
    free(txt_r);
    free(pem_e);
    free(txt_e);
    buf_free(&msg);
    return 0;
}
