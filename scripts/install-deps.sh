#!/usr/bin/env bash
# Debian packages the library's own tests need (the C ABI test and the fuzz harnesses
# link GLib/GModule). QEMU's and the guest images' needs are installed by their own
# scripts. Installs only what is missing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib/common.sh"
ensure_debs libglib2.0-dev pkg-config gcc make python3
