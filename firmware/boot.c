/*
 * The vCPU's starting point: a GDT with flat 64-bit segments and page
 * tables that identity-map the first 4 GiB, so both a Linux 64-bit entry and
 * a bare-metal ELF start in long mode with gpa == va (RAM, the PCI hole, the
 * IOAPIC and the local APIC all reachable without further set-up).
 */
#include <errno.h>
#include <string.h>

#include "firmware/boot.h"

#define GDT_ENTRIES 4

/* 64-bit code: P, DPL 0, S, type execute/read, L, G; base 0, limit 4 GiB. */
#define GDT_CODE64 0x00af9b000000ffffULL
/* Data: P, DPL 0, S, type read/write, D/B, G; base 0, limit 4 GiB. */
#define GDT_DATA 0x00cf93000000ffffULL

#define PT_PRESENT 0x1ULL
#define PT_WRITE   0x2ULL
#define PT_HUGE    0x80ULL /* a 2 MiB page in a page directory entry */

#define PDPT_ADDR    (BOOT_PML4_ADDR + 0x1000)
#define PD_ADDR      (BOOT_PML4_ADDR + 0x2000)
#define PD_COUNT     4 /* one per GiB */
#define PT_ENTRIES   512
#define PAGE_2M      (2ULL << 20)
#define PT_AREA_SIZE (0x2000 + PD_COUNT * 0x1000)

int boot_e820_map(uint64_t ram_size, BootE820Entry *map)
{
    map[0] = (BootE820Entry){0, BOOT_EBDA_ADDR, BOOT_E820_RAM};
    /* The EBDA and the BIOS area hold the MP table: keep the kernel off. */
    map[1] = (BootE820Entry){BOOT_EBDA_ADDR, BOOT_KERNEL_ADDR - BOOT_EBDA_ADDR,
                             BOOT_E820_RESERVED};
    if (ram_size <= BOOT_KERNEL_ADDR) {
        return 2;
    }
    map[2] = (BootE820Entry){BOOT_KERNEL_ADDR, ram_size - BOOT_KERNEL_ADDR,
                             BOOT_E820_RAM};
    return 3;
}

static int write_gdt(GuestMemory *gm)
{
    const uint64_t gdt[GDT_ENTRIES] = {
        0,
        0,
        [BOOT_CODE_SEL / 8] = GDT_CODE64,
        [BOOT_DATA_SEL / 8] = GDT_DATA,
    };

    return gm_write(gm, BOOT_GDT_ADDR, gdt, sizeof(gdt));
}

static int write_page_tables(GuestMemory *gm)
{
    uint64_t *pml4 = gm_ptr(gm, BOOT_PML4_ADDR, PT_AREA_SIZE);
    uint64_t *pdpt, *pd;

    if (!pml4) {
        return -ENOMEM;
    }
    /* RAM may hold an earlier boot's tables: every entry is written. */
    memset(pml4, 0, PT_AREA_SIZE);
    pdpt = pml4 + PT_ENTRIES;
    pd = pdpt + PT_ENTRIES;
    pml4[0] = PDPT_ADDR | PT_PRESENT | PT_WRITE;
    for (int i = 0; i < PD_COUNT; i++) {
        pdpt[i] = (PD_ADDR + i * 0x1000ULL) | PT_PRESENT | PT_WRITE;
    }
    for (uint64_t j = 0; j < PD_COUNT * PT_ENTRIES; j++) {
        pd[j] = j * PAGE_2M | PT_PRESENT | PT_WRITE | PT_HUGE;
    }
    return 0;
}

int boot_setup_cpu(GuestMemory *gm, BootCpuState *cpu)
{
    int ret;

    /* The low structures, the EBDA and the BIOS area all live below 1 MiB. */
    if (gm->size < BOOT_KERNEL_ADDR) {
        return -ENOMEM;
    }
    ret = write_gdt(gm);
    if (ret == 0) {
        ret = write_page_tables(gm);
    }
    if (ret < 0) {
        return -ENOMEM;
    }
    memset(cpu, 0, sizeof(*cpu));
    cpu->cr3 = BOOT_PML4_ADDR;
    cpu->gdt_base = BOOT_GDT_ADDR;
    cpu->gdt_limit = GDT_ENTRIES * 8 - 1;
    cpu->code_sel = BOOT_CODE_SEL;
    cpu->data_sel = BOOT_DATA_SEL;
    cpu->rsp = BOOT_STACK_TOP;
    return 0;
}
