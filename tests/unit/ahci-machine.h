/*
 * The in-process machine the AHCI tests drive: RAM, an address space, a PCI
 * host, AHCI at 00:1f.2 with a patterned disk on port 0, the main loop on
 * its own thread, and the qos AHCI driver on the test thread (the vCPU).
 * Built by ahci-machine.c for test-ahci.c and test-ahci-bad.c.
 */
#ifndef MINIVMM_TESTS_UNIT_AHCI_MACHINE_H
#define MINIVMM_TESTS_UNIT_AHCI_MACHINE_H

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>

#include "block/block.h"
#include "devices/address-space.h"
#include "devices/ahci.h"
#include "devices/memory.h"
#include "devices/pci.h"
#include "tests/qos/ahci.h"
#include "tests/qos/qos.h"
#include "tests/unit/loop-thread.h"

#define AM_RAM_SIZE     (32u << 20)
#define AM_DISK_SIZE    (8u << 20)
#define AM_DISK_SECTORS (AM_DISK_SIZE / 512)
#define AM_DEVFN        PCI_DEVFN(0x1f, 2)
#define AM_DEVFN2       PCI_DEVFN(0x1f, 5) /* a second controller */
#define AM_MAX_DISKS    3

/* What an interrupt output saw. */
typedef struct IrqProbe {
    atomic_int level;
    atomic_uint raises; /* 0 -> 1 transitions */
} IrqProbe;

typedef struct MsiProbe {
    atomic_uint count;
    _Atomic uint64_t addr;
    atomic_uint data;
} MsiProbe;

typedef struct AhciMachine {
    GuestMemory ram;
    AddressSpace as;
    PciHost host;
    MainLoopThread loop;

    BlockBackend *blk[AM_MAX_DISKS];
    int img_fd[AM_MAX_DISKS]; /* our own view of each image */
    int ndisks;

    AhciState *ahci[2];
    IrqProbe intx[2];
    MsiProbe msi[2];
    MsiSink msi_sink[2];

    Qos q;
    QAhci a;
} AhciMachine;

extern AhciMachine am;

/* The 64-bit word at byte @offset of disk @disk's initial image. */
uint64_t am_pattern(int disk, uint64_t offset);

/* Fixture: one controller, a disk on port 0; the driver found it. */
void am_setup(void);
/*
 * The same with disk 0 opened as @scheme (a path prefix such as
 * "logwrites:", or "") + its path, with block options @options.
 */
void am_setup_disk(const char *scheme, const char *options);
void am_teardown(void);

/* Create controller @i (0 or 1) at @devfn, its interrupts probed. */
void am_create_ahci(int i, uint8_t devfn);

/* Open another patterned disk (index returned). */
int am_add_disk(void);
int am_add_disk_opts(const char *scheme, const char *options);

/* Guest RAM as the host sees it. */
static inline uint8_t *am_ram(uint64_t gpa)
{
    return am.ram.host + gpa;
}

/* Check @bytes of guest RAM at @gpa against disk @disk at @offset. */
void am_check_pattern(int disk, uint64_t offset, uint64_t gpa, uint64_t bytes);

/* Wait for @slots to leave PxCI/PxSACT, leaving PxIS alone. */
void am_wait_idle(QAhci *a, int port, uint32_t slots);

/* Start @port and assert it runs. */
void am_start_port(QAhci *a, int port);

/* Count "guest error" lines written to stderr between begin and end. */
void am_stderr_begin(void);
int am_stderr_end(void);

/* The bad-input test case, in test-ahci-bad.c. */
TCase *ahci_bad_tcase(void);

#endif
