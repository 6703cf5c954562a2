/*
 * virtio-pci modern: queue start/stop on the owning threads, interrupts,
 * capabilities and set-up (virtio 1.x section 4.1). The registers of the
 * modern BAR are in virtio-pci-regs.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "aio/main-loop.h"
#include "devices/virtio-pci-int.h"
#include "util/compiler.h"
#include "util/trace.h"

#define TRANSPORT_FEATURES                                                     \
    (1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_INDIRECT_DESC |        \
     1ull << VIRTIO_RING_F_EVENT_IDX)

static AioContext *queue_ctx(const VirtioPciQueue *q)
{
    return q->ctx ? q->ctx : main_loop_context();
}

bool virtio_pci_has_feature(const VirtioPciDevice *d, unsigned bit)
{
    return bit < 64 && (d->features >> bit) & 1;
}

uint8_t virtio_pci_status(VirtioPciDevice *d)
{
    return atomic_load(&d->status);
}

void virtio_pci_call_notify_hook(VirtioPciDevice *d)
{
    if (d->notify_hook) {
        d->notify_hook(d->notify_opaque, d);
    }
}

/* ---- Interrupts ---------------------------------------------------------- */

/* Main loop, big lock: the INTx level follows the ISR. */
static void intx_update_bh(void *opaque)
{
    VirtioPciDevice *d = opaque;

    pci_set_intx(&d->pci, atomic_load(&d->isr) != 0);
}

/* Any thread: an owning IOThread, the main loop, or a vCPU. */
static void raise_irq(VirtioPciDevice *d, uint16_t vector, uint8_t isr_bit)
{
    uint8_t old;

    if (atomic_load(&d->msix_enabled)) {
        if (vector != VIRTIO_PCI_NO_VECTOR) {
            pci_msix_notify(&d->pci, vector);
        }
        return;
    }
    old = atomic_fetch_or(&d->isr, isr_bit);
    if (bql_locked()) {
        pci_set_intx(&d->pci, 1);
        return;
    }
    /*
     * pci_set_intx() needs the big lock, which IOThreads never take. The
     * trace shows the request's interrupt here, where it is asked for: the
     * BH that raises the line serves every request since. Only the first
     * bit since the driver's last ISR read schedules it: with bits already
     * set, the line is up or the BH is on its way (the read clears the ISR
     * under the big lock, so it cannot fall in between), and scheduling it
     * again would wake the main loop once more for every completion.
     */
    TRACE(IRQ, trace_current_id(), .a = {0, 1}, .s = {"intx-bh"});
    if (!old) {
        aio_bh_schedule(d->intx_bh);
    }
}

void virtio_pci_queue_interrupt(VirtioPciDevice *d, unsigned index)
{
    VirtioPciQueue *q = &d->queues[index];

    /*
     * DATAPATH 7: the used ring moved; interrupt the driver unless it asked
     * not to be (EVENT_IDX or NO_INTERRUPT). MSI-X goes out from this very
     * thread (under KVM through an irqfd or KVM_SIGNAL_MSI); only the INTx
     * fallback has to hop to the main loop.
     */
    if (virtq_should_notify(&q->vq)) {
        raise_irq(d, atomic_load_explicit(&q->vector, memory_order_relaxed),
                  VIRTIO_PCI_ISR_QUEUE);
    }
}

/* A queue's owner found the ring broken (virtq_error()). */
static void queue_broken(void *opaque, VirtQueue *vq)
{
    VirtioPciDevice *d = opaque;
    uint8_t old = atomic_fetch_or(&d->status, VIRTIO_CONFIG_S_NEEDS_RESET);

    (void)vq;
    if ((old & VIRTIO_CONFIG_S_DRIVER_OK) &&
        !(old & VIRTIO_CONFIG_S_NEEDS_RESET)) {
        raise_irq(d, atomic_load(&d->config_vector), VIRTIO_PCI_ISR_CONFIG);
    }
}

/* ---- Queues, on their owning threads ------------------------------------- */

static void queue_run(VirtioPciQueue *q)
{
    do {
        virtq_disable_notify(&q->vq);
        q->dev->info->handle_queue(q->dev, q->index);
    } while (virtq_enable_notify(&q->vq));
}

static void queue_kick(void *opaque)
{
    VirtioPciQueue *q = opaque;
    eventfd_t count;

    /*
     * virtio-blk skips DATAPATH 1-2: the guest's notify write is an eventfd
     * (a KVM ioeventfd, or the notify region below under qtest) watched by
     * the context that owns this ring. Its thread wakes here and pops and
     * submits in the same loop iteration: on an IOThread, with no big lock
     * and no main loop involved.
     */
    (void)eventfd_read(q->notify_fd, &count); /* EAGAIN: polled already */
    TRACE(VIRTIO_NOTIFY, 0, .a = {q->index}, .s = {q->dev->trace_name});
    queue_run(q);
}

/* Adaptive polling on IOThreads: work without waiting for the eventfd. */
static bool queue_poll(void *opaque)
{
    VirtioPciQueue *q = opaque;

    return virtq_has_work(&q->vq);
}

static void queue_poll_ready(void *opaque)
{
    queue_run(opaque);
}

/* While the IOThread busy-polls the ring, the guest need not kick. */
static void queue_poll_begin(void *opaque)
{
    VirtioPciQueue *q = opaque;

    virtq_disable_notify(&q->vq);
}

static void queue_poll_end(void *opaque)
{
    VirtioPciQueue *q = opaque;

    /* What came meanwhile: aio_poll() looks with queue_poll() next. */
    (void)virtq_enable_notify(&q->vq);
}

static void queue_watch(void *opaque)
{
    VirtioPciQueue *q = opaque;

    if (virtq_start(&q->vq) == 0) {
        aio_set_fd_handler(queue_ctx(q), q->notify_fd, queue_kick, NULL,
                           queue_poll, queue_poll_ready, q);
        aio_set_poll_begin_end(queue_ctx(q), q->notify_fd, queue_poll_begin,
                               queue_poll_end);
    }
}

static void queue_unwatch(void *opaque)
{
    VirtioPciQueue *q = opaque;
    AioContext *ctx = queue_ctx(q);

    aio_set_fd_handler(ctx, q->notify_fd, NULL, NULL, NULL, NULL, NULL);
    /* Our requests complete on this thread: run its loop until they did. */
    while (q->vq.inuse > 0) {
        aio_poll(ctx, true);
    }
    virtq_stop(&q->vq);
}

void virtio_pci_queue_start(VirtioPciDevice *d, VirtioPciQueue *q)
{
    VirtQueue *vq = &q->vq;

    vq->num = q->size;
    vq->desc_gpa = q->desc;
    vq->avail_gpa = q->driver;
    vq->used_gpa = q->device;
    vq->event_idx = virtio_pci_has_feature(d, VIRTIO_RING_F_EVENT_IDX);
    vq->indirect = virtio_pci_has_feature(d, VIRTIO_RING_F_INDIRECT_DESC);
    q->watched = true;
    aio_run_in_context(queue_ctx(q), queue_watch, q);
}

/* Big lock held. On return no request of the queue is in flight. */
static void queue_quiesce(VirtioPciQueue *q)
{
    if (q->watched) {
        aio_run_in_context(queue_ctx(q), queue_unwatch, q);
        q->watched = false;
    }
}

static void queue_reset(VirtioPciQueue *q)
{
    eventfd_t count;

    virtq_reset(&q->vq);
    q->size = q->max_size;
    q->enabled = false;
    q->desc = q->driver = q->device = 0;
    atomic_store(&q->vector, VIRTIO_PCI_NO_VECTOR);
    (void)eventfd_read(q->notify_fd, &count); /* stale kicks */
}

void virtio_pci_reset(VirtioPciDevice *d)
{
    for (unsigned i = 0; i < d->num_queues; i++) {
        queue_quiesce(&d->queues[i]);
    }
    for (unsigned i = 0; i < d->num_queues; i++) {
        queue_reset(&d->queues[i]);
    }
    d->driver_features = 0;
    d->features = 0;
    d->dfselect = d->gfselect = 0;
    d->queue_sel = 0;
    atomic_store(&d->config_vector, VIRTIO_PCI_NO_VECTOR);
    atomic_store(&d->isr, 0);
    atomic_store(&d->status, 0);
    pci_set_intx(&d->pci, 0);
    virtio_pci_call_notify_hook(d);
}

/* ---- Set-up -------------------------------------------------------------- */

static void add_vendor_cap(VirtioPciDevice *d, uint8_t type, uint32_t offset,
                           uint32_t length, uint8_t cap_len)
{
    uint8_t cap = pci_add_capability(&d->pci, PCI_CAP_ID_VENDOR, cap_len);

    pci_set_byte(&d->pci, cap + VIRTIO_PCI_CAP_LEN, cap_len);
    pci_set_byte(&d->pci, cap + VIRTIO_PCI_CAP_CFG_TYPE, type);
    pci_set_byte(&d->pci, cap + VIRTIO_PCI_CAP_BAR, VIRTIO_PCI_MODERN_BAR);
    pci_set_long(&d->pci, cap + VIRTIO_PCI_CAP_OFFSET, offset);
    pci_set_long(&d->pci, cap + VIRTIO_PCI_CAP_LENGTH, length);
    if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
        pci_set_long(&d->pci, cap + VIRTIO_PCI_NOTIFY_CAP_MULT,
                     VIRTIO_PCI_NOTIFY_MULT);
    }
}

static void config_written(PciDevice *pci, uint32_t offset, unsigned size)
{
    VirtioPciDevice *d = container_of(pci, VirtioPciDevice, pci);
    const PciBar *bar = &pci->bars[VIRTIO_PCI_MODERN_BAR];
    uint64_t base = bar->mapped ? bar->mapped_addr : 0;

    (void)offset;
    (void)size;
    atomic_store(&d->msix_enabled, pci_msix_enabled(pci));
    if (pci_msix_enabled(pci)) {
        pci_set_intx(pci, 0); /* with MSI-X on, INTx is never asserted */
    }
    if (base != d->notify_base) {
        d->notify_base = base;
        virtio_pci_call_notify_hook(d);
    }
}

static const PciDeviceOps virtio_pci_ops = {
    .config_written = config_written,
};

int virtio_pci_init(VirtioPciDevice *d, const VirtioDeviceInfo *info,
                    const VirtioPciParams *p)
{
    uint16_t qsize = p->queue_size;
    int ret;

    if (!p->num_queues || p->num_queues > VIRTIO_PCI_MAX_QUEUES || !qsize ||
        qsize > VIRTQ_MAX_SIZE || (qsize & (qsize - 1)) ||
        !main_loop_context()) {
        return -EINVAL;
    }
    memset(d, 0, sizeof(*d));
    d->info = info;
    d->ram = p->ram;
    snprintf(d->name, sizeof(d->name), "%s", p->name ? p->name : info->name);
    d->trace_name = trace_active() ? trace_intern(d->name) : d->name;
    d->host_features = p->features | TRANSPORT_FEATURES;
    d->num_queues = p->num_queues;
    atomic_store(&d->config_vector, VIRTIO_PCI_NO_VECTOR);
    d->queues = calloc(p->num_queues, sizeof(*d->queues));
    if (!d->queues) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < p->num_queues; i++) {
        d->queues[i].notify_fd = -1;
    }
    for (unsigned i = 0; i < p->num_queues; i++) {
        VirtioPciQueue *q = &d->queues[i];

        q->dev = d;
        q->index = i;
        q->ctx = p->ctx ? p->ctx[i] : NULL;
        q->max_size = qsize;
        q->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        q->vq.ram = p->ram;
        q->vq.name = d->name;
        q->vq.index = i;
        q->vq.on_error = queue_broken;
        q->vq.opaque = d;
        if (q->notify_fd < 0) {
            ret = -errno;
            goto fail;
        }
        queue_reset(q);
    }

    pci_device_init(&d->pci, d->name, VIRTIO_PCI_VENDOR_ID,
                    VIRTIO_PCI_DEVICE_ID_BASE + info->device_id,
                    info->class_code, 1);
    pci_set_subsystem(&d->pci, VIRTIO_PCI_VENDOR_ID, VIRTIO_PCI_SUBSYSTEM_ID);
    d->pci.ops = &virtio_pci_ops;
    d->pci.intx = p->intx;
    d->pci.msi_sink = p->msi;
    pci_register_bar(&d->pci, VIRTIO_PCI_MODERN_BAR, VIRTIO_PCI_MODERN_SIZE,
                     PCI_BAR_MEM64 | 0x8 /* prefetchable */,
                     &virtio_pci_modern_ops, d);
    add_vendor_cap(d, VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFFSET,
                   VIRTIO_PCI_REGION_SIZE, sizeof(struct virtio_pci_cap));
    add_vendor_cap(d, VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET,
                   VIRTIO_PCI_REGION_SIZE, sizeof(struct virtio_pci_cap));
    add_vendor_cap(d, VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFFSET,
                   VIRTIO_PCI_REGION_SIZE, sizeof(struct virtio_pci_cap));
    add_vendor_cap(d, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_NOTIFY_OFFSET,
                   VIRTIO_PCI_REGION_SIZE,
                   sizeof(struct virtio_pci_notify_cap));
    ret = pci_msix_init(&d->pci, p->num_queues + 1, VIRTIO_PCI_MSIX_BAR);
    if (ret < 0) {
        goto fail_pci;
    }
    d->intx_bh = aio_bh_new(main_loop_context(), intx_update_bh, d);
    ret = pci_host_plug(p->host, &d->pci, p->devfn);
    if (ret < 0) {
        aio_bh_delete(d->intx_bh);
        goto fail_pci;
    }
    return 0;

fail_pci:
    pci_device_cleanup(&d->pci);
fail:
    for (unsigned i = 0; i < p->num_queues; i++) {
        if (d->queues[i].notify_fd >= 0) {
            close(d->queues[i].notify_fd);
        }
    }
    free(d->queues);
    return ret;
}

/* pci.c has no unplug: undo pci_host_plug() and the BAR mappings here. */
static void unplug(VirtioPciDevice *d)
{
    if (d->pci.host) {
        pci_host_unplug(d->pci.host, &d->pci);
    }
}

void virtio_pci_quiesce(VirtioPciDevice *d)
{
    for (unsigned i = 0; i < d->num_queues; i++) {
        queue_quiesce(&d->queues[i]);
    }
}

void virtio_pci_cleanup(VirtioPciDevice *d)
{
    for (unsigned i = 0; i < d->num_queues; i++) {
        queue_quiesce(&d->queues[i]);
    }
    /* The board drops its ioeventfds before the eventfds close. */
    d->notify_base = 0;
    virtio_pci_call_notify_hook(d);
    for (unsigned i = 0; i < d->num_queues; i++) {
        virtq_reset(&d->queues[i].vq);
        close(d->queues[i].notify_fd);
    }
    unplug(d);
    aio_bh_delete(d->intx_bh);
    pci_device_cleanup(&d->pci);
    free(d->queues);
    d->queues = NULL;
    d->num_queues = 0;
}

/* ---- For the board ------------------------------------------------------- */

int virtio_pci_queue_notify_fd(VirtioPciDevice *d, int queue)
{
    if (queue < 0 || (unsigned)queue >= d->num_queues) {
        return -EINVAL;
    }
    return d->queues[queue].notify_fd;
}

bool virtio_pci_queue_notify_gpa(VirtioPciDevice *d, int queue, uint64_t *gpa)
{
    if (queue < 0 || (unsigned)queue >= d->num_queues || !d->notify_base) {
        return false;
    }
    *gpa = d->notify_base + VIRTIO_PCI_NOTIFY_OFFSET +
           (uint64_t)queue * VIRTIO_PCI_NOTIFY_MULT;
    return true;
}

void virtio_pci_set_notify_hook(VirtioPciDevice *d, VirtioPciNotifyHook *hook,
                                void *opaque)
{
    d->notify_hook = hook;
    d->notify_opaque = opaque;
}
