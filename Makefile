# tind — build, test, install.
#
#   make                      build/libtind.a, build/libtind.so
#   make test                 build and run the test suite (Criterion), after check-private-names,
#                             check-no-test-layers and check-layers
#   make check-private-names  libtind.a and libtind.so define no global outside the tind_ API,
#                             and a program defining internal names links with each and runs
#   make check-no-test-layers libtind.a, libtind.so and the library's objects define no symbol
#                             of the fault or power-loss test environment (run by make test)
#   make check-layers         no library file uses or includes a higher layer, no circle among
#                             files (tests/link/layers.sh over the objects, includes.sh over
#                             the sources)
#   make SAN=address,undefined test / make SAN=thread test
#                             the same under sanitizers, in build/san-<list>/
#   make bench                the quick benchmark on a fresh database
#   make bench-compare BASE=REV [ROUNDS=5]
#                             this tree's tind-bench against REV's, alternating runs, medians
#   make bench-peers NUM=N    tind beside RocksDB, LevelDB and LMDB (installs them and gnuplot;
#                             N keys, default 2,000,000; PEER_ARGS=... adds flags): each engine
#                             equalized, then at its own defaults, a table for each, and PNG
#                             charts in build/bench-peers/ (bench/charts.sh)
#   make bench-peers-large NUM=N  the same at 20,000,000 keys with a short workload list
#                             (fillrandom, overwrite, 1M reads, 200k seeks); charts in
#                             build/bench-peers-large/
#   make crash-test KILLS=N   the SIGKILL crash test with N kills
#   make powerloss-test STATES=N  the power-loss test: N crash states over every drop mode
#                             (default 0: every sync boundary of the workload in every mode)
#   make compaction-test KEYS=N  the overwrite space test at N keys (default 1,000,000)
#   make model-test SEEDS=N   the randomized model test over N seeds and six option sets
#                             (default 600; STEPS=N steps per seed, default 2500)
#   make stress-test SECONDS=N  writers, readers, snapshots, flushes and compactions at once
#                             for N seconds (default 60); with SAN=thread under ThreadSanitizer
#   make corruption-test BITS=N TRUNCS=M
#                             flips N bits and cuts M lengths of every file of a small database
#                             ("all": every one; default all and all) and checks what tind reads
#   make fault-test POINTS=N  the I/O-error and allocation-failure loops: at most N injection
#                             points per kind, spread over the workload (default 0: every
#                             point, until the workload completes without the fault firing)
#   build/tind                the command-line tool (built by make; man/tind.1; src/cli/README.md)
#   make install PREFIX=/usr/local DESTDIR=   library, header, pkg-config file, tind and its man page
#   make deps                 apt-get what the build and tests need
#   make thread-safety        clang -Wthread-safety over every library source (src/util/mutex.h)
#   make fuzz SECONDS=N       each libFuzzer target for N seconds on its corpus (clang; build/fuzz/)
#   make fuzz-replay          each fuzz target once over its checked-in corpus
#   make fuzz-corpus          regenerate the seed corpora in tests/fuzz/corpus/

CC      ?= cc
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
PKGDIR  ?= $(LIBDIR)/pkgconfig
SAN     ?=
KILLS   ?= 60
STATES  ?= 0
KEYS    ?= 1000000
SEEDS   ?= 600
STEPS   ?= 2500
BITS    ?= all
TRUNCS  ?= all
POINTS  ?= 0
BENCH_ARGS ?=
NUM     ?=
PEER_ARGS ?=
PEER_PRESET ?= peers
PEER_DB ?= build/bench-peers-db
PEER_CHARTS ?= build/bench-peers
comma := ,

# One source for the version: the macros in include/tind.h.
VERSION_MAJOR := $(shell sed -n 's/^\#define TIND_VERSION_MAJOR \([0-9]*\).*/\1/p' include/tind.h)
VERSION_MINOR := $(shell sed -n 's/^\#define TIND_VERSION_MINOR \([0-9]*\).*/\1/p' include/tind.h)
VERSION_PATCH := $(shell sed -n 's/^\#define TIND_VERSION_PATCH \([0-9]*\).*/\1/p' include/tind.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)
SONAME  := libtind.so.$(VERSION_MAJOR)

# The sanitizer builds also check tmutex_assert_held (src/util/mutex.h); the
# default build leaves it out.
ifeq ($(SAN),)
BUILD   := build
OPT     ?= -O2 -g
SANFLAGS :=
LOCKFLAGS :=
else
BUILD   := build/san-$(subst $(comma),-,$(SAN))
OPT     ?= -O1 -g
SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LOCKFLAGS := -DTIND_DEBUG_LOCKS
endif
# Packages the library needs, with the Debian package that provides each.
LIB_PKGS  := liblz4 libzstd libxxhash
DEB_PKGS  := liblz4-dev libzstd-dev libxxhash-dev libcriterion-dev pkg-config

HAVE_PKGCONFIG := $(shell command -v pkg-config >/dev/null 2>&1 && echo yes)
ifeq ($(HAVE_PKGCONFIG),yes)
PKG_CFLAGS := $(shell pkg-config --cflags $(LIB_PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell pkg-config --cflags criterion 2>/dev/null)
TEST_LIBS   := $(shell pkg-config --libs criterion 2>/dev/null)
endif

# Criterion cannot start under ThreadSanitizer (Criterion issue #274), so the
# SAN=thread build runs the same tests on tests/support/tsan's runner.
ifneq ($(findstring thread,$(SAN)),)
TEST_CFLAGS := -Itests/support/tsan
TEST_LIBS   :=
TSAN_RUNNER_SRCS := $(wildcard tests/support/tsan/*.c)
else
TSAN_RUNNER_SRCS :=
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wvla
CFLAGS  ?=
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) $(LOCKFLAGS) -fPIC -fvisibility=hidden \
              -pthread -MMD -MP -I. -Iinclude $(PKG_CFLAGS) $(CFLAGS)
LDLIBS  := $(PKG_LIBS) -pthread -lm
LDFLAGS ?=
# The test binary and the tools route the allocator through
# tests/support/alloc_fault.c, which can fail the nth allocation.
WRAP_LDFLAGS := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=aligned_alloc

LIB_SRCS := $(wildcard src/*.c src/tree/*.c src/util/*.c journal/*.c lsm/*.c compaction/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
CLI_SRCS := $(wildcard src/cli/*.c)
CLI_OBJS := $(CLI_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/*_test.c)
TEST_OBJS := $(TEST_SRCS:%.c=$(BUILD)/obj/%.o)
TEST_SUPPORT_SRCS := $(wildcard tests/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(BUILD)/obj/%.o)
TSAN_RUNNER_OBJS := $(TSAN_RUNNER_SRCS:%.c=$(BUILD)/obj/%.o)
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOLS := $(TOOL_SRCS:tests/tools/%.c=$(BUILD)/tests/%)
BENCH_SRCS := $(wildcard bench/*.c)
BENCH_OBJS := $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
# The peer drivers and a second build of the engine registry (bench/engines.c
# with -DTIND_BENCH_PEERS) make build/tind-bench-peers; only `make bench-peers`
# builds them, so nothing else needs RocksDB, LevelDB or LMDB.
PEER_DEB_PKGS := librocksdb-dev libleveldb-dev liblmdb-dev
# What draws the charts; without it the run still prints its tables.
PEER_PLOT_PKGS := gnuplot-nox
PEER_LIBS  := -lrocksdb -lleveldb -llmdb
PEER_SRCS  := $(wildcard bench/peers/*.c)
PEER_OBJS  := $(PEER_SRCS:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/bench/peers/engines.o
BENCH_SHARED_OBJS := $(filter-out $(BUILD)/obj/bench/engines.o,$(BENCH_OBJS))
ROCKSDB_VERSION = $(shell dpkg-query -W -f='$${Version}' librocksdb-dev 2>/dev/null)
PEER_CFLAGS = -DTIND_BENCH_PEERS -DBENCH_ROCKSDB_VERSION='"$(ROCKSDB_VERSION)"'

STATIC := $(BUILD)/libtind.a
SHARED := $(BUILD)/libtind.so
# Every library object in one archive, internal symbols global: what the tests, the
# test tools, the fuzz targets and the CLI link, since they call internals. Never
# installed; only libtind.a and libtind.so are.
INTERNAL := $(BUILD)/obj/libtind-internal.a
LD      ?= ld
OBJCOPY ?= objcopy
TESTBIN := $(BUILD)/tests/tind-tests
BENCHBIN := $(BUILD)/tind-bench
PEERBIN  := $(BUILD)/tind-bench-peers
CLIBIN   := $(BUILD)/tind

.PHONY: fuzz fuzz-deps fuzz-replay fuzz-corpus run-fuzz run-fuzz-replay run-fuzz-corpus
.PHONY: all check-pkgs deps ensure-deps test run-tests bench run-bench crash-test run-crash-test compaction-test \
        model-test stress-test corruption-test run-corruption-test powerloss-test run-powerloss-test \
        fault-test run-fault-test \
        bench-peers bench-peers-large bench-compare peer-deps run-bench-peers install uninstall clean check-private-names check-layers \
        check-no-test-layers \
        thread-safety run-thread-safety

all: check-pkgs $(STATIC) $(SHARED) $(BUILD)/tind.pc $(CLIBIN)

# Fails loudly, naming the Debian package, when a library the build needs is absent.
check-pkgs:
	@command -v pkg-config >/dev/null 2>&1 || { \
	  echo "error: pkg-config not found (Debian package: pkg-config); run 'make deps'" >&2; exit 1; }
	@for p in liblz4:liblz4-dev libzstd:libzstd-dev libxxhash:libxxhash-dev; do \
	  pc=$${p%%:*}; deb=$${p##*:}; \
	  pkg-config --exists $$pc || { \
	    echo "error: $$pc not found by pkg-config (Debian package: $$deb); run 'make deps'" >&2; exit 1; }; \
	done

# Installs whatever of the needed Debian packages is missing.
deps:
	@missing=""; \
	for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v cc >/dev/null 2>&1 || missing="$$missing gcc"; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "deps: installing$$missing"; \
	$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $$missing

# Calls 'make deps' only when pkg-config cannot find a package.
ensure-deps:
	@if command -v pkg-config >/dev/null 2>&1 && \
	    pkg-config --exists $(LIB_PKGS) criterion 2>/dev/null; then :; \
	 else $(MAKE) --no-print-directory deps; fi

test: ensure-deps
	@$(MAKE) --no-print-directory run-tests

# Criterion's runner itself leaks a few bytes when timed tests overlap.
run-tests: check-pkgs $(TESTBIN) $(TOOLS) $(CLIBIN) check-private-names check-no-test-layers check-layers
	TIND_TOOLS=$(BUILD)/tests TIND_CLI=$(CLIBIN) LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	    TIND_TEST_LOG=$(BUILD)/test.log tests/run/suite.sh $(TESTBIN) $(TEST_ARGS)

bench: ensure-deps
	@$(MAKE) --no-print-directory run-bench

run-bench: check-pkgs $(BENCHBIN)
	$(BENCHBIN) $(BENCH_ARGS)

# A change against its base in one run: builds tind-bench at BASE (a commit,
# from git archive, in build/compare/) and runs it and this tree's in turn,
# ROUNDS times each on fresh databases (bench/compare.sh).
BASE ?= HEAD
ROUNDS ?= 5
COMPARE_DIR := $(BUILD)/compare
bench-compare: ensure-deps
	@$(MAKE) --no-print-directory check-pkgs $(BENCHBIN)
	rm -rf $(COMPARE_DIR)/src && mkdir -p $(COMPARE_DIR)/src
	git archive --format=tar $(BASE) | tar -x -C $(COMPARE_DIR)/src
	$(MAKE) --no-print-directory -C $(COMPARE_DIR)/src build/tind-bench
	bench/compare.sh $(COMPARE_DIR)/src/build/tind-bench $(BENCHBIN) $(ROUNDS) $(COMPARE_DIR) $(BENCH_ARGS)

bench-peers: ensure-deps peer-deps
	@$(MAKE) --no-print-directory run-bench-peers

bench-peers-large: ensure-deps peer-deps
	@$(MAKE) --no-print-directory run-bench-peers PEER_PRESET=peers-large PEER_DB=build/bench-peers-large-db \
	    PEER_CHARTS=build/bench-peers-large

# Installs whatever of RocksDB, LevelDB and LMDB's Debian packages is missing,
# and gnuplot; a gnuplot that fails to install only costs the charts.
peer-deps:
	@missing=""; \
	for p in $(PEER_DEB_PKGS) $(PEER_PLOT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "peer-deps: installing$$missing"; \
	$$sudo apt-get update || exit 1; \
	libs=""; for p in $$missing; do case " $(PEER_PLOT_PKGS) " in *" $$p "*) ;; *) libs="$$libs $$p";; esac; done; \
	if [ -n "$$libs" ]; then DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $$libs || exit 1; fi; \
	for p in $(PEER_PLOT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || \
	    DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $$p || \
	    echo "peer-deps: $$p did not install: the run will print its tables without charts"; done

# --db comes from PEER_DB (not PEER_ARGS), so that the charts find the results.
run-bench-peers: check-pkgs $(PEERBIN)
	@dpkg-query -W $(PEER_DEB_PKGS)
	@echo "tind source: commit $$(git rev-parse --short HEAD 2>/dev/null)$$(git --no-optional-locks diff --quiet HEAD -- src lsm journal compaction include 2>/dev/null || echo ' with uncommitted library changes')"
	$(PEERBIN) --preset=$(PEER_PRESET) --db=$(PEER_DB) $(if $(NUM),--num=$(NUM)) $(PEER_ARGS)
	@bench/charts.sh $(PEER_DB) $(PEER_CHARTS)

crash-test: ensure-deps
	@$(MAKE) --no-print-directory run-crash-test

run-crash-test: check-pkgs $(BUILD)/tests/crash-writer $(BUILD)/tests/crash-check
	$(BUILD)/tests/crash-check --kills=$(KILLS) --writer=$(BUILD)/tests/crash-writer

powerloss-test: ensure-deps
	@$(MAKE) --no-print-directory run-powerloss-test

run-powerloss-test: check-pkgs $(BUILD)/tests/powerloss-check
	$(BUILD)/tests/powerloss-check --states=$(STATES)

# The space-amplification test at full size: 1,000,000 keys written six times.
compaction-test: ensure-deps
	@$(MAKE) --no-print-directory check-pkgs $(TESTBIN)
	TIND_OVERWRITE_KEYS=$(KEYS) $(TESTBIN) --filter 'compaction/overwrites_leave_about_one_copy_on_disk'

# The model test over many seeds and option sets.
model-test: ensure-deps
	@$(MAKE) --no-print-directory check-pkgs $(TESTBIN)
	TIND_MODEL_SEEDS=$(SEEDS) TIND_MODEL_STEPS=$(STEPS) $(TESTBIN) --filter 'model/seeds_over_option_sets'

# The concurrency stress test for a chosen time (SAN=thread runs it under TSan).
stress-test: ensure-deps
	@$(MAKE) --no-print-directory check-pkgs $(TESTBIN)
	TIND_STRESS_SECONDS=$(or $(SECONDS),60) $(TESTBIN) --filter 'stress/*'

# The corruption suite (tests/tools/corruption-check.c) at a chosen density.
corruption-test: ensure-deps
	@$(MAKE) --no-print-directory run-corruption-test

run-corruption-test: check-pkgs $(BUILD)/tests/corruption-check
	$(BUILD)/tests/corruption-check --bits=$(BITS) --truncs=$(TRUNCS)

# The I/O-error and allocation-failure loops in full (the default run samples them).
fault-test: ensure-deps
	@$(MAKE) --no-print-directory run-fault-test

run-fault-test: check-pkgs $(TESTBIN)
	TIND_FAULT_POINTS=$(POINTS) TIND_FAULT_FULL=1 LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  $(TESTBIN) --filter 'fault_*/*' $(TEST_ARGS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(INTERNAL): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

# The shipped static library holds one relocatable object: every library object
# linked together (ld -r), then every hidden symbol made local (objcopy
# --localize-hidden). The library is compiled with -fvisibility=hidden and only
# TIND_API declarations are default, so what stays global is the tind_ API, the
# same set libtind.so exports; a program may define file_open or err_set itself
# and links without a clash, and without taking over the library's own.
$(STATIC): $(LIB_OBJS)
	@mkdir -p $(dir $@) $(BUILD)/obj
	$(LD) -r -o $(BUILD)/obj/libtind.o $^
	$(OBJCOPY) --localize-hidden $(BUILD)/obj/libtind.o
	rm -f $@
	ar rcs $@ $(BUILD)/obj/libtind.o

$(SHARED): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,$(SONAME) $(SANFLAGS) $(LDFLAGS) -o $@.$(VERSION) $^ $(LDLIBS)
	ln -sf libtind.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf libtind.so.$(VERSION) $@

$(BUILD)/tind.pc: tind.pc.in include/tind.h
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' -e 's|@INCDIR@|$(INCDIR)|g' \
	    -e 's|@VERSION@|$(VERSION)|g' $< > $@

$(TESTBIN): $(TEST_OBJS) $(TEST_SUPPORT_OBJS) $(TSAN_RUNNER_OBJS) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) $(WRAP_LDFLAGS) -o $@ $(TEST_OBJS) $(TEST_SUPPORT_OBJS) $(TSAN_RUNNER_OBJS) $(INTERNAL) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/obj/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(TEST_SUPPORT_OBJS) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) $(WRAP_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(INTERNAL) $(LDLIBS)

# The command-line tool links the library's objects, not libtind.a: besides the
# public API its file commands use the internal readers (tables, journals,
# manifests, records), which libtind.a keeps local.
$(CLIBIN): $(CLI_OBJS) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJS) $(INTERNAL) $(LDLIBS)

# The layering of the library's files, read off their objects: util, then
# journal and lsm, compaction, src/tree, src; nothing uses a higher layer and
# no files call each other in a circle (tests/link/layers.sh).
check-layers: $(LIB_OBJS)
	@tests/link/layers.sh $(BUILD)/obj $(LIB_OBJS:$(BUILD)/obj/%=%)
	@tests/link/includes.sh $(LIB_SRCS) $(wildcard src/*.h src/tree/*.h src/util/*.h journal/*.h lsm/*.h compaction/*.h)

# libtind.a and libtind.so define no global symbol outside the tind_ API, and a
# program that defines internal names (tests/link/private_names.c) links against
# each and runs a database session. The program is compiled as a user's would
# be: the public header only, default visibility.
PRIVATE_NAMES := $(BUILD)/tests/private-names
PRIVATE_NAMES_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -pthread -Iinclude
check-private-names: $(STATIC) $(SHARED) $(PRIVATE_NAMES)-static $(PRIVATE_NAMES)-shared
	@bad=$$(nm -g --defined-only $(STATIC) | awk 'NF == 3 && $$3 !~ /^tind_/'); \
	 if [ -n "$$bad" ]; then echo "error: $(STATIC) defines globals outside the tind_ API:" >&2; \
	   echo "$$bad" >&2; exit 1; fi
	@bad=$$(nm -D --defined-only $(SHARED) | awk 'NF == 3 && $$3 !~ /^tind_/'); \
	 if [ -n "$$bad" ]; then echo "error: $(SHARED) exports symbols outside the tind_ API:" >&2; \
	   echo "$$bad" >&2; exit 1; fi
	$(PRIVATE_NAMES)-static
	$(PRIVATE_NAMES)-shared

# The fault-injection and power-loss environments live in tests/support: none
# of their symbols is defined in what users link, nor in the library's objects
# (tests/link/no_test_layers.sh).
TEST_ENV_OBJS := $(BUILD)/obj/tests/support/fault_env.o $(BUILD)/obj/tests/support/powerloss_env.o
check-no-test-layers: $(STATIC) $(SHARED) $(LIB_OBJS) $(TEST_ENV_OBJS)
	@tests/link/no_test_layers.sh $(TEST_ENV_OBJS) -- $(STATIC) $(SHARED) $(LIB_OBJS)

$(BUILD)/obj/tests/link/private_names.o: tests/link/private_names.c include/tind.h
	@mkdir -p $(dir $@)
	$(CC) $(PRIVATE_NAMES_CFLAGS) -c -o $@ $<

$(PRIVATE_NAMES)-static: $(BUILD)/obj/tests/link/private_names.o $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LDLIBS)

$(PRIVATE_NAMES)-shared: $(BUILD)/obj/tests/link/private_names.o $(SHARED)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $< -L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -ltind $(LDLIBS)

$(BENCHBIN): $(BENCH_OBJS) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $(BENCH_OBJS) $(STATIC) $(LDLIBS) -lm

$(BUILD)/obj/bench/peers/%.o: bench/peers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PEER_CFLAGS) -c -o $@ $<

$(BUILD)/obj/bench/peers/engines.o: bench/engines.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PEER_CFLAGS) -c -o $@ $<

$(PEERBIN): $(BENCH_SHARED_OBJS) $(PEER_OBJS) $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) -o $@ $(BENCH_SHARED_OBJS) $(PEER_OBJS) $(STATIC) $(PEER_LIBS) $(LDLIBS) -lm

install: all
	install -d $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGDIR)
	install -m 644 include/tind.h $(DESTDIR)$(INCDIR)/tind.h
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/libtind.a
	install -m 755 $(SHARED).$(VERSION) $(DESTDIR)$(LIBDIR)/libtind.so.$(VERSION)
	ln -sf libtind.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libtind.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libtind.so
	install -m 644 $(BUILD)/tind.pc $(DESTDIR)$(PKGDIR)/tind.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 755 $(CLIBIN) $(DESTDIR)$(BINDIR)/tind
	install -m 644 man/tind.1 $(DESTDIR)$(MANDIR)/man1/tind.1

uninstall:
	rm -f $(DESTDIR)$(INCDIR)/tind.h $(DESTDIR)$(LIBDIR)/libtind.a \
	      $(DESTDIR)$(LIBDIR)/libtind.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	      $(DESTDIR)$(LIBDIR)/libtind.so $(DESTDIR)$(PKGDIR)/tind.pc \
	      $(DESTDIR)$(BINDIR)/tind $(DESTDIR)$(MANDIR)/man1/tind.1

clean:
	rm -rf build

# ---- thread-safety analysis (src/util/mutex.h) -----------------------------------------
# Every library source through clang's -Wthread-safety (warnings as errors, the
# usual warnings too), syntax only: a stamp per source under build/tsa/, redone
# when the source or a header it includes changes. clang is installed when missing.
TSA_CC     ?= clang
TSA_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -pthread -I. -Iinclude $(PKG_CFLAGS) \
              -Wthread-safety -Wthread-safety-beta -fsyntax-only
TSA_BUILD  := build/tsa
TSA_STAMPS := $(LIB_SRCS:%.c=$(TSA_BUILD)/%.ok)

thread-safety: ensure-deps
	@if ! command -v $(TSA_CC) >/dev/null 2>&1; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	  echo "thread-safety: installing clang"; \
	  $$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y clang; \
	fi
	@$(MAKE) --no-print-directory run-thread-safety

run-thread-safety: check-pkgs $(TSA_STAMPS)
	@echo "thread-safety: $(words $(TSA_STAMPS)) sources clean"

$(TSA_BUILD)/%.ok: %.c
	@mkdir -p $(dir $@)
	$(TSA_CC) $(TSA_CFLAGS) -MMD -MP -MF $(@:.ok=.d) -MT $@ $<
	@touch $@

# ---- fuzzing (tests/fuzz/README.md) ----------------------------------------------------
# The library is built again with clang for libFuzzer, ASan and UBSan into
# build/fuzz/; each target links it with libFuzzer's main.
FUZZ_CC      ?= clang
SECONDS      ?= 60
FUZZ_ARGS    ?=
FUZZ_DEB_PKGS := clang libclang-rt-dev
FUZZ_BUILD   := build/fuzz
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS  := -std=c11 -D_GNU_SOURCE -O1 -g $(WARN) $(FUZZ_SAN) -pthread -MMD -MP -I. -Iinclude $(PKG_CFLAGS)
FUZZ_TARGETS := journal table manifest ops
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz-%)
FUZZ_LIB_OBJS := $(LIB_SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_COMMON_OBJS := $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_common.o

# Installs clang and libFuzzer's runtime when either is missing.
fuzz-deps: ensure-deps
	@missing=""; \
	for p in $(FUZZ_DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ] && command -v $(FUZZ_CC) >/dev/null 2>&1; then exit 0; fi; \
	sudo=""; [ "$$(id -u)" -eq 0 ] || sudo=sudo; \
	echo "fuzz-deps: installing$$missing"; \
	$$sudo apt-get update && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y $$missing

fuzz: fuzz-deps
	@$(MAKE) --no-print-directory run-fuzz

fuzz-replay: fuzz-deps
	@$(MAKE) --no-print-directory run-fuzz-replay

fuzz-corpus: ensure-deps
	@$(MAKE) --no-print-directory run-fuzz-corpus

# New inputs go to build/fuzz/corpus/<target>/ (the first corpus folder
# libFuzzer is given); the checked-in seeds are read only. Crashes land in
# build/fuzz/artifacts/.
run-fuzz: check-pkgs $(FUZZ_BINS)
	@mkdir -p $(FUZZ_BUILD)/artifacts
	@set -e; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  echo "== fuzz-$$t for $(SECONDS) s"; \
	  $(FUZZ_BUILD)/fuzz-$$t -max_total_time=$(SECONDS) -timeout=25 -rss_limit_mb=2048 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- -print_final_stats=1 $(FUZZ_ARGS) \
	    $(FUZZ_BUILD)/corpus/$$t tests/fuzz/corpus/$$t; \
	done

run-fuzz-replay: check-pkgs $(FUZZ_BINS)
	@set -e; for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz-$$t over tests/fuzz/corpus/$$t"; \
	  $(FUZZ_BUILD)/fuzz-$$t -runs=0 -timeout=25 tests/fuzz/corpus/$$t; \
	done

run-fuzz-corpus: check-pkgs $(BUILD)/tests/fuzz-gen-corpus
	$(BUILD)/tests/fuzz-gen-corpus tests/fuzz/corpus

$(BUILD)/tests/fuzz-gen-corpus: $(BUILD)/obj/tests/fuzz/gen_corpus.o $(TEST_SUPPORT_OBJS) $(INTERNAL)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) $(LDFLAGS) $(WRAP_LDFLAGS) -o $@ $< $(TEST_SUPPORT_OBJS) $(INTERNAL) $(LDLIBS)

$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_BUILD)/obj/libtind-internal.a: $(FUZZ_LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz-%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_COMMON_OBJS) $(FUZZ_BUILD)/obj/libtind-internal.a
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_COMMON_OBJS) $(FUZZ_BUILD)/obj/libtind-internal.a $(LDLIBS)

# Keep intermediate objects (tools' .o) so that nothing rebuilds needlessly.
.SECONDARY:

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(TSA_BUILD) -name '*.d' 2>/dev/null)
