#!/usr/bin/env bash
# CI boot test: Linux on minivmm, both disks, a small checked iotest.
#
#   scripts/linux-boot-test.sh      (or: make check-linux)
#
# Boots the test guest once (scripts/run-guest.sh: on /dev/kvm when usable,
# else nested) with iotest.mib=4 iotest.check=1 and asserts, from the
# console: the guest kernel reached init, it found both disks (sda: AHCI,
# vda: virtio-blk), iotest read each one back with check=ok, the guest
# printed "guest: ok", and minivmm exited 0. One PASS/FAIL line per
# assertion; exit 0 only if all pass.
#
# Environment: MIB (default 4), MODE (kvm|nested, default auto), TIMEOUT
# (seconds for the guest run, default 240; a normal nested run takes 20-30 s,
# and with one retry the test stays under 10 minutes), and those of
# scripts/run-guest.sh.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mib=${MIB:-4}
mode=${MODE:-auto}
timeout_s=${TIMEOUT:-240}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/linux-boot-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log=$tmp/console.log

start=$EPOCHREALTIME
run() {
    rc=0
    "$root/scripts/run-guest.sh" --mode "$mode" --mib "$mib" --check \
        --notify on --timeout "$timeout_s" --log "$log" || rc=$?
}
run
# 125: the nested L1 itself never reported (it froze or timed out: seen about
# once in 50 boots under TCG, before minivmm printed anything). That is the
# rig, not minivmm; give it one fresh L1 before judging.
if [[ $rc -eq 125 ]]; then
    echo "linux-boot-test: the nested L1 did not finish; retrying once in a fresh L1"
    run
fi
[[ -f $log ]] || : >"$log"

failed=0
# expect DESCRIPTION ERE: PASS when a console line matches.
expect() {
    if grep -Eq -- "$2" "$log"; then
        echo "linux-boot-test: PASS $1"
    else
        echo "linux-boot-test: FAIL $1 (no line matching '$2')"
        failed=$((failed + 1))
    fi
}
expect "the guest kernel booted and ran init" 'guest: init uptime='
expect "both disks found (sda, vda)" 'guest: disks ready: sda vda'
expect "iotest on AHCI read $mib MiB, pattern ok" \
    "iotest: label=ahci dev=/dev/sda mib=$mib .* check=ok\$"
expect "iotest on virtio-blk read $mib MiB, pattern ok" \
    "iotest: label=virtio dev=/dev/vda mib=$mib .* check=ok\$"
expect "the guest said ok" 'guest: ok$'
expect "minivmm exited 0" 'run-guest: end notify=on rc=0 '
if [[ $rc -ne 0 ]]; then
    echo "linux-boot-test: FAIL run-guest.sh exited $rc"
    failed=$((failed + 1))
fi

elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
if [[ $failed -ne 0 ]]; then
    echo "linux-boot-test: FAIL ($failed failed, $elapsed s)"
    exit 1
fi
echo "linux-boot-test: PASS (all, $elapsed s)"
