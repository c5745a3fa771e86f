# fnbox: plain GNU make. `make` builds every program into $(BUILD)/bin;
# `make test` installs what is missing, builds, and runs every suite (the
# sanitizer build included); `make bench` prints the figures.
#
# The source lists below are the architecture: lib/ is shared, runtime/ is
# the node agent, controller/ the control plane and its REST API, cli/ the
# `fnbox` command; tests/ holds unit, store, integration, security, fuzz and
# bench suites.

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc

PKGS     := jansson libuv libseccomp libcap
# The control plane's libraries: manifests and code artifacts (libyaml,
# libcrypto), the two stores, the HTTP server (controller) and client (CLI).
SPEC_PKGS := jansson yaml-0.1 libcrypto
CTL_PKGS := $(SPEC_PKGS) sqlite3 libpq libmicrohttpd libsystemd libcurl
CLI_PKGS := $(SPEC_PKGS) libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) $(CTL_PKGS) libcurl 2>/dev/null)
SPEC_LIBS := $(shell pkg-config --libs $(SPEC_PKGS) 2>/dev/null)
CTL_LIBS := -Wl,--as-needed $(shell pkg-config --libs $(CTL_PKGS) 2>/dev/null)
CLI_LIBS := -Wl,--as-needed $(shell pkg-config --libs $(CLI_PKGS) 2>/dev/null)
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

ASAN_BUILD := $(BUILD)-asan
ifeq ($(SANITIZE),1)
override BUILD := $(ASAN_BUILD)
ALL_CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
ALL_LDFLAGS += -fsanitize=address,undefined
else
ALL_CFLAGS += -D_FORTIFY_SOURCE=2
endif

# lib/: the core every program links (the runtime links nothing more, to
# start fast), then what the control plane adds: manifests (libyaml), code
# artifacts and tokens (libcrypto), the store (SQLite, PostgreSQL).
LIB_SRCS     := lib/util.c lib/quantity.c lib/base64.c
# what the two network daemons (controller, activator) share
DAEMON_LIB_SRCS := lib/listen.c lib/daemon.c
SPEC_LIB_SRCS := lib/manifest.c lib/artifact.c
# YAML config files read into a checked tree (the runtime's node config,
# the gateway's configuration)
YAML_LIB_SRCS := lib/yamltree.c
STORE_LIB_SRCS := lib/token.c lib/store.c lib/store_sqlite.c lib/store_pg.c
CTL_LIB_SRCS := $(SPEC_LIB_SRCS) $(STORE_LIB_SRCS)
# Every runtime/*.c but the entry point, the build-time seccomp compiler
# and fnbox-zygote-init (a program of its own, below).
RUNTIME_SRCS := $(filter-out runtime/main.c runtime/seccomp.c runtime/seccomp_gen.c runtime/zygote_init.c,$(wildcard runtime/*.c))
# What a client of the runtime's sockets links (the activator): the framed
# protocol without the jail.
PROTO_SRCS   := runtime/proto.c runtime/jail_config.c
CONTROLLER_SRCS := $(wildcard controller/*.c)
# the controller's pure decision code (autoscaler, scheduler), the skill
# library's pure parts (prompt and answer parsing, search), and the audit
# retention (over the store), unit-tested
CONTROLLER_CORE_SRCS := $(wildcard controller/kpa.c controller/scheduler.c controller/retention.c \
                        controller/skills_prompt.c controller/skills_search.c)
# the LLM gateway's policy pieces (activator/gateway/policy.h): data rules
# and quotas (pure), and the audit shipper
GATEWAY_POLICY_SRCS := $(wildcard activator/gateway/rules.c activator/gateway/quota.c activator/gateway/audit.c)
ACTIVATOR_SRCS := $(sort $(wildcard activator/*.c activator/gateway/*.c) $(GATEWAY_POLICY_SRCS))
# the activator's pure parts (no I/O), which the unit suite links too
ACTIVATOR_CORE_SRCS := $(wildcard activator/fnpath.c activator/reqid.c activator/outcome.c activator/table.c activator/httpresp.c activator/httpreq.c activator/metrics.c activator/router.c activator/auth.c)
# the LLM gateway's parts without I/O on a loop (config, routing, the wire
# format, the policy pieces), which the unit suite links too
GATEWAY_CORE_SRCS := $(sort $(filter-out activator/gateway/gateway.c activator/gateway/call.c activator/gateway/upstream.c,$(wildcard activator/gateway/*.c)) $(GATEWAY_POLICY_SRCS))
# libcrypto: the SHA-256 of a caller's token (lib/token.c); libyaml: the
# gateway's configuration
ACT_PKGS := jansson libmicrohttpd libcurl libsystemd libuv libcrypto yaml-0.1
ACT_LIBS := -Wl,--as-needed $(shell pkg-config --libs $(ACT_PKGS) 2>/dev/null) -lpthread
CLI_SRCS     := $(wildcard cli/*.c)
# the CLI's pieces without I/O, which the unit suite links too
CLI_CORE_SRCS := cli/opts.c cli/output.c cli/config.c cli/docsplit.c
UNIT_SRCS    := tests/unit/runner.c tests/unit/fork_run.c $(wildcard tests/unit/test_*.c)
STORE_TEST_SRCS := $(wildcard tests/store/*.c)
BOX_SRCS     := $(wildcard tests/security/boxes/*.c)
FUNCTION_SRCS := $(wildcard functions/*/main.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

PROGRAMS := $(BUILD)/bin/fnbox-runtime \
            $(if $(CONTROLLER_SRCS),$(BUILD)/bin/fnbox-controller) \
            $(if $(ACTIVATOR_SRCS),$(BUILD)/bin/fnbox-activator) \
            $(if $(CLI_SRCS),$(BUILD)/bin/fnbox)
UNIT_BIN := $(BUILD)/tests/unit-tests
STORE_TEST_BIN := $(if $(STORE_TEST_SRCS),$(BUILD)/tests/store-conformance)
BOXES    := $(patsubst tests/security/boxes/%.c,$(BUILD)/tests/boxes/%,$(BOX_SRCS))
# Native example functions: functions/NAME/main.c builds functions/NAME/main
# in the build folder ($(BUILD)/functions/NAME/main), with the function's
# manifest.yaml copied next to it: that folder is what gets deployed.
FUNCTIONS := $(patsubst %/main.c,$(BUILD)/%/main,$(FUNCTION_SRCS)) \
             $(patsubst %/main.c,$(BUILD)/%/manifest.yaml,$(FUNCTION_SRCS))

.PHONY: all deps test test-unit test-store test-integration test-security test-dataplane test-gateway test-llm test-skills \
        fuzz fuzz-smoke check-sanitize bench install run clean

all: $(PROGRAMS) $(UNIT_BIN) $(STORE_TEST_BIN) $(BOXES) $(FUNCTIONS)

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

# fnbox-runtime is started for every `run`: as a static PIE it starts
# without the dynamic loader (about 0.5 ms less a run, hyperfine -N).
# Not under the sanitizers, whose runtime is dynamic. (The linker warns
# that libuv's getpwuid_r would need NSS: fnbox never calls it.)
RUNTIME_STATIC := $(if $(filter 1,$(SANITIZE)),,$(if $(filter /%,$(shell $(CC) -print-file-name=rcrt1.o)),-static-pie))

# The node agent checks and unpacks code artifacts: lib/artifact.c, and
# libcrypto statically (only here: the other programs link it shared).
$(BUILD)/bin/fnbox-runtime: $(call obj,runtime/main.c $(RUNTIME_SRCS) $(LIB_SRCS) $(YAML_LIB_SRCS) lib/artifact.c) $(SECCOMP_BPF)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(RUNTIME_STATIC) $^ -o $@ $(RUNTIME_LIBS) $(call static_or_dyn,crypto,crypto) \
		$(call static_or_dyn,yaml,yaml)

$(BUILD)/bin/fnbox-controller: $(call obj,$(CONTROLLER_SRCS) $(CTL_LIB_SRCS) $(DAEMON_LIB_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(CTL_LIBS) -lpthread -lm

$(BUILD)/bin/fnbox-activator: $(call obj,$(ACTIVATOR_SRCS) $(PROTO_SRCS) $(DAEMON_LIB_SRCS) $(LIB_SRCS) $(YAML_LIB_SRCS) lib/token.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(ACT_LIBS)

$(BUILD)/bin/fnbox: $(call obj,$(CLI_SRCS) $(SPEC_LIB_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(CLI_LIBS)

$(UNIT_BIN): $(call obj,$(UNIT_SRCS) $(RUNTIME_SRCS) runtime/seccomp.c $(CTL_LIB_SRCS) $(YAML_LIB_SRCS) $(CONTROLLER_CORE_SRCS) $(ACTIVATOR_CORE_SRCS) $(GATEWAY_CORE_SRCS) $(CLI_CORE_SRCS) $(LIB_SRCS)) $(SECCOMP_BPF)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(RUNTIME_LIBS) $(SECCOMP_LIBS) $(CTL_LIBS) $(ACT_LIBS) -lm

$(BUILD)/tests/store-conformance: $(call obj,$(STORE_TEST_SRCS) tests/unit/fork_run.c $(CTL_LIB_SRCS) $(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(CTL_LIBS)

$(BUILD)/functions/%/main: functions/%/main.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) $< -o $@
	@chmod 0755 $@

$(BUILD)/functions/%/manifest.yaml: functions/%/manifest.yaml
	@mkdir -p $(dir $@)
	cp $< $@

# Hostile boxes: small programs that run inside the jail and try to escape.
$(BUILD)/tests/boxes/%: tests/security/boxes/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O1 -w $< -o $@ -lpthread
	@chmod 0755 $@

# Zygotes (runtime/zygote*.c): the shared object a python3 zygote loads
# with ctypes, built from zygote_child.c alone (never sanitized: python
# loads it), and linked into the runtime with the driver as data.
ZYGOTE_SO   := $(BUILD)/gen/fnbox-zygote.so
ZYGOTE_BLOB := $(BUILD)/obj/gen/zygote_blob.o
$(ZYGOTE_SO): runtime/zygote_child.c runtime/zygote_child.h runtime/jail_child.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -I. -O2 -fPIC -shared -fvisibility=hidden -fstack-protector-strong -Wl,-z,relro,-z,now $< -o $@
# the init of a python3 zygote's children: static, so that it runs from a
# memfd in any jail, without a C library (its own _start and system
# calls: it runs once per request), and never sanitized
ZYGOTE_INIT := $(BUILD)/gen/fnbox-zygote-init
$(ZYGOTE_INIT): runtime/zygote_init.c runtime/jail_child.h
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(WARN) -I. -O2 -static -nostdlib -ffreestanding -fno-stack-protector -fno-pie -no-pie $< -o $@
$(ZYGOTE_BLOB): runtime/zygote_blob.S $(ZYGOTE_SO) $(ZYGOTE_INIT) runtime/zygote_driver.py $(wildcard runtime/box/*)
	@mkdir -p $(dir $@)
	$(CC) -c -Wa,-I$(BUILD)/gen -Wa,-Iruntime $< -o $@
$(BUILD)/bin/fnbox-runtime $(UNIT_BIN): $(ZYGOTE_BLOB)
# the hostile suite's way into zygotes (tests/security/run.py --path zygote)
ZYGOTE_RUN  := $(BUILD)/tests/zygote-run
$(ZYGOTE_RUN): $(call obj,tests/security/zygote_run.c runtime/jail.c runtime/jail_child.c runtime/jail_config.c \
               runtime/jail_request.c runtime/jail_adopt.c runtime/cgroup.c runtime/cgroup_devices.c runtime/zygote.c runtime/zygote_child.c \
               runtime/result_json.c $(LIB_SRCS)) $(SECCOMP_BPF) $(ZYGOTE_BLOB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -o $@ $(RUNTIME_LIBS)
all test-security: $(ZYGOTE_RUN)

deps:
	@./tests/deps.sh

test: deps
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-store
	$(MAKE) test-integration
	$(MAKE) test-security
	$(MAKE) test-dataplane
	$(MAKE) test-gateway
	$(MAKE) test-skills
	$(MAKE) test-llm
	$(MAKE) fuzz-smoke
	$(MAKE) check-sanitize

# clone_child.sh reads the plain build's objects: a sanitized one's calls
# into its runtime are the instrumentation's, not the code's.
test-unit: $(UNIT_BIN)
	$(UNIT_BIN)
ifneq ($(SANITIZE),1)
	./tests/unit/clone_child.sh $(BUILD)
endif

# The same conformance suite against SQLite and against a PostgreSQL server
# that the script starts in a temporary folder (and tears down).
test-store: $(STORE_TEST_BIN)
	@if [ -n "$(STORE_TEST_BIN)" ]; then ./tests/store/run.sh $(BUILD); fi

# The real daemons and the CLI, on ports the kernel picks.
test-integration: all
	@if [ -f tests/integration/run.py ]; then python3 tests/integration/run.py --build $(BUILD); fi

# The whole platform: controller, activator and runtimes (several nodes),
# deploy, call, scale from zero and back, faults.
test-dataplane: all
	@if [ -f tests/dataplane/run.py ]; then python3 tests/dataplane/run.py --build $(BUILD); fi

# functions/llm-local, a real local LLM (node-llama-cpp) with a tiny random
# model, deployed from zero on the whole platform (tests/llm/run.py).
test-llm: all
	python3 tests/llm/run.py --build $(BUILD)

# The LLM gateway: an activator with --gateway-config and scripted
# OpenAI-compatible upstreams (tests/gateway/upstream.py).
test-gateway: all
	python3 tests/gateway/run.py --build $(BUILD)

# The skill library: generate, verify in fresh jails, promote, search, with
# a scripted model (tests/skills/run.py).
test-skills: all
	python3 tests/skills/run.py --build $(BUILD)

# libFuzzer targets (clang): `make fuzz` runs each for FUZZ_TIME seconds;
# fuzz-smoke is the short run inside `make test`.
FUZZ_TIME ?= 60
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_LINK = clang -std=gnu11 -g -O1 -I. $(PKG_CFLAGS) -fsanitize=fuzzer,address,undefined $^ -o $@ $(SPEC_LIBS)
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(SPEC_LIB_SRCS) $(LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_LINK)
# the activator's request parser (pure) and its error table
$(BUILD)/fuzz/fuzz_httpreq: tests/fuzz/fuzz_httpreq.c activator/httpreq.c activator/outcome.c $(LIB_SRCS)
	@mkdir -p $(dir $@)
	$(FUZZ_LINK)

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do ./tests/fuzz/run.sh $$f $(FUZZ_TIME) || exit 1; done

fuzz-smoke: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do ./tests/fuzz/run.sh $$f 10 || exit 1; done

test-security: $(PROGRAMS) $(BOXES)
	python3 tests/security/run.py --build $(BUILD)

# ASan + UBSan build of everything, then the unit, store, integration, jail and data-plane suites on it.
check-sanitize:
	$(MAKE) SANITIZE=1 all
	$(MAKE) SANITIZE=1 test-unit
	$(MAKE) SANITIZE=1 test-store
	ASAN_OPTIONS=detect_leaks=1 python3 tests/integration/run.py --build $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1 python3 tests/security/run.py --build $(ASAN_BUILD) --quick
	ASAN_OPTIONS=detect_leaks=1 python3 tests/dataplane/run.py --build $(ASAN_BUILD)
	ASAN_OPTIONS=detect_leaks=1 python3 tests/skills/run.py --build $(ASAN_BUILD)

bench: deps all
	python3 tests/bench/jail_bench.py --build $(BUILD)
	python3 tests/bench/control_bench.py --build $(BUILD)
	@if [ -f tests/bench/data_bench.py ]; then python3 tests/bench/data_bench.py --build $(BUILD); fi
	@if [ -f tests/bench/gateway_bench.py ]; then python3 tests/bench/gateway_bench.py --build $(BUILD); fi
	@if [ -f tests/bench/llm_bench.py ]; then python3 tests/bench/llm_bench.py --build $(BUILD); fi
	@if [ -f tests/bench/skills_bench.py ]; then python3 tests/bench/skills_bench.py --build $(BUILD); fi
	@if [ -f tests/bench/skills_verify_bench.py ]; then python3 tests/bench/skills_verify_bench.py --build $(BUILD); fi

# The platform on this machine, in the foreground (Ctrl-C stops it); flags
# for `fnbox up` go in RUN_ARGS, e.g. make run RUN_ARGS="--label zone=a".
run: deps all
	@exec $(BUILD)/bin/fnbox up $(RUN_ARGS)

install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -D -m 0644 cli/fnbox.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/fnbox

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
