/*
 * What the VMM writes into guest RAM before the first instruction runs, and
 * the vCPU state it starts with. Devices and KVM are not involved: these
 * functions only fill a GuestMemory and a BootCpuState, so unit tests can
 * check every byte.
 *
 * Low memory map (guest-physical), all below 1 MiB:
 *
 *   0x00500  GDT (null, null, 64-bit code at 0x10, data at 0x18)
 *   0x07000  boot_params ("zero page") for Linux
 *   0x08000  stack top for bare-metal programs (grows down)
 *   0x09000  PML4, 0x0A000 PDPT, 0x0B000.. page directories: identity map
 *            of the first 4 GiB with 2 MiB pages
 *   0x20000  kernel command line (up to 4 KiB)
 *   0x30000  flattened device tree (up to 64 KiB)
 *   0x9FC00  .. 0xA0000 EBDA
 *   0xE0000  .. 0xEFFFF ACPI tables, RSDP first (firmware/acpi.h)
 *   0xF0000  .. 0xFFFFF BIOS area: MP table
 *   0x100000 the kernel (protected-mode part of a bzImage) or an ELF image
 *
 * The e820 map reports RAM as [0, 0x9FC00) and [0x100000, ram_size), and
 * reserves [0x9FC00, 0x100000). With ACPI, linux_e820_reserve() adds the
 * ECAM window above RAM.
 */
#ifndef MINIVMM_FIRMWARE_BOOT_H
#define MINIVMM_FIRMWARE_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include "devices/memory.h"

#define BOOT_GDT_ADDR       0x500
#define BOOT_ZERO_PAGE_ADDR 0x7000
#define BOOT_STACK_TOP      0x8000
#define BOOT_PML4_ADDR      0x9000
#define BOOT_CMDLINE_ADDR   0x20000
#define BOOT_CMDLINE_MAX    4096
#define BOOT_FDT_ADDR       0x30000
#define BOOT_FDT_MAX        0x10000
#define BOOT_EBDA_ADDR      0x9FC00
#define BOOT_ACPI_ADDR      0xE0000
#define BOOT_ACPI_MAX       0x10000
#define BOOT_KERNEL_ADDR    0x100000
#define BOOT_CODE_SEL       0x10
#define BOOT_DATA_SEL       0x18
#define BOOT_MIN_RAM        (64ULL << 20)
#define BOOT_MAX_RAM        (3ULL << 30) /* RAM ends below the PCI hole */

/*
 * The vCPU's entry state: 64-bit mode, paging on with the identity map at
 * cr3, flat segments from the GDT, interrupts off. The accelerator turns
 * this into registers (kvm: KVM_SET_SREGS/KVM_SET_REGS).
 */
typedef struct BootCpuState {
    uint64_t rip, rsp, rsi, rdi;
    uint64_t cr3;
    uint64_t gdt_base;
    uint16_t gdt_limit;
    uint16_t code_sel, data_sel;
} BootCpuState;

/* The e820 map above, as linux_load() gives it to the kernel. */
#define BOOT_E820_RAM      1
#define BOOT_E820_RESERVED 2
#define BOOT_E820_MAX      3

typedef struct BootE820Entry {
    uint64_t addr, size;
    uint32_t type;
} BootE820Entry;

/* Fill @map (room for BOOT_E820_MAX); returns the number of entries. */
int boot_e820_map(uint64_t ram_size, BootE820Entry *map);

/*
 * GDT and identity page tables; fills cr3, gdt_*, the selectors and a
 * default rsp. Call before linux_load() or elf_load().
 */
int boot_setup_cpu(GuestMemory *gm, BootCpuState *cpu);

/*
 * Load a bzImage (x86 boot protocol >= 2.12, 64-bit entry at load address
 * + 0x200), the optional initrd (placed page-aligned as high as the kernel's
 * initrd_addr_max and RAM allow) and the command line; write boot_params
 * with the e820 map. Sets cpu->rip and cpu->rsi (boot_params).
 * Returns 0 or -errno with one line in @err naming the file and the fault
 * (not a bzImage, protocol too old, no 64-bit entry, does not fit in RAM).
 */
int linux_load(GuestMemory *gm, const char *kernel, const char *initrd,
               const char *cmdline, BootCpuState *cpu, char *err,
               size_t errlen);

/*
 * Add a reserved range (above RAM: the ECAM window) to the e820 map in the
 * boot_params linux_load() wrote: Linux uses MMCONFIG only where firmware
 * reserved it. Returns -ENOSPC if the map is full, -EINVAL if @addr is in RAM.
 */
int linux_e820_reserve(GuestMemory *gm, uint64_t addr, uint64_t size);

/*
 * Load a static ELF64 executable (a bare-metal test) at its physical
 * addresses; cpu->rip = its entry, cpu->rdi = @fdt_gpa. Every segment must
 * lie inside RAM above 1 MiB.
 */
int elf_load(GuestMemory *gm, const char *path, uint64_t fdt_gpa,
             BootCpuState *cpu, char *err, size_t errlen);

/* One PCI function's legacy interrupt, for the MP table. */
typedef struct MpPciIrq {
    uint8_t slot;
    uint8_t pin; /* 0 = INTA# .. 3 = INTD# */
    uint8_t gsi; /* IOAPIC input */
} MpPciIrq;

typedef struct MpTableConfig {
    int ncpus;            /* APIC IDs 0..ncpus-1, CPU 0 the BSP */
    uint32_t ioapic_addr; /* 0xFEC00000 */
    uint8_t ioapic_id;    /* after the CPUs' IDs */
    const MpPciIrq *pci;  /* PCI bus 0 routing */
    int npci;
} MpTableConfig;

/*
 * An Intel MP Specification 1.4 table: floating pointer in the BIOS area,
 * configuration table with processors, a PCI and an ISA bus, the IOAPIC,
 * ISA IRQs 0-15 on IOAPIC pins 0-15 one to one (KVM's default GSI routing:
 * the in-kernel PIT raises GSI 0), each PCI interrupt on its GSI (level,
 * active low), and the local ExtINT/NMI entries.
 */
int mptable_write(GuestMemory *gm, const MpTableConfig *cfg);

#endif
