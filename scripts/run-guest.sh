#!/usr/bin/env bash
# Boot the Linux test guest on minivmm: Debian's kernel, build/guest's
# initramfs (iotest), one SATA (AHCI) disk and one virtio-blk disk on an
# IOThread, both filled with iotest's pattern.
#
#   scripts/run-guest.sh [--mib N] [--check] [--notify on|off|off,on]
#                        [--cpus L] [--opts "..."] [--append "..."]
#                        [--timeout S] [--mode auto|kvm|nested] [--log FILE]
#
#   --mib N      MiB iotest reads per disk (default 16)
#   --check      have iotest verify every byte against the pattern
#   --notify L   minivmm's --aio-notify-on-sqe, one guest run per value in
#                the comma list L (default on); nested runs share one L1
#   --cpus L     vCPU counts, a comma list (default 1): one run per notify
#                value and count, all in the same L1
#   --opts S     extra minivmm options for every run, e.g. "--acpi off"
#   --append S   extra guest kernel parameters, e.g. "iotest.write=vda:M"
#   --timeout S  seconds per guest run (default 300; nested adds L1's boot)
#   --mode M     kvm: minivmm on this machine's /dev/kvm; nested: inside
#                scripts/nested.sh's L1; auto (default): kvm when
#                scripts/kvm-usable.sh passes, else nested
#   --log FILE   also write the console to FILE
#
# Environment: MINIVMM (kvm mode, default build/minivmm), MINIVMM_STATIC
# (nested mode, default build/minivmm-static), GUEST_INITRAMFS (default
# build/guest/initramfs.cpio), IOTEST (default build/guest/iotest).
# tests/nested/minivmm-qemu.sh can stand in for MINIVMM to test the scripts.
#
# The images live in .cache/run-guest/, on a real filesystem (cache=none
# needs O_DIRECT, which tmpfs lacks), are made at exactly N MiB and reused.
# The console is streamed to stdout; the last lines are one verdict per run.
# Exit status 0 only when every run's minivmm exited 0 and its guest printed
# "guest: ok"; 125 when the nested L1 itself never reported (froze, timed
# out), else 1.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "run-guest: $*" >&2
    exit 1
}

mib=16 check=0 notify=on timeout_s=300 mode=auto log='' cpus=1 opts='' extra=''
while [[ $# -gt 0 ]]; do
    case $1 in
    --mib) mib=${2:?--mib needs a value}; shift ;;
    --check) check=1 ;;
    --notify) notify=${2:?--notify needs a value}; shift ;;
    --cpus) cpus=${2:?--cpus needs a value}; shift ;;
    --opts) opts=${2?--opts needs a value}; shift ;;
    --append) extra=${2?--append needs a value}; shift ;;
    --timeout) timeout_s=${2:?--timeout needs a value}; shift ;;
    --mode) mode=${2:?--mode needs a value}; shift ;;
    --log) log=${2:?--log needs a value}; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
[[ $mib =~ ^[1-9][0-9]*$ ]] || die "--mib wants a positive number, not '$mib'"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout wants seconds, not '$timeout_s'"
[[ $notify =~ ^(on|off)(,(on|off))*$ ]] || die "--notify wants on, off or a list like off,on, not '$notify'"
[[ $cpus =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--cpus wants a count or a list like 1,2, not '$cpus'"
if [[ $mode == auto ]]; then
    mode=$("$root/scripts/kvm-usable.sh" --mode run-guest)
fi
[[ $mode == kvm || $mode == nested ]] || die "--mode wants auto, kvm or nested, not '$mode'"

initramfs=${GUEST_INITRAMFS:-$root/build/guest/initramfs.cpio}
iotest=${IOTEST:-$root/build/guest/iotest}
if [[ $mode == kvm ]]; then
    minivmm=${MINIVMM:-$root/build/minivmm}
else
    minivmm=${MINIVMM_STATIC:-$root/build/minivmm-static}
fi
[[ -f $initramfs ]] || die "no $initramfs (make guest)"
[[ -x $iotest ]] || die "no $iotest (make guest)"
[[ -x $minivmm ]] || die "no $minivmm (make minivmm build/minivmm-static)"
vmlinuz=$("$root/scripts/guest-kernel.sh" "$root/.cache/kernel") ||
    die "no guest kernel (scripts/guest-kernel.sh failed)"

# ---- Images: exactly N MiB, so a read past the end fails as on a disk ------
imgdir=$root/.cache/run-guest
mkdir -p "$imgdir"
stamp="mib=$mib pattern=$(sha256sum <"$root/guest/pattern.h" | cut -c1-16)"
make_image() {
    local img=$imgdir/$1-${mib}m.img
    if [[ ! -f $img || "$(cat "$img.stamp" 2>/dev/null)" != "$stamp" ]]; then
        rm -f "$img" "$img.stamp" "$img.$$"
        "$iotest" --fill --size-mib "$mib" --label "$1" "$img.$$" >/dev/null ||
            die "cannot fill $img"
        mv "$img.$$" "$img"
        echo "$stamp" >"$img.stamp"
    fi
    echo "$img"
}
sata_img=$(make_image ahci)
virtio_img=$(make_image virtio)

# No reboot=t: a triple fault is a crash (minivmm exits 3); the guest's init
# powers off (ACPI) or resets through the i8042, both exit 0.
append="console=ttyS0 quiet panic=-1 iotest.mib=$mib iotest.check=$check"
[[ -z $extra ]] || append+=" $extra"
# The guest's own watchdog fires first, so a stuck guest still reports.
append+=" iotest.timeout=$((timeout_s > 30 ? timeout_s - 10 : timeout_s))"
nruns=$(($(tr ',' '\n' <<<"$notify" | wc -l) * $(tr ',' '\n' <<<"$cpus" | wc -l)))

# ---- Run: the same runner script, here or inside L1 -------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-guest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/console.log
runner=$root/tests/nested/guest-run.sh
echo "run-guest: mode=$mode mib=$mib check=$check notify=$notify cpus=$cpus"
t0=$EPOCHREALTIME
rc=0
if [[ $mode == kvm ]]; then
    sh "$runner" --minivmm "$minivmm" --kernel "$vmlinuz" \
        --initrd "$initramfs" --sata "$sata_img" --virtio "$virtio_img" \
        --append "$append" --timeout "$timeout_s" --notify "$notify" \
        --cpus "$cpus" --opts "$opts" |
        tr -d '\r' | tee "$out" || rc=$?
else
    # Inside L1 the images are virtio disks: /dev/vda, /dev/vdb.
    "$root/scripts/nested.sh" --timeout $((timeout_s * nruns + 120)) \
        --disk "$sata_img" --disk "$virtio_img" \
        --file "$minivmm:/payload/minivmm" --file "$vmlinuz:/payload/vmlinuz" \
        --file "$initramfs:/payload/initramfs.cpio" \
        --file "$runner:/payload/guest-run.sh" -- \
        sh /payload/guest-run.sh --minivmm /payload/minivmm \
        --kernel /payload/vmlinuz --initrd /payload/initramfs.cpio \
        --sata /dev/vda --virtio /dev/vdb --append "$append" \
        --timeout "$timeout_s" --notify "$notify" --cpus "$cpus" \
        --opts "$opts" | tee "$out" || rc=$?
fi
[[ -z $log ]] || cp "$out" "$log"

# ---- Verdict per run ---------------------------------------------------------
# awk, not grep: a run is the text between its begin and end markers.
failed=0
for n in ${notify//,/ }; do
    for c in ${cpus//,/ }; do
        verdict=$(awk -v r="notify=$n cpus=$c" '
            index($0, "run-guest: begin " r) { inrun = 1; ok = 0; rc = ""; next }
            inrun && /guest: ok/ { ok = 1 }
            inrun && index($0, "run-guest: end " r " ") {
                sub(/.*rc=/, ""); sub(/ .*/, ""); rc = $0; inrun = 0; done = 1 }
            END {
                if (!done) { print "did not finish"; exit }
                if (rc != "0") print "minivmm exited " rc (ok ? "" : ", no \"guest: ok\"")
                else if (!ok) print "no \"guest: ok\""
                else print "ok"
            }' "$out")
        echo "run-guest: notify=$n cpus=$c: $verdict"
        [[ $verdict == ok ]] || failed=1
    done
done
printf 'run-guest: %s mode, %.1f s in all\n' "$mode" \
    "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')"
if [[ $failed -ne 0 || $rc -ne 0 ]]; then
    [[ $rc -eq 0 ]] || echo "run-guest: the $mode run exited with status $rc" >&2
    # 125 is nested.sh's "L1 never reported": let callers tell it apart.
    [[ $rc -eq 125 ]] && exit 125
    exit 1
fi
