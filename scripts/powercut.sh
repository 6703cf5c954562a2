#!/usr/bin/env bash
# Power-cut test: does every write the guest was told is durable survive
# the sudden death of the whole machine under it?
#
#   scripts/powercut.sh        (or: make powercut; N=20 MODES=writeback,none)
#
# What: minivmm runs the Linux test guest with two SATA (AHCI) and two
# virtio-blk disks, each with a serial. The guest (guest/init,
# iotest.powercut=...) writes known patterns on all four at once and, each
# time an fsync has returned, prints "powercut: durable disk=ID seq=N":
#   sata0, virtio0          bare disks: batch N = 8 pattern blocks of 4 KiB
#                           at block (N-1)*8, buffered writes, then fsync
#   serial:pc-sata-ext4,    ext4 (made here with mkfs.ext4): file d/fN (two
#   serial:pc-virtio-ext4   pattern blocks) fsynced, "seq=N" appended to the
#                           file log and fsynced, directory d fsynced
# The raw disks are named by position and the ext4 ones by serial, so one
# run exercises both kinds of disk identity.
#
# How: one nested L1 boot per run (scripts/nested.sh). Once the host has
# seen a durable line from every disk, it waits a random 0..KILL_MAX s and
# kills L1's QEMU with SIGKILL: L1's page cache, minivmm and the guest
# vanish mid-write. What is left is what L1's virtio disks held, i.e. the
# image files here: nested.sh attaches them cache=none (O_DIRECT) since they
# live on a real filesystem, and a write L1 had completed is then in the host
# kernel, which the kill does not touch. Then, for each disk, the host
# checks that everything announced durable is there:
#   raw:  the image's blocks for batches 1..N equal the pattern, byte for byte
#   ext4: on a copy, e2fsck -fy (replays the journal; exit status 4 or more
#         is a damaged filesystem), then debugfs (no mount) dumps d/ and log:
#         f1..fN equal the pattern, log starts with seq=1..seq=N
# A run also checks that sata0 and virtio0 resolved to the disks with the
# serials given to minivmm's first SATA and first virtio disk.
#
# What each mode can show. cache=writeback: minivmm's writes sit in L1's
# page cache until a guest FLUSH makes it fdatasync, so a VMM that drops or
# mis-orders flushes loses data here (a minivmm built with FLUSH as an
# io_uring NOP lost 38 announced batches and files in one run).
# cache=none: the writes go O_DIRECT to L1's virtio disk, i.e. straight to
# QEMU and the host kernel, which a killed process cannot lose, flush or no
# flush (the same NOP build lost nothing): this mode checks that minivmm
# never completes a write to the guest before it is written. A flush missing
# there would show only after a host power cut, which this test does not
# make.
#
# Prints per run one line
#   powercut: mode=M run=I kill_after_s=S durable=sata0:N,... lost=K [why]
# then per mode "powercut: mode=M runs=R lost=K invalid=J", and last
#   powercut: runs=R lost=K
# lost counts batches and files announced durable but missing or wrong; an
# invalid run is one that did not get as far as a power cut with every disk
# announcing (L1 or the guest failed, an identity resolved wrongly). Exit 0
# only when lost=0 and no run was invalid. Each run's console log is kept in
# .cache/powercut/MODE-I/, with the images when the run lost something or
# was invalid (printed).
#
# Environment: N (runs per mode, default 20), MODES (minivmm cache= modes,
# default writeback,none), MIB (image size, default 64), KILL_MAX (seconds,
# default 6), TIMEOUT (seconds until a run's L1 is given up, default 400),
# MINIVMM_STATIC, GUEST_INITRAMFS. Not in `make check` or CI: each run is a
# full nested boot (a minute or more on a 2-core machine).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
nruns=${N:-20}
modes=${MODES:-writeback,none}
mib=${MIB:-64}
kill_max=${KILL_MAX:-6}
timeout_s=${TIMEOUT:-400}

die() {
    echo "powercut: $*" >&2
    exit 2
}

[[ $nruns =~ ^[1-9][0-9]*$ ]] || die "N must be a positive number, not '$nruns'"
[[ $modes =~ ^(writeback|none)(,(writeback|none))*$ ]] || die "MODES is a list of writeback and none, not '$modes'"
[[ $mib =~ ^[1-9][0-9]*$ && $mib -ge 16 ]] || die "MIB must be 16 or more, not '$mib'"
[[ $kill_max =~ ^[0-9]+$ ]] || die "KILL_MAX must be whole seconds, not '$kill_max'"
for tool in mkfs.ext4 e2fsck debugfs pgrep; do
    command -v "$tool" >/dev/null || die "no $tool (apt-get install e2fsprogs procps)"
done
minivmm=${MINIVMM_STATIC:-$root/build/minivmm-static}
initramfs=${GUEST_INITRAMFS:-$root/build/guest/initramfs.cpio}
[[ -x $minivmm ]] || die "no $minivmm (make build/minivmm-static)"
[[ -f $initramfs ]] || die "no $initramfs (make guest)"
vmlinuz=$("$root/scripts/guest-kernel.sh" "$root/.cache/kernel") ||
    die "no guest kernel (scripts/guest-kernel.sh failed)"

# Images on a real filesystem: on tmpfs nested.sh would fall back to
# cache=writeback for L1's disks, and tmpfs has no O_DIRECT for minivmm's
# cache=none inside L1 either way it is reached.
work=$root/.cache/powercut
mkdir -p "$work"
[[ $(stat -f -c %T "$work") != tmpfs ]] || die "$work is on tmpfs; it must be a real filesystem"

# The four disks, in the order L1 sees them (/dev/vda..vdd) and minivmm
# attaches them: SATA ports 0 and 1, then virtio-blk in PCI order.
#   name        minivmm disk      serial           guest identity         kind
disks=(
    "sata-raw    sata   pc-sata-raw      sata0                  raw"
    "sata-ext4   sata   pc-sata-ext4     serial:pc-sata-ext4    ext4"
    "virtio-raw  virtio pc-virtio-raw    virtio0                raw"
    "virtio-ext4 virtio pc-virtio-ext4   serial:pc-virtio-ext4  ext4"
)

# pattern ID SEQ N: the bytes guest/init's pattern() writes (same printf).
pattern() {
    local b
    for ((b = 0; b < $3; b++)); do
        printf '%-4095s\n' "powercut token=$token disk=$1 seq=$2 blk=$b"
    done
}

# make_images DIR: zeroed raw images; ext4 ones with an empty directory d
# (made here, so the guest's first durable file does not hang on a mkdir
# that was never fsynced).
make_images() {
    local dir=$1 spec name kind
    mkdir -p "$dir/skel/d"
    for spec in "${disks[@]}"; do
        read -r name _ _ _ kind <<<"$spec"
        rm -f "$dir/$name.img"
        truncate -s "${mib}M" "$dir/$name.img"
        if [[ $kind == ext4 ]]; then
            mkfs.ext4 -q -F -d "$dir/skel" "$dir/$name.img" >/dev/null
        fi
    done
}

# check_raw IMG ID N: how many of batches 1..N are not as written.
check_raw() {
    local img=$1 id=$2 n=$3 s bad=0
    pattern_batches "$id" "$n" >"${img%.img}.expect"
    if cmp -s -n $((n * 32768)) "${img%.img}.expect" "$img"; then
        echo 0
        return
    fi
    # Something is missing: find out which batches, and show the first.
    for ((s = 1; s <= n; s++)); do
        if ! cmp -s <(dd if="$img" bs=32768 skip=$((s - 1)) count=1 2>/dev/null) \
            <(pattern "$id" "$s" 8); then
            [[ $bad -gt 0 ]] || echo "powercut: LOST $id batch seq=$s of $n: block $(((s - 1) * 8)) holds '$(dd if="$img" bs=4096 skip=$(((s - 1) * 8)) count=1 2>/dev/null | head -c 80 | tr -c '[:print:]' '.')'" >&2
            bad=$((bad + 1))
        fi
    done
    echo "$bad"
}
pattern_batches() {
    local s
    for ((s = 1; s <= $2; s++)); do
        pattern "$1" "$s" 8
    done
}

# check_ext4 IMG ID N: how many of files f1..fN (and log lines) are missing
# or wrong, after e2fsck has replayed the journal on a copy.
check_ext4() {
    local img=$1 id=$2 n=$3 base=${1%.img} s bad=0 rc=0 fixes
    local copy=$base.fsck.img out=$base.dump fsck_log=$base.e2fsck.log
    cp --sparse=always "$img" "$copy"
    e2fsck -fy "$copy" >"$fsck_log" 2>&1 || rc=$?
    if [[ $rc -ge 4 ]]; then
        echo "powercut: LOST $id: e2fsck exit $rc (filesystem left damaged; $fsck_log)" >&2
        echo "$n"
        return
    fi
    rm -rf "$out"
    mkdir -p "$out"
    debugfs -R "rdump /d $out" "$copy" >/dev/null 2>&1 || true
    debugfs -R "dump /log $out/log" "$copy" >/dev/null 2>&1 || true
    for ((s = 1; s <= n; s++)); do
        if ! cmp -s "$out/d/f$s" <(pattern "$id" "$s" 2); then
            [[ $bad -gt 0 ]] || echo "powercut: LOST $id file d/f$s of $n: $(if [[ -f $out/d/f$s ]]; then echo "$(stat -c %s "$out/d/f$s") bytes, '$(head -c 80 "$out/d/f$s" | tr -c '[:print:]' '.')'"; else echo "missing"; fi)" >&2
            bad=$((bad + 1))
        fi
    done
    # The log: its first N lines must be seq=1..seq=N.
    if ! cmp -s <(head -n "$n" "$out/log" 2>/dev/null) <(seq -f 'seq=%g' 1 "$n"); then
        echo "powercut: LOST $id log: its first $n lines are not seq=1..$n (it has $(wc -l 2>/dev/null <"$out/log" || echo 0) lines)" >&2
        bad=$((bad + 1))
    fi
    # e2fsck exit 1: it changed something. After a journal replay that is
    # expected (the superblock's free counts are not journalled); whatever
    # else it fixed is worth a look, so the run line says so.
    fixes=$(($(grep -c '^Fix? yes' "$fsck_log" || true) -
        $(grep -cE '^Free (blocks|inodes) count wrong' "$fsck_log" || true)))
    [[ $rc -eq 0 ]] || echo " $id:e2fsck=$rc,other_fixes=$fixes" >>"$rdir/notes"
    rm -f "$copy"
    echo "$bad"
}

# one_run MODE I: boot, cut the power, check. Sets run_lost, run_valid.
one_run() {
    local mode=$1 i=$2 log npid tpid qpid='' delay='' spec name serial id kind
    local n t0 all lost pc='' why='' durable=''
    rdir=$work/$mode-$i
    rm -rf "$rdir"
    mkdir -p "$rdir"
    log=$rdir/console.log
    token=$(date +%s)-$RANDOM-$mode-$i
    make_images "$rdir"
    for spec in "${disks[@]}"; do
        read -r _ _ _ id kind <<<"$spec"
        pc+=${pc:+,}$id:$kind
    done
    # The L1 command: minivmm with the four disks (L1's vda..vdd).
    cat >"$rdir/run.sh" <<EOF
exec /payload/minivmm --kernel /payload/vmlinuz --initrd /payload/initramfs.cpio \\
    --memory 512M --cpus 2 --iothreads 1 --serial stdio \\
    --disk sata:/dev/vda,cache=$mode,serial=pc-sata-raw \\
    --disk sata:/dev/vdb,cache=$mode,serial=pc-sata-ext4 \\
    --disk virtio:/dev/vdc,cache=$mode,serial=pc-virtio-raw,iothread=0 \\
    --disk virtio:/dev/vdd,cache=$mode,serial=pc-virtio-ext4 \\
    --append "console=ttyS0 quiet panic=-1 iotest.powercut=$pc iotest.token=$token iotest.timeout=$((timeout_s - 30))" \\
    </dev/null 2>&1
EOF
    t0=$SECONDS
    : >"$log" # before the watcher below reads it
    "$root/scripts/nested.sh" --timeout "$timeout_s" \
        --disk "$rdir/sata-raw.img" --disk "$rdir/sata-ext4.img" \
        --disk "$rdir/virtio-raw.img" --disk "$rdir/virtio-ext4.img" \
        --file "$minivmm:/payload/minivmm" --file "$vmlinuz:/payload/vmlinuz" \
        --file "$initramfs:/payload/initramfs.cpio" \
        --file "$rdir/run.sh:/payload/run.sh" -- sh /payload/run.sh \
        >"$log" 2>&1 &
    npid=$!

    # Wait until every disk has announced a durable write (or L1 is gone).
    all=0
    while kill -0 "$npid" 2>/dev/null; do
        all=1
        for spec in "${disks[@]}"; do
            read -r _ _ _ id _ <<<"$spec"
            grep -q "powercut: durable disk=$id seq=" "$log" || all=0
        done
        [[ $all -eq 0 ]] || break
        sleep 0.2
    done
    if [[ $all -eq 1 ]]; then
        # The plug: QEMU is the child of nested.sh's timeout(1).
        delay=$(awk -v r="$RANDOM" -v m="$kill_max" 'BEGIN { printf "%.1f", r / 32768 * m }')
        sleep "$delay"
        tpid=$(pgrep -P "$npid" -x timeout || true)
        qpid=$([[ -z $tpid ]] || pgrep -P "$tpid" -f qemu-system-x86_64 || true)
        # (timeout(1) then dies of the same signal, and nested.sh reports
        # "no exit marker: timed out": expected here.)
        if [[ -n $qpid && $(ps -o comm= -p "$qpid") == qemu-system-x86* ]] &&
            kill -9 "$qpid" 2>/dev/null; then
            :
        else
            # L1 ended by itself (minivmm or the guest died: see the log).
            why+=" L1-ended-before-the-cut"
            qpid=
        fi
    else
        why+=" not-every-disk-announced"
    fi
    wait "$npid" 2>/dev/null || true

    # Every durable line that reached the host was printed before the kill.
    run_lost=0
    for spec in "${disks[@]}"; do
        read -r name _ serial id kind <<<"$spec"
        n=$(sed -n "s/.*powercut: durable disk=$id seq=\\([0-9]*\\)\$/\\1/p" "$log" | sort -n | tail -n 1)
        n=${n:-0}
        durable+=${durable:+,}$id:$n
        [[ $n -gt 0 ]] || continue
        if [[ $kind == raw ]]; then
            # A position must have found the disk with the matching serial.
            grep -q "guest: disk $id = [a-z]* serial=$serial " "$log" ||
                why+=" $id-is-not-$serial"
            lost=$(check_raw "$rdir/$name.img" "$id" "$n")
        else
            lost=$(check_ext4 "$rdir/$name.img" "$id" "$n")
        fi
        run_lost=$((run_lost + lost))
    done
    run_valid=1
    [[ -z $why ]] || run_valid=0
    echo "powercut: mode=$mode run=$i killed_qemu_pid=${qpid:--} kill_after_s=${delay:--} l1_s=$((SECONDS - t0)) durable=$durable lost=$run_lost$(if [[ -f $rdir/notes ]]; then echo " notes:$(tr -d '\n' <"$rdir/notes")"; fi)${why:+ invalid:$why}"
    if [[ $run_lost -eq 0 && $run_valid -eq 1 ]]; then
        # The console log stays (which device each identity was, the kill).
        find "$rdir" -mindepth 1 ! -name console.log -exec rm -rf {} +
    else
        echo "powercut: kept $rdir (console.log, images)"
    fi
}

total_runs=0 total_lost=0 total_invalid=0
for mode in ${modes//,/ }; do
    mode_lost=0 mode_invalid=0
    for ((r = 1; r <= nruns; r++)); do
        one_run "$mode" "$r"
        mode_lost=$((mode_lost + run_lost))
        [[ $run_valid -eq 1 ]] || mode_invalid=$((mode_invalid + 1))
    done
    echo "powercut: mode=$mode runs=$nruns lost=$mode_lost invalid=$mode_invalid"
    total_runs=$((total_runs + nruns))
    total_lost=$((total_lost + mode_lost))
    total_invalid=$((total_invalid + mode_invalid))
done
echo "powercut: runs=$total_runs lost=$total_lost"
[[ $total_lost -eq 0 && $total_invalid -eq 0 ]]
