#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include "aio/main-loop.h"
#include "tests/qos/qos-local.h"
#include "tests/unit/vblk-machine.h"
#include "util/clock.h"

Vm vm;

uint8_t vm_pattern(unsigned dev, uint64_t i)
{
    return (uint8_t)(i * 131 + (i >> 12) + 7 + dev * 101);
}

static const char *image_dir(void)
{
    const char *dir = getenv("MINIVMM_TEST_DIR");

    return dir && *dir ? dir : "/var/tmp";
}

/* A patterned image, unlinked at once: our fd keeps it for the checks. */
static int make_image(unsigned dev, char *path, size_t len)
{
    uint8_t *buf = malloc(VM_IMG_SIZE);
    int fd;

    snprintf(path, len, "%s/minivmm-test-vblk-XXXXXX", image_dir());
    fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp in %s: %s", image_dir(), strerror(errno));
    for (uint64_t i = 0; i < VM_IMG_SIZE; i++) {
        buf[i] = vm_pattern(dev, i);
    }
    ck_assert_int_eq(pwrite(fd, buf, VM_IMG_SIZE, 0), (ssize_t)VM_IMG_SIZE);
    free(buf);
    return fd;
}

/* MSIs are DMA writes: store the data at the address, if it is RAM. */
static void msi_land(void *opaque, uint64_t addr, uint32_t data)
{
    VmMsi *msi = opaque;
    uint32_t *p = gm_ptr(&vm.ram, addr, 4);

    /* The write lands before it is counted: waiters then see both. */
    if (p && !(addr & 3)) {
        __atomic_store_n(p, data, __ATOMIC_RELEASE);
    }
    if (data >= QVIRTIO_MSI_DATA(0) && data < QVIRTIO_MSI_DATA(VM_MAX_VECS)) {
        unsigned v = data - QVIRTIO_MSI_DATA(0);

        atomic_store(&msi->thread[v], (unsigned long)pthread_self());
        atomic_fetch_add(&msi->count[v], 1);
    } else {
        atomic_fetch_add(&msi->stray, 1);
    }
}

static void irq_set_level(void *opaque, int gsi, int level)
{
    VmIrq *irq = opaque;

    (void)gsi;
    if (level && !atomic_exchange(&irq->level, 1)) {
        atomic_fetch_add(&irq->raises, 1);
    } else if (!level) {
        atomic_store(&irq->level, 0);
    }
}

static void count_hook(void *opaque, VirtioPciDevice *d)
{
    (void)d;
    atomic_fetch_add((atomic_uint *)opaque, 1);
}

static void record_thread(void *opaque)
{
    *(pthread_t *)opaque = pthread_self();
}

pthread_t vm_owner_thread(int owner)
{
    return owner == ON_MAIN ? vm.loop.thread : vm.io_thread[owner - ON_IO0];
}

void vm_start(const VmOptions *o)
{
    VmOptions none = {0};
    AioContextOptions io_opts = {.poll = {.max_ns = AIO_POLL_MAX_NS_DEFAULT,
                                          .weight = AIO_POLL_WEIGHT_DEFAULT},
                                 .uring_flags =
                                     AIO_IOTHREAD_URING_FLAGS_DEFAULT};
    char path[256], spec[300], err[256];

    if (!o) {
        o = &none;
    }
    memset(&vm, 0, sizeof(vm));
    vm.ndev = o->ndev ? o->ndev : 1;
    ck_assert_int_eq(gm_init(&vm.ram, VM_RAM_SIZE), 0);
    as_init(&vm.as, &vm.ram);
    pci_host_init(&vm.host, &vm.as);
    main_loop_thread_start(&vm.loop,
                           &(MainLoopOptions){.fdmon = AIO_FDMON_AUTO});
    if (o->uring_flags_set) {
        io_opts.uring_flags = o->uring_flags;
    }
    if (o->poll_set) {
        io_opts.poll = o->poll;
    }
    for (int i = 0; i < 2; i++) {
        vm.io[i] = iothread_new(i ? "vblk-io1" : "vblk-io0", &io_opts);
        ck_assert_ptr_nonnull(vm.io[i]);
        aio_run_in_context(iothread_get_context(vm.io[i]), record_thread,
                           &vm.io_thread[i]);
    }
    for (unsigned n = 0; n < vm.ndev; n++) {
        VirtioBlkOptions bo = {
            .num_queues = o->num_queues,
            .serial = VM_SERIAL(n),
            .queue_size = o->queue_size,
        };
        IrqLine intx = {
            .set_level = irq_set_level, .opaque = &vm.irq[n], .gsi = 10 + n};

        vm.img_fd[n] = make_image(n, path, sizeof(path));
        snprintf(spec, sizeof(spec), "%s%s", o->blk_scheme ? o->blk_scheme : "",
                 path);
        ck_assert_msg(blk_open_string(spec,
                                      o->blk_options ? o->blk_options
                                      : o->readonly  ? "readonly=on"
                                                     : NULL,
                                      &vm.blk[n], err, sizeof(err)) == 0,
                      "blk_open: %s", err);
        unlink(path);
        for (unsigned qi = 0; qi < VIRTIO_BLK_MAX_QUEUES; qi++) {
            int owner = o->owners_set ? o->owner[qi] : ON_IO0;

            bo.ctx[qi] = owner == ON_MAIN
                             ? NULL
                             : iothread_get_context(vm.io[owner - ON_IO0]);
        }
        vm.sink[n] = (MsiSink){.send = msi_land, .opaque = &vm.msi[n]};
        bql_lock();
        ck_assert_int_eq(virtio_blk_create(&vm.vblk[n], &vm.host, VM_DEVFN(n),
                                           &vm.ram, &vm.sink[n], intx,
                                           vm.blk[n], &bo),
                         0);
        virtio_pci_set_notify_hook(virtio_blk_pci(vm.vblk[n]), count_hook,
                                   &vm.hook_calls[n]);
        bql_unlock();
    }
    qos_local_init(&vm.q, &vm.as);
}

void vm_stop(void)
{
    bql_lock();
    for (unsigned n = 0; n < vm.ndev; n++) {
        virtio_blk_destroy(vm.vblk[n]);
    }
    bql_unlock();
    for (unsigned n = 0; n < vm.ndev; n++) {
        ck_assert_uint_eq(blk_in_flight(vm.blk[n]), 0);
        blk_close(vm.blk[n]);
        close(vm.img_fd[n]);
    }
    for (int i = 0; i < 2; i++) {
        iothread_free(vm.io[i]);
    }
    main_loop_thread_stop(&vm.loop);
    pci_host_cleanup(&vm.host);
    as_cleanup(&vm.as);
    gm_cleanup(&vm.ram);
}

uint64_t vm_alloc(uint64_t size)
{
    return qos_alloc(&vm.q, size, 4096);
}

void vm_fill(uint64_t gpa, uint64_t len, uint8_t seed)
{
    uint8_t *p = gm_ptr(&vm.ram, gpa, len);

    ck_assert_ptr_nonnull(p);
    for (uint64_t i = 0; i < len; i++) {
        p[i] = (uint8_t)(seed + i * 7 + (i >> 9));
    }
}

bool vm_check_pattern(unsigned dev, uint64_t gpa, uint64_t offset, uint64_t len)
{
    const uint8_t *p = gm_ptr(&vm.ram, gpa, len);

    for (uint64_t i = 0; p && i < len; i++) {
        if (p[i] != vm_pattern(dev, offset + i)) {
            return false;
        }
    }
    return p != NULL;
}

bool vm_check_byte(uint64_t gpa, uint64_t len, uint8_t value)
{
    const uint8_t *p = gm_ptr(&vm.ram, gpa, len);

    for (uint64_t i = 0; p && i < len; i++) {
        if (p[i] != value) {
            return false;
        }
    }
    return p != NULL;
}

void vm_driver(QVirtioBlk *b, unsigned dev, const QVirtioBlkOptions *o)
{
    ck_assert_msg(qvirtio_blk_init(b, &vm.q, dev, o), "driver init failed");
}

int vm_raw_request(QVirtQueue *vq, uint32_t type, uint64_t sector, uint64_t out,
                   uint32_t out_len, uint64_t in, uint32_t in_len,
                   uint32_t *used_len)
{
    struct virtio_blk_outhdr h = {.type = type, .sector = sector};
    uint64_t hdr = qos_alloc(&vm.q, 64, 64), st = hdr + 32;
    uint8_t status = 0xff;
    uint32_t len;
    uint16_t head;

    qos_memwrite(&vm.q, hdr, &h, sizeof(h));
    qos_memwrite(&vm.q, st, &status, 1);
    head = qvirtqueue_add(vq, hdr, sizeof(h), false, true);
    if (out_len) {
        qvirtqueue_add(vq, out, out_len, false, true);
    }
    if (in_len) {
        qvirtqueue_add(vq, in, in_len, true, true);
    }
    qvirtqueue_add(vq, st, 1, true, false);
    qvirtqueue_publish(vq, head);
    qvirtqueue_kick(vq);
    if (!qvirtqueue_wait(vq, head, &len, VM_TIMEOUT_MS)) {
        return -1;
    }
    if (used_len) {
        *used_len = len;
    }
    qos_memread(&vm.q, st, &status, 1);
    return status;
}

uint8_t vm_status(QVirtioBlk *b)
{
    return qvirtio_get_status(&b->dev);
}

bool vm_needs_reset(QVirtioBlk *b)
{
    return vm_status(b) & VIRTIO_CONFIG_S_NEEDS_RESET;
}

typedef struct MsiWait {
    unsigned dev, v, n;
} MsiWait;

static bool msi_reached(void *opaque)
{
    MsiWait *w = opaque;

    return atomic_load(&vm.msi[w->dev].count[w->v]) >= w->n;
}

bool vm_wait_msi(unsigned dev, unsigned v, unsigned n)
{
    MsiWait w = {.dev = dev, .v = v, .n = n};

    return qos_wait(msi_reached, &w, VM_TIMEOUT_MS);
}

/*
 * An MSI lands in RAM after the used ring says the request is done, so a
 * device thread may still be storing a landing word while we look: read
 * RAM as a CPU would, a word at a time, not with memcpy() (a data race).
 */
static void ram_copy(uint8_t *dst, uint64_t off, uint64_t len)
{
    const uint64_t *src = (const uint64_t *)(vm.ram.host + off);

    for (uint64_t i = 0; i < len / 8; i++) {
        uint64_t w = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        memcpy(dst + 8 * i, &w, 8);
    }
}

uint8_t *vm_ram_snapshot(void)
{
    uint8_t *copy = malloc(VM_RAM_SIZE);

    ck_assert_ptr_nonnull(copy);
    ram_copy(copy, 0, VM_RAM_SIZE);
    return copy;
}

static bool in_ranges(uint64_t off, const VmRange *ok, int n)
{
    for (int i = 0; i < n; i++) {
        if (off >= ok[i].gpa && off - ok[i].gpa < ok[i].len) {
            return true;
        }
    }
    return false;
}

int64_t vm_ram_changed(const uint8_t *snap, const VmRange *ok, int n)
{
    uint8_t now[4096];

    for (uint64_t off = 0; off < VM_RAM_SIZE; off += 4096) {
        ram_copy(now, off, 4096);
        if (!memcmp(now, snap + off, 4096)) {
            continue;
        }
        for (uint64_t i = off; i < off + 4096; i++) {
            if (now[i - off] != snap[i] && !in_ranges(i, ok, n)) {
                return (int64_t)i;
            }
        }
    }
    return -1;
}
