#!/usr/bin/env bash
# Boot the test guest on QEMU as the reference VMM: Debian's kernel, the
# initramfs from scripts/guest-initramfs.sh, one AHCI disk and one
# virtio-blk disk filled with iotest's pattern. Passes when the guest
# prints an iotest line for every disk and "guest: ok".
#
#   scripts/guest-qemu.sh [options]
#     --mib N          MiB per disk (default 16: TCG is slow)
#     --no-check       skip the pattern check (on by default)
#     --args "..."     extra iotest options, e.g. "--sync"
#     --disks LIST     guest disks to test, identities or device names
#                      (guest/init's iotest.disks; default sata0,virtio0)
#     --machine M      q35 (default; its ICH9 AHCI) or pc (adds an ich9-ahci)
#     --accel A        tcg (default) or kvm
#     --timeout S      give up after S seconds (default 300)
#     --imgdir DIR     where the images go (default build/guest); cache=none
#                      needs O_DIRECT, which tmpfs may lack
#     --log FILE       serial log (default IMGDIR/qemu-MACHINE.log)
#
# Environment: INITRAMFS (default build/guest/initramfs.cpio), IOTEST
# (default build/guest/iotest), QEMU (default qemu-system-x86_64),
# QEMU_EXTRA (more QEMU arguments, split on spaces).
set -euo pipefail

die() {
    echo "guest-qemu: $*" >&2
    exit 1
}

top=$(cd "$(dirname "$0")/.." && pwd)
mib=16 check=1 args='' disks=sata0,virtio0 machine=q35 accel=tcg timeout_s=300
imgdir=$top/build/guest log=''
while [ $# -gt 0 ]; do
    case $1 in
    --mib) mib=${2:?}; shift ;;
    --no-check) check=0 ;;
    --args) args=${2?}; shift ;;
    --disks) disks=${2:?}; shift ;;
    --machine) machine=${2:?}; shift ;;
    --accel) accel=${2:?}; shift ;;
    --timeout) timeout_s=${2:?}; shift ;;
    --imgdir) imgdir=${2:?}; shift ;;
    --log) log=${2:?}; shift ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done
case $machine in q35 | pc) ;; *) die "unknown machine $machine (q35 or pc)" ;; esac
[[ $mib =~ ^[1-9][0-9]*$ ]] || die "--mib wants a positive number, not $mib"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "--timeout wants seconds, not $timeout_s"
initramfs=${INITRAMFS:-$top/build/guest/initramfs.cpio}
iotest=${IOTEST:-$top/build/guest/iotest}
qemu=${QEMU:-qemu-system-x86_64}
log=${log:-$imgdir/qemu-$machine.log}

[ -f "$initramfs" ] || die "no $initramfs (make guest)"
[ -x "$iotest" ] || die "no $iotest (make guest)"
command -v "$qemu" >/dev/null || die "no $qemu (apt-get install qemu-system-x86)"
vmlinuz=$(cd "$top" && scripts/guest-kernel.sh) || die "no guest kernel"

# Two images, freshly made at exactly --mib, so a check failure means the
# I/O path and a read past the end fails as it would on a real disk.
mkdir -p "$imgdir"
for img in ahci virtio; do
    rm -f "$imgdir/$img.img"
    "$iotest" --fill --size-mib "$mib" --label "$img" "$imgdir/$img.img" \
        >/dev/null || die "cannot fill $imgdir/$img.img"
done
# cache=none opens the images with O_DIRECT; fail here, not inside QEMU.
"$iotest" --size-mib 1 --sleep-before-us 0 --sleep-after-us 0 \
    "$imgdir/ahci.img" >/dev/null 2>&1 ||
    die "$imgdir has no O_DIRECT (tmpfs?); choose --imgdir on a real disk"

append="console=ttyS0 quiet panic=-1 iotest.mib=$mib iotest.check=$check"
append+=" iotest.disks=$disks iotest.timeout=$timeout_s"
[ -z "$args" ] || append+=" iotest.args=\"$args\""

# Commas below are QEMU's option syntax, not array separators.
# shellcheck disable=SC2054
cmd=("$qemu" -accel "$accel" -M "$machine" -m 512 -smp 1
    -kernel "$vmlinuz" -initrd "$initramfs" -append "$append"
    -drive "file=$imgdir/ahci.img,if=none,id=d0,format=raw,cache=none")
# shellcheck disable=SC2054
case $machine in
q35) cmd+=(-device ide-hd,drive=d0,bus=ide.0) ;;
pc) cmd+=(-device ich9-ahci,id=ahci0 -device ide-hd,drive=d0,bus=ahci0.0) ;;
*) die "unknown machine $machine (q35 or pc)" ;;
esac
# shellcheck disable=SC2054
cmd+=(-drive "file=$imgdir/virtio.img,if=none,id=d1,format=raw,cache=none"
    -device virtio-blk-pci,drive=d1
    -display none -no-reboot -nic none -nodefaults -serial stdio)
read -ra extra <<<"${QEMU_EXTRA:-}"
cmd+=("${extra[@]}")

# The guest's watchdog uses the same timeout, so it normally reports
# first; the host's extra 30 s only catch a guest that cannot even do that.
echo "guest-qemu: ${cmd[*]}" >&2
start=$(date +%s.%N)
set +e
timeout -k 5 $((timeout_s + 30)) "${cmd[@]}" </dev/null | tee "$log"
rcs=("${PIPESTATUS[@]}")
set -e
wall=$(echo "$(date +%s.%N) - $start" | bc)

[ "${rcs[0]}" != 124 ] || die "QEMU timed out after $((timeout_s + 30)) s (log: $log)"
[ "${rcs[0]}" = 0 ] || die "QEMU exited with ${rcs[0]} (log: $log)"
fail=$(sed -n 's/^guest: FAIL //p' "$log" | head -n 1)
[ -z "$fail" ] || die "guest failed: $fail (log: $log)"
for d in ${disks//,/ }; do
    case $d in
    sata* | sd*) label=ahci ;;
    virtio* | vd*) label=virtio ;;
    *) label=$d ;;
    esac
    grep -q "^iotest: label=$label .*total_s=" "$log" ||
        die "no iotest result for $label (log: $log)"
done
grep -q '^guest: ok' "$log" || die "guest did not finish ok (log: $log)"
init=$(sed -n 's/^guest: init uptime=\([0-9.]*\)s.*/\1/p' "$log")
ready=$(sed -n 's/^guest: disks ready: .* uptime=\([0-9.]*\)s.*/\1/p' "$log")
done_up=$(sed -n 's/^guest: done uptime=\([0-9.]*\)s.*/\1/p' "$log")
printf 'guest-qemu: ok machine=%s accel=%s mib=%s wall_s=%.1f init_s=%s disks_ready_s=%s done_s=%s\n' \
    "$machine" "$accel" "$mib" "$wall" "$init" "$ready" "$done_up"
