/*
 * The machine's ways out, as port I/O:
 *
 *   0xf4  test exit port (4 bytes): writing V ends the machine, with exit
 *         status 0 for V = 0, 64 + V for V = 1..63 and 127 above
 *         (util/exit-status.h: a guest cannot fake minivmm's own
 *         statuses). Bare-metal tests report PASS/FAIL through it, as
 *         kvm-unit-tests do with QEMU's isa-debug-exit.
 *   0x64  the i8042 keyboard controller's command port, only as far as a
 *         reboot needs: the pulse-reset command 0xFE ends the machine with
 *         status 0 (a reboot ends the run, like QEMU's -no-reboot). Status
 *         reads return 0xff, "no controller here", which Linux's i8042
 *         probe accepts at once. Linux's keyboard-controller reboot then
 *         waits for a while before it sends 0xFE. (`reboot=t`, a triple
 *         fault, is no shortcut: minivmm treats a triple fault as a crash.)
 */
#ifndef MINIVMM_DEVICES_EXIT_PORTS_H
#define MINIVMM_DEVICES_EXIT_PORTS_H

#include "devices/address-space.h"

#define EXIT_PORT_TEST  0xf4
#define EXIT_PORT_I8042 0x64
#define I8042_CMD_RESET 0xfe

/* Called from the thread of the access (a vCPU, with the big lock). */
typedef void MachineExitFn(void *opaque, int status);

typedef struct ExitPorts {
    MachineExitFn *exit;
    void *opaque;
} ExitPorts;

int exit_ports_init(ExitPorts *e, AddressSpace *as, MachineExitFn *exit,
                    void *opaque);

#endif
