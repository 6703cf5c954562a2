/*
 * An in-process machine for the virtio-blk tests: guest RAM, an address
 * space, a PCI host, the main loop on its own thread, two IOThreads, and up
 * to two virtio-blk disks on patterned images. The test thread plays a vCPU
 * through the qos-local transport. MSIs land in guest RAM at their address
 * (as under qtest) and are counted per vector, with the thread that sent
 * them; INTx levels are recorded.
 */
#ifndef MINIVMM_TESTS_UNIT_VBLK_MACHINE_H
#define MINIVMM_TESTS_UNIT_VBLK_MACHINE_H

#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aio/iothread.h"
#include "block/block.h"
#include "devices/address-space.h"
#include "devices/pci.h"
#include "devices/virtio-blk.h"
#include "tests/qos/virtio-blk.h"
#include "tests/unit/loop-thread.h"

#define VM_RAM_SIZE   (32u << 20)
#define VM_IMG_SIZE   (4u << 20)
#define VM_SECTORS    (VM_IMG_SIZE / 512)
#define VM_MAX_DEVS   2
#define VM_MAX_VECS   (VIRTIO_BLK_MAX_QUEUES + 1)
#define VM_DEVFN(n)   PCI_DEVFN(4 + (n), 0)
#define VM_SERIAL(n)  ((n) ? "minivmm-vblk-second" : "MINIVMM-VBLK-0")
#define VM_TIMEOUT_MS 10000

/* Where each queue runs: the main loop or one of the two IOThreads. */
enum { ON_MAIN, ON_IO0, ON_IO1 };

typedef struct VmOptions {
    unsigned ndev;                    /* 0: one */
    unsigned num_queues;              /* 0: one */
    int owner[VIRTIO_BLK_MAX_QUEUES]; /* ON_*; default ON_IO0 for all */
    bool owners_set;
    bool readonly;
    uint16_t queue_size;
    /* IOThread io_uring setup flags (IORING_SETUP_*); else the default. */
    bool uring_flags_set;
    unsigned uring_flags;
    /* IOThread adaptive polling; else the IOThread defaults. */
    bool poll_set;
    AioPollParams poll;
    /* The images: a path prefix ("logwrites:") and block options. */
    const char *blk_scheme;
    const char *blk_options;
} VmOptions;

typedef struct VmMsi {
    atomic_uint count[VM_MAX_VECS];
    atomic_ulong thread[VM_MAX_VECS]; /* pthread_t of the last sender */
    atomic_uint stray;                /* data we did not program */
} VmMsi;

typedef struct VmIrq {
    atomic_int level;
    atomic_uint raises;
} VmIrq;

typedef struct Vm {
    GuestMemory ram;
    AddressSpace as;
    PciHost host;
    MainLoopThread loop;
    IOThread *io[2];
    pthread_t io_thread[2];
    unsigned ndev;
    int img_fd[VM_MAX_DEVS];
    BlockBackend *blk[VM_MAX_DEVS];
    VirtioBlk *vblk[VM_MAX_DEVS];
    MsiSink sink[VM_MAX_DEVS];
    VmMsi msi[VM_MAX_DEVS];
    VmIrq irq[VM_MAX_DEVS];
    atomic_uint hook_calls[VM_MAX_DEVS];
    Qos q;
} Vm;

extern Vm vm;

void vm_start(const VmOptions *o);
void vm_stop(void);

/* The image's initial byte at @offset (the device @dev's pattern). */
uint8_t vm_pattern(unsigned dev, uint64_t offset);
pthread_t vm_owner_thread(int owner);

/* Guest RAM helpers. */
uint64_t vm_alloc(uint64_t size);
void vm_fill(uint64_t gpa, uint64_t len, uint8_t seed);
bool vm_check_pattern(unsigned dev, uint64_t gpa, uint64_t offset,
                      uint64_t len);
bool vm_check_byte(uint64_t gpa, uint64_t len, uint8_t value);

/* Initialise a driver on device @dev; fails the test if it cannot. */
void vm_driver(QVirtioBlk *b, unsigned dev, const QVirtioBlkOptions *o);

/*
 * A request built by hand on @vq: header, an optional readable buffer @out,
 * an optional writable one @in, the status byte. Returns the status (or -1
 * on timeout) and the used length in *used_len.
 */
int vm_raw_request(QVirtQueue *vq, uint32_t type, uint64_t sector, uint64_t out,
                   uint32_t out_len, uint64_t in, uint32_t in_len,
                   uint32_t *used_len);

uint8_t vm_status(QVirtioBlk *b);
bool vm_needs_reset(QVirtioBlk *b);

/* Wait for MSI vector @v of device @dev to have fired @n times in all. */
bool vm_wait_msi(unsigned dev, unsigned v, unsigned n);

/*
 * RAM snapshots: vm_ram_changed() returns the first changed offset outside
 * the @n ranges {gpa, len} given, or -1.
 */
typedef struct VmRange {
    uint64_t gpa, len;
} VmRange;
uint8_t *vm_ram_snapshot(void);
int64_t vm_ram_changed(const uint8_t *snap, const VmRange *ok, int n);

/* test-virtio-blk-hostile.c: the hostile-guest test cases. */
void virtio_blk_add_hostile_tests(Suite *s);

#endif
