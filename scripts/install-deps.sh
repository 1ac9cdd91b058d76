#!/bin/sh
# install-deps.sh: installs the Debian packages Tidings needs that are not
# installed yet, and nothing else. With --test it adds what the test suite
# needs (clang and its sanitizer runtime, cmocka, Python modules used as
# independent verifiers, the sqlite3 shell for the benchmarks).
#
# Runs apt-get as root, or through sudo; does nothing (and needs neither)
# when every package is already present.
set -eu

# Build and run: compiler, pkg-config, and the -dev packages in the
# Makefile's PKGS list.
run_pkgs="make gcc pkg-config ca-certificates tzdata
  libsqlite3-dev libidn2-dev libssl-dev libjansson-dev libsodium-dev
  libgmime-3.0-dev libpcre2-dev libunistring-dev libxml2-dev libmicrohttpd-dev libcurl4-openssl-dev"

# Tests: clang with its sanitizer/libFuzzer runtime, cmocka for the unit
# tests, Debian's Python with dkimpy as an independent DKIM verifier, and
# libopendkim as a second one (driven from Python), the sqlite3 shell as
# the benchmarks' reference, Postfix for its smtp-sink and smtp-source (it
# stays unconfigured and starts nothing under DEBIAN_FRONTEND=noninteractive),
# aiosmtpd for the scriptable SMTP fault server, and the openssl command for
# the fault tests' self-signed certificates; wrk and nginx for bench/track;
# Dovecot's IMAP and POP3 servers for the inbound mail tests (started by the
# tests as an ordinary process); headless Chromium, its ChromeDriver and
# Selenium for the pages' browser tests.
test_pkgs="clang libclang-rt-14-dev libcmocka-dev python3 python3-dkim libopendkim11 sqlite3
  postfix python3-aiosmtpd openssl wrk nginx-light dovecot-imapd dovecot-pop3d
  chromium chromium-driver python3-selenium"

pkgs=$run_pkgs
case "${1:-}" in
    --test) pkgs="$run_pkgs $test_pkgs" ;;
    "") ;;
    -h|--help)
        echo "usage: scripts/install-deps.sh [--test]"
        echo "Installs the missing Debian packages needed to build and run Tidings"
        echo "(with --test, also those the test suite needs)."
        exit 0 ;;
    *)
        echo "install-deps.sh: unknown option '$1'; try --help" >&2
        exit 2 ;;
esac

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    echo "install-deps.sh: missing packages:$missing; run this script as root or install sudo" >&2
    exit 1
fi

echo "installing:$missing"
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
# shellcheck disable=SC2086
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
