#!/usr/bin/env bash
# Build the test guest's initramfs: busybox, iotest, guest/init as /init,
# and the kernel modules for an AHCI disk and a virtio-blk disk (plus ext4's,
# which init loads only for a power-cut run).
#
#   scripts/guest-initramfs.sh OUT.cpio
#
# Environment: IOTEST (default build/guest/iotest, a static binary: make
# build/guest/iotest), BUSYBOX (default /bin/busybox, from busybox-static),
# KERNEL_CACHE (passed to scripts/guest-kernel.sh, default .cache/kernel).
#
# The archive is cpio newc, uncompressed: under TCG the kernel unpacks it
# faster than it gunzips a smaller one. The module load order starts from
# ../shared/DESIGN.md's list and is checked against the kernel's modules.dep: a
# missing dependency is inserted before its first user, a built-in module
# is dropped. /etc/modules in the archive holds the result, one name a line.
set -euo pipefail

# ../shared/DESIGN.md "Facts about the nested rig": the order known to work.
MODULES="scsi_common scsi_mod libata libahci ahci crct10dif_common crc-t10dif
crc64 crc64-rocksoft t10-pi sd_mod virtio_ring virtio virtio_pci_legacy_dev
virtio_pci_modern_dev virtio_pci virtio_blk"
# For scripts/powercut.sh's ext4 disks, loaded by init only when a run asks
# (the other boots do not pay for them): ext4 needs crc16, mbcache and jbd2
# (modules.dep), and its metadata checksums look up "crc32c" in the crypto
# API, which with no modprobe in the guest only a loaded crc32c_generic
# answers.
EXT4_MODULES="crc16 mbcache jbd2 ext4 crc32c_generic"

die() {
    echo "guest-initramfs: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: $0 OUT.cpio"
out=$1
top=$(cd "$(dirname "$0")/.." && pwd)
iotest=${IOTEST:-$top/build/guest/iotest}
busybox=${BUSYBOX:-/bin/busybox}

[ -x "$iotest" ] || die "no $iotest (make build/guest/iotest)"
[ -x "$busybox" ] || die "no $busybox (apt-get install busybox-static)"
# The initramfs has no libraries: both binaries must be static.
for bin in "$iotest" "$busybox"; do
    if readelf -l "$bin" | grep -q 'program interpreter'; then
        die "$bin is dynamically linked; the guest has no libraries"
    fi
done
command -v cpio >/dev/null || die "no cpio (apt-get install cpio)"

vmlinuz=$(cd "$top" && scripts/guest-kernel.sh ${KERNEL_CACHE:+"$KERNEL_CACHE"}) ||
    die "scripts/guest-kernel.sh failed"
kroot=$(dirname "$(dirname "$vmlinuz")")
kver=${vmlinuz##*/vmlinuz-}
moddir=$kroot/lib/modules/$kver
[ -f "$moddir/modules.dep" ] || die "no $moddir/modules.dep"

# Module name -> path relative to $moddir, from modules.dep. Names may
# differ in - vs _ (the file is crc-t10dif.ko, the module crc_t10dif).
declare -A path_of deps_of
while IFS=: read -r ko deps; do
    name=${ko##*/}
    name=${name%.ko}
    name=${name//-/_}
    path_of[$name]=$ko
    deps_of[$ko]=$deps
done <"$moddir/modules.dep"
declare -A builtin
if [ -f "$moddir/modules.builtin" ]; then
    while read -r ko; do
        name=${ko##*/}
        name=${name%.ko}
        builtin[${name//-/_}]=1
    done <"$moddir/modules.builtin"
fi

# Depth-first: a module's dependencies go before it. With a correct list
# this reproduces the list; anything it adds is reported.
declare -A listed placed
order=()
place() {
    local ko=$1 dep name
    [ -z "${placed[$ko]:-}" ] || return 0
    placed[$ko]=1
    for dep in ${deps_of[$ko]}; do
        place "$dep"
    done
    name=$(basename "$ko" .ko)
    if [ -z "${listed[${name//-/_}]:-}" ]; then
        echo "guest-initramfs: note: adding $name, a dependency missing" \
            "from the list" >&2
    fi
    order+=("$ko")
}
for m in $MODULES $EXT4_MODULES; do
    listed[${m//-/_}]=1
done
# place_list LIST: every module of LIST into order, dependencies first;
# those an earlier list placed are loaded already and not repeated.
place_list() {
    local m key
    for m in $1; do
        key=${m//-/_}
        if [ -n "${builtin[$key]:-}" ]; then
            echo "guest-initramfs: note: $m is built into $kver, skipped" >&2
            continue
        fi
        [ -n "${path_of[$key]:-}" ] || die "module $m not in $moddir/modules.dep"
        place "${path_of[$key]}"
    done
}
place_list "$MODULES"
base_order=("${order[@]}")
order=()
place_list "$EXT4_MODULES"
ext4_order=("${order[@]}")

stage=$(mktemp -d "${TMPDIR:-/tmp}/guest-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT

mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,lib/modules}
cp "$busybox" "$stage/bin/busybox"
# Every applet as a symlink, so that init can call them by name.
for applet in $("$busybox" --list-full); do
    [ -e "$stage/$applet" ] || ln -s /bin/busybox "$stage/$applet"
done
cp "$iotest" "$stage/bin/iotest"
cp "$top/guest/init" "$stage/init"
chmod 755 "$stage/init" "$stage/bin/iotest" "$stage/bin/busybox"

# add_modules LIST-FILE KO...: copy the modules in, their names into LIST-FILE.
add_modules() {
    local list=$1 ko name
    shift
    : >"$list"
    for ko in "$@"; do
        name=$(basename "$ko" .ko)
        [ -f "$moddir/$ko" ] || die "no $moddir/$ko (compressed modules?)"
        cp "$moddir/$ko" "$stage/lib/modules/$name.ko"
        echo "$name" >>"$list"
    done
}
add_modules "$stage/etc/modules" "${base_order[@]}"
add_modules "$stage/etc/modules.ext4" "${ext4_order[@]}"

mkdir -p "$(dirname "$out")"
(cd "$stage" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
    cpio --null -o -H newc -R 0:0 --quiet) >"$out.tmp" ||
    die "cpio failed"
mv "$out.tmp" "$out"
echo "guest-initramfs: $out ($(du -k "$out" | cut -f1) KiB, kernel $kver," \
    "modules: $(tr '\n' ' ' <"$stage/etc/modules"| sed 's/ $//');" \
    "on demand: $(tr '\n' ' ' <"$stage/etc/modules.ext4"| sed 's/ $//'))"
