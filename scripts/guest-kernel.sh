#!/usr/bin/env bash
# Fetch Debian's guest kernel without installing it on the host.
#
#   scripts/guest-kernel.sh [CACHE_DIR]      (default: .cache/kernel)
#
# linux-image-amd64 is a metapackage; the kernel lives in the versioned
# package it depends on (linux-image-6.1.0-NN-amd64). We download that .deb,
# unpack it with dpkg-deb -x, and run depmod -b on the unpacked tree so that
# modules.dep exists. Prints the unpacked tree's vmlinuz path on success.
# Idempotent: a finished cache (marked by .done) is reused.
set -euo pipefail

cache=${1:-.cache/kernel}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

if [ -f "$cache/.done" ]; then
    cat "$cache/.done"
    exit 0
fi

resolve() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1
}
pkg=$(resolve)
if [ -z "$pkg" ]; then
    # A fresh machine may have no package lists yet.
    apt-get update -qq >/dev/null 2>&1 || true
    pkg=$(resolve)
fi
if [ -z "$pkg" ]; then
    echo "guest-kernel: cannot resolve linux-image-amd64 (run apt-get update?)" >&2
    exit 1
fi

(cd "$cache" && rm -f ./*.deb && apt-get download -q "$pkg" >/dev/null 2>&1) ||
    (apt-get update -qq >/dev/null 2>&1 &&
        cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
    { echo "guest-kernel: apt-get download $pkg failed" >&2; exit 1; }
deb=$(ls "$cache"/*.deb | head -n 1)
rm -rf "$cache/root"
dpkg-deb -x "$deb" "$cache/root"
rm -f "$deb"

kver=$(ls "$cache/root/lib/modules" | head -n 1)
PATH=$PATH:/sbin:/usr/sbin depmod -b "$cache/root" "$kver"
vmlinuz="$cache/root/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || { echo "guest-kernel: no $vmlinuz in $pkg" >&2; exit 1; }
printf '%s\n' "$vmlinuz" >"$cache/.done"
echo "$vmlinuz"
