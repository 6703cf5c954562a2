/*
 * libFuzzer target: the AHCI controller against a hostile guest.
 *
 * The input is a script (tests/fuzz/fuzz-machine.h) of ABAR accesses,
 * configuration-space accesses and guest-RAM contents: command lists,
 * command tables, FISes and PRDTs are whatever the script writes, at
 * whatever addresses its register writes point to. The main loop runs
 * between steps, so requests complete (or are still in flight when the
 * port is stopped, reset or the controller destroyed).
 *
 * Each input gets a new controller on a zeroed RAM; the disk, a null://
 * backend, lives for the whole run (it keeps no state a request can see).
 */
#include <stdio.h>
#include <stdlib.h>

#include "devices/ahci.h"
#include "tests/fuzz/fuzz-machine.h"

/* Small RAM: addresses from the input land in it, or just past its end. */
#define FUZZ_AHCI_RAM_SIZE (256u << 10)
#define FUZZ_AHCI_DEVFN    PCI_DEVFN(0x1f, 2)
#define FUZZ_AHCI_BAR5     0x24

static FuzzMachine m;
static BlockBackend *disk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char err[256];

    (void)argc;
    (void)argv;
    fuzz_machine_init(&m, FUZZ_AHCI_RAM_SIZE);
    /* 1 MiB: LBAs from the input run past its end as often as not. */
    if (blk_open_string("null://1M", NULL, &disk, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz-ahci: %s\n", err);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = {.p = data, .left = size};
    AhciState *ahci;

    fuzz_machine_reset_ram(&m);
    if (ahci_create(&ahci, &m.host, FUZZ_AHCI_DEVFN, &m.ram, &fuzz_msi_sink,
                    (IrqLine){.set_level = fuzz_ignore_level, .gsi = 16}) < 0 ||
        ahci_attach_disk(ahci, 0, disk, NULL) < 0) {
        abort();
    }
    /* What firmware would have done: the ABAR placed, memory and DMA on. */
    fuzz_config_write(&m, FUZZ_AHCI_DEVFN, FUZZ_AHCI_BAR5, 4, FUZZ_MMIO_BASE);
    fuzz_config_write(&m, FUZZ_AHCI_DEVFN, PCI_COMMAND, 2,
                      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    fuzz_run_script(&m, &in, FUZZ_AHCI_DEVFN);

    ahci_destroy(ahci);
    return 0;
}
