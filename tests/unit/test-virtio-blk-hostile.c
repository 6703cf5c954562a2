/*
 * virtio-blk against a hostile guest. Broken rings must stop the queue with
 * DEVICE_NEEDS_RESET (and a config interrupt), bad requests must complete
 * with an error status, and in every case the device touches no RAM but the
 * used ring, interrupt landing words and the request's own buffers, other
 * queues keep working, and a reset brings the broken queue back.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "tests/unit/vblk-machine.h"

#define F(bit) (1ull << (bit))

static QVirtioBlk b;

static QVirtioBlkOptions driver_opts(bool indirect)
{
    return (QVirtioBlkOptions){
        .num_queues = 2,
        .msix = true,
        .features = F(VIRTIO_BLK_F_MQ) | F(VIRTIO_RING_F_EVENT_IDX) |
                    (indirect ? F(VIRTIO_RING_F_INDIRECT_DESC) : 0),
    };
}

/* Queue 0 on an IOThread or on the main loop, queue 1 on the other kind. */
static void start(int variant, bool indirect, uint16_t qsize)
{
    VmOptions o = {.num_queues = 2, .owners_set = true, .queue_size = qsize};
    QVirtioBlkOptions d = driver_opts(indirect);

    o.owner[0] = variant & 1 ? ON_MAIN : ON_IO0;
    o.owner[1] = variant & 1 ? ON_IO1 : ON_MAIN;
    vm_start(&o);
    vm_driver(&b, 0, &d);
}

/* What the device may write while it handles queue @vq's requests. */
static int device_areas(QVirtQueue *vq, VmRange *r)
{
    r[0] = (VmRange){vq->used, 6 + 8ull * vq->size + 2};
    r[1] = (VmRange){b.dev.msix_landing, 4ull * b.dev.msix_entries};
    return 2;
}

static bool needs_reset(void *opaque)
{
    return vm_needs_reset(opaque);
}

/* Queue @vq was just broken: check the aftermath, then recover. */
static void expect_broken_then_recover(QVirtQueue *vq, const uint8_t *snap,
                                       bool indirect, const VmRange *extra,
                                       int nextra)
{
    QVirtioBlkOptions d = driver_opts(indirect);
    VmRange ok[8];
    uint64_t buf = vm_alloc(4096);
    int64_t changed;
    int n;

    ck_assert_msg(qos_wait(needs_reset, &b, VM_TIMEOUT_MS),
                  "no DEVICE_NEEDS_RESET");
    ck_assert(vm_wait_msi(0, 0, 1)); /* the config change interrupt */
    n = device_areas(vq, ok);
    for (int i = 0; i < nextra; i++) {
        ok[n++] = extra[i];
    }
    changed = vm_ram_changed(snap, ok, n);
    ck_assert_msg(changed < 0, "RAM changed at 0x%llx",
                  (unsigned long long)changed);
    /* The driver may keep reading status; the bit stays. */
    qvirtio_set_status(&b.dev, vm_status(&b) & ~VIRTIO_CONFIG_S_NEEDS_RESET);
    ck_assert(vm_needs_reset(&b));

    /* The other queue still serves requests. */
    ck_assert_int_eq(qvirtio_blk_rw(&b, 1, VIRTIO_BLK_T_IN, 7, buf, 512),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 7 * 512, 512));

    /* Reset and start over: the broken queue is back. */
    ck_assert(qvirtio_reset(&b.dev));
    vm_driver(&b, 0, &d);
    ck_assert(!vm_needs_reset(&b));
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 9, buf, 1024),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 9 * 512, 1024));
    vm_stop();
}

/* ---- Broken rings -------------------------------------------------------- */

enum {
    H_AVAIL_JUMP,
    H_HEAD_RANGE,
    H_LOOP,
    H_NEXT_RANGE,
    H_INDIRECT_NOT_NEGOTIATED,
    H_INDIRECT_NESTED,
    H_INDIRECT_BAD_LEN,
    H_INDIRECT_TOO_BIG,
    H_INDIRECT_OUTSIDE,
    H_INDIRECT_LOOP,
    H_INDIRECT_WITH_NEXT,
    H_BUFFER_OUTSIDE,
    H_BUFFER_WRAPS,
    H_READABLE_AFTER_WRITABLE,
    H_COUNT
};

START_TEST(test_broken_ring)
{
    int kind = _i / 2;
    bool indirect = kind != H_INDIRECT_NOT_NEGOTIATED;
    struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 1};
    uint64_t hdr, st, data, tbl, tbl2;
    QVirtQueue *vq;
    Qos *q;
    uint8_t *snap;
    uint16_t n;

    start(_i, indirect, 0);
    vq = &b.vq[0];
    n = vq->size;
    q = &vm.q;
    hdr = vm_alloc(4096);
    st = hdr + 64;
    data = vm_alloc(4096);
    tbl = vm_alloc(16 * (n + 1));
    tbl2 = vm_alloc(4096);
    qos_memwrite(q, hdr, &h, sizeof(h));
    vm_fill(data, 4096, 0x99);
    /* A good indirect table, for the cases that point at one. */
    qvirtqueue_write_desc(q, tbl, 0, hdr, 16, VRING_DESC_F_NEXT, 1);
    qvirtqueue_write_desc(q, tbl, 1, data, 512,
                          VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
    qvirtqueue_write_desc(q, tbl, 2, st, 1, VRING_DESC_F_WRITE, 0);
    /* And a good direct chain at 0, 1, 2 that the cases spoil. */
    qvirtqueue_write_desc(q, vq->desc, 0, hdr, 16, VRING_DESC_F_NEXT, 1);
    qvirtqueue_write_desc(q, vq->desc, 1, data, 512,
                          VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
    qvirtqueue_write_desc(q, vq->desc, 2, st, 1, VRING_DESC_F_WRITE, 0);

    switch (kind) {
    case H_AVAIL_JUMP: {
        uint16_t idx = n + 5;

        qos_memwrite(q, vq->avail + 2, &idx, 2);
        break;
    }
    case H_HEAD_RANGE:
        qvirtqueue_publish(vq, n + 3);
        break;
    case H_LOOP:
        qvirtqueue_write_desc(q, vq->desc, 1, data, 512,
                              VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
        break;
    case H_NEXT_RANGE:
        qvirtqueue_write_desc(q, vq->desc, 1, data, 512,
                              VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, n + 1);
        break;
    case H_INDIRECT_NOT_NEGOTIATED:
    case H_INDIRECT_BAD_LEN:
    case H_INDIRECT_TOO_BIG:
    case H_INDIRECT_OUTSIDE:
    case H_INDIRECT_WITH_NEXT: {
        uint64_t at = kind == H_INDIRECT_OUTSIDE ? VM_RAM_SIZE - 16 : tbl;
        uint32_t len = kind == H_INDIRECT_BAD_LEN   ? 40
                       : kind == H_INDIRECT_TOO_BIG ? 16u * (n + 1)
                                                    : 48;
        uint16_t flags = VRING_DESC_F_INDIRECT |
                         (kind == H_INDIRECT_WITH_NEXT ? VRING_DESC_F_NEXT : 0);

        qvirtqueue_write_desc(q, vq->desc, 0, at, len, flags, 1);
        break;
    }
    case H_INDIRECT_NESTED:
        qvirtqueue_write_desc(q, tbl2, 0, tbl, 48, VRING_DESC_F_INDIRECT, 0);
        qvirtqueue_write_desc(q, vq->desc, 0, tbl2, 16, VRING_DESC_F_INDIRECT,
                              0);
        break;
    case H_INDIRECT_LOOP:
        qvirtqueue_write_desc(q, tbl, 2, st, 1,
                              VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 0);
        qvirtqueue_write_desc(q, vq->desc, 0, tbl, 48, VRING_DESC_F_INDIRECT,
                              0);
        break;
    case H_BUFFER_OUTSIDE:
    case H_BUFFER_WRAPS:
        qvirtqueue_write_desc(q, vq->desc, 1,
                              kind == H_BUFFER_OUTSIDE ? VM_RAM_SIZE - 256
                                                       : UINT64_MAX - 100,
                              512, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
        break;
    case H_READABLE_AFTER_WRITABLE:
        qvirtqueue_write_desc(q, vq->desc, 0, hdr, 16, VRING_DESC_F_NEXT, 2);
        qvirtqueue_write_desc(q, vq->desc, 2, st, 1,
                              VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
        qvirtqueue_write_desc(q, vq->desc, 1, data, 512, 0, 0);
        break;
    }
    if (kind != H_AVAIL_JUMP && kind != H_HEAD_RANGE) {
        qvirtqueue_publish(vq, 0);
    }
    snap = vm_ram_snapshot();
    qvirtqueue_notify(vq);
    expect_broken_then_recover(vq, snap, indirect, NULL, 0);
    free(snap);
}
END_TEST

/* The driver re-offers a head still in flight until more than the ring holds.
 */
static bool in_flight_8(void *opaque)
{
    (void)opaque;
    return blk_in_flight(vm.blk[0]) >= 8;
}

static bool used_8(void *opaque)
{
    return qvirtqueue_used_idx(opaque) == 8;
}

START_TEST(test_more_in_flight_than_the_ring)
{
    struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN};
    uint64_t hdr, data;
    QVirtQueue *vq;
    uint8_t *snap;
    VmRange bufs[3];

    start(_i, false, 8);
    vq = &b.vq[0];
    ck_assert_uint_eq(vq->size, 8);
    hdr = vm_alloc(4096);
    data = vm_alloc(4096);
    qos_memwrite(&vm.q, hdr, &h, sizeof(h));
    qvirtqueue_write_desc(&vm.q, vq->desc, 0, hdr, 16, VRING_DESC_F_NEXT, 1);
    qvirtqueue_write_desc(&vm.q, vq->desc, 1, data, 512,
                          VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 2);
    qvirtqueue_write_desc(&vm.q, vq->desc, 2, hdr + 64, 1, VRING_DESC_F_WRITE,
                          0);
    /* Taken first: a snapshot is slow enough to eat the delay below. */
    snap = vm_ram_snapshot();
    blk_inject_delay_us(vm.blk[0], 1000000);
    for (int i = 0; i < 8; i++) {
        qvirtqueue_publish(vq, 0);
    }
    qvirtqueue_notify(vq);
    ck_assert(qos_wait(in_flight_8, NULL, VM_TIMEOUT_MS));
    qvirtqueue_publish(vq, 0);
    qvirtqueue_notify(vq);
    /* The eight it took still complete, into their own buffers only. */
    ck_assert(qos_wait(used_8, vq, VM_TIMEOUT_MS));
    bufs[0] = (VmRange){data, 512};
    bufs[1] = (VmRange){hdr + 64, 1};
    bufs[2] = (VmRange){vq->avail, 4 + 2ull * vq->size};
    expect_broken_then_recover(vq, snap, false, bufs, 3);
    free(snap);
}
END_TEST

/* Rings that are not in RAM or misaligned break the queue at DRIVER_OK. */
START_TEST(test_ring_outside_ram)
{
    QVirtioDevice *d = &b.dev;
    uint64_t ring = 0, desc, used;
    uint8_t *snap;
    int kind = _i / 2;

    start(_i, false, 0);
    ck_assert(qvirtio_reset(d));
    ck_assert(qvirtio_negotiate(d, F(VIRTIO_F_VERSION_1) | F(VIRTIO_BLK_F_MQ)));
    ck_assert_uint_eq(qvirtio_set_config_vector(d, 0), 0);
    ck_assert(qvirtqueue_setup(d, &b.vq[1], 1, 16, 2));
    ring = vm_alloc(16384);
    desc = kind == 0 ? VM_RAM_SIZE - 64 : ring;
    used = kind == 1 ? ring + 8192 + 2 : ring + 8192;
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SIZE, 16, 2);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)desc, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_DESCHI, desc >> 32, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_AVAILLO, ring + 4096, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_AVAILHI, 0, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)used, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_USEDHI, 0, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    /* Queue 0 as the rest of the test sees it. */
    b.vq[0] = (QVirtQueue){.dev = d, .size = 16, .used = used};
    snap = vm_ram_snapshot();
    qvirtio_driver_ok(d);
    b.slots[1] = vm_alloc(16 * 128);
    expect_broken_then_recover(&b.vq[0], snap, false, NULL, 0);
    free(snap);
}
END_TEST

/* ---- Bad requests: an error status, nothing else ------------------------- */

START_TEST(test_bad_requests_complete_with_status)
{
    struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 1};
    uint64_t hdr, st, data, big;
    VmRange ok[8];
    QVirtQueue *vq;
    uint8_t *snap, disk[512];
    uint64_t later;
    uint32_t len = 99;
    uint16_t head;
    int n;

    start(_i, false, 0);
    vq = &b.vq[0];
    hdr = vm_alloc(4096);
    st = hdr + 64;
    data = vm_alloc(8192);
    vm_fill(data, 8192, 0x5a);
    later = vm.q.alloc_next; /* vm_raw_request() allocates from here */
    snap = vm_ram_snapshot();

    /* A header of 8 bytes. */
    qos_memwrite(&vm.q, hdr, &h, sizeof(h));
    head = qvirtqueue_add(vq, hdr, 8, false, true);
    qvirtqueue_add(vq, st, 1, true, false);
    qvirtqueue_publish(vq, head);
    qvirtqueue_kick(vq);
    ck_assert(qvirtqueue_wait(vq, head, &len, VM_TIMEOUT_MS));
    ck_assert_uint_eq(len, 1);
    ck_assert(vm_check_byte(st, 1, VIRTIO_BLK_S_IOERR));

    /* No writable byte at all: returned unanswered, nothing written. */
    head = qvirtqueue_add(vq, hdr, 16, false, true);
    qvirtqueue_add(vq, data, 512, false, false);
    qvirtqueue_publish(vq, head);
    qvirtqueue_kick(vq);
    ck_assert(qvirtqueue_wait(vq, head, &len, VM_TIMEOUT_MS));
    ck_assert_uint_eq(len, 0);

    /* Unknown type, and reads that do not fit. */
    ck_assert_int_eq(vm_raw_request(vq, 99, 0, 0, 0, data, 512, &len),
                     VIRTIO_BLK_S_UNSUPP);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(
        vm_raw_request(vq, VIRTIO_BLK_T_IN, VM_SECTORS, 0, 0, data, 512, &len),
        VIRTIO_BLK_S_IOERR);
    ck_assert_uint_eq(len, 1);
    ck_assert_int_eq(vm_raw_request(vq, VIRTIO_BLK_T_IN, VM_SECTORS - 1, 0, 0,
                                    data, 1024, NULL),
                     VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(vm_raw_request(vq, VIRTIO_BLK_T_IN, UINT64_MAX / 512 + 1,
                                    0, 0, data, 512, NULL),
                     VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(
        vm_raw_request(vq, VIRTIO_BLK_T_IN, UINT64_MAX, 0, 0, data, 512, NULL),
        VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(
        vm_raw_request(vq, VIRTIO_BLK_T_IN, 0, 0, 0, data, 513, NULL),
        VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(
        vm_raw_request(vq, VIRTIO_BLK_T_OUT, 0, data, 100, 0, 0, NULL),
        VIRTIO_BLK_S_IOERR);
    /* Longer than the block layer takes: the same RAM five times. */
    big = VM_RAM_SIZE / 2;
    head = qvirtqueue_add(vq, hdr, 16, false, true);
    for (int i = 0; i < 5; i++) {
        qvirtqueue_add(vq, big, VM_RAM_SIZE / 2, true, true);
    }
    qvirtqueue_add(vq, st, 1, true, false);
    qvirtqueue_publish(vq, head);
    qvirtqueue_kick(vq);
    ck_assert(qvirtqueue_wait(vq, head, &len, VM_TIMEOUT_MS));
    ck_assert(vm_check_byte(st, 1, VIRTIO_BLK_S_IOERR));
    ck_assert_uint_eq(len, 1);

    /* Nothing but used ring, landing words and status bytes changed. */
    n = device_areas(vq, ok);
    ok[n++] = (VmRange){hdr, 4096};
    ok[n++] = (VmRange){vq->avail, 6 + 2ull * vq->size};
    ok[n++] = (VmRange){vq->desc, 16ull * vq->size};
    ok[n++] = (VmRange){later, 1 << 20};
    ck_assert_int_lt(vm_ram_changed(snap, ok, n), 0);
    ck_assert(vm_check_byte(big, 16, 0));
    ck_assert_int_eq(pread(vm.img_fd[0], disk, 512, 0), 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(disk[i], vm_pattern(0, i));
    }
    free(snap);

    /* An empty read is fine; and the device never needed a reset. */
    ck_assert_int_eq(vm_raw_request(vq, VIRTIO_BLK_T_IN, 0, 0, 0, 0, 0, &len),
                     VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(len, 1);
    ck_assert(!vm_needs_reset(&b));
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 2, data, 4096),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, data, 2 * 512, 4096));
    vm_stop();
}
END_TEST

/* Registers poked where and when they should not be. */
START_TEST(test_register_abuse)
{
    QVirtioDevice *d = &b.dev;
    uint64_t buf;

    start(_i, false, 0);
    buf = vm_alloc(4096);
    /* Notify a queue that does not exist; write read-only regions. */
    qos_writew(&vm.q, d->notify + 4 * 40, 40);
    qos_writel(&vm.q, d->notify + 0xffc, 1);
    qos_writeb(&vm.q, d->isr, 0xff);
    qos_writel(&vm.q, d->device, 0xdeadbeef);
    ck_assert_uint_eq(qvirtio_config_readq(d, 0), VM_SECTORS);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_NUMQ, 9, 2);
    ck_assert_uint_eq(qvirtio_common_read(d, VIRTIO_PCI_COMMON_NUMQ, 2), 2);
    qvirtio_common_write(d, 0x3c, 1, 4);
    /* A running queue's ring addresses are frozen; enable cannot go to 0. */
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_DESCLO, 0x1000, 4);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SIZE, 2, 2);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 0, 2);
    ck_assert_uint_eq(qvirtio_common_read(d, VIRTIO_PCI_COMMON_Q_DESCLO, 4),
                      (uint32_t)b.vq[0].desc);
    ck_assert_uint_eq(qvirtio_common_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
    /* Queue registers of a queue that does not exist. */
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_SELECT, 30, 2);
    qvirtio_common_write(d, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
    ck_assert_uint_eq(qvirtio_common_read(d, VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
    /* Status bits come and go only as the spec allows. */
    ck_assert(!vm_needs_reset(&b));
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 3, buf, 4096),
                     VIRTIO_BLK_S_OK);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 1, VIRTIO_BLK_T_IN, 3, buf, 4096),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 3 * 512, 4096));
    vm_stop();
}
END_TEST

void virtio_blk_add_hostile_tests(Suite *s)
{
    TCase *tc = tcase_create("hostile");

    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_broken_ring, 0, 2 * H_COUNT);
    tcase_add_loop_test(tc, test_more_in_flight_than_the_ring, 0, 2);
    tcase_add_loop_test(tc, test_ring_outside_ram, 0, 4);
    tcase_add_loop_test(tc, test_bad_requests_complete_with_status, 0, 2);
    tcase_add_loop_test(tc, test_register_abuse, 0, 2);
    suite_add_tcase(s, tc);
}
