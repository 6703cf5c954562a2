#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libfdt.h>

#include "firmware/acpi.h"
#include "firmware/fdt.h"
#include "firmware/pci-assign.h"
#include "vmm/machine-boot.h"

#define MAX_PCI_IRQS 64

/* INTx swizzle over GSIs 16..19; pin 0 (INTA#) is board_pci_gsi(). */
static int board_gsi_of(void *opaque, int slot, int pin)
{
    (void)opaque;
    return board_pci_gsi(slot + pin);
}

/* An ELF file is a bare-metal test; anything else should be a bzImage. */
static bool file_is_elf(const char *path)
{
    unsigned char magic[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool elf;

    if (fd < 0) {
        return false; /* linux_load() reports the error */
    }
    elf = read(fd, magic, 4) == 4 && !memcmp(magic, "\177ELF", 4);
    close(fd);
    return elf;
}

static int write_dtb(const char *path, const void *fdt, size_t size, char *err,
                     size_t errlen)
{
    FILE *f = fopen(path, "wb");

    if (!f || fwrite(fdt, 1, size, f) != size || fclose(f) != 0) {
        int ret = errno ? -errno : -EIO;

        snprintf(err, errlen, "--dump-dtb: cannot write %s: %s", path,
                 strerror(-ret));
        return ret;
    }
    return 0;
}

/* --dump-acpi: each table as DIR/name.dat, the names acpidump uses. */
static int dump_acpi(const char *dir, GuestMemory *ram, const AcpiTable *t,
                     int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        char path[4096], name[5];

        for (int c = 0; c < 5; c++) {
            name[c] = (char)tolower((unsigned char)t[i].name[c]);
        }
        snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
        FILE *f = fopen(path, "wb");
        const void *p = gm_ptr(ram, t[i].addr, t[i].len);

        if (!f || fwrite(p, 1, t[i].len, f) != t[i].len || fclose(f) != 0) {
            int ret = errno ? -errno : -EIO;

            snprintf(err, errlen, "--dump-acpi: cannot write %s: %s", path,
                     strerror(-ret));
            return ret;
        }
    }
    return 0;
}

/* The ACPI tables; Linux prefers them to the MP table when both exist. */
static int build_acpi(Machine *m, const PciAssignConfig *pa, char *err,
                      size_t errlen)
{
    AcpiConfig acpi = {.ncpus = m->cfg->cpus,
                       .ioapic_id = m->cfg->cpus,
                       .ioapic_addr = FDT_IOAPIC_ADDR,
                       .ecam_base = PCI_ECAM_BASE,
                       .ecam_last_bus = PCI_ECAM_BUSES - 1,
                       .mmio_base = pa->mmio_base,
                       .mmio_size = pa->mmio_size,
                       .io_base = pa->io_base,
                       .io_size = pa->io_size,
                       .gsi_of = board_gsi_of,
                       .opaque = m,
                       .serial_port = SERIAL_COM1_PORT,
                       .serial_irq = SERIAL_COM1_IRQ};
    AcpiTable tables[ACPI_MAX_TABLES];
    int n = acpi_build(&m->ram, &acpi, tables);

    if (n < 0) {
        snprintf(err, errlen, "cannot build the ACPI tables: %s", strerror(-n));
        return n;
    }
    if (m->cfg->dump_acpi) {
        return dump_acpi(m->cfg->dump_acpi, &m->ram, tables, n, err, errlen);
    }
    return 0;
}

int machine_prepare_boot(Machine *m, BootCpuState *cpu, char *err,
                         size_t errlen)
{
    const MachineConfig *cfg = m->cfg;
    /* The PCI windows: between the top of RAM (3 GiB at most) and the
     * IOAPIC, and the top quarter of the port space. */
    PciAssignConfig pa = {.mmio_base = PCI_ASSIGN_MMIO_BASE,
                          .mmio_size = PCI_ASSIGN_MMIO_SIZE,
                          .io_base = PCI_ASSIGN_IO_BASE,
                          .io_size = PCI_ASSIGN_IO_SIZE,
                          .gsi_of = board_gsi_of,
                          .opaque = m};
    MpPciIrq irqs[MAX_PCI_IRQS];
    void *fdt = gm_ptr(&m->ram, BOOT_FDT_ADDR, BOOT_FDT_MAX);
    int nirqs, ret;

    nirqs = pci_assign_resources(&m->pci, &pa, irqs, MAX_PCI_IRQS);
    if (nirqs < 0) {
        snprintf(err, errlen, "cannot place the PCI devices' BARs: %s",
                 strerror(-nirqs));
        return nirqs;
    }
    ret = boot_setup_cpu(&m->ram, cpu);
    if (ret == 0) {
        MpTableConfig mp = {.ncpus = cfg->cpus,
                            .ioapic_addr = FDT_IOAPIC_ADDR,
                            .ioapic_id = cfg->cpus,
                            .pci = irqs,
                            .npci = nirqs};

        ret = mptable_write(&m->ram, &mp);
    }
    if (ret < 0) {
        snprintf(err, errlen, "cannot write the boot structures: %s",
                 strerror(-ret));
        return ret;
    }
    if (cfg->acpi) {
        ret = build_acpi(m, &pa, err, errlen);
        if (ret < 0) {
            return ret;
        }
    }

    FdtMachineInfo info = {.ram_size = m->ram.size,
                           .ncpus = cfg->cpus,
                           .cmdline = cfg->append,
                           .pci = &m->pci,
                           .pci_mmio_base = pa.mmio_base,
                           .pci_mmio_size = pa.mmio_size,
                           .pci_io_base = pa.io_base,
                           .pci_io_size = pa.io_size,
                           .serial_port = SERIAL_COM1_PORT,
                           .serial_irq = SERIAL_COM1_IRQ,
                           .test_exit_port = EXIT_PORT_TEST,
                           .fw_cfg_port = FW_CFG_PORT_SEL};
    ret = fdt ? fdt_build_machine(fdt, BOOT_FDT_MAX, &info) : -ENOMEM;
    if (ret < 0) {
        snprintf(err, errlen, "cannot build the device tree: %s",
                 strerror(-ret));
        return ret;
    }
    if (cfg->dump_dtb) {
        ret = write_dtb(cfg->dump_dtb, fdt, fdt_totalsize(fdt), err, errlen);
        if (ret < 0) {
            return ret;
        }
    }
    if (!cfg->kernel) {
        return 0;
    }
    if (file_is_elf(cfg->kernel)) {
        return elf_load(&m->ram, cfg->kernel, BOOT_FDT_ADDR, cpu, err, errlen);
    }
    ret = linux_load(&m->ram, cfg->kernel, cfg->initrd, cfg->append, cpu, err,
                     errlen);
    if (ret == 0 && cfg->acpi) {
        ret = linux_e820_reserve(&m->ram, PCI_ECAM_BASE, PCI_ECAM_SIZE);
        if (ret < 0) {
            snprintf(err, errlen, "cannot reserve the ECAM window: %s",
                     strerror(-ret));
        }
    }
    return ret;
}
