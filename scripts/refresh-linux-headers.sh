#!/usr/bin/env bash
# Refreshes CInterop/LinuxUAPI/linux-headers/ from one kernel release's own uAPI headers, as
# QEMU keeps linux-headers/: each file is the kernel's include/uapi one run through the
# kernel's scripts/headers_install.sh (what `make headers_install` does), nothing else.
# Usage: scripts/refresh-linux-headers.sh [KERNEL_SOURCE_DIR]
#   default: the newest source build-host-kernel.sh unpacked under $SWIFTVTD_CACHE/host-kernel.
# Afterwards build the LinuxUAPI target: linux_uapi.c checks the hand-written mirror against them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
. "$here/lib/common.sh"
src="${1:-$(ls -d "$SWIFTVTD_CACHE"/host-kernel/src-* 2>/dev/null | sort -V | tail -1)}"
[ -n "$src" ] && [ -f "$src/include/uapi/linux/iommufd.h" ] \
    || die "no kernel source (give its directory, or run scripts/build-host-kernel.sh first)"
out="$repo/CInterop/LinuxUAPI/linux-headers"
mkdir -p "$out/linux"
# headers_install.sh runs scripts/unifdef from the current directory: build the kernel's own.
tools=$(mktemp -d); trap 'rm -rf "$tools"' EXIT
mkdir -p "$tools/scripts"
cc -O2 -o "$tools/scripts/unifdef" "$src/scripts/unifdef.c"
# vfio.h needs a <linux/stddef.h> newer than some distributions ship (__counted_by).
for h in linux/iommufd.h linux/vfio.h linux/stddef.h; do
    (cd "$tools" && sh "$src/scripts/headers_install.sh" "$src/include/uapi/$h" "$out/$h")
done
version=$(make -s -C "$src" kernelversion)
printf 'Linux %s uAPI headers, from %s via scripts/headers_install.sh.\n' \
    "$version" "$(basename "$src")" > "$out/VERSION"
log "linux-headers: $(cat "$out/VERSION")"
