#!/usr/bin/env bash
# Images of the host testbed, from what the project builds and Debian's busybox-static:
#   $SWIFTVTD_CACHE/host/l2.cpio.gz   L2's initramfs: busybox, l2-init.sh, edu_vfio (static)
#   $SWIFTVTD_CACHE/host/l1.cpio.gz   L1's initramfs: busybox, l1-init.sh, the project's QEMU with
#                                     the shared libraries it loads, its firmware, libSwiftVTd.so,
#                                     the ioctl counter, and L2's kernel and initramfs
# L1 and L2 both boot the host kernel (scripts/build-host-kernel.sh).
# Usage: build-images.sh QEMU LIBRARY KERNEL
# With SWIFTVTD_HOST_PERF=1 (host.mk sets it for --profile), L1 also gets Debian's perf
# (package linux-perf) with its shared libraries, for run-host-tests.py --profile.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$repo/scripts/lib/common.sh"
qemu="${1:?usage: build-images.sh QEMU LIBRARY KERNEL}"
library="${2:?}"; kernel="${3:?}"

ensure_debs dpkg-dev cpio gzip gcc libc6-dev
out="$SWIFTVTD_CACHE/host"
mkdir -p "$out/debs"
apt_local bookworm-bin "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR bookworm main"
bdeb=$(ls "$out/debs"/busybox-static_*.deb 2>/dev/null | head -1 || true)
if [ -z "$bdeb" ]; then
    (cd "$out/debs" && apt-get "${APT_OPTS[@]}" -qq download busybox-static) >&2
    bdeb=$(ls "$out/debs"/busybox-static_*.deb | head -1)
fi

work=$(mktemp -d "$out/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$bdeb" "$work/busybox"

# Copies FILE to ROOT at DEST, with every shared library it needs (ldd's answer) at the same
# path as here. DEST is fixed: L1 mounts a tmpfs on /tmp, which would hide a copy kept at a
# build path under /tmp.
with_libs() {
    local root="$1" file="$2" dest="$3" lib
    mkdir -p "$root$(dirname "$dest")"
    cp -L "$file" "$root$dest"
    for lib in $(ldd "$file" | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p; s/^\s*\(\/[^ ]*\) .*/\1/p'); do
        [ -e "$root$lib" ] && continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
}

newroot() {
    mkdir -p "$1"/{bin,dev,proc,sys,tmp}
    cp "$work/busybox/bin/busybox" "$1/bin/busybox"
}

# L2
l2="$work/l2"; newroot "$l2"
cp "$here/l2-init.sh" "$l2/init"; chmod 755 "$l2/init"
gcc -O2 -Wall -Wextra -Werror -static -o "$l2/bin/edu_vfio" "$here/edu_vfio.c"
(cd "$l2" && find . | sort | cpio -o -H newc --quiet --owner=0:0) | gzip -1 > "$out/l2.cpio.gz"

# L1
l1="$work/l1"; newroot "$l1"
cp "$here/l1-init.sh" "$l1/init"; chmod 755 "$l1/init"
mkdir -p "$l1/opt/qemu" "$l1/opt/swiftvtd" "$l1/usr/share/qemu" "$l1/l2"
with_libs "$l1" "$qemu" /opt/qemu/qemu-system-x86_64
with_libs "$l1" "$library" /opt/swiftvtd/libSwiftVTd.so
gcc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$work/libioctlcount.so" "$here/ioctl_count.c" -ldl
gcc -O2 -Wall -Wextra -Werror -DREPORT -o "$l1/opt/swiftvtd/ioctl_count" "$here/ioctl_count.c"
cp "$work/libioctlcount.so" "$l1/opt/swiftvtd/"
if [ "${SWIFTVTD_HOST_PERF:-0}" = 1 ]; then
    ensure_debs linux-perf
    # Debian's /usr/bin/perf is the binary itself (older releases had a perf_X.Y behind a
    # wrapper script); only record and report run in L1, which need no helper scripts.
    perf=/usr/bin/perf
    [ "$(head -c 4 "$perf" 2>/dev/null | tail -c 3)" = ELF ] || perf=$(ls /usr/bin/perf_[0-9]* 2>/dev/null | sort -V | tail -1)
    [ -n "$perf" ] || die "no perf binary from linux-perf"
    with_libs "$l1" "$perf" /bin/perf
fi
for f in qboot.rom linuxboot_dma.bin kvmvapic.bin; do
    cp "/usr/share/qemu/$f" "$l1/usr/share/qemu/$f"
done
cp "$kernel" "$l1/l2/bzImage"
cp "$out/l2.cpio.gz" "$l1/l2/initramfs.cpio.gz"
(cd "$l1" && find . | sort | cpio -o -H newc --quiet --owner=0:0) | gzip -1 > "$out/l1.cpio.gz.tmp"
mv "$out/l1.cpio.gz.tmp" "$out/l1.cpio.gz"
log "host images: $(du -h "$out/l1.cpio.gz" | cut -f1) L1 initramfs, $(du -h "$out/l2.cpio.gz" | cut -f1) L2"
echo "$out"
