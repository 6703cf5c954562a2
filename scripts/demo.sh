#!/usr/bin/env bash
# The 500 ms slumber in a real Linux guest: boot the test guest on minivmm
# twice, with --aio-notify-on-sqe off (the bug) and on (the fix), and compare
# iotest's times on the AHCI disk (affected) and the virtio-blk disk (not).
# Each run is traced (minivmm --trace), and the two traces drawn as one
# picture (scripts/trace-plot).
#
#   scripts/demo.sh                 (or: make demo)
#
# Environment:
#   MIB=N        MiB iotest reads per disk (default 128 on /dev/kvm, 16
#                nested: TCG is slow, and the stall shows at any size)
#   MODE=M       kvm or nested (default: kvm when scripts/kvm-usable.sh passes)
#   TIMEOUT=S    seconds per guest run (default 600)
#   DEMO_DIR=D   where the traces and the picture go (default: build/demo
#                in the source tree)
# and those of scripts/run-guest.sh (MINIVMM, MINIVMM_STATIC, ...).
#
# Writes, replacing an earlier demo's:
#   D/trace-off.json, D/trace-on.json   each run's trace, Chrome trace JSON
#                (Perfetto's UI opens it; scripts/trace-report reads it)
#   D/stall.png  per-batch latency of AHCI off, AHCI on and virtio-blk, and
#                the timeline of one stalled AHCI read (scripts/trace-plot)
#
# Prints the guest consoles, a table (run, disk, total_s, MiB/s, batch
# p50/p99), the files' names and sizes, and as its last two lines:
#   trace: ahci_off_submit_wait_p50_ms=N ahci_on_submit_wait_p50_ms=N
#          virtio_submit_wait_p50_ms=N json=OFF,ON png=PNG
#   repro-guest: ahci_off_s=N ahci_on_s=N virtio_s=N mib=N mode=kvm|nested
# (each one line). The submit waits are scripts/trace-report's medians, in
# ms, of how long a request's SQE waited to be submitted: AHCI's in each
# run, virtio-blk's in the "on" run ("-" if a trace has none); json= is the
# two traces, off then on, and png= the picture, as absolute paths.
# virtio_s is from the "on" run. In nested mode both runs share one L1 boot.
# Between the table and the files, one PASS/FAIL line per run and check
# (the figures are noise otherwise): clocksource kvm-clock, clockevent
# lapic-deadline, hres=1, and no WARNING, "ACPI BIOS Error" or "APIC timer
# disabled" in the guest's kernel log. A failed check fails the demo (exit
# 1), as does a trace that is missing or that the scripts cannot read.
# Compare figures made in the same mode: nested sleeps cost more (../shared/DESIGN.md).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "demo: $*" >&2
    exit 1
}

mode=${MODE:-}
if [[ -z $mode ]]; then
    mode=$("$root/scripts/kvm-usable.sh" --mode demo)
fi
[[ $mode == kvm || $mode == nested ]] || die "MODE must be kvm or nested, not '$mode'"
default_mib=16
[[ $mode == nested ]] || default_mib=128
mib=${MIB:-$default_mib}
timeout_s=${TIMEOUT:-600}
[[ $mib =~ ^[1-9][0-9]*$ ]] || die "MIB must be a positive number, not '$mib'"
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || die "TIMEOUT must be seconds, not '$timeout_s'"
# Before the minute-long runs, not after them.
command -v gnuplot >/dev/null || die "gnuplot not found, the picture needs it (make deps)"
mkdir -p "${DEMO_DIR:-$root/build/demo}" || die "cannot make ${DEMO_DIR:-$root/build/demo}"
outdir=$(cd "${DEMO_DIR:-$root/build/demo}" && pwd)
trace_off=$outdir/trace-off.json
trace_on=$outdir/trace-on.json
png=$outdir/stall.png
rm -f "$png"

# The rings keep each thread's newest records, and iotest runs last: a ring
# that holds the iotest phase keeps all its requests. Measured nested, at
# 16 MiB: the phase is ~1,800 records on the vCPU thread (~1,300 of them
# the UART's, the guest's console output) and fewer on the others, growing
# by at most ~15 per MiB per thread; the whole run is ~7,400. 32 per MiB,
# and at least 16384, leaves room to spare and bounds a file at threads (3)
# x size x ~290 bytes: 14 MB up to MIB=512.
trace_size=$((mib * 32 > 16384 ? mib * 32 : 16384))

tmp=$(mktemp -d "${TMPDIR:-/tmp}/demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

rc=0
"$root/scripts/run-guest.sh" --mode "$mode" --mib "$mib" --notify off,on \
    --timeout "$timeout_s" --log "$tmp/console.log" \
    --trace-dir "$outdir" --trace-opts ",size=$trace_size" || rc=$?

# One row per iotest line: run disk total_s mibps p50 p99.
awk '
    /run-guest: begin notify=/ { sub(/.*notify=/, ""); run = $1; next }
    /run-guest: end notify=/ { run = ""; next }
    run != "" && /iotest: label=/ {
        sub(/.*iotest: /, "")
        delete f
        for (i = 1; i <= NF; i++) {
            eq = index($i, "=")
            if (eq) f[substr($i, 1, eq - 1)] = substr($i, eq + 1)
        }
        if (!("total_s" in f)) next
        print run, f["label"], f["total_s"], f["mibps"],
              ("batch_p50_ms" in f ? f["batch_p50_ms"] : "-"),
              ("batch_p99_ms" in f ? f["batch_p99_ms"] : "-")
    }' "$tmp/console.log" >"$tmp/rows"

echo
echo "demo: iotest $mib MiB per disk, $mode mode, notify-on-SQE off then on"
printf '  %-4s %-7s %9s %8s %13s %13s\n' run disk total_s MiB/s \
    batch_p50_ms batch_p99_ms
while read -r run disk total mibps p50 p99; do
    printf '  %-4s %-7s %9s %8s %13s %13s\n' "$run" "$disk" "$total" "$mibps" \
        "$p50" "$p99"
done <"$tmp/rows"

value() { awk -v r="$1" -v d="$2" '$1 == r && $2 == d { v = $3 } END { print v }' "$tmp/rows"; }
ahci_off=$(value off ahci)
ahci_on=$(value on ahci)
virtio_on=$(value on virtio)
if [[ -z $ahci_off || -z $ahci_on || -z $virtio_on ]]; then
    die "missing iotest results (ahci off '${ahci_off}', ahci on '${ahci_on}', virtio on '${virtio_on}'); see the console above"
fi
[[ $rc -eq 0 ]] || die "a guest run failed (see the verdicts above)"

# check RUN DESCRIPTION ERE: PASS when a console line of run RUN matches.
bad=0
check() {
    if awk -v r="$1" '
        /run-guest: begin notify=/ { x = $0; sub(/.*notify=/, "", x); split(x, w, " "); run = w[1] }
        /run-guest: end notify=/ { run = "" }
        run == r { print }' "$tmp/console.log" | grep -Eq -- "$3"; then
        echo "demo: PASS notify=$1: $2"
    else
        echo "demo: FAIL notify=$1: $2 (no line matching '$3')"
        bad=$((bad + 1))
    fi
}
for r in off on; do
    check "$r" "clocksource kvm-clock, clockevent lapic-deadline, hres=1" \
        'guest: clock source=kvm-clock event=lapic-deadline hres=1 '
    check "$r" "kernel log: no WARNING, ACPI BIOS Error, APIC timer disabled" \
        'guest: dmesg warnings=0 acpi_errors=0 apic_timer_disabled=0$'
done
[[ $bad -eq 0 ]] || die "$bad guest checks failed: the figures below are not to be trusted"

awk -v off="$ahci_off" -v on="$ahci_on" -v vio="$virtio_on" 'BEGIN {
    if (on > 0) printf "  ahci off / ahci on = %6.1f  (the stall the fix removes)\n", off / on
    if (vio > 0) printf "  ahci on / virtio   = %6.2f  (the fix brings AHCI to virtio-blk)\n", on / vio
}'

# The traces: the submit waits from scripts/trace-report, the picture from
# scripts/trace-plot. Their reports stay in $tmp; their errors (one line
# each) reach stderr.
"$root/scripts/trace-report" "$trace_off" >"$tmp/report-off" ||
    die "scripts/trace-report $trace_off failed"
"$root/scripts/trace-report" "$trace_on" >"$tmp/report-on" ||
    die "scripts/trace-report $trace_on failed"
# field REPORT KEY: KEY's value in the report's last line.
field() { tail -n 1 "$1" | sed -n "s/.* $2=\([^ ]*\).*/\1/p"; }
wait_off=$(field "$tmp/report-off" ahci_submit_wait_p50_ms)
wait_on=$(field "$tmp/report-on" ahci_submit_wait_p50_ms)
wait_virtio=$(field "$tmp/report-on" virtio_submit_wait_p50_ms)
"$root/scripts/trace-plot" "$trace_off" "$trace_on" -o "$png" >"$tmp/plot" ||
    die "scripts/trace-plot failed"
for f in "$trace_off" "$trace_on" "$png"; do
    printf 'demo: wrote %s (%s KiB)\n' "$f" "$(du -k "$f" | cut -f1)"
done
echo "trace: ahci_off_submit_wait_p50_ms=${wait_off:--}" \
    "ahci_on_submit_wait_p50_ms=${wait_on:--}" \
    "virtio_submit_wait_p50_ms=${wait_virtio:--} json=$trace_off,$trace_on png=$png"
printf 'repro-guest: ahci_off_s=%.2f ahci_on_s=%.2f virtio_s=%.2f mib=%s mode=%s\n' \
    "$ahci_off" "$ahci_on" "$virtio_on" "$mib" "$mode"
