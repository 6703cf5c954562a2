#!/bin/sh
# scripts/trace-report on a hand-made trace: an AHCI request and a virtio
# one, each from its vCPU exit to its interrupt, plus a record of no request.
# The numbers are chosen so that every latency is exact in ms.
set -u
cd "$(dirname "$0")/../.."
name=trace-report-test
. tests/scripts/trace-fixture.sh

{
    header
    x vcpu_exit    2 1000000 1 ',"kind":0,"addr":4273930552,"len":4,"write":1'
    x ahci_cmd     2 1001000 1 ',"port":0,"slot":0,"cmd":37,"lba":0,"count":8'
    x blk_submit   2 1002000 1 ',"offset":0,"bytes":4096,"op":"read","ctx":"main"'
    x aio_add_sqe  2 1003000 1 ',"asleep":1,"kick":1,"ctx":"main"'
    x loop_wake    1 1010000 0 ',"slept_ns":5000,"ctx":"main","why":"notify"'
    x sqe_submit   1 1253000 1 ',"ctx":"main"'
    x cqe_dispatch 1 1400000 1 ',"res":4096,"ctx":"main"'
    x ahci_done    1 1401000 1 ',"port":0,"slot":0,"status":80,"fis":"sdb"'
    x irq          1 1500000 1 ',"vector":33,"level":1,"how":"irqfd"'
    x vcpu_exit    2 2000000 2 ',"kind":0,"addr":4273934336,"len":2,"write":1'
    x virtq_pop    1 2001000 2 ',"queue":0,"head":0,"dev":"virtio0"'
    x aio_add_sqe  1 2002000 2 ',"asleep":0,"kick":0,"ctx":"main"'
    x sqe_submit   1 2004000 2 ',"ctx":"main"'
    x virtio_done  1 2300000 2 ',"queue":0,"head":0,"status":0,"len":4097,"dev":"virtio0"'
    x irq          1 2750000 2 ',"vector":34,"level":1,"how":"irqfd"'
    footer
} > "$dir/t.json"

out=$(scripts/trace-report "$dir/t.json") || fail "exit status $? on a good trace"
want="trace-report: ahci_n=1 ahci_e2e_p50_ms=0.500 ahci_submit_wait_p50_ms=0.250 virtio_n=1 virtio_e2e_p50_ms=0.750 virtio_submit_wait_p50_ms=0.002"
[ "$(printf '%s\n' "$out" | tail -n 1)" = "$want" ] || fail "last line: $(printf '%s\n' "$out" | tail -n 1)"
# The median AHCI request's path: its steps in time order, on their threads.
printf '%s\n' "$out" | grep -q '^ *500\.000 *99\.000  main  *irq  *vector=33 level=1 how=irqfd$' ||
    fail "no irq step in: $out"

out=$(scripts/trace-report "$dir/t.json" --req 2) || fail "--req 2: exit status $?"
printf '%s\n' "$out" | grep -q '^request 2 (virtio, end-to-end 0.750 ms):$' || fail "--req 2: $out"
scripts/trace-report "$dir/t.json" --req 3 >/dev/null 2>"$dir/err" && fail "--req 3 (none) succeeded"

# Errors: one line on stderr, status 1.
for bad in "$dir/missing.json" /etc/hostname "$dir/other.json"; do
    echo '{"traceEvents":[]}' > "$dir/other.json"
    scripts/trace-report "$bad" >/dev/null 2>"$dir/err"
    status=$?
    [ $status = 1 ] || fail "$bad: exit status $status"
    [ "$(wc -l < "$dir/err")" = 1 ] && grep -q '^trace-report: ' "$dir/err" || fail "$bad: $(cat "$dir/err")"
done
echo "trace-report-test: ok"
