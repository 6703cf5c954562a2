# shellcheck shell=sh
# What the trace-script tests share: a scratch directory, fail(), and the
# pieces of a hand-made trace in util/trace-json.c's format. Sourced by
# tests/scripts/trace-*-test.sh with $name set to the test's name.
command -v python3 >/dev/null || { echo "$name: skipped (no python3)"; exit 0; }

dir=$(mktemp -d "/tmp/$name.XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "$name: FAIL: $*"; exit 1; }

# x NAME TID TS_NS REQ [ARGS]: one slice, as util/trace-json.c writes it.
x() {
    printf ',\n{"name":"%s","cat":"minivmm","ph":"X","ts":%d.%03d,"dur":0.001,"pid":1,"tid":%d,"args":{"req":%d,"ts_ns":%d%s}}' \
        "$1" $(($3 / 1000)) $(($3 % 1000)) "$2" "$4" "$3" "${5:-}"
}
# header: the file's start and thread 1..3 named main, vcpu0, iothread0.
header() {
    printf '{"traceEvents":[\n{"name":"process_name","ph":"M","pid":1,"tid":1,"args":{"name":"minivmm"}}'
    printf ',\n{"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{"name":"main"}}'
    printf ',\n{"name":"thread_name","ph":"M","pid":1,"tid":2,"args":{"name":"vcpu0"}}'
    printf ',\n{"name":"thread_name","ph":"M","pid":1,"tid":3,"args":{"name":"iothread0"}}'
}
footer() {
    printf '\n],\n"displayTimeUnit":"ns",\n"otherData":{"format":"minivmm-trace-1","clock":"CLOCK_MONOTONIC","dropped":0,"events":"*"}}\n'
}
