#!/usr/bin/env bash
# Boot the test guest N times in a row (nested: all inside one L1 boot) and
# count how often the machine a guest sees is right.
#
#   scripts/boot-stats.sh [N]         (or: make boot-stats, N=20 by default)
#
# Each boot runs iotest on both disks with 1 MiB (the point is the boot, not
# the disk). The last line is
#   boots: n=N ok=N lapic_deadline=N hres=N warnings=N acpi_errors=N
#          apic_timer_disabled=N init_s_p50=S init_s_min=S init_s_max=S
# (one line): n boots, ok of them minivmm exited 0 with "guest: ok",
# lapic_deadline/hres how many used clockevent lapic-deadline / had hres=1,
# warnings/acpi_errors/apic_timer_disabled how many boots logged at least
# one, init_s the guest's uptime when its init started. Exit 0 when every
# boot was ok with lapic-deadline, hres=1 and a clean kernel log.
#
# Environment: MODE (kvm|nested, default auto), CPUS (vCPUs per boot,
# default 1), OPTS (extra minivmm options, e.g. "--acpi off"), and those of
# scripts/run-guest.sh. Not part of `make check-linux`: nested, 20 boots
# take several minutes.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-20}
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "boot-stats: N must be a positive number, not '$n'" >&2; exit 2; }
cpus=${CPUS:-1}
[[ $cpus =~ ^[1-9][0-9]*$ ]] || { echo "boot-stats: CPUS must be one count, not '$cpus'" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/boot-stats.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
list=$cpus
for ((i = 1; i < n; i++)); do
    list+=",$cpus"
done

start=$EPOCHREALTIME
rc=0
# run-guest.sh's own verdict lines judge only the last of repeated runs;
# the counts below are per boot.
"$root/scripts/run-guest.sh" --mode "${MODE:-auto}" --mib 1 --notify on \
    --cpus "$list" --opts "${OPTS:-}" --timeout 120 --log "$tmp/console.log" \
    >"$tmp/out" || rc=$?
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')

awk -v want="$n" -v elapsed="$elapsed" '
    function flush() {
        if (!inrun) return
        nb++
        if (ok && rc == "0") nok++
        if (deadline) nd++
        if (hres) nh++
        if (w > 0) nw++
        if (a > 0) na++
        if (t > 0) nt++
        if (init != "") inits[++ni] = init
        inrun = 0
    }
    /run-guest: begin notify=/ { flush(); inrun = 1; ok = 0; rc = ""; deadline = 0;
        hres = 0; w = a = t = 0; init = ""; next }
    !inrun { next }
    /guest: init uptime=/ { x = $0; sub(/.*uptime=/, "", x); sub(/s.*/, "", x); init = x }
    /guest: clock source=/ { if (/ event=lapic-deadline /) deadline = 1; if (/ hres=1 /) hres = 1 }
    /guest: dmesg warnings=/ {
        for (i = 1; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] == "warnings") w = kv[2] + 0
            if (kv[1] == "acpi_errors") a = kv[2] + 0
            if (kv[1] == "apic_timer_disabled") t = kv[2] + 0
        }
    }
    /guest: ok/ { ok = 1 }
    /run-guest: end notify=/ { x = $0; sub(/.*rc=/, "", x); sub(/ .*/, "", x); rc = x; flush() }
    END {
        flush()
        # insertion sort: n is small
        for (i = 2; i <= ni; i++) { v = inits[i]; for (j = i - 1; j >= 1 && inits[j] + 0 > v + 0; j--) inits[j + 1] = inits[j]; inits[j + 1] = v }
        p50 = ni ? inits[int((ni + 1) / 2)] : "-"
        printf "boot-stats: %d boots in %s s\n", nb, elapsed
        printf "boots: n=%d ok=%d lapic_deadline=%d hres=%d warnings=%d acpi_errors=%d apic_timer_disabled=%d init_s_p50=%s init_s_min=%s init_s_max=%s\n",
            nb, nok, nd, nh, nw, na, nt, p50, ni ? inits[1] : "-", ni ? inits[ni] : "-"
        exit !(nb == want && nok == nb && nd == nb && nh == nb && nw + na + nt == 0)
    }' "$tmp/console.log" || {
    [[ $rc -eq 0 ]] || echo "boot-stats: run-guest.sh exited $rc (console: tail below)" >&2
    [[ $rc -eq 0 ]] || tail -20 "$tmp/out" >&2
    exit 1
}
