# mlboot: build, test, demo, benchmark and install.
#
#   make                 build $(BUILD)/mlboot
#   make check           install missing test dependencies, build, run all tests
#   make check SANITIZE=1  the same with AddressSanitizer and UBSan (no recover)
#   make demo            start the testbed, build a bundle, install, report
#   make bench           benchmarks, each printed as a ratio against a peer tool
#   make fuzz            build the libFuzzer targets with clang and run each briefly
#   make install         PREFIX=/usr/local DESTDIR=
#
# BUILD selects the output folder, so several builds can share one tree.

VERSION   := $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
DATADIR   ?= $(PREFIX)/share
MANDIR    ?= $(DATADIR)/man
DOCDIR    ?= $(DATADIR)/doc/mlboot
# systemd reads units from /lib/systemd/system (PREFIX=/usr, where Debian
# packages put them) and /usr/local/lib/systemd/system (PREFIX=/usr/local).
# Under any other PREFIX, systemd finds the units only when linked from
# /etc/systemd/system (systemctl link).
ifeq ($(PREFIX),/usr)
UNITDIR   ?= /lib/systemd/system
else
UNITDIR   ?= $(PREFIX)/lib/systemd/system
endif
SYSCONFDIR ?= /etc
MOTDDIR   ?= $(SYSCONFDIR)/update-motd.d
LIBEXECDIR ?= $(PREFIX)/lib/mlboot
DESTDIR   ?=

# V=1 prints whole compiler command lines.
Q         := $(if $(filter 1,$(V)),,@)
SANITIZE  ?=
DEVELOPER ?= 1
CC        ?= cc
ifeq ($(SANITIZE),1)
BUILD     ?= build-sanitize
else
BUILD     ?= build
endif

PACKAGES  := libcurl libarchive yaml-0.1 libssh2 openssl libzstd
PKG_CFLAGS := $(shell pkg-config --cflags $(PACKAGES) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PACKAGES) 2>/dev/null || echo -lcurl -larchive -lyaml -lssh2 -lssl -lcrypto -lzstd)

WARNINGS  := -Wall -Wextra -Wshadow -Wformat=2 -Wstrict-prototypes \
             -Wmissing-prototypes -Wvla -Wwrite-strings
ifeq ($(DEVELOPER),1)
WARNINGS  += -Werror
endif

ifeq ($(SANITIZE),1)
OPTIMIZE  := -O1 -g -fno-omit-frame-pointer \
             -fsanitize=address,undefined -fno-sanitize-recover=all
LINK_SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=all
else
OPTIMIZE  := -O2 -g -D_FORTIFY_SOURCE=2
LINK_SANITIZE :=
endif

BUILD_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPTIMIZE) $(WARNINGS) \
                -fstack-protector-strong -fPIE -pthread \
                -Icommon -Inode -Iimages -Iairgap -Ibootstrap $(PKG_CFLAGS) $(CFLAGS)
BUILD_LDFLAGS := -pie -Wl,-z,relro,-z,now -pthread $(LINK_SANITIZE) $(LDFLAGS)
DEFINES   := -DMLBOOT_VERSION='"$(VERSION)"' \
             -DMLBOOT_BUILD_FLAGS='"$(strip $(OPTIMIZE) -fstack-protector-strong -fPIE -pie -Wl,-z,relro,-z,now)"'

MODULES   := common node images airgap bootstrap
LIB_SRC   := $(filter-out bootstrap/main.c,$(wildcard $(addsuffix /*.c,$(MODULES))))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
# Programs the integration tests drive modules with, before commands use them.
TEST_TOOLS := $(BUILD)/tests/node-probe

.PHONY: all check unit integration deps demo bench fuzz install clean
all: $(BUILD)/mlboot

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BUILD_CFLAGS) $(DEFINES) -MMD -MP -c $< -o $@

$(BUILD)/libmlboot.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)ar rcs $@ $^

$(BUILD)/mlboot: $(BUILD)/bootstrap/main.o $(BUILD)/libmlboot.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(BUILD_LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmlboot.a
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(BUILD_CFLAGS) $(DEFINES) $(BUILD_LDFLAGS) -o $@ $< $(BUILD)/libmlboot.a $(PKG_LIBS) -lcmocka

deps:
	@tests/install-deps

unit: $(UNIT_BIN)
	@BUILD=$(BUILD) tests/run unit

integration: $(BUILD)/mlboot $(TEST_TOOLS)
	@BUILD=$(BUILD) tests/run integration

# check installs what is missing first, then builds, then runs every test.
check: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN) $(TEST_TOOLS)
	@BUILD=$(BUILD) tests/run all

demo: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/integration/demo

bench: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) tests/bench/run

fuzz: deps
	@BUILD=build-fuzz tests/fuzz/run $(FUZZ_SRC)

# Paths substituted into the units, mlboot.env and the scripts.
SUBSTITUTE := sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
                  -e 's|@DOCDIR@|$(DOCDIR)|g' -e 's|@LIBEXECDIR@|$(LIBEXECDIR)|g'

# install copies files only: it enables no unit. mlboot.env is a
# configuration file, so an existing one is kept.
install: $(BUILD)/mlboot
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man1 \
	           $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSCONFDIR)/mlboot $(DESTDIR)$(MOTDDIR) \
	           $(DESTDIR)$(LIBEXECDIR)
	install -m 0755 $(BUILD)/mlboot $(DESTDIR)$(BINDIR)/mlboot
	$(SUBSTITUTE) systemd/mlboot-check-report > $(DESTDIR)$(LIBEXECDIR)/mlboot-check-report
	chmod 0755 $(DESTDIR)$(LIBEXECDIR)/mlboot-check-report
	for unit in systemd/*.service systemd/*.timer systemd/*.path; do \
		[ -e "$$unit" ] || continue; \
		$(SUBSTITUTE) "$$unit" > $(DESTDIR)$(UNITDIR)/$$(basename "$$unit") && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$(basename "$$unit") || exit 1; \
	done
	if [ -e systemd/mlboot.env ] && [ ! -e $(DESTDIR)$(SYSCONFDIR)/mlboot/mlboot.env ]; then \
		$(SUBSTITUTE) systemd/mlboot.env > $(DESTDIR)$(SYSCONFDIR)/mlboot/mlboot.env && \
		chmod 0644 $(DESTDIR)$(SYSCONFDIR)/mlboot/mlboot.env; \
	fi
	$(SUBSTITUTE) systemd/update-motd-mlboot > $(DESTDIR)$(MOTDDIR)/60-mlboot
	chmod 0755 $(DESTDIR)$(MOTDDIR)/60-mlboot
	[ ! -e docs/mlboot.1 ] || install -m 0644 docs/mlboot.1 $(DESTDIR)$(MANDIR)/man1/mlboot.1
	install -m 0644 README.md docs/*.md docs/report-schema.json $(DESTDIR)$(DOCDIR)/
	[ ! -e docs/mlboot.yaml.example ] || install -m 0644 docs/mlboot.yaml.example $(DESTDIR)$(DOCDIR)/

# node-probe drives the node module from tests/integration/test_ssh_*.sh. It
# links only the node and common modules, which are all it uses.
NODE_PROBE_OBJ := $(filter $(BUILD)/common/% $(BUILD)/node/%,$(LIB_OBJ))
$(BUILD)/tests/node-probe: tests/integration/node-probe.c $(NODE_PROBE_OBJ)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	$(Q)$(CC) $(BUILD_CFLAGS) $(DEFINES) $(BUILD_LDFLAGS) -o $@ $< $(NODE_PROBE_OBJ) $(PKG_LIBS)

clean:
	rm -rf build build-sanitize build-fuzz

-include $(LIB_OBJ:.o=.d) $(BUILD)/bootstrap/main.d
