#!/usr/bin/env bash
# Apply qemu-glue/ to a QEMU source tree: copy the device files in and apply the patch
# series. Idempotent: running it again with the same glue changes nothing (mtimes stay, so
# ninja rebuilds nothing); a changed series is first reversed with the copy kept from the
# previous run, then the new one is applied.
# Usage: qemu-glue/apply.sh QEMU_SOURCE_DIR
set -euo pipefail
glue="$(cd "$(dirname "$0")" && pwd)"
src="${1:?usage: apply.sh QEMU_SOURCE_DIR}"
[ -f "$src/VERSION" ] || { echo "apply.sh: $src is not a QEMU source tree" >&2; exit 1; }
state="$src/.swiftvtd-applied"
mkdir -p "$state"

# Copy a file only when its content differs, so an unchanged glue keeps the old mtime.
install_if_changed() {
    if ! cmp -s "$1" "$2"; then
        mkdir -p "$(dirname "$2")"
        cp "$1" "$2"
        echo "apply.sh: updated ${2#"$src"/}"
    fi
}

# The patch series: every file in patches/, in name order.
new_series=$(cd "$glue/patches" && ls -1 -- *.patch 2>/dev/null | sort || true)
old_series=$(cd "$state" && ls -1 -- *.patch 2>/dev/null | sort || true)

same=yes
if [ "$new_series" != "$old_series" ]; then same=no; else
    for p in $new_series; do cmp -s "$glue/patches/$p" "$state/$p" || { same=no; break; }; done
fi

if [ "$same" = no ]; then
    # Reverse what an earlier run applied, newest first.
    for p in $(printf '%s\n' $old_series | sort -r); do
        echo "apply.sh: reversing $p"
        patch -d "$src" -p1 -R -s --no-backup-if-mismatch < "$state/$p"
        rm -f "$state/$p"
    done
    for p in $new_series; do
        echo "apply.sh: applying $p"
        patch -d "$src" -p1 -N -s --no-backup-if-mismatch < "$glue/patches/$p"
        cp "$glue/patches/$p" "$state/$p"
    done
fi

# Whole files owned by the glue.
install_if_changed "$glue/swift-vtd.c" "$src/hw/i386/swift-vtd.c"
# The library's public header: the one contract between the glue and libSwiftVTd.so.
install_if_changed "$glue/../CInterop/include/swiftvtd.h" "$src/hw/i386/swiftvtd.h"
install_if_changed "$glue/devices.mak" "$src/configs/devices/x86_64-softmmu/swiftvtd.mak"
exit 0
