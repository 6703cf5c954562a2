/*
 * The machine's flattened device tree, for the bare-metal test programs
 * (elf_load() passes its address in rdi) and for people (--dump-dtb). The
 * guest Linux has no CONFIG_OF and never reads it.
 *
 * Layout (numbers big-endian cells, as always in a DTB):
 *
 *   /memreserve/ 0x0 0x40000;     GDT, boot_params, stack, page tables,
 *                                 command line and this blob (boot.h)
 *   / {
 *     #address-cells = <2>; #size-cells = <2>;
 *     compatible = "minivmm,pc"; model = "minivmm";
 *     interrupt-parent = <&ioapic>;
 *     chosen { bootargs = "..."; stdout-path = "/serial@3f8"; };
 *     memory@0 { device_type = "memory";
 *                reg = <0 0 0 0x9fc00>, <0 0x100000 SIZE>; };  the e820 RAM
 *     cpus { #address-cells = <1>; #size-cells = <0>;
 *            cpu@N { device_type = "cpu"; reg = <N>; };  N = local APIC ID
 *     };
 *     ioapic: interrupt-controller@fec00000 {
 *         compatible = "minivmm,ioapic"; reg = <0 0xfec00000 0 0x1000>;
 *         interrupt-controller; #interrupt-cells = <1>;  one cell: the GSI
 *         #address-cells = <0>; phandle = <1>;
 *     };
 *     pci { device_type = "pci"; compatible = "minivmm,pci-conf1";
 *           #address-cells = <3>; #size-cells = <2>; bus-range = <0 0>;
 *           minivmm,io-port = <0xcf8 8>;   configuration mechanism #1
 *           ranges = <0x01000000 0 IO_BASE  0 IO_BASE  0 IO_SIZE>,
 *                    <0x02000000 0 MMIO_BASE  0 MMIO_BASE  0 MMIO_SIZE>;
 *         NAME@D[,F] { one node per function on bus 0, D and F in hex,
 *                      ",F" left out when F is 0: ahci@1f,2, virtio-blk@2
 *           reg = <DEVFN<<8 0 0 0 0>,          configuration space, then
 *                 <HI|0x10+4*i 0 0 SIZE_HI SIZE_LO> for each BAR i;
 *                 HI: 0x01000000 I/O, 0x02000000 32-bit memory,
 *                 0x03000000 64-bit memory, | 0x40000000 if prefetchable,
 *                 | DEVFN<<8 (the IEEE 1275 PCI binding's phys.hi)
 *           assigned-addresses = <HI|0x80000000 ADDR_HI ADDR_LO SIZE...>
 *                 for each BAR with an address (bit 31, "n": absolute);
 *           vendor-id, device-id, revision-id, class-code (24 bits),
 *           subsystem-vendor-id, subsystem-id: <u32> each;
 *           interrupts = <GSI>;  INTx, when INTERRUPT_PIN is non-zero
 *           msi; msi-x;          empty, present when the capability is
 *         };
 *     };
 *     serial@3f8 { compatible = "ns16550a"; minivmm,io-port = <0x3f8 8>;
 *                  interrupts = <4>; clock-frequency = <1843200>; };
 *     test-exit@f4 { compatible = "minivmm,test-exit";
 *                    minivmm,io-port = <0xf4 4>; reg-io-width = <4>; };
 *     fw-cfg@510 { compatible = "minivmm,fw-cfg-ioport";
 *                  minivmm,io-port = <0x510 2>; };  selector, data
 *   };
 *
 * x86 port I/O is not in the CPU's memory address space, so devices behind
 * ports have no "reg": "minivmm,io-port" = <first-port number-of-ports>
 * says where they are (dtc's unit_address_vs_reg check warns about those
 * nodes, and about /pci having ranges but no unit address: expected).
 * Likewise the PCI I/O range maps to port numbers.
 * PCI interrupts are given as the GSI straight away (no interrupt-map): the
 * VMM has already routed them, as a BIOS would.
 */
#ifndef MINIVMM_FIRMWARE_FDT_H
#define MINIVMM_FIRMWARE_FDT_H

#include <stddef.h>
#include <stdint.h>

#include "devices/pci.h"

#define FDT_IOAPIC_ADDR    0xFEC00000u
#define FDT_TEST_EXIT_PORT 0xf4
#define FDT_FW_CFG_PORT    0x510
#define FDT_RESERVED_LOW   0x40000 /* see /memreserve/ above */

typedef struct FdtMachineInfo {
    uint64_t ram_size;
    int ncpus;
    const char *cmdline; /* NULL: no bootargs */
    PciHost *pci;        /* NULL: no /pci node; read after resources exist */
    uint64_t pci_mmio_base, pci_mmio_size; /* the windows, for "ranges" */
    uint32_t pci_io_base, pci_io_size;
    uint32_t ioapic_addr;    /* 0: FDT_IOAPIC_ADDR */
    uint16_t serial_port;    /* 0: no serial node */
    uint8_t serial_irq;      /* 4 for COM1 */
    uint16_t test_exit_port; /* 0: no test-exit node */
    uint16_t fw_cfg_port;    /* 0: no fw-cfg node */
} FdtMachineInfo;

/*
 * Write the tree into @buf (@size bytes; BOOT_FDT_MAX is plenty). Returns 0,
 * -ENOSPC if it does not fit, -EINVAL for a bad @info.
 */
int fdt_build_machine(void *buf, size_t size, const FdtMachineInfo *info);

#endif
