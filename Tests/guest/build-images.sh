#!/usr/bin/env bash
# Build the guest kernels and test initramfs from Debian packages that are downloaded and
# unpacked, never installed: bookworm's linux-image 6.1, trixie's linux-image 6.12 and
# busybox-static. Output, per kernel, in $SWIFTVTD_CACHE/guest/<6.1|6.12>/:
#   vmlinuz  initramfs.cpio.gz  release (the kernel's uname -r)
# Rebuilt only when the Debian package or the files in Tests/guest/ change.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
. "$repo/scripts/lib/common.sh"

ensure_debs dpkg-dev cpio zstd gzip
# The runner's libvirt boot: the session daemon with the QEMU driver, and virsh.
ensure_debs libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu

groot="$SWIFTVTD_CACHE/guest"
debs="$groot/debs"
mkdir -p "$debs"

# Modules the test needs, by name; their dependencies come from the kernel's modules.dep.
# Some of them are built in on one kernel and modular on the other: missing ones are fine.
WANTED_MODULES="virtio_pci virtio_blk virtio_net nvme e1000e af_packet"

# download SUITE PACKAGE -> prints the path of the .deb in $debs
download() {
    local suite="$1" pkg="$2" ver file
    apt_local "$suite-bin" "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR $suite main"
    ver=$(apt-cache "${APT_OPTS[@]}" policy "$pkg" | sed -n 's/^ *Candidate: //p')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || die "$suite has no package $pkg"
    file=$(ls "$debs/${pkg}_"*"${ver#*:}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$file" ]; then
        log "downloading $pkg $ver from $suite"
        (cd "$debs" && apt-get "${APT_OPTS[@]}" -qq download "$pkg=$ver") >&2
        file=$(ls "$debs/${pkg}_"*"${ver#*:}_"*.deb | head -1)
    fi
    echo "$file"
}

# kernel_package SUITE -> the versioned image package the linux-image-amd64 metapackage names
kernel_package() {
    apt_local "$1-bin" "deb [signed-by=$DEBIAN_KEYRING] $DEBIAN_MIRROR $1 main"
    apt-cache "${APT_OPTS[@]}" depends linux-image-amd64 \
        | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\).*/\1/p' | head -1
}

# Copy the wanted modules and everything they depend on into DEST, uncompressed (busybox
# insmod reads plain .ko only), and write DEST/order with the load order. Debian's packages
# carry no modules.dep (depmod makes it at install time), so the dependencies are read from
# each module's own .modinfo "depends=" string.
copy_modules() {
    python3 - "$@" <<'PY_EOF'
import gzip, lzma, os, re, subprocess, sys
moddir, dest, wanted = sys.argv[1], sys.argv[2], sys.argv[3:]
byname = {}
for root, _, files in os.walk(moddir):
    for f in files:
        if ".ko" in f:
            byname[f.split(".ko")[0].replace("-", "_")] = os.path.join(root, f)
def load(path):
    if path.endswith(".xz"): return lzma.open(path).read()
    if path.endswith(".gz"): return gzip.open(path).read()
    if path.endswith(".zst"): return subprocess.run(["zstd", "-qdc", path], check=True, capture_output=True).stdout
    return open(path, "rb").read()
order, seen = [], set()
def visit(name):
    if name in seen or name not in byname: return
    seen.add(name)
    data = load(byname[name])
    m = re.search(rb"(?:^|\0)depends=([^\0]*)\0", data)
    for dep in (m.group(1).decode().split(",") if m else []):
        if dep: visit(dep.replace("-", "_"))
    out = os.path.basename(byname[name]).split(".ko")[0] + ".ko"
    open(os.path.join(dest, out), "wb").write(data)
    order.append(out)
for w in wanted: visit(w)
open(os.path.join(dest, "order"), "w").write("".join(o + "\n" for o in order))
PY_EOF
}

build_one() {
    local name="$1" suite="$2" pkg kdeb bdeb out stamp unpack release mods
    pkg=$(kernel_package "$suite"); [ -n "$pkg" ] || die "no kernel package in $suite"
    kdeb=$(download "$suite" "$pkg")
    bdeb=$(download bookworm busybox-static)
    out="$groot/$name"; mkdir -p "$out"
    stamp=$( (basename "$kdeb"; basename "$bdeb"; cat "$here/init.sh" "$0") | sha256sum | cut -c1-16)
    if [ "$(cat "$out/stamp" 2>/dev/null)" = "$stamp" ] && [ -f "$out/initramfs.cpio.gz" ]; then
        log "guest $name is up to date ($(cat "$out/release"))"
        return
    fi
    log "building guest $name from $(basename "$kdeb")"
    unpack=$(mktemp -d "$groot/unpack.XXXXXX")
    dpkg-deb -x "$kdeb" "$unpack/k"
    dpkg-deb -x "$bdeb" "$unpack/b"
    release=$(ls "$unpack/k/lib/modules" 2>/dev/null || ls "$unpack/k/usr/lib/modules")
    mods="$unpack/k/lib/modules/$release"; [ -d "$mods" ] || mods="$unpack/k/usr/lib/modules/$release"
    cp "$unpack/k/boot/vmlinuz-$release" "$out/vmlinuz"

    local root="$unpack/root"
    mkdir -p "$root"/{bin,dev,proc,sys,tmp,mnt,modules}
    cp "$unpack/b/bin/busybox" "$root/bin/busybox"
    cp "$here/init.sh" "$root/init"; chmod 755 "$root/init"
    # Modules go flat into /modules, with /modules/order listing them in load order.
    copy_modules "$mods" "$root/modules" $WANTED_MODULES
    echo "$release" > "$root/release"
    (cd "$root" && find . | sort | cpio -o -H newc --quiet --owner=0:0) | gzip -1 > "$out/initramfs.cpio.gz"
    echo "$release" > "$out/release"
    echo "$stamp" > "$out/stamp"
    log "guest $name: kernel $release, modules: $(tr '\n' ' ' < "$root/modules/order")"
    rm -rf "$unpack"
}

targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(6.12 6.1)
for t in "${targets[@]}"; do
    case "$t" in
        6.12) build_one 6.12 trixie ;;
        6.1)  build_one 6.1 bookworm ;;
        *) die "unknown guest kernel $t (6.12 or 6.1)" ;;
    esac
done
