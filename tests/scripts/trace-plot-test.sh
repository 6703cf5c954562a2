#!/bin/sh
# scripts/trace-plot on a hand-made pair of traces, the fix off and on: two
# iotest batches per series (16 x 128 KiB = 2 MiB each, every batch two
# device requests of 1280 and 768 KiB, as the guest's block layer merges
# them), plus what must not count: a 4 KiB boot-time read, a flush and a
# read cut off before its end. The times are chosen so that every figure
# the script prints is exact in ms:
#
#   off, AHCI    batch 1: starts 1.000 s, last end 1.402005 s   402.005 ms
#                batch 2: starts 2.000 s, last end 2.451005 s   451.005 ms
#                submit waits 399, 400, 449.5, 450 ms: the median (nearest
#                rank) is request 1's 400 ms, after a 499 ms loop_sleep
#   on, AHCI     batches of 1.755 and 3.155 ms
#   on, virtio   batches of 2.605 and 1.005 ms
#
# p50 is nearest rank: of two values, the smaller.
set -u
cd "$(dirname "$0")/../.." || exit 1
name=trace-plot-test
. tests/scripts/trace-fixture.sh

# ahci REQ START OFFSET BYTES WAIT READ [OP]: an AHCI command from its vCPU
# exit (vcpu0) to its interrupt (main); its SQE waits WAIT ns to be
# submitted and the read takes READ ns, so it ends at START+5000+WAIT+READ.
# READ "-" cuts it off after the submit.
ahci() {
    s=$2 add=$(($2 + 3000)) sub=$(($2 + 3000 + $5))
    x vcpu_exit 2 "$s" "$1" ',"kind":0,"addr":3221246264,"len":4,"write":1'
    x ahci_cmd 2 $((s + 1000)) "$1" ',"port":0,"slot":0,"cmd":96,"lba":0,"count":8'
    x blk_submit 2 $((s + 2000)) "$1" ",\"offset\":$3,\"bytes\":$4,\"op\":\"${7:-read}\",\"ctx\":\"main\""
    x aio_add_sqe 2 "$add" "$1" ',"asleep":1,"kick":0,"ctx":"main"'
    x sqe_submit 1 "$sub" "$1" ',"ctx":"main"'
    [ "$6" = - ] && return
    x cqe_dispatch 1 $((sub + $6)) "$1" ",\"res\":$4,\"ctx\":\"main\""
    x ahci_done 1 $((sub + $6 + 1000)) "$1" ',"port":0,"slot":0,"status":80,"fis":"sdb"'
    x irq 1 $((sub + $6 + 2000)) "$1" ',"vector":34,"level":1,"how":"irqfd"'
}
# virtio REQ START OFFSET BYTES READ: all on iothread0, ends at START+5000+READ.
virtio() {
    s=$2
    x virtq_pop 3 "$s" "$1" ',"queue":0,"head":0,"dev":"virtio-blk@02.0"'
    x blk_submit 3 $((s + 1000)) "$1" ",\"offset\":$3,\"bytes\":$4,\"op\":\"read\",\"ctx\":\"iothread0\""
    x aio_add_sqe 3 $((s + 2000)) "$1" ',"asleep":0,"kick":0,"ctx":"iothread0"'
    x sqe_submit 3 $((s + 3000)) "$1" ',"ctx":"iothread0"'
    x cqe_dispatch 3 $((s + 3000 + $5)) "$1" ",\"res\":$4,\"ctx\":\"iothread0\""
    x virtio_done 3 $((s + 4000 + $5)) "$1" ',"queue":0,"head":0,"status":0,"len":1,"dev":"virtio-blk@02.0"'
    x irq 3 $((s + 5000 + $5)) "$1" ',"vector":35,"level":1,"how":"irqfd"'
}
# loop SLEEP_NS WAKE_NS WHY: the main loop's sleep (499 ms timeout) and wake.
loop() {
    x loop_sleep 1 "$1" 0 ',"timeout_ns":499000000,"ctx":"main"'
    x loop_wake 1 "$2" 0 ",\"slept_ns\":$(($2 - $1)),\"ctx\":\"main\",\"why\":\"$3\""
}

ms=1000000
{
    header
    ahci 9 $((500 * ms)) 0 4096 $((1 * ms)) $((1 * ms)) # the boot's 4 KiB read
    loop $((900 * ms)) $((1400 * ms + 2)) timeout
    ahci 1 $((1000 * ms)) 0 1310720 $((400 * ms)) $((1 * ms))
    ahci 2 $((1001 * ms)) 1310720 786432 $((399 * ms)) $((2 * ms))
    loop $((1900 * ms)) $((2450 * ms + 2)) timeout
    ahci 3 $((2000 * ms)) 2097152 1310720 $((450 * ms)) $((1 * ms))
    ahci 4 $((2000 * ms + 500000)) 3407872 786432 $((449500000)) $((1 * ms))
    ahci 5 $((3000 * ms)) 4194304 1310720 $((1 * ms)) - # cut off
    ahci 6 $((3500 * ms)) 0 0 $((1 * ms)) $((1 * ms)) flush
    footer
} >"$dir/off.json"
{
    header
    ahci 1 $((1000 * ms)) 0 1310720 50000 $((1 * ms))
    ahci 2 $((1000 * ms + 200000)) 1310720 786432 50000 1500000
    ahci 3 $((1100 * ms)) 2097152 1310720 50000 $((2 * ms))
    ahci 4 $((1100 * ms + 100000)) 3407872 786432 50000 $((3 * ms))
    virtio 11 $((2000 * ms)) 0 1310720 $((2 * ms))
    virtio 12 $((2000 * ms + 100000)) 1310720 786432 2500000
    virtio 13 $((2100 * ms)) 2097152 1310720 $((1 * ms))
    virtio 14 $((2100 * ms)) 3407872 786432 $((1 * ms))
    footer
} >"$dir/on.json"

# Errors first: they need no gnuplot. One line on stderr, status 1: for
# no file, not JSON, not a minivmm trace, a trace without an AHCI read.
echo '{"traceEvents":[]}' >"$dir/other.json"
{ header; footer; } >"$dir/empty.json"
for bad in "$dir/missing.json" /etc/hostname "$dir/other.json" "$dir/empty.json"; do
    scripts/trace-plot "$bad" "$dir/on.json" -o "$dir/bad.png" >/dev/null 2>"$dir/err"
    status=$?
    [ $status = 1 ] || fail "$bad: exit status $status"
    if [ "$(wc -l <"$dir/err")" != 1 ] || ! grep -q '^trace-plot: ' "$dir/err"; then
        fail "$bad: $(cat "$dir/err")"
    fi
    [ ! -e "$dir/bad.png" ] || fail "$bad: a PNG was written"
done

if ! command -v gnuplot >/dev/null; then
    echo "trace-plot-test: skipped the picture (no gnuplot; make deps installs gnuplot-nox)"
    exit 0
fi
png=$dir/stall.png
out=$(scripts/trace-plot "$dir/off.json" "$dir/on.json" -o "$png") ||
    fail "exit status $? on a good pair: $out"
want="trace-plot: ahci_off_batches=2 ahci_off_batch_p50_ms=402.005 ahci_on_batches=2 ahci_on_batch_p50_ms=1.755 virtio_batches=2 virtio_batch_p50_ms=1.005 stalled_req=1 stalled_wait_ms=400.000 png=$png"
last=$(printf '%s\n' "$out" | tail -n 1)
[ "$last" = "$want" ] || fail "last line: $last"
printf '%s\n' "$out" | grep -q '^trace-plot: AHCI, notify-on-SQE off: 2 batches, latency p50 402.005 ms, max 451.005 ms$' ||
    fail "no AHCI off line in: $out"
printf '%s\n' "$out" | grep -q 'request 1, its SQE waited 400.000 ms for submit (nothing woke the main loop, asleep until its 499 ms timeout)$' ||
    fail "no panel (b) line in: $out"
[ -s "$png" ] || fail "no $png"
magic=$(od -An -tx1 -N8 "$png" | tr -d ' \n')
[ "$magic" = 89504e470d0a1a0a ] || fail "$png is not a PNG (starts $magic)"

# --req picks panel (b)'s request; one that is not an AHCI one is an error.
out=$(scripts/trace-plot "$dir/off.json" "$dir/on.json" -o "$png" --req 3) || fail "--req 3: status $?"
printf '%s\n' "$out" | tail -n 1 | grep -q ' stalled_req=3 stalled_wait_ms=450.000 ' || fail "--req 3: $out"
scripts/trace-plot "$dir/off.json" "$dir/on.json" -o "$png" --req 42 >/dev/null 2>"$dir/err" &&
    fail "--req 42 (none) succeeded"
[ "$(wc -l <"$dir/err")" = 1 ] || fail "--req 42: $(cat "$dir/err")"
echo "trace-plot-test: ok"
