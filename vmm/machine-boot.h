/*
 * What a PC's firmware does before the OS runs, done by the VMM: give the
 * PCI devices their BARs and interrupt lines, describe the machine (MP
 * table for Linux, a device tree for bare-metal tests and people), and
 * load the kernel. Accelerator-neutral: it only writes guest RAM and PCI
 * config space; the accelerator turns the BootCpuState into registers.
 */
#ifndef MINIVMM_VMM_MACHINE_BOOT_H
#define MINIVMM_VMM_MACHINE_BOOT_H

#include "firmware/boot.h"
#include "vmm/board.h"

/* Big lock held, vCPUs not started. 0 or -errno with one line in @err. */
int machine_prepare_boot(Machine *m, BootCpuState *cpu, char *err,
                         size_t errlen);

#endif
