#!/usr/bin/env bash
# Prints the cache directory for big downloads and builds: $SWIFTVTD_CACHE when set, else
# /var/cache/swiftvtd when it is (or can be made) writable, else the per-user cache
# ($XDG_CACHE_HOME/swiftvtd, ~/.cache/swiftvtd), so the build works without root.
set -euo pipefail
if [ -n "${SWIFTVTD_CACHE:-}" ]; then
    echo "$SWIFTVTD_CACHE"
elif mkdir -p /var/cache/swiftvtd 2>/dev/null && [ -w /var/cache/swiftvtd ]; then
    echo /var/cache/swiftvtd
else
    echo "${XDG_CACHE_HOME:-$HOME/.cache}/swiftvtd"
fi
