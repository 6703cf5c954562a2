#!/usr/bin/env bash
# Run a command inside a KVM-capable Linux ("L1") emulated by QEMU TCG.
#
#   scripts/nested.sh [--timeout S] [--mem MB] [--disk IMG]...
#                     [--file SRC[:DEST]]... [--log FILE] -- CMD [ARGS...]
#
# The development and CI machines have no hardware-backed /dev/kvm (at most
# kvm_pvm's, which cannot run a stock guest: scripts/kvm-usable.sh). QEMU's
# `-cpu max` emulates AMD SVM with nested paging, so Debian's kernel booted
# under TCG can load kvm-amd and offer /dev/kvm; minivmm (static) runs there
# unchanged.
#
#   --timeout S        kill QEMU after S seconds (default 600)
#   --mem MB           L1 RAM (default 2048)
#   --disk IMG         attach IMG to L1 as a raw virtio disk; in L1 the disks
#                      are /dev/vda, /dev/vdb, ... in the order given. They are
#                      real block devices, so O_DIRECT (cache=none) works on
#                      them; L1's rootfs is tmpfs, which has no O_DIRECT.
#   --file SRC[:DEST]  copy SRC (file or directory, symlinks followed) into
#                      L1 at DEST (default /payload/<basename of SRC>); SRC
#                      cannot contain ':'. Repeatable.
#   --log FILE         also write the console to FILE
#
# For debugging L1 itself: NESTED_APPEND adds to L1's kernel command line
# (e.g. "nokaslr softlockup_panic=1"), NESTED_MONITOR=PATH puts QEMU's
# monitor on a unix socket at PATH (scripts/qemu-monitor.py talks to it).
#
# L1 is `qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2` with
# Debian's kernel (scripts/guest-kernel.sh), "console=ttyS0 quiet panic=-1"
# (a panic reboots, and -no-reboot turns that into QEMU's exit). In L1, CMD
# runs from /payload with PATH=/payload:/bin, stdin/stdout/stderr on the
# console, after /dev/kvm and the disks exist. Busybox provides sh and the
# usual tools. The console is streamed to stdout as it arrives.
#
#   scripts/nested.sh --file build/tests/nested/kvm-smoke -- kvm-smoke
#
# Exit status: CMD's status, read from the marker line `nested-exit=N` that
# L1's init prints after CMD. No marker (timeout, L1 kernel panic, no
# /dev/kvm in L1, QEMU failure): 125, with one line on stderr saying why.
# A timing summary (host clock) goes to stderr at the end.
#
# The initramfs is uncompressed newc (faster to unpack under TCG). Its base
# part (busybox, modules, init) is cached in .cache/nested/ and rebuilt when
# this script, busybox or the kernel changes; the payload part is built per
# run and appended (the kernel unpacks concatenated cpio archives in order).
set -euo pipefail
shopt -s extglob

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=$root/.cache/nested

# L1 modules, in the order the user asks for them; dependencies are resolved
# from modules.dep and loaded first, built-ins are skipped.
L1_MODULES="irqbypass ccp kvm kvm-amd virtio_ring virtio virtio_pci_legacy_dev
            virtio_pci_modern_dev virtio_pci virtio_blk"

die() {
    echo "nested: $*" >&2
    exit 125
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
    exit "${1:-0}"
}

timeout_s=600
mem=2048
disks=()
files=()
log=

while [[ $# -gt 0 ]]; do
    case $1 in
    --timeout) timeout_s=${2:?--timeout needs a value}; shift 2 ;;
    --mem) mem=${2:?--mem needs a value}; shift 2 ;;
    --disk) disks+=("${2:?--disk needs a value}"); shift 2 ;;
    --file) files+=("${2:?--file needs a value}"); shift 2 ;;
    --log) log=${2:?--log needs a value}; shift 2 ;;
    -h | --help) usage 0 ;;
    --) shift; break ;;
    *) echo "nested: unknown option '$1' (try --help)" >&2; exit 125 ;;
    esac
done
[[ $# -gt 0 ]] || die "no command given (usage: nested.sh [options] -- CMD [ARGS...])"
[[ $timeout_s =~ ^[0-9]+$ && $timeout_s -gt 0 ]] || die "--timeout: '$timeout_s' is not a positive integer"
[[ $mem =~ ^[0-9]+$ && $mem -ge 256 ]] || die "--mem: '$mem' is not a size in MB >= 256"

for tool in qemu-system-x86_64 cpio timeout; do
    command -v "$tool" >/dev/null || die "$tool not found (make deps)"
done
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox not found (make deps: busybox-static)"
if readelf -d "$busybox" 2>/dev/null | grep -q NEEDED; then
    die "$busybox is dynamically linked; L1 needs busybox-static"
fi

vmlinuz=$("$root/scripts/guest-kernel.sh" "$root/.cache/kernel") ||
    die "could not get the kernel (scripts/guest-kernel.sh failed)"
kroot=${vmlinuz%/boot/*}
kver=${vmlinuz##*/vmlinuz-}
kmod=$kroot/lib/modules/$kver
[[ -f $kmod/modules.dep ]] || die "no $kmod/modules.dep"

# ---- Base initramfs: busybox, modules, init (cached) ------------------------
write_init() {
    cat <<'EOF'
#!/bin/busybox sh
# L1 init, written by scripts/nested.sh: load KVM, run /payload/.nested-cmd,
# print nested-exit=N, power off. Every path ends in poweroff or a panic
# (panic=-1 reboots, -no-reboot makes QEMU exit), never in a hang.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The archive has no /dev/console node (making one needs root), so the
# kernel started us without stdio: take the console now.
exec </dev/console >/dev/console 2>&1
export PATH=/payload:/bin HOME=/root TERM=dumb
up() { read -r u _ </proc/uptime; echo "$u"; }
echo "nested: L1 init up_s=$(up)"
for m in $(cat /etc/nested-modules); do
    insmod "/lib/modules/$m" || echo "nested: insmod $m failed"
done
if [ ! -c /dev/kvm ]; then
    echo "nested: FAIL no /dev/kvm in L1 (kvm-amd did not load: SVM missing?)"
    poweroff -f
    exit 1
fi
# Wait (bounded) for the virtio disks: the driver probes them as it loads,
# but do not bet on it.
n=0
for d in $(cat /payload/.nested-disks); do
    while [ ! -b "/dev/$d" ] && [ "$n" -lt 50 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ -b "/dev/$d" ] || echo "nested: warning: /dev/$d did not appear"
done
cd /payload
echo "nested: cmd start up_s=$(up)"
sh /payload/.nested-cmd
rc=$?
echo "nested: cmd done up_s=$(up) rc=$rc"
echo "nested-exit=$rc"
poweroff -f
EOF
}

# Modules to load, dependencies first, as paths relative to lib/modules/KVER.
resolve_modules() {
    local -A path_of=() deps_of=() seen=()
    local -a order=()
    local line file deps name builtin
    while IFS= read -r line; do
        file=${line%%:*}
        deps=${line#*:}
        name=${file##*/}
        name=${name%.ko*}
        name=${name//-/_}
        path_of[$name]=$file
        deps_of[$name]=$deps
    done <"$kmod/modules.dep"
    builtin=" $(sed -e 's|.*/||' -e 's|\.ko.*||' -e 's|-|_|g' "$kmod/modules.builtin" | tr '\n' ' ') "

    visit() {
        local n=${1//-/_} d dn
        local -a ds
        [[ -z ${seen[$n]:-} ]] || return 0
        seen[$n]=1
        if [[ -z ${path_of[$n]:-} ]]; then
            [[ $builtin == *" $n "* ]] && return 0
            die "module $n is neither in modules.dep nor built in"
        fi
        # modules.dep lists a module's dependencies last-loaded first.
        read -ra ds <<<"${deps_of[$n]}"
        for ((d = ${#ds[@]} - 1; d >= 0; d--)); do
            dn=${ds[d]##*/}
            visit "${dn%.ko*}"
        done
        order+=("${path_of[$n]}")
    }
    for name in $L1_MODULES; do
        visit "$name"
    done
    printf '%s\n' "${order[@]}"
}

build_base() {
    local out=$1 stage=$2 m
    mkdir -p "$stage"/{bin,dev,proc,sys,root,etc,payload,lib/modules}
    cp "$busybox" "$stage/bin/busybox"
    write_init >"$stage/init"
    chmod 755 "$stage/init"
    resolve_modules >"$stage/etc/nested-modules.paths"
    : >"$stage/etc/nested-modules"
    while IFS= read -r m; do
        case $m in
        *.ko) ;;
        *) die "module $m is compressed; busybox insmod needs plain .ko" ;;
        esac
        cp "$kmod/$m" "$stage/lib/modules/"
        echo "${m##*/}" >>"$stage/etc/nested-modules"
    done <"$stage/etc/nested-modules.paths"
    rm "$stage/etc/nested-modules.paths"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet) >"$out.$$"
    mv "$out.$$" "$out"
}

# The key is made of contents, never of paths: every git worktree has its own
# path to this script and to the kernel (through its .cache link), and
# worktrees with the same script must share one base rather than each evict
# the others'.
key=$( {
    sha256sum <"${BASH_SOURCE[0]}"
    sha256sum <"$kmod/modules.dep"
    stat -L -c '%s %Y' "$busybox" "$vmlinuz"
} | sha256sum | cut -c1-16)
base=$cache/base-$key.cpio

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nested.XXXXXX")
qpid=
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
        kill "$qpid" 2>/dev/null || true
        wait "$qpid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ ! -f $base ]]; then
    mkdir -p "$cache"
    # Old bases go, but not one another run may be about to read (a
    # worktree on another version of this script): only those unused for
    # a day.
    find "$cache" -maxdepth 1 -name 'base-*.cpio' ! -name "${base##*/}" \
        -amin +1440 -delete
    build_base "$base" "$tmp/base"
    rm -rf "$tmp/base"
fi

# ---- Payload: the files, the command, the disk names ------------------------
stage=$tmp/payload
mkdir -p "$stage/payload"
for spec in "${files[@]}"; do
    src=${spec%%:*}
    dest=/payload/$(basename "$src")
    [[ $spec == *:* ]] && dest=${spec#*:}
    [[ -e $src ]] || die "--file: $src does not exist"
    [[ $dest == /* ]] || die "--file: destination '$dest' is not absolute"
    mkdir -p "$stage$(dirname "$dest")"
    cp -rL --preserve=mode "$src" "$stage$dest"
done

# One shell word per argument, in single quotes, for busybox sh.
sq="'" sq_escaped="'\\''"
cmdline=
for arg in "$@"; do
    cmdline+="'${arg//"$sq"/"$sq_escaped"}' "
done
printf '%s\n' "$cmdline" >"$stage/payload/.nested-cmd"

drive_args=()
names=
letters=abcdefghijklmnopqrstuvwxyz
i=0
for img in "${disks[@]}"; do
    [[ -f $img || -b $img ]] || die "--disk: $img is not a file or block device"
    [[ $i -lt 26 ]] || die "--disk: at most 26 disks"
    # cache=none needs O_DIRECT on the host side too; tmpfs has none.
    cache_mode=none
    [[ $(stat -f -c %T "$img") == tmpfs ]] && cache_mode=writeback
    # QEMU's option syntax: a comma in a value is written twice.
    drive_args+=(-drive "file=${img//,/,,},if=virtio,format=raw,cache=$cache_mode")
    names+="vd${letters:i:1} "
    i=$((i + 1))
done
printf '%s\n' "$names" >"$stage/payload/.nested-disks"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc -R 0:0 --quiet) >"$tmp/payload.cpio"
cat "$base" "$tmp/payload.cpio" >"$tmp/initrd.cpio"
rm -rf "$stage" "$tmp/payload.cpio"

# ---- Boot L1 and stream its console -----------------------------------------
if [[ -n $log ]]; then
    : >"$log" || die "cannot write --log $log"
fi
mkfifo "$tmp/console"
[[ -z ${NESTED_MONITOR:-} ]] || rm -f "$NESTED_MONITOR" # QEMU will not reuse it
start=$EPOCHREALTIME
timeout -k 5 "$timeout_s" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -m "$mem" -smp 2 \
    -nographic -no-reboot -nic none \
    -kernel "$vmlinuz" -initrd "$tmp/initrd.cpio" \
    -append "console=ttyS0 quiet panic=-1${NESTED_APPEND:+ $NESTED_APPEND}" \
    ${NESTED_MONITOR:+-monitor "unix:$NESTED_MONITOR,server=on,wait=off"} \
    "${drive_args[@]}" </dev/null >"$tmp/console" 2>&1 &
qpid=$!

since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

exit_code='' t_init='' t_cmd='' t_done='' why=''
read_opts=()
while true; do
    line=
    if IFS= read -r "${read_opts[@]}" line; then
        :
    elif [[ $? -gt 128 ]]; then
        # L1 printed its marker but did not power off: stop it ourselves.
        kill "$qpid" 2>/dev/null || true
        break
    elif [[ -z $line ]]; then
        break
    fi
    # SeaBIOS resets and clears the terminal: keep that off the user's.
    line=${line%%+($'\r')}
    line=${line//$'\e'c/}
    line=${line//$'\e'\[*([0-9;?])[a-zA-Z]/}
    printf '%s\n' "$line"
    [[ -z $log ]] || printf '%s\n' "$line" >>"$log"
    case $line in
    *"nested: L1 init "*) t_init=$EPOCHREALTIME ;;
    *"nested: cmd start "*) t_cmd=$EPOCHREALTIME ;;
    *"nested: cmd done "*) t_done=$EPOCHREALTIME ;;
    *"nested: FAIL no /dev/kvm"*) why+="${why:+; }no /dev/kvm in L1 (kvm-amd did not load)" ;;
    *"Kernel panic - not syncing"*) why+="${why:+; }L1 kernel panic: ${line#*not syncing: }" ;;
    esac
    if [[ -z $exit_code && $line =~ nested-exit=([0-9]+)$ ]]; then
        exit_code=${BASH_REMATCH[1]}
        read_opts=(-t 20)
    fi
done <"$tmp/console"
qrc=0
wait "$qpid" || qrc=$?
qpid=
end=$EPOCHREALTIME

summary="nested: total $(since "$start" "$end") s"
[[ -z $t_init ]] || summary+=", L1 init after $(since "$start" "$t_init") s"
[[ -z $t_init || -z $t_cmd ]] || summary+=", modules+disks $(since "$t_init" "$t_cmd") s"
[[ -z $t_cmd || -z $t_done ]] || summary+=", CMD $(since "$t_cmd" "$t_done") s"
echo "$summary (host clock)" >&2
[[ -z $log ]] || echo "$summary (host clock)" >>"$log"

if [[ -n $exit_code ]]; then
    exit "$exit_code"
fi
if [[ $qrc -eq 124 || $qrc -eq 137 ]]; then
    why="timed out after $timeout_s s${why:+ ($why)}"
elif [[ -z $why ]]; then
    why="QEMU exited with status $qrc before L1 printed nested-exit"
fi
echo "nested: no exit marker: $why" >&2
exit 125
