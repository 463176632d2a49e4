# Shared helpers for the project's shell scripts. Source it; it defines functions only.
#
# SWIFTVTD_CACHE holds everything big and downloaded (QEMU source and build, kernels, the
# Python venv, guest images). It lives outside the work tree so clones stay small and
# rebuilds are incremental: /var/cache/swiftvtd, or the per-user cache when that is not
# writable (cache-dir.sh says which).

SWIFTVTD_CACHE="$("$(dirname "${BASH_SOURCE[0]}")/../cache-dir.sh")"
export SWIFTVTD_CACHE

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Run apt-get/apt-cache as root, or through sudo when we are not root.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# Install Debian packages that are not installed yet (one apt-get call, only when needed).
# With all of them installed it does nothing and needs no root; otherwise it names them and
# needs root or password-less sudo, else it stops with the command to run.
ensure_debs() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "missing Debian packages: ${missing[*]}"
    if [ "$(id -u)" != 0 ] && ! sudo -n true 2>/dev/null; then
        die "installing them needs root; run: sudo apt-get install --no-install-recommends ${missing[*]}"
    fi
    log "installing them with apt-get"
    as_root apt-get update -qq || true
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# A project-local apt configuration for one suite: the machine's own sources are not read
# or changed. Usage: apt_local NAME "deb-or-deb-src-line" ; then "${APT_OPTS[@]}" holds the
# -o options for apt-get/apt-cache. The index is refreshed once a day at most.
apt_local() {
    local name="$1" line="$2" dir="$SWIFTVTD_CACHE/apt/$1"
    mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
    if [ ! -f "$dir/sources.list" ] || [ "$(cat "$dir/sources.list")" != "$line" ]; then
        printf '%s\n' "$line" > "$dir/sources.list"
        rm -f "$dir/stamp"
    fi
    APT_OPTS=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
              -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
              -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    if [ -z "$(find "$dir/stamp" -mmin -1440 2>/dev/null)" ]; then
        log "apt ($name): updating index"
        apt-get "${APT_OPTS[@]}" -qq update || die "apt update for $name failed"
        touch "$dir/stamp"
    fi
}

# Debian's archive signing keys: debian-archive-keyring on bookworm already carries trixie's.
DEBIAN_KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
DEBIAN_MIRROR="${SWIFTVTD_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
