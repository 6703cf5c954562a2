#!/usr/bin/env bash
# A stand-in for minivmm's KVM mode: takes the options scripts/run-guest.sh
# passes to minivmm and boots the same guest on QEMU (TCG) instead, so the
# guest scripts (run-guest.sh, linux-boot-test.sh) can be tested where
# minivmm cannot run a guest (not demo.sh, which traces its runs: QEMU
# knows no --trace):
#
#   MINIVMM=tests/nested/minivmm-qemu.sh scripts/run-guest.sh --mode kvm
#
# Only what run-guest.sh uses is understood. --aio-notify-on-sqe is accepted
# and ignored (QEMU has no such switch), so both demo runs look alike here.
set -euo pipefail

die() {
    echo "minivmm-qemu: $*" >&2
    exit 1
}

kernel='' initrd='' append='' memory=512M cpus=1
drives=()
ndisk=0
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || die "$1 needs a value"
    case $1 in
    --kernel) kernel=$2 ;;
    --initrd) initrd=$2 ;;
    --append) append=$2 ;;
    --memory) memory=$2 ;;
    --cpus) cpus=$2 ;;
    --iothreads | --aio-notify-on-sqe) ;;
    --serial) [[ $2 == stdio ]] || die "only --serial stdio" ;;
    --disk)
        spec=$2 kind=${2%%:*} rest=${2#*:}
        path=${rest%%,*}
        cache=none
        [[ $rest != *cache=writeback* ]] || cache=writeback
        id=d$ndisk
        ndisk=$((ndisk + 1))
        drives+=(-drive "file=$path,if=none,id=$id,format=raw,cache=$cache")
        case $kind in
        # q35's ICH9 AHCI: the first sata disk is the guest's /dev/sda.
        sata) drives+=(-device "ide-hd,drive=$id,bus=ide.0") ;;
        virtio) drives+=(-device "virtio-blk-pci,drive=$id") ;;
        *) die "unknown disk kind in $spec" ;;
        esac
        ;;
    *) die "unknown option $1" ;;
    esac
    shift 2
done
[[ -n $kernel && -n $initrd ]] || die "--kernel and --initrd are required"

exec qemu-system-x86_64 -accel tcg -M q35 -m "$memory" -smp "$cpus" \
    -kernel "$kernel" -initrd "$initrd" -append "$append" "${drives[@]}" \
    -nographic -no-reboot -nic none -nodefaults -serial stdio
