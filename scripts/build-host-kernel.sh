#!/usr/bin/env bash
# Build the host testbed's kernel: Debian's linux-source (trixie-backports, 7.3) configured
# with x86_64_defconfig + kvm_guest.config + Tests/host/kernel.config (VT-d in scalable
# mode, iommufd, VFIO with the device cdev, no modules). Every Debian kernel image is built
# without CONFIG_IOMMUFD, so the testbed's L1 (and L2) run this one.
#
# Cached under $SWIFTVTD_CACHE/host-kernel/<key>/bzImage, the key being the source
# package version and the config fragment; a hit costs nothing. Prints the bzImage's path
# on the last line of stdout.
# Environment: SWIFTVTD_CACHE, SWIFTVTD_KERNEL_SOURCE (linux-source-7.3 by default),
# SWIFTVTD_JOBS (make -j, default nproc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
. "$here/lib/common.sh"

package="${SWIFTVTD_KERNEL_SOURCE:-linux-source-7.3}"
fragment="$repo/Tests/host/kernel.config"
trim="$repo/Tests/host/kernel-trim.config"
kroot="$SWIFTVTD_CACHE/host-kernel"
mkdir -p "$kroot/debs"

apt_local trixie-backports-bin \
    "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR trixie-backports main"
version=$(apt-cache "${APT_OPTS[@]}" policy "$package" | sed -n 's/^ *Candidate: //p')
[ -n "$version" ] && [ "$version" != "(none)" ] || die "trixie-backports has no $package"
key=$( { echo "$package $version"; cat "$fragment" "$trim"; } | sha256sum | cut -c1-16)
out="$kroot/$key"
if [ -f "$out/bzImage" ]; then
    log "host kernel: cached ($package $version, key $key)"
    echo "$out/bzImage"
    exit 0
fi

ensure_debs build-essential bc flex bison libelf-dev libssl-dev xz-utils cpio

deb=$(ls "$kroot/debs/${package}_${version#*:}_"*.deb 2>/dev/null | head -1 || true)
if [ -z "$deb" ]; then
    log "downloading $package $version"
    (cd "$kroot/debs" && apt-get "${APT_OPTS[@]}" -qq download "$package=$version") >&2
    deb=$(ls "$kroot/debs/${package}_${version#*:}_"*.deb | head -1)
fi

# The package holds /usr/src/linux-source-X.Y.tar.xz; unpack it once per version.
src="$kroot/src-${version#*:}"
if [ ! -f "$src/.swiftvtd-extracted" ]; then
    log "unpacking $package $version"
    rm -rf "$src" "$kroot/unpack"
    mkdir -p "$kroot/unpack" "$src"
    dpkg-deb -x "$deb" "$kroot/unpack"
    tar -xJf "$kroot/unpack"/usr/src/linux-source-*.tar.xz -C "$src" --strip-components=1
    rm -rf "$kroot/unpack"
    touch "$src/.swiftvtd-extracted"
fi

# Out-of-tree build per key, so a config change never dirties another build. The trim
# fragment goes before the required one, so a required option always wins.
obj="$kroot/build-$key"
mkdir -p "$obj"
log "configuring the host kernel in $obj"
make -s -C "$src" O="$obj" x86_64_defconfig >&2
"$src/scripts/kconfig/merge_config.sh" -m -O "$obj" "$obj/.config" \
    "$src/kernel/configs/kvm_guest.config" "$trim" "$fragment" >/dev/null
make -s -C "$src" O="$obj" olddefconfig >&2
# Every line of the fragment must have survived olddefconfig: a dropped one means a
# dependency is missing, and the testbed would boot a kernel without it.
while IFS= read -r line; do
    case "$line" in ''|'#'*) continue ;; esac
    name="${line%%=*}"; want="${line#*=}"
    if [ "$want" = n ]; then
        grep -qx "$name=[ym]" "$obj/.config" && die "host kernel: $name is still set"
    else
        grep -qx "$line" "$obj/.config" || die "host kernel: $line did not stick (see $obj/.config)"
    fi
done < "$fragment"

log "building the host kernel (make -j${SWIFTVTD_JOBS:-$(nproc)} bzImage; about 10 minutes on 2 cores)"
start=$(date +%s)
make -C "$src" O="$obj" -j"${SWIFTVTD_JOBS:-$(nproc)}" bzImage > "$kroot/build-$key.log" 2>&1 \
    || { tail -40 "$kroot/build-$key.log" >&2; die "host kernel build failed (log: $kroot/build-$key.log)"; }
log "host kernel build took $(( $(date +%s) - start )) s"
mkdir -p "$out"
cp "$obj/arch/x86/boot/bzImage" "$out/bzImage.tmp"
cp "$obj/.config" "$out/config"
echo "$package $version" > "$out/source"
mv "$out/bzImage.tmp" "$out/bzImage"
# The object tree is large and only the image is needed again.
rm -rf "$obj"
echo "$out/bzImage"
