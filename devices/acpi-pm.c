#include "devices/acpi-pm.h"
#include "util/log.h"

static void sleep_control_write(AcpiPm *pm, uint8_t v)
{
    unsigned type = (v & ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT;

    if (v & ~(ACPI_SLP_TYP_MASK | ACPI_SLP_EN)) {
        log_guest_error("acpi: sleep control 0x%02x sets reserved bits", v);
    } else if (!(v & ACPI_SLP_EN)) {
        /* SLP_TYP alone does nothing until SLP_EN is written with it. */
    } else if (type == ACPI_S5_SLP_TYP) {
        pm->exit(pm->opaque, 0); /* S5: soft off */
    } else {
        /* The DSDT offers _S5 only: S1-S4 are not there to be asked for. */
        log_guest_error("acpi: sleep type %u requested; only S5 (%u) exists",
                        type, ACPI_S5_SLP_TYP);
    }
}

static void acpi_pm_write_byte(AcpiPm *pm, unsigned reg, uint8_t v)
{
    switch (reg) {
    case ACPI_SLEEP_CONTROL:
        sleep_control_write(pm, v);
        break;
    case ACPI_SLEEP_STATUS:
        /* Clearing WAK_STS, as Linux does before it sleeps, is a no-op. */
        if (v & ~ACPI_WAK_STS) {
            log_guest_error("acpi: sleep status 0x%02x sets reserved bits", v);
        }
        break;
    case ACPI_RESET_REG:
        if (v == ACPI_RESET_VALUE) {
            pm->exit(pm->opaque, 0);
        } else {
            log_guest_error("acpi: reset register written with 0x%02x, not "
                            "0x%02x",
                            v, ACPI_RESET_VALUE);
        }
        break;
    }
}

static uint64_t acpi_pm_read(void *opaque, uint64_t offset, unsigned size)
{
    (void)opaque, (void)offset, (void)size;
    return 0; /* not sleeping, never woken */
}

/* The registers are bytes; a wider access is taken byte by byte. */
static void acpi_pm_write(void *opaque, uint64_t offset, uint64_t value,
                          unsigned size)
{
    for (unsigned i = 0; i < size && offset + i < ACPI_PM_SIZE; i++) {
        acpi_pm_write_byte(opaque, offset + i, (uint8_t)(value >> (8 * i)));
    }
}

static const RegionOps acpi_pm_ops = {
    .read = acpi_pm_read,
    .write = acpi_pm_write,
};

int acpi_pm_init(AcpiPm *pm, AddressSpace *as, MachineExitFn *exit,
                 void *opaque)
{
    pm->exit = exit;
    pm->opaque = opaque;
    return as_add(as, AS_PIO, ACPI_PM_PORT, ACPI_PM_SIZE, &acpi_pm_ops, pm,
                  "acpi-pm");
}
