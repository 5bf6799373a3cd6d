# Shared settings for the qemu-mktme scripts.  Source it; do not run it.
# shellcheck shell=bash

set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
QEMU_VERSION=10.0.13
QEMU_DEB_VERSION=1:10.0.13+ds-0+deb13u1
# sha256 of qemu_10.0.13+ds.orig.tar.xz as Debian ships it (it is also
# listed in the .dsc, which dpkg-source checks again on extraction).
QEMU_DEB_ORIG_SHA256=6a0888e806c2ffc0c5f0733e974f9aea55491950d3c47c98669c8b236dde59ae
QEMU_UPSTREAM_URL=https://download.qemu.org/qemu-$QEMU_VERSION.tar.xz
CACHE=${MKTME_CACHE:-/var/cache/qemu-mktme}
BUILD=${MKTME_BUILD:-$TOP/build}
# The Debian system interpreter: QEMU's mkvenv must see the system meson.
PYTHON=${MKTME_PYTHON:-/usr/bin/python3}

die() { echo "error: $*" >&2; exit 1; }
log() { echo "== $*" >&2; }
