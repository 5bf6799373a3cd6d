# Shared settings for the qemu-mktme scripts.  Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The QEMU line: MKTME_QEMU=10.0 (the default) or 10.2.  Each line has its
# pinned Debian source package and its own build directories; the default
# line's are the unsuffixed ones (build/qemu/, build/upstream/, ...).
QEMU_LINE=${MKTME_QEMU:-10.0}
case "$QEMU_LINE" in
    10.0)
        QEMU_VERSION=10.0.13
        QEMU_DEB_VERSION=1:10.0.13+ds-0+deb13u1
        # sha256 of qemu_10.0.13+ds.orig.tar.xz as Debian ships it (it is
        # also listed in the .dsc, which dpkg-source checks again on
        # extraction), and of the .dsc itself (taken from Debian's pool when
        # apt no longer lists the version).
        QEMU_DEB_ORIG_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
        QEMU_DEB_DSC_SHA256=a426c892e5369058c3423816c8625bc8010bb5a58ece57261f62b64ee4d765ad
        QEMU_LINE_SUFFIX=
        ;;
    10.2)
        QEMU_VERSION=10.2.2
        QEMU_DEB_VERSION=1:10.2.2+ds-1
        QEMU_DEB_ORIG_SHA256=be05230fe47a6937cd29f28f562932c8125f9c93c2a82c625198f7a4aa601dfb
        QEMU_DEB_DSC_SHA256=f1684b3aa5ec500c3389d346c6501dee45041ea91656c6556d4da9023b7987dd
        QEMU_LINE_SUFFIX=-10.2
        ;;
    *)
        echo "error: MKTME_QEMU=$QEMU_LINE: the QEMU lines are 10.0 (default) and 10.2" >&2
        exit 1
        ;;
esac
export MKTME_QEMU=$QEMU_LINE
# The hooks of the line: PATCHES/series, applied in order.
PATCHES=$TOP/patches/$QEMU_LINE
QEMU_DEB_POOL=http://deb.debian.org/debian/pool/main/q/qemu
QEMU_UPSTREAM_URL=https://download.qemu.org/qemu-$QEMU_VERSION.tar.xz
CACHE=${MKTME_CACHE:-/var/cache/qemu-mktme}
BUILD=${MKTME_BUILD:-$TOP/build}
# The Debian system interpreter: QEMU's mkvenv must see the system meson.
PYTHON=${MKTME_PYTHON:-/usr/bin/python3}

die() { echo "error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }

# The sanitizers' settings for an ASan/UBSan QEMU (scripts/build
# --sanitize): any report aborts it.  allow_user_segv_handler: the memory
# controller's fast path handles SIGSEGV on guest RAM it protects
# (mktme-shadow.c) and chains the rest.
ASAN_OPTIONS_MKTME=detect_leaks=0:halt_on_error=1:abort_on_error=1:allow_user_segv_handler=1
UBSAN_OPTIONS_MKTME=halt_on_error=1:abort_on_error=1:print_stacktrace=1
# asan_env CMD...: run CMD with those settings
asan_env() {
    ASAN_OPTIONS=$ASAN_OPTIONS_MKTME UBSAN_OPTIONS=$UBSAN_OPTIONS_MKTME "$@"
}
