#!/bin/sh
# Boot the Linux test guest on minivmm once per notify-on-SQE setting and
# vCPU count (so one nested L1 boot serves several guest boots).
# scripts/run-guest.sh runs this either on the host (with /dev/kvm) or inside
# the nested harness's L1 (busybox sh), so it is plain POSIX sh.
#
#   guest-run.sh --minivmm BIN --kernel VMLINUZ --initrd CPIO \
#                --sata DISK --virtio DISK --append CMDLINE \
#                [--timeout S] [--notify off,on] [--cpus 1,2]
#                [--opts "MINIVMM OPTIONS"]
#                [--trace-dir DIR [--trace-opts ",events=GLOB,size=N"]
#                 [--trace-tar DEV]]
#
# --cpus takes a comma list of vCPU counts (default 1); --opts is added to
# every minivmm command line, split into words (e.g. "--acpi off").
# --trace-dir DIR traces each run: minivmm --trace DIR/trace-NAME.json, NAME
# the run's notify value (off, on), with "-cpusC" added when --cpus lists
# more than one count; --trace-opts is appended to that --trace spec.
# --trace-tar DEV then writes DIR, as a tar archive, onto DEV: inside the
# nested harness's L1, which shares no folder with the host, DEV is a raw
# disk that the host extracts afterwards.
#
# Each run is framed by marker lines that run-guest.sh and demo.sh parse:
#   run-guest: begin notify=X cpus=C
#   ... minivmm's output: the guest console ...
#   run-guest: end notify=X cpus=C rc=N wall_s=S.SS
# Exit status: 0 when every minivmm run exited 0 (and --trace-tar wrote
# DEV), else 1.
minivmm='' kernel='' initrd='' sata='' virtio='' append='' timeout_s=600
notify=on cpus=1 opts='' trace_dir='' trace_opts='' trace_tar=''

usage() {
    echo "guest-run: $1 (see the header of $0)" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage "$1 needs a value"
    case $1 in
    --minivmm) minivmm=$2 ;;
    --kernel) kernel=$2 ;;
    --initrd) initrd=$2 ;;
    --sata) sata=$2 ;;
    --virtio) virtio=$2 ;;
    --append) append=$2 ;;
    --timeout) timeout_s=$2 ;;
    --notify) notify=$2 ;;
    --cpus) cpus=$2 ;;
    --opts) opts=$2 ;;
    --trace-dir) trace_dir=$2 ;;
    --trace-opts) trace_opts=$2 ;;
    --trace-tar) trace_tar=$2 ;;
    *) usage "unknown option $1" ;;
    esac
    shift 2
done
for v in minivmm kernel initrd sata virtio; do
    eval "[ -n \"\$$v\" ]" || usage "--$v is required"
done
if [ -n "$trace_dir" ]; then
    # --trace takes FILE up to the first comma.
    case $trace_dir in
    *,*) usage "--trace-dir cannot contain a comma" ;;
    esac
    mkdir -p "$trace_dir" || usage "cannot make --trace-dir $trace_dir"
elif [ -n "$trace_opts$trace_tar" ]; then
    usage "--trace-opts and --trace-tar need --trace-dir"
fi

# /proc/uptime: busybox date has no sub-second format.
uptime_s() {
    read -r up rest </proc/uptime
    echo "$up"
}

status=0
for n in $(echo "$notify" | tr ',' ' '); do
    for c in $(echo "$cpus" | tr ',' ' '); do
        echo "run-guest: begin notify=$n cpus=$c"
        # "set --" builds the optional --trace argument without eval.
        set --
        if [ -n "$trace_dir" ]; then
            name=$n
            [ "$cpus" = "$c" ] || name=$n-cpus$c
            set -- --trace "$trace_dir/trace-$name.json$trace_opts"
        fi
        t0=$(uptime_s)
        # stdin from /dev/null: the guest needs no input, and minivmm must
        # not take over the caller's terminal. $opts is split on purpose.
        # shellcheck disable=SC2086
        timeout "$timeout_s" "$minivmm" --kernel "$kernel" --initrd "$initrd" \
            --append "$append" --memory 512M --cpus "$c" \
            --disk "sata:$sata,cache=none" \
            --disk "virtio:$virtio,cache=none,iothread=0" --iothreads 1 \
            --aio-notify-on-sqe "$n" --serial stdio $opts "$@" </dev/null 2>&1
        rc=$?
        t1=$(uptime_s)
        wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
        echo "run-guest: end notify=$n cpus=$c rc=$rc wall_s=$wall"
        [ "$rc" -eq 0 ] || status=1
    done
done
if [ -n "$trace_tar" ]; then
    # sync: L1 powers off right after this script, without flushing DEV.
    if tar -cf "$trace_tar" -C "$trace_dir" . && sync; then
        echo "run-guest: traces written to $trace_tar"
    else
        echo "run-guest: cannot write the traces to $trace_tar"
        status=1
    fi
fi
exit "$status"
