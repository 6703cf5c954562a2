#!/usr/bin/env bash
# Boot-to-init of the test guest on minivmm and on QEMU (-accel kvm
# -cpu host -M q35), the same kernel, initramfs and disks, interleaved, in
# one nested L1 boot (or on this machine's /dev/kvm); with MIB=N, also
# iotest's N MiB on each disk, the same comparison for the disks.
#
#   scripts/boot-time.sh [PAIRS]       (or: make bench-boot, PAIRS=3)
#   MIB=128 scripts/boot-time.sh 5     (or: make bench-guest, PAIRS=5)
#
# A pair is one minivmm boot then one QEMU boot. Boot-to-init is the
# guest's own "guest: init uptime=S" (its uptime when /init started), so the
# VMM's setup before the kernel's first instruction is not counted. Prints
# one line per boot, then
#   boot-time: minivmm_init_s=MED qemu_init_s=MED ratio=R pairs=N
#              minivmm_range=MIN..MAX qemu_range=MIN..MAX     (one line)
# MED are medians, ratio = minivmm median / QEMU median (the goal of issue
# 12 is 0.6 or less). Exit 0 when every boot reported its init time. With
# MIB, per disk kind, from the guest's iotest lines (total_s: the whole
# read, sleeps included), also
#   guest-io: disk=virtio minivmm_s=MED qemu_s=MED ratio=R pairs=N
#             ratios=R1,R2,... (each pair's)                  (one line)
# and the same for disk=ahci. Both VMMs serve the virtio disk from an
# IOThread (minivmm --iothreads 1 iothread=0; QEMU -object iothread), the
# SATA disk from the main loop, cache=none (or CACHE), io_uring (QEMU: aio=io_uring).
#
# Carrying QEMU into L1: qemu-system-x86_64 is dynamically linked, so the
# binary, its libraries (ldd) and the loader go into the payload, and it
# runs as "LOADER --library-path LIBS qemu-system-x86_64 -L FIRMWARE";
# FIRMWARE holds the files a -kernel boot needs (SeaBIOS, linuxboot_dma,
# kvmvapic). Environment: MODE (kvm|nested, default auto), APPEND (extra
# guest kernel parameters for both, e.g. initcall_debug), OPTS (extra
# minivmm options), QEMU (default: qemu-system-x86_64 on PATH), CACHE
# (none, the default, or writeback: both VMMs' disks through the page cache
# of the machine they run on, read once before the first boot so that every
# boot finds them there; the disk then weighs nothing and the VMMs' own
# costs show).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() {
    echo "boot-time: $*" >&2
    exit 1
}

pairs=${1:-3}
[[ $pairs =~ ^[1-9][0-9]*$ ]] || die "PAIRS must be a positive number, not '$pairs'"
cache=${CACHE:-none}
[[ $cache == none || $cache == writeback ]] || die "CACHE must be none or writeback, not '$cache'"
mode=${MODE:-}
[[ -n $mode ]] || mode=$("$root/scripts/kvm-usable.sh" --mode run-guest)
[[ $mode == kvm || $mode == nested ]] || die "MODE must be kvm or nested, not '$mode'"
qemu=$(command -v "${QEMU:-qemu-system-x86_64}") || die "no QEMU (apt-get install qemu-system-x86)"
initramfs=${GUEST_INITRAMFS:-$root/build/guest/initramfs.cpio}
iotest=${IOTEST:-$root/build/guest/iotest}
if [[ $mode == kvm ]]; then
    minivmm=${MINIVMM:-$root/build/minivmm}
else
    minivmm=${MINIVMM_STATIC:-$root/build/minivmm-static}
fi
[[ -f $initramfs && -x $iotest ]] || die "no $initramfs or $iotest (make guest)"
[[ -x $minivmm ]] || die "no $minivmm (make minivmm build/minivmm-static)"
vmlinuz=$("$root/scripts/guest-kernel.sh" "$root/.cache/kernel") ||
    die "no guest kernel (scripts/guest-kernel.sh failed)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/boot-time.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# 1 MiB disks (or MIB's), refilled every time.
mib=${MIB:-1}
[[ $mib =~ ^[1-9][0-9]*$ ]] || die "MIB must be a positive number, not '$mib'"
imgdir=$root/.cache/boot-time
mkdir -p "$imgdir"
for d in sata virtio; do
    "$iotest" --fill --size-mib "$mib" --label "$d" "$imgdir/$d.img" >/dev/null ||
        die "cannot fill $imgdir/$d.img"
done

# QEMU with its libraries and loader, as one directory.
q=$tmp/qemu
mkdir -p "$q/lib" "$q/fw"
cp -L "$qemu" "$q/qemu-system-x86_64"
ldd "$qemu" | awk '/=> \// { print $3 } /^\t\// { print $1 }' | while read -r lib; do
    cp -L "$lib" "$q/lib/"
done
loader=$(readelf -l "$qemu" | sed -n 's/.*program interpreter: \(.*\)]/\1/p')
[[ -n $loader ]] || die "no program interpreter in $qemu"
cp -L "$loader" "$q/ld.so"
for fw in bios-256k.bin linuxboot_dma.bin linuxboot.bin kvmvapic.bin; do
    src=
    for dir in /usr/share/qemu /usr/share/seabios; do
        [[ -f $dir/$fw ]] && src=$dir/$fw && break
    done
    [[ -n $src ]] || die "no $fw in /usr/share/qemu or /usr/share/seabios"
    cp -L "$src" "$q/fw/$fw"
done

# Disks by what they are (guest/init): QEMU's ide-hd on ide.0 is AHCI port 0.
append="console=ttyS0 quiet panic=-1 iotest.mib=$mib iotest.timeout=300 iotest.disks=sata0,virtio0${APPEND:+ $APPEND}"

# The runner, POSIX sh for L1's busybox. $1 = directory of payload files,
# $2 = sata disk, $3 = virtio disk.
cat >"$tmp/boot-time-run.sh" <<EOF
p=\$1 sata=\$2 virtio=\$3
if [ $cache = writeback ]; then
    cat \$sata \$virtio >/dev/null
fi
i=1
while [ \$i -le $pairs ]; do
    echo "boot-time: begin pair=\$i vmm=minivmm"
    # shellcheck disable=SC2086
    timeout 400 \$p/minivmm --kernel \$p/vmlinuz --initrd \$p/initramfs.cpio \\
        --append "$append" --memory 512M --cpus 1 --iothreads 1 \\
        --disk "sata:\$sata,cache=$cache" --disk "virtio:\$virtio,cache=$cache,iothread=0" \\
        --serial stdio ${OPTS:-} </dev/null 2>&1
    echo "boot-time: end pair=\$i vmm=minivmm rc=\$?"
    echo "boot-time: begin pair=\$i vmm=qemu"
    timeout 400 \$p/qemu/ld.so --library-path \$p/qemu/lib \$p/qemu/qemu-system-x86_64 \\
        -L \$p/qemu/fw -accel kvm -cpu host -M q35 -m 512M -smp 1 \\
        -object iothread,id=io0 \\
        -nodefaults -display none -serial stdio -no-reboot -nic none \\
        -kernel \$p/vmlinuz -initrd \$p/initramfs.cpio -append "$append" \\
        -drive file=\$sata,if=none,id=s,format=raw,cache=$cache,aio=io_uring -device ide-hd,drive=s,bus=ide.0 \\
        -drive file=\$virtio,if=none,id=v,format=raw,cache=$cache,aio=io_uring \\
        -device virtio-blk-pci,drive=v,iothread=io0 \\
        </dev/null 2>&1
    echo "boot-time: end pair=\$i vmm=qemu rc=\$?"
    i=\$((i + 1))
done
EOF

out=$tmp/console.log
rc=0
echo "boot-time: mode=$mode pairs=$pairs cache=$cache"
if [[ $mode == kvm ]]; then
    mkdir -p "$tmp/p"
    ln -s "$minivmm" "$tmp/p/minivmm"
    ln -s "$vmlinuz" "$tmp/p/vmlinuz"
    ln -s "$initramfs" "$tmp/p/initramfs.cpio"
    ln -s "$q" "$tmp/p/qemu"
    sh "$tmp/boot-time-run.sh" "$tmp/p" "$imgdir/sata.img" "$imgdir/virtio.img" |
        tr -d '\r' | tee "$out" || rc=$?
else
    "$root/scripts/nested.sh" --timeout $((pairs * (240 + mib * 8) + 120)) \
        --disk "$imgdir/sata.img" --disk "$imgdir/virtio.img" \
        --file "$minivmm:/payload/minivmm" --file "$vmlinuz:/payload/vmlinuz" \
        --file "$initramfs:/payload/initramfs.cpio" --file "$q:/payload/qemu" \
        --file "$tmp/boot-time-run.sh:/payload/boot-time-run.sh" -- \
        sh /payload/boot-time-run.sh /payload /dev/vda /dev/vdb |
        tr -d '\r' | tee "$out" || rc=$?
fi

awk -v want="$pairs" -v mib="$mib" '
    function median(a, n,   i, j, v) {
        for (i = 2; i <= n; i++) { v = a[i]; for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]; a[j + 1] = v }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    /^boot-time: begin / { split($3, p, "="); split($4, v, "="); vmm = v[2]; pair = p[2]; next }
    vmm != "" && /guest: init uptime=/ {
        x = $0; sub(/.*uptime=/, "", x); sub(/s.*/, "", x)
        t[vmm, ++n[vmm]] = x + 0
        printf "boot-time: pair=%s vmm=%s init_s=%s\n", pair, vmm, x
    }
    vmm != "" && mib > 1 && /iotest: label=.* total_s=/ {
        x = $0; sub(/.*iotest: label=/, "", x); kind = x; sub(/ .*/, "", kind)
        y = $0; sub(/.* total_s=/, "", y); sub(/ .*/, "", y)
        io[kind, vmm, ++nio[kind, vmm]] = y + 0
        printf "boot-time: pair=%s vmm=%s disk=%s total_s=%s\n", pair, vmm, kind, y
    }
    /^boot-time: end / { vmm = "" }
    END {
        if (n["minivmm"] != want || n["qemu"] != want) {
            printf "boot-time: FAIL init times: minivmm %d, qemu %d of %d\n", n["minivmm"], n["qemu"], want
            exit 1
        }
        for (i = 1; i <= want; i++) { a[i] = t["minivmm", i]; b[i] = t["qemu", i] }
        ma = median(a, want); mb = median(b, want)
        printf "boot-time: minivmm_init_s=%.2f qemu_init_s=%.2f ratio=%.2f pairs=%d minivmm_range=%.2f..%.2f qemu_range=%.2f..%.2f\n",
            ma, mb, ma / mb, want, a[1], a[want], b[1], b[want]
        if (mib <= 1) exit 0
        split("virtio ahci", kinds, " ")
        for (k = 1; k <= 2; k++) {
            kind = kinds[k]
            if (nio[kind, "minivmm"] != want || nio[kind, "qemu"] != want) {
                printf "guest-io: FAIL disk=%s iotest lines: minivmm %d, qemu %d of %d\n", kind, nio[kind, "minivmm"], nio[kind, "qemu"], want
                bad = 1
                continue
            }
            r = ""
            for (i = 1; i <= want; i++) {
                a[i] = io[kind, "minivmm", i]; b[i] = io[kind, "qemu", i]
                r = r (i > 1 ? "," : "") sprintf("%.2f", a[i] / b[i])
            }
            ma = median(a, want); mb = median(b, want)
            printf "guest-io: disk=%s mib=%d minivmm_s=%.3f qemu_s=%.3f ratio=%.3f pairs=%d ratios=%s\n", kind, mib, ma, mb, ma / mb, want, r
        }
        exit bad
    }' "$out" || exit 1
[[ $rc -eq 0 ]] || echo "boot-time: note: the run exited $rc (a guest that did not end cleanly)" >&2
