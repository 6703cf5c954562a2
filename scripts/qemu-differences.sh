#!/bin/sh
# docs/qemu-differences.md from tests/qtest/qemu-diff-allowlist.txt, the
# list the differential tests read: one table row per allowlist line, so
# the page cannot drift from what the tests accept.
#
#   scripts/qemu-differences.sh > docs/qemu-differences.md   (regenerate)
#   scripts/qemu-differences.sh --check                      (make check-qemu)
set -eu

LIST=tests/qtest/qemu-diff-allowlist.txt
DOC=docs/qemu-differences.md

generate() {
    cat <<'HEAD'
# Where minivmm differs from QEMU, and why

The differential tests (`tests/qtest/test-diff-ahci.c`,
`tests/qtest/test-diff-virtio.c`, run by `make check-qemu`) drive QEMU 7.2
and minivmm with the same guest steps, side by side, and compare after
every step what the guest can see: for AHCI the register file, the
received-FIS area, the IDENTIFY page, the command results and the data;
for virtio-blk the features, configuration space, device status, request
status and used lengths, the ISR and the MSI-X messages. Every difference
must be one of the rows below, and every row must still match a
difference, or the test fails.

This page is generated from `tests/qtest/qemu-diff-allowlist.txt` by
`scripts/qemu-differences.sh` (`make check-qemu` checks that it is current);
edit the list, then regenerate. A row whose reason says OPEN is a minivmm
bug still to fix, listed so the test guards everything else meanwhile.

PxSIG and PxTFD after a reset are not in the table because minivmm now
reads them as QEMU does: FFFFFFFFh and 7Fh until the disk's signature FIS
has landed in the received-FIS area (PxCMD.FRE set), then the signature
(101h) and the status the FIS carried. AHCI 1.3.1 (3.3.8, 3.3.9, 10.4)
allows an HBA to latch them from the link instead; taking QEMU's reading
means a driver that polls PxTFD before it turns FIS receive on sees the
same thing on both machines (`devices/ahci.c`, `ahci_port_send_signature()`).

In the step column `*` is every step; a mask with `~` is a difference that
depends on timing (which NCQ tag finished last), which may be absent in a
given run.

HEAD
    for dev in ahci virtio-blk; do
        echo "## $dev"
        echo
        echo "| step | field (bits) | what | minivmm | QEMU 7.2 | reference, reason |"
        echo "|---|---|---|---|---|---|"
        awk -v dev="$dev" '
            /^#/ || NF == 0 { next }
            $1 == dev {
                split($0, part, "|")
                for (i = 2; i <= 5; i++) {
                    gsub(/^ +| +$/, "", part[i])
                }
                step = $2
                gsub(/\*/, "\\*", step)
                printf "| %s | %s %s | %s | %s | %s | %s |\n", step, $3, $4,
                       part[2], part[3], part[4], part[5]
            }' "$LIST"
        echo
    done
}

if [ "${1:-}" = "--check" ]; then
    if ! generate | diff -u "$DOC" - >/dev/null; then
        echo "qemu-differences: $DOC is out of date with $LIST;" \
             "run scripts/qemu-differences.sh > $DOC" >&2
        exit 1
    fi
    echo "qemu-differences: $DOC matches $LIST"
else
    generate
fi
