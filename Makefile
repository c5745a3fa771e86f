# fnbox: plain GNU make. `make` builds every program into $(BUILD)/bin;
# `make test` installs what is missing, builds, and runs every suite (the
# sanitizer build included); `make bench` prints the figures.
#
# The source lists below are the architecture: lib/ is shared, runtime/ is
# the node agent (today: the jail), tests/ holds unit, security and bench.

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc

PKGS     := jansson libuv libseccomp libcap
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# Link these statically when the archive exists: every jail start execs
# fnbox-runtime, and each shared library costs dynamic-loader time.
static_or_dyn = $(if $(filter /%,$(shell $(CC) -print-file-name=lib$(1).a)),$(shell $(CC) -print-file-name=lib$(1).a),-l$(2))
RUNTIME_LIBS := $(call static_or_dyn,jansson,jansson) $(call static_or_dyn,uv_a,uv) \
                $(call static_or_dyn,cap,cap) -lpthread -ldl
SECCOMP_LIBS := $(call static_or_dyn,seccomp,seccomp)

WARN     := -Wall -Wextra -Werror=format=2 -Werror=missing-prototypes \
            -Werror=shadow -Werror=strict-prototypes -Werror=implicit-function-declaration
HARDEN   := -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIE
CFLAGS   ?= -O2 -g
ALL_CFLAGS = -std=gnu11 $(WARN) $(HARDEN) -I. $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
LDFLAGS  ?=
ALL_LDFLAGS = -pie -Wl,-z,relro,-z,now $(LDFLAGS)

ifeq ($(SANITIZE),1)
BUILD    := build-asan
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=address,undefined
else
ALL_CFLAGS += -D_FORTIFY_SOURCE=2
endif

LIB_SRCS     := lib/util.c lib/quantity.c lib/base64.c
RUNTIME_SRCS := runtime/jail.c runtime/jail_config.c runtime/jail_child.c \
                runtime/cgroup.c runtime/result_json.c runtime/run_cmd.c
UNIT_SRCS    := tests/unit/runner.c $(wildcard tests/unit/test_*.c)
BOX_SRCS     := $(wildcard tests/security/boxes/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PROGRAMS := $(BUILD)/bin/fnbox-runtime
UNIT_BIN := $(BUILD)/tests/unit-tests
BOXES    := $(patsubst tests/security/boxes/%.c,$(BUILD)/tests/boxes/%,$(BOX_SRCS))

.PHONY: all deps test test-unit test-security check-sanitize bench install run clean

all: $(PROGRAMS) $(UNIT_BIN) $(BOXES)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The seccomp filter is compiled with libseccomp at build time (seccomp_gen)
# and linked in as a BPF array.
SECCOMP_BPF := $(BUILD)/obj/gen/seccomp_bpf.o

$(BUILD)/gen/seccomp-gen: $(call obj,runtime/seccomp_gen.c runtime/seccomp.c lib/util.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(SECCOMP_LIBS)

$(BUILD)/gen/seccomp_bpf.c: $(BUILD)/gen/seccomp-gen
	$< > $@.tmp && mv $@.tmp $@

$(SECCOMP_BPF): $(BUILD)/gen/seccomp_bpf.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/bin/fnbox-runtime: $(call obj,runtime/main.c $(RUNTIME_SRCS) $(LIB_SRCS)) $(SECCOMP_BPF)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(RUNTIME_LIBS)

$(UNIT_BIN): $(call obj,$(UNIT_SRCS) $(RUNTIME_SRCS) runtime/seccomp.c $(LIB_SRCS)) $(SECCOMP_BPF)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(RUNTIME_LIBS) $(SECCOMP_LIBS)

# Hostile boxes: small programs that run inside the jail and try to escape.
$(BUILD)/tests/boxes/%: tests/security/boxes/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -w $< -o $@ -lpthread
	@chmod 0755 $@

deps:
	@./tests/deps.sh

test: deps
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-security
	$(MAKE) check-sanitize

test-unit: $(UNIT_BIN)
	$(UNIT_BIN)

test-security: $(PROGRAMS) $(BOXES)
	python3 tests/security/run.py --build $(BUILD)

# ASan + UBSan build of everything, then the unit suite and the jail suite on it.
check-sanitize:
	$(MAKE) SANITIZE=1 all
	$(MAKE) SANITIZE=1 test-unit
	ASAN_OPTIONS=detect_leaks=1 python3 tests/security/run.py --build build-asan --quick

bench: deps all
	python3 tests/bench/jail_bench.py --build $(BUILD)

run: deps all
	@./tests/demo.sh $(BUILD)

install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
