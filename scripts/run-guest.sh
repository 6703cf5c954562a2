#!/usr/bin/env bash
# Boot the Linux test guest on minivmm: Debian's kernel, build/guest's
# initramfs (iotest), one SATA (AHCI) disk and one virtio-blk disk on an
# IOThread, both filled with iotest's pattern.
#
#   scripts/run-guest.sh [--mib N] [--check] [--notify on|off|off,on]
#                        [--cpus L] [--opts "..."] [--append "..."]
#                        [--timeout S] [--mode auto|kvm|nested] [--log FILE]
#                        [--trace-dir DIR [--trace-opts ",events=G,size=N"]]
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
#   --trace-dir DIR  trace each run (minivmm --trace) into DIR/trace-NAME.json,
#                NAME the notify value, "-cpusC" added when --cpus lists more
#                than one count (tests/nested/guest-run.sh); nested, the files
#                come back from L1 on a raw disk as a tar archive
#   --trace-opts S  appended to each --trace spec, e.g. ",events=ahci_*,size=N"
#
# Environment: MINIVMM (kvm mode, default build/minivmm), MINIVMM_STATIC
# (nested mode, default build/minivmm-static), GUEST_INITRAMFS (default
# build/guest/initramfs.cpio), IOTEST (default build/guest/iotest).
# tests/nested/minivmm-qemu.sh can stand in for MINIVMM to test the scripts
# (not with --trace-dir: QEMU writes no minivmm trace).
#
# The images live in .cache/run-guest/, on a real filesystem (cache=none
# needs O_DIRECT, which tmpfs lacks), are made at exactly N MiB and reused.
# The console is streamed to stdout; the last lines are one verdict per run
# (with --trace-dir, each followed by its trace file's name and size).
# Exit status 0 only when every run's minivmm exited 0, its guest printed
# "guest: ok" and (with --trace-dir) its trace file arrived; 125 when the nested L1 itself never reported (froze, timed
# out), else 1.
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "run-guest: $*" >&2
    exit 1
}

mib=16 check=0 notify=on timeout_s=300 mode=auto log='' cpus=1 opts='' extra=''
trace_dir='' trace_opts=''
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
    --trace-dir) trace_dir=${2:?--trace-dir needs a value}; shift ;;
    --trace-opts) trace_opts=${2?--trace-opts needs a value}; shift ;;
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
if [[ -n $trace_dir ]]; then
    [[ $trace_dir != *,* ]] || die "--trace-dir cannot contain a comma (--trace FILE ends at one)"
    mkdir -p "$trace_dir" || die "cannot make --trace-dir $trace_dir"
    trace_dir=$(cd "$trace_dir" && pwd)
elif [[ -n $trace_opts ]]; then
    die "--trace-opts needs --trace-dir"
fi

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

# A run's trace file (tests/nested/guest-run.sh names them).
trace_file() {
    local name=$1
    [[ $cpus == "$2" ]] || name+=-cpus$2
    echo "$trace_dir/trace-$name.json"
}
if [[ -n $trace_dir ]]; then
    # An earlier run's file must not pass for this run's.
    for n in ${notify//,/ }; do
        for c in ${cpus//,/ }; do
            rm -f "$(trace_file "$n" "$c")"
        done
    done
fi

# ---- Run: the same runner script, here or inside L1 -------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/run-guest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
out=$tmp/console.log
runner=$root/tests/nested/guest-run.sh
echo "run-guest: mode=$mode mib=$mib check=$check notify=$notify cpus=$cpus"
t0=$EPOCHREALTIME
rc=0
if [[ $mode == kvm ]]; then
    trace_args=()
    [[ -z $trace_dir ]] || trace_args=(--trace-dir "$trace_dir" --trace-opts "$trace_opts")
    sh "$runner" --minivmm "$minivmm" --kernel "$vmlinuz" \
        --initrd "$initramfs" --sata "$sata_img" --virtio "$virtio_img" \
        --append "$append" --timeout "$timeout_s" --notify "$notify" \
        --cpus "$cpus" --opts "$opts" "${trace_args[@]}" |
        tr -d '\r' | tee "$out" || rc=$?
else
    # Inside L1 the images are virtio disks: /dev/vda, /dev/vdb, and for the
    # traces /dev/vdc. L1 writes them to its RAM (tmpfs), then as a tar
    # archive onto vdc, so they cannot outgrow L1's memory: a sparse image
    # of that size (nested.sh's default 2048 MB) always holds them.
    disk_args=() trace_args=()
    if [[ -n $trace_dir ]]; then
        truncate -s 2048M "$tmp/traces.tar"
        disk_args=(--disk "$tmp/traces.tar")
        trace_args=(--trace-dir /payload/trace --trace-opts "$trace_opts"
            --trace-tar /dev/vdc)
    fi
    "$root/scripts/nested.sh" --timeout $((timeout_s * nruns + 120)) \
        --disk "$sata_img" --disk "$virtio_img" "${disk_args[@]}" \
        --file "$minivmm:/payload/minivmm" --file "$vmlinuz:/payload/vmlinuz" \
        --file "$initramfs:/payload/initramfs.cpio" \
        --file "$runner:/payload/guest-run.sh" -- \
        sh /payload/guest-run.sh --minivmm /payload/minivmm \
        --kernel /payload/vmlinuz --initrd /payload/initramfs.cpio \
        --sata /dev/vda --virtio /dev/vdb --append "$append" \
        --timeout "$timeout_s" --notify "$notify" --cpus "$cpus" \
        --opts "$opts" "${trace_args[@]}" | tee "$out" || rc=$?
    # All zeros (L1 never got to the tar) extracts to nothing: the check
    # below then names the missing files.
    if [[ -n $trace_dir ]]; then
        tar -xf "$tmp/traces.tar" -C "$trace_dir" ||
            echo "run-guest: cannot extract the traces from L1's disk" >&2
    fi
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
        if [[ -n $trace_dir ]]; then
            trace=$(trace_file "$n" "$c")
            if [[ -s $trace ]]; then
                echo "run-guest: notify=$n cpus=$c: trace $trace ($(du -k "$trace" | cut -f1) KiB)"
            else
                echo "run-guest: notify=$n cpus=$c: no trace $trace"
                failed=1
            fi
        fi
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
