# Tidings build. `make` builds ./tidings; `make test` runs every test;
# `make asan` runs the same tests under ASan+UBSan; `make fuzz` builds the
# libFuzzer targets; `make check` is test + asan (what CI runs).

CC      ?= cc
PKGS    := sqlite3 libidn2 libcrypto libssl jansson libsodium gmime-3.0 libpcre2-8 libxml-2.0 libmicrohttpd libcurl
LIBS_NOPC := -lunistring -lm -lpthread
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CSTD    := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT     ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) $(LIBS_NOPC)
CFLAGS_ALL  = $(CSTD) $(WARN) $(OPT) -Isrc $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS_ALL = $(EXTRA_LDFLAGS)

B       ?= build
SRC     := $(sort $(shell find src -name '*.c' ! -path 'src/cli/main.c'))
OBJ     := $(SRC:%.c=$(B)/%.o)
MAIN_OBJ := $(B)/src/cli/main.o
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

.PHONY: FORCE all test unit e2e asan check fuzz fuzz-smoke clean demo format bench-import bench-dkim bench-render

all: tidings

tidings: $(B)/tidings
	@[ "$(B)" = build ] && cp $(B)/tidings tidings || true

$(B)/tidings: $(MAIN_OBJ) $(B)/libtidings.a
	@echo "  LINK  $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDFLAGS_ALL) $(PKG_LIBS)

$(B)/libtidings.a: $(OBJ)
	@rm -f $@
	@ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS_ALL) -MMD -MP -c -o $@ $<

$(B)/tests/%: tests/unit/%.c $(B)/libtidings.a
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS_ALL) $(shell pkg-config --cflags cmocka) -o $@ $< $(B)/libtidings.a \
	    $(LDFLAGS_ALL) $(PKG_LIBS) $(shell pkg-config --libs cmocka)

# The SMTP client's end-to-end driver (tests/e2e/test_smtp.py runs it from
# UNIT_DIR): a small program on libtidings, not a unit test.
# The relay pool's driver (tests/e2e/test_pool.py) likewise.
TEST_TOOLS := $(B)/tests/smtp_send $(B)/tests/pool_send

$(B)/tests/smtp_send: tests/smtp_send.c $(B)/libtidings.a
	@mkdir -p $(dir $@)
	@echo "  TOOL  $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(B)/libtidings.a $(LDFLAGS_ALL) $(PKG_LIBS)

$(B)/tests/pool_send: tests/pool_send.c $(B)/libtidings.a
	@mkdir -p $(dir $@)
	@echo "  TOOL  $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(B)/libtidings.a $(LDFLAGS_ALL) $(PKG_LIBS)

# Every test: unit binaries, then end-to-end tests against the real binary.
test: $(B)/tidings $(UNIT_BIN) $(TEST_TOOLS)
	@[ "$(B)" = build ] && cp $(B)/tidings tidings || true
	@TIDINGS_BIN=$(CURDIR)/$(B)/tidings UNIT_DIR=$(CURDIR)/$(B)/tests \
	    FUZZ_DIR=$(FUZZ_RUN_DIR) TIDINGS_SANITIZED=$(TIDINGS_SANITIZED) tests/run.sh

# Same tests under AddressSanitizer + UndefinedBehaviorSanitizer with leak
# checking, in a separate build tree.
asan:
	$(MAKE) B=build/asan CC=clang OPT="-O1 -g -fno-omit-frame-pointer" \
	    EXTRA_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all" \
	    EXTRA_LDFLAGS="-fsanitize=address,undefined" \
	    FUZZ_RUN_DIR=$(CURDIR)/build/fuzz TIDINGS_SANITIZED=1 test

check: test fuzz asan

# libFuzzer targets, one per parser.
fuzz: $(FUZZ_SRC:fuzz/%.c=build/fuzz/%)

# FORCE: the library may have changed even when the target's source did not.
build/fuzz/%: fuzz/%.c FORCE
	$(MAKE) B=build/fuzzlib CC=clang OPT="-O1 -g" \
	    EXTRA_CFLAGS="-fsanitize=fuzzer-no-link,address,undefined" build/fuzzlib/libtidings.a
	@mkdir -p build/fuzz
	clang $(CSTD) $(WARN) -O1 -g -Isrc $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined \
	    -o $@ $< build/fuzzlib/libtidings.a $(PKG_LIBS)

demo: tidings
	./tidings demo

bench-import: tidings
	bench/import

# DKIM signatures/s beside `openssl speed` in the same run.
bench-dkim: $(B)/bench/dkim-sign
	$(B)/bench/dkim-sign

$(B)/bench/dkim-sign: bench/dkim-sign.c $(B)/libtidings.a
	@mkdir -p $(dir $@)
	@echo "  BENCH $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(B)/libtidings.a $(LDFLAGS_ALL) $(PKG_LIBS)

# Render + MIME + DKIM messages/s of a campaign beside `openssl speed`.
bench-render: $(B)/bench/render
	$(B)/bench/render

$(B)/bench/render: bench/render.c $(B)/libtidings.a
	@mkdir -p $(dir $@)
	@echo "  BENCH $@"
	@$(CC) $(CFLAGS_ALL) -o $@ $< $(B)/libtidings.a $(LDFLAGS_ALL) $(PKG_LIBS)

format:
	clang-format -i $$(find src tests/unit fuzz -name '*.[ch]')

clean:
	rm -rf build tidings

-include $(OBJ:.o=.d) $(MAIN_OBJ:.o=.d)

FORCE:
