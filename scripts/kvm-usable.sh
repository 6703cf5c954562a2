#!/bin/sh
# Can minivmm's test guests run on this machine's /dev/kvm, at hardware
# speed? Exits 0 if so. If not, prints why (one line) and exits 1.
#
# Being able to open /dev/kvm is not enough: kvm_pvm offers /dev/kvm without
# hardware virtualisation and emulates a stock guest one instruction at a
# time (the Debian kernel does not finish decompressing in four minutes, and
# the bare-metal tests stop on an instruction its emulator lacks).
#
#   scripts/kvm-usable.sh --mode NAME
#
# prints instead the mode the harness scripts (run-guest, demo, the
# bare-metal tests) should use, kvm or nested, and exits 0; for nested it
# also says why on stderr, as "NAME: WHY: running nested".
if [ "${1:-}" = --mode ]; then
    if why=$("$0"); then
        echo kvm
    else
        echo nested
        echo "${2:-kvm-usable}: $why: running nested" >&2
    fi
    exit 0
fi
if [ ! -c /dev/kvm ]; then
    echo "no /dev/kvm"
    exit 1
fi
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "/dev/kvm is not readable and writable by $(id -un)"
    exit 1
fi
if [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; then
    exit 0
fi
if [ -d /sys/module/kvm_pvm ]; then
    echo "/dev/kvm is kvm_pvm (no hardware virtualisation: stock guests run emulated)"
else
    echo "/dev/kvm has neither kvm_intel nor kvm_amd behind it"
fi
exit 1
