#!/bin/sh
# The ACPI tables as a second implementation reads them: minivmm writes
# them with --dump-acpi, ACPICA's disassembler (iasl -d, Debian's
# acpica-tools) decodes each one, and this script fails if iasl complains
# or if what it decoded lacks what Linux relies on: the hardware-reduced
# flag, one local APIC per vCPU, \_S5 and the devices' IDs. The unit tests
# (tests/unit/test-acpi.c) check the bytes; this checks that an independent
# parser agrees with them.
#
#   scripts/check-acpi.sh [MINIVMM]     (default: build/minivmm)
set -eu

MINIVMM=${1:-${MINIVMM:-build/minivmm}}
CPUS="1 4"

fail() {
    echo "check-acpi: FAIL: $*" >&2
    exit 1
}

if ! command -v iasl >/dev/null 2>&1; then
    echo "check-acpi: SKIP: iasl not installed"
    exit 0
fi
[ -x "$MINIVMM" ] || fail "$MINIVMM is not an executable (make it first)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/check-acpi.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# iasl exits 0 on a bad checksum or a malformed subtable: it says so on
# its output ("Warning", "Error") or in the .dsl ("/**** ... terminates
# early", "Invalid zero length subtable", "Unknown ... type"), so both are
# searched as well as the exit status.
disassemble() {
    dir=$1 name=$2
    if ! (cd "$dir" && iasl -d "$name.dat") >"$dir/$name.log" 2>&1; then
        cat "$dir/$name.log" >&2
        fail "iasl -d $name.dat exited with an error"
    fi
    if grep -Ei 'error|warning' "$dir/$name.log" >&2; then
        fail "iasl complained about $name.dat"
    fi
    [ -s "$dir/$name.dsl" ] || fail "iasl wrote no $name.dsl"
    if grep -E '/\*\*\*\*|Invalid|Unknown' "$dir/$name.dsl" >&2; then
        fail "iasl flagged a problem in $name.dat"
    fi
}

# @file must contain the fixed string @text.
expect() {
    grep -qF -- "$2" "$1" || fail "$(basename "$1"): no '$2'"
}

for n in $CPUS; do
    dir=$TMP/cpus$n
    mkdir "$dir"
    "$MINIVMM" --dump-acpi "$dir" --cpus "$n" ||
        fail "minivmm --dump-acpi --cpus $n exited with $?"
    for t in rsdp xsdt facp apic mcfg dsdt; do
        [ -s "$dir/$t.dat" ] || fail "--cpus $n: no $t.dat"
    done
    # The RSDP has no table header, so iasl cannot decode it alone.
    [ "$(head -c 8 "$dir/rsdp.dat")" = "RSD PTR " ] ||
        fail "--cpus $n: rsdp.dat has no 'RSD PTR ' signature"
    for t in xsdt facp apic mcfg dsdt; do
        disassemble "$dir" "$t"
    done

    grep -Eq 'Hardware Reduced \(V5\) : 1' "$dir/facp.dsl" ||
        fail "--cpus $n: the FADT is not hardware-reduced"
    lapics=$(grep -c 'Subtable Type : 00 \[Processor Local APIC\]' \
        "$dir/apic.dsl" || true)
    [ "$lapics" -eq "$n" ] ||
        fail "--cpus $n: the MADT has $lapics Processor Local APIC entries"
    for sub in '01 [I/O APIC]' '04 [Local APIC NMI]'; do
        [ "$(grep -cF "Subtable Type : $sub" "$dir/apic.dsl")" -eq 1 ] ||
            fail "--cpus $n: the MADT has not one '$sub' entry"
    done
    for text in _S5_ PNP0A08 PNP0501 PNP0B00; do
        expect "$dir/dsdt.dsl" "$text"
    done
    echo "check-acpi: cpus=$n: iasl decoded xsdt facp apic mcfg dsdt"
done
echo "check-acpi: ok cpus=$(echo "$CPUS" | tr ' ' ',')"
