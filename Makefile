# libRestore: build, install and test the C library (README.md, "Using Restore from C").
#
#   make install PREFIX=DIR   release build; DIR/include/restore.h, DIR/lib/libRestore.so
#                             (exporting only restore.h's functions), DIR/lib/pkgconfig/restore.pc
#   make uninstall PREFIX=DIR
#   make check                builds the C tests against the build folder and runs them
#
# libRestore.so needs the Swift runtime (libswiftCore, Foundation, Dispatch, …). SwiftPM
# links it with RUNPATH "<toolchain>/usr/lib/swift/linux:$ORIGIN", so on the machine that
# built it nothing else is needed. To run it where no toolchain is installed, use
# `make install BUNDLE_SWIFT_RUNTIME=1`, which copies those libraries next to
# libRestore.so, where $ORIGIN finds them.

PREFIX ?= /usr/local
SWIFT ?= swift
VERSION := 0.1.0
BUNDLE_SWIFT_RUNTIME ?= 0

RELEASE_DIR = $(shell $(SWIFT) build -c release --show-bin-path)
HEADER := Sources/CRestore/include/restore.h
# The linker version script that exports exactly restore.h's functions (made from it by
# scripts/library-exports.sh). It goes on the build command because SwiftPM sets linker
# flags only through unsafeFlags, which Package.swift does not use (see that script).
EXPORTS_MAP := .build/restore-exports.map

.PHONY: all library install uninstall check

all: library

$(EXPORTS_MAP): $(HEADER) scripts/library-exports.sh
	mkdir -p $(dir $@)
	scripts/library-exports.sh version-script > $@

library: $(EXPORTS_MAP)
	$(SWIFT) build -c release --product Restore -Xlinker --version-script=$(abspath $(EXPORTS_MAP))

install: library
	install -d "$(PREFIX)/include" "$(PREFIX)/lib/pkgconfig"
	install -m 644 $(HEADER) "$(PREFIX)/include/restore.h"
	install -m 755 "$(RELEASE_DIR)/libRestore.so" "$(PREFIX)/lib/libRestore.so"
	sed -e 's|@PREFIX@|$(abspath $(PREFIX))|' -e 's|@VERSION@|$(VERSION)|' restore.pc.in \
		> "$(PREFIX)/lib/pkgconfig/restore.pc"
ifeq ($(BUNDLE_SWIFT_RUNTIME),1)
	swift_lib_dir=$$(dirname "$$(ldd "$(RELEASE_DIR)/libRestore.so" | awk '/libswiftCore.so/ { print $$3 }')") && \
	ldd "$(RELEASE_DIR)/libRestore.so" | awk '{ print $$3 }' | grep "^$$swift_lib_dir/" | \
		tee "$(PREFIX)/lib/restore-swift-runtime.txt" | xargs -I{} install -m 644 {} "$(PREFIX)/lib/"
endif

uninstall:
	if [ -f "$(PREFIX)/lib/restore-swift-runtime.txt" ]; then \
		xargs -I{} basename {} < "$(PREFIX)/lib/restore-swift-runtime.txt" | sed 's|^|$(PREFIX)/lib/|' | xargs rm -f; \
		rm -f "$(PREFIX)/lib/restore-swift-runtime.txt"; \
	fi
	rm -f "$(PREFIX)/include/restore.h" "$(PREFIX)/lib/libRestore.so" "$(PREFIX)/lib/pkgconfig/restore.pc"

# The C tests only (scripts/test-capi.sh without the example and Python parts): they
# need a converted model, which that script makes from the dncnn fixture.
check:
	scripts/test-capi.sh --c-only
