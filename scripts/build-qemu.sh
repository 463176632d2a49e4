#!/usr/bin/env bash
# Build the project's QEMU: Debian 13's QEMU 10.0 source package, patched with qemu-glue/,
# x86_64-softmmu only. Everything lives under $SWIFTVTD_CACHE/qemu and is reused: the
# source is fetched once per Debian version, configure runs again only when the glue's
# configure inputs change, and ninja rebuilds only what changed.
#
# Prints the path of the built binary on its last line of stdout.
# Environment: SWIFTVTD_CACHE (default /var/cache/swiftvtd), SWIFTVTD_QEMU_VERSION (pin a
# Debian version such as 1:10.0.13+ds-0+deb13u1; default: what trixie has now),
# SWIFTVTD_JOBS (ninja -j, default nproc).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
. "$here/lib/common.sh"

qroot="$SWIFTVTD_CACHE/qemu"
mkdir -p "$qroot"

# 1. Host tools and libraries, all from Debian.
ensure_debs build-essential dpkg-dev ninja-build pkg-config flex bison python3-venv \
    libglib2.0-dev libpixman-1-dev libslirp-dev zlib1g-dev \
    qemu-system-data seabios ipxe-qemu

# 2. meson >= 1.5 and pycotap from PyPI in a venv of our own (Debian 12's meson is 1.0).
venv="$SWIFTVTD_CACHE/venv"
if ! "$venv/bin/python3" -c 'import mesonbuild, pycotap' 2>/dev/null; then
    log "creating python venv with meson and pycotap in $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'meson>=1.5,<1.9' 'pycotap>=1.1'
fi

# 3. The source package, through a project-local apt configuration. A source already
# unpacked is reused without asking apt (SWIFTVTD_QEMU_REFRESH=1 looks for a newer one).
APT_OPTS=()
version="${SWIFTVTD_QEMU_VERSION:-}"
if [ -z "$version" ] && [ -z "${SWIFTVTD_QEMU_REFRESH:-}" ]; then
    version=$(cat "$qroot"/src-10.0.*/.swiftvtd-extracted 2>/dev/null | sort -V | tail -1 || true)
fi
if [ -z "$version" ]; then
    apt_local trixie-src "deb-src [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR trixie main"
    version=$(apt-cache "${APT_OPTS[@]}" showsrc qemu | sed -n 's/^Version: //p' | sort -V | tail -1)
fi
[ -n "$version" ] || die "trixie has no qemu source package in the index"
upstream="${version#*:}"; upstream="${upstream%%+*}"; upstream="${upstream%%-*}"
case "$upstream" in 10.0.*) ;; *) die "expected QEMU 10.0.x from trixie, got $version";; esac
src="$qroot/src-$upstream"
build="$qroot/build-$upstream"
if [ ! -f "$src/.swiftvtd-extracted" ]; then
    dl="$qroot/dl"; mkdir -p "$dl"
    log "fetching qemu $version source from trixie"
    [ ${#APT_OPTS[@]} -gt 0 ] || apt_local trixie-src "deb-src [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR trixie main"
    (cd "$dl" && apt-get "${APT_OPTS[@]}" -qq source --download-only "qemu=$version") \
        || die "apt-get source qemu=$version failed"
    dsc=$(ls "$dl"/qemu_"${version#*:}".dsc)
    rm -rf "$src" "$build"
    dpkg-source --no-check -x "$dsc" "$src" >/dev/null
    echo "$version" > "$src/.swiftvtd-extracted"
fi

# 4. The glue, and the library's default path: where swiftvtd.pc (make install) says it is,
# as QEMU finds its other dependencies. Rewritten only when it changes (no needless rebuild).
"$repo/qemu-glue/apply.sh" "$src" >&2
if pkg-config --exists swiftvtd 2>/dev/null; then
    default_library=$(pkg-config --variable=library swiftvtd)
    log "swift-vtd's default library: $default_library (swiftvtd.pc $(pkg-config --modversion swiftvtd))"
else
    default_library=/usr/local/lib/libSwiftVTd.so.1
    log "no swiftvtd.pc (make install, or PKG_CONFIG_PATH): default library $default_library"
fi
printf '#define SWIFT_VTD_DEFAULT_LIBRARY "%s"\n' "$default_library" > "$qroot/swiftvtd-default.h.new"
if cmp -s "$qroot/swiftvtd-default.h.new" "$src/hw/i386/swiftvtd-default.h"; then
    rm -f "$qroot/swiftvtd-default.h.new"
else
    mv "$qroot/swiftvtd-default.h.new" "$src/hw/i386/swiftvtd-default.h"
fi

# 5. Configure when the build dir is new or configure's inputs changed.
config_args=(
    --prefix="$qroot/install"
    --python="$venv/bin/python3"
    --target-list=x86_64-softmmu
    --without-default-features
    --without-default-devices
    --with-devices-x86_64=swiftvtd
    --enable-tcg --enable-slirp --enable-pixman
    --disable-docs --disable-tools --disable-guest-agent --disable-user
    --disable-werror --disable-install-blobs --disable-fdt
    --enable-trace-backends=log
)
sig=$(printf '%s\n' "$version" "${config_args[@]}" | sha256sum | cut -c1-16)
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$build/.swiftvtd-config" 2>/dev/null)" != "$sig" ]; then
    log "configuring QEMU in $build"
    rm -rf "$build"; mkdir -p "$build"
    (cd "$build" && "$src/configure" "${config_args[@]}") > "$qroot/configure.log" 2>&1 \
        || { tail -30 "$qroot/configure.log" >&2; die "configure failed (log: $qroot/configure.log)"; }
    echo "$sig" > "$build/.swiftvtd-config"
fi

# 6. Build (ninja re-runs meson by itself when a meson.build or Kconfig changed).
log "building QEMU (ninja in $build)"
start=$(date +%s)
ninja -C "$build" -j "${SWIFTVTD_JOBS:-$(nproc)}" qemu-system-x86_64 > "$qroot/ninja.log" 2>&1 \
    || { tail -40 "$qroot/ninja.log" >&2; die "QEMU build failed (log: $qroot/ninja.log)"; }
log "QEMU build step took $(( $(date +%s) - start )) s"

# A stable name for the binary and the firmware search path the tests use.
ln -sfn "$build" "$qroot/current"
echo "$build/qemu-system-x86_64"
