/*
 * virtio over PCI, modern (virtio 1.x) interface only.
 *
 * The transport a virtio device (virtio-blk) embeds: PCI identity, the
 * vendor-specific capabilities that point into one 64-bit memory BAR
 * (QEMU's layout: common config, ISR, device config, notify), MSI-X in its
 * own BAR, feature negotiation, the device status state machine, and one
 * split virtqueue per queue.
 *
 * Threads. Register accesses come from vCPU threads holding the big lock.
 * Each queue is owned by an AioContext (an IOThread's, or the main loop's),
 * chosen at creation. A guest kick writes the queue's eventfd, which only
 * the owning context watches: the device's handle_queue() and its request
 * completions then run on that thread, with no big lock on an IOThread.
 * Under KVM the board turns the notify addresses into ioeventfds on the same
 * eventfds (see virtio_pci_set_notify_hook()), so no vCPU exit happens at all.
 *
 * Reset (status 0) and destroy quiesce each queue on its own thread: stop
 * watching the eventfd and run that context's loop (aio_poll()) until the
 * queue's requests are back. The caller holds the big lock and waits for
 * that, so a reset waits on I/O under the big lock, as QEMU's bdrv_drain()
 * does. There is no sleep loop: the wait ends with the last completion.
 */
#ifndef MINIVMM_DEVICES_VIRTIO_PCI_H
#define MINIVMM_DEVICES_VIRTIO_PCI_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "aio/aio.h"
#include "devices/pci.h"
#include "devices/virtqueue.h"

#define VIRTIO_PCI_VENDOR_ID      0x1af4
#define VIRTIO_PCI_DEVICE_ID_BASE 0x1040 /* + virtio device type */
#define VIRTIO_PCI_SUBSYSTEM_ID   0x1100
#define VIRTIO_PCI_MAX_QUEUES     64
#define VIRTIO_PCI_CONFIG_MAX     256
#define VIRTIO_PCI_NO_VECTOR      0xffff

/* The modern BAR: four 4 KiB regions, as QEMU lays them out. */
#define VIRTIO_PCI_MSIX_BAR      1
#define VIRTIO_PCI_MODERN_BAR    4
#define VIRTIO_PCI_MODERN_SIZE   0x4000
#define VIRTIO_PCI_REGION_SIZE   0x1000
#define VIRTIO_PCI_COMMON_OFFSET 0x0000
#define VIRTIO_PCI_ISR_OFFSET    0x1000
#define VIRTIO_PCI_DEVICE_OFFSET 0x2000
#define VIRTIO_PCI_NOTIFY_OFFSET 0x3000
#define VIRTIO_PCI_NOTIFY_MULT   4 /* bytes of notify space per queue */

typedef struct VirtioPciDevice VirtioPciDevice;

/* What a virtio device type adds to the transport. */
typedef struct VirtioDeviceInfo {
    const char *name;
    uint16_t device_id;  /* virtio device type: 2 = block */
    uint32_t class_code; /* PCI class */
    /*
     * Pop and start the requests of queue @index until it is empty (or
     * broken). Runs on the queue's owning thread; notifications are
     * already suppressed around it.
     */
    void (*handle_queue)(VirtioPciDevice *d, unsigned index);
} VirtioDeviceInfo;

typedef struct VirtioPciQueue {
    VirtioPciDevice *dev;
    unsigned index;
    AioContext *ctx; /* NULL: the main loop */
    int notify_fd;
    uint16_t max_size;
    /* Registers (big lock); read-only for the guest once enabled. */
    uint16_t size;
    bool enabled;
    uint64_t desc, driver, device;
    atomic_ushort vector; /* read by the owning thread at completion */
    bool watched;         /* the owning context watches notify_fd */
    VirtQueue vq;
} VirtioPciQueue;

/* Called with the big lock when notify addresses or queue states change. */
typedef void VirtioPciNotifyHook(void *opaque, VirtioPciDevice *d);

struct VirtioPciDevice {
    PciDevice pci;
    const VirtioDeviceInfo *info;
    GuestMemory *ram;
    char name[32];
    const char *trace_name; /* the name, as long as a trace lives */

    uint64_t host_features;
    uint64_t driver_features;
    uint64_t features; /* negotiated; fixed from FEATURES_OK to reset */
    uint32_t dfselect, gfselect;
    uint16_t queue_sel;
    atomic_uchar status; /* NEEDS_RESET may be set by owning threads */
    atomic_uchar isr;
    atomic_ushort config_vector;
    atomic_bool msix_enabled;

    uint8_t config[VIRTIO_PCI_CONFIG_MAX]; /* filled in by the device */
    uint32_t config_size;

    unsigned num_queues;
    VirtioPciQueue *queues;

    AioBH *intx_bh; /* INTx from an IOThread goes through the main loop */
    VirtioPciNotifyHook *notify_hook;
    void *notify_opaque;
    uint64_t notify_base; /* where the modern BAR is mapped; 0: nowhere */
};

typedef struct VirtioPciParams {
    PciHost *host;
    uint8_t devfn;
    GuestMemory *ram;
    const MsiSink *msi;
    IrqLine intx;
    uint64_t features; /* device-type features; the transport adds its own */
    unsigned num_queues;
    uint16_t queue_size;    /* a power of two up to VIRTQ_MAX_SIZE */
    AioContext *const *ctx; /* per queue, NULL entries: main loop */
    const char *name;       /* for logs */
} VirtioPciParams;

/*
 * Set up @d (embedded in the device) and plug it into the bus. The main loop
 * must exist. Returns 0, -EINVAL, -EBUSY (devfn taken) or -errno.
 */
int virtio_pci_init(VirtioPciDevice *d, const VirtioDeviceInfo *info,
                    const VirtioPciParams *p);

/*
 * Stop every queue taking requests (its eventfd is no longer watched) and
 * wait for those in flight; what the guest kicked and the queue did not pop
 * stays in the ring. For the end of a run; call with the big lock held.
 */
void virtio_pci_quiesce(VirtioPciDevice *d);

/* Quiesce every queue, unplug, free. Call with the big lock held. */
void virtio_pci_cleanup(VirtioPciDevice *d);

static inline VirtQueue *virtio_pci_vq(VirtioPciDevice *d, unsigned index)
{
    return &d->queues[index].vq;
}

bool virtio_pci_has_feature(const VirtioPciDevice *d, unsigned bit);
uint8_t virtio_pci_status(VirtioPciDevice *d);

/*
 * After pushing used buffers on queue @index (its owning thread): interrupt
 * the driver if it wants to be.
 */
void virtio_pci_queue_interrupt(VirtioPciDevice *d, unsigned index);

/* ---- For the board (KVM ioeventfds) ------------------------------------ */

/* The eventfd a kick of @queue must write, or -EINVAL. */
int virtio_pci_queue_notify_fd(VirtioPciDevice *d, int queue);

/*
 * The guest-physical address of @queue's notify register (a 2-byte write of
 * the queue index), or false while the BAR is not mapped.
 */
bool virtio_pci_queue_notify_gpa(VirtioPciDevice *d, int queue, uint64_t *gpa);

/*
 * Called (big lock held) whenever the notify BAR is mapped, moved or
 * unmapped, when queues start, at reset, and at cleanup before the eventfds
 * close (with no notify address left), so that the board can (re)register
 * its KVM_IOEVENTFDs. The hook must not re-enter the device.
 */
void virtio_pci_set_notify_hook(VirtioPciDevice *d, VirtioPciNotifyHook *hook,
                                void *opaque);

#endif
