/*
 * libFuzzer target: virtio-blk on the modern virtio-pci transport against a
 * hostile driver.
 *
 * The first input byte picks the device: 1 to 4 queues, a maximum queue
 * size of 4 to 256, a writable or a read-only disk. The rest is a script
 * (tests/fuzz/fuzz-machine.h) over one 64 KiB window: the modern BAR
 * (common configuration, ISR, device configuration, notify) at offset 0 and
 * the MSI-X table and PBA at 0x8000. Feature negotiation, queue set-up,
 * descriptor tables, indirect tables, avail rings and request headers are
 * all the script's. Every queue belongs to the main loop, which the script
 * runs, so kicks and completions happen on the fuzzer's thread.
 */
#include <stdio.h>
#include <stdlib.h>

#include "devices/virtio-blk.h"
#include "tests/fuzz/fuzz-machine.h"

#define FUZZ_VBLK_RAM_SIZE (256u << 10)
#define FUZZ_VBLK_DEVFN    PCI_DEVFN(4, 0)
#define FUZZ_VBLK_MSIX_OFF 0x8000

static FuzzMachine m;
static BlockBackend *disk, *disk_ro;

static BlockBackend *open_disk(const char *opts)
{
    BlockBackend *blk;
    char err[256];

    /* 1 MiB: sectors from the input run past its end as often as not. */
    if (blk_open_string("null://1M", opts, &blk, err, sizeof(err)) < 0) {
        fprintf(stderr, "fuzz-virtio-blk: %s\n", err);
        exit(1);
    }
    return blk;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_machine_init(&m, FUZZ_VBLK_RAM_SIZE);
    disk = open_disk(NULL);
    disk_ro = open_disk("readonly=on");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = {.p = data, .left = size};
    uint8_t shape = fuzz_take(&in, 1);
    unsigned size_log2 = 2 + ((shape >> 2) & 7) % 7; /* 4..256 entries */
    VirtioBlkOptions opts = {
        .num_queues = 1 + (shape & 3),
        .queue_size = 1u << size_log2,
        .serial = "fuzz-vblk",
    };
    VirtioBlk *vblk;

    fuzz_machine_reset_ram(&m);
    if (virtio_blk_create(&vblk, &m.host, FUZZ_VBLK_DEVFN, &m.ram,
                          &fuzz_msi_sink,
                          (IrqLine){.set_level = fuzz_ignore_level, .gsi = 10},
                          shape & 0x20 ? disk_ro : disk, &opts) < 0) {
        abort();
    }
    /* What firmware would have done: both BARs placed, memory and DMA on. */
    fuzz_config_write(&m, FUZZ_VBLK_DEVFN, PCI_BAR0 + 4 * VIRTIO_PCI_MSIX_BAR,
                      4, FUZZ_MMIO_BASE + FUZZ_VBLK_MSIX_OFF);
    fuzz_config_write(&m, FUZZ_VBLK_DEVFN, PCI_BAR0 + 4 * VIRTIO_PCI_MODERN_BAR,
                      4, FUZZ_MMIO_BASE);
    fuzz_config_write(&m, FUZZ_VBLK_DEVFN,
                      PCI_BAR0 + 4 * VIRTIO_PCI_MODERN_BAR + 4, 4,
                      FUZZ_MMIO_BASE >> 32);
    fuzz_config_write(&m, FUZZ_VBLK_DEVFN, PCI_COMMAND, 2,
                      PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    fuzz_run_script(&m, &in, FUZZ_VBLK_DEVFN);

    virtio_blk_destroy(vblk);
    return 0;
}
