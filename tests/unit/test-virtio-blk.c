/*
 * Tests of virtio-blk over modern virtio-pci, driven by the qos driver
 * through the in-process transport (the test thread is the vCPU). Queues run
 * on the main loop and on two IOThreads. Hostile-guest tests are in
 * test-virtio-blk-hostile.c; the machine is in vblk-machine.c.
 */
#include <check.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "aio/main-loop.h"
#include "tests/unit/suites.h"
#include "tests/unit/vblk-machine.h"
#include "util/clock.h"

#define F(bit) (1ull << (bit))
#define ALL_FEATURES                                                           \
    (F(VIRTIO_RING_F_INDIRECT_DESC) | F(VIRTIO_RING_F_EVENT_IDX) |             \
     F(VIRTIO_BLK_F_SIZE_MAX) | F(VIRTIO_BLK_F_SEG_MAX) |                      \
     F(VIRTIO_BLK_F_BLK_SIZE) | F(VIRTIO_BLK_F_FLUSH) | F(VIRTIO_BLK_F_MQ) |   \
     F(VIRTIO_BLK_F_DISCARD) | F(VIRTIO_BLK_F_WRITE_ZEROES))
#define CFG(field) offsetof(struct virtio_blk_config, field)

static QVirtioBlk b;

static void start_one(unsigned nq, const int *owners, bool msix,
                      uint64_t features)
{
    VmOptions o = {.num_queues = nq};
    QVirtioBlkOptions d = {
        .features = features, .num_queues = nq, .msix = msix};

    if (owners) {
        o.owners_set = true;
        memcpy(o.owner, owners, nq * sizeof(*owners));
    }
    vm_start(&o);
    vm_driver(&b, 0, &d);
}

/* ---- Identity, configuration, negotiation -------------------------------- */

START_TEST(test_pci_identity_and_capabilities)
{
    QPciDevice pci;
    QVirtioDevice d;
    uint64_t feat, gpa;
    VirtioPciDevice *vp;

    vm_start(&(VmOptions){.num_queues = 3});
    ck_assert(qpci_find(&vm.q, 0x1af4, 0x1042, 0, &pci));
    ck_assert_uint_eq(qpci_config_read(&pci, 0x08, 1), 1); /* revision */
    ck_assert_uint_eq(qpci_config_read(&pci, 0x08, 4) >> 8, 0x018000);
    ck_assert_uint_eq(qpci_config_read(&pci, 0x2c, 2), 0x1af4);
    ck_assert_uint_ge(qpci_config_read(&pci, 0x2e, 2), 0x40);
    /* The modern BAR: 64-bit prefetchable memory. */
    ck_assert_uint_eq(qpci_config_read(&pci, 0x20, 4) & 0xf, 0xc);

    ck_assert(qvirtio_pci_find(&vm.q, VIRTIO_ID_BLOCK, 0, &d));
    ck_assert_uint_eq(d.notify_mult, 4);
    ck_assert_uint_eq(d.isr - d.common, 0x1000);
    ck_assert_uint_eq(d.device - d.common, 0x2000);
    ck_assert_uint_eq(d.notify - d.common, 0x3000);
    ck_assert_uint_eq(d.msix_entries, 4); /* one per queue plus config */
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_NUMQ, 2), 3);

    feat = qvirtio_device_features(&d);
    ck_assert_uint_eq(feat & (ALL_FEATURES | F(VIRTIO_F_VERSION_1)),
                      ALL_FEATURES | F(VIRTIO_F_VERSION_1));
    ck_assert(!(feat & F(VIRTIO_BLK_F_RO)));
    ck_assert(!(feat & F(VIRTIO_F_RING_PACKED)));

    ck_assert_uint_eq(qvirtio_config_readq(&d, CFG(capacity)), VM_SECTORS);
    ck_assert_uint_eq(qvirtio_config_readl(&d, CFG(blk_size)), 512);
    ck_assert_uint_eq(qvirtio_config_readl(&d, CFG(seg_max)), 254);
    ck_assert_uint_ge(qvirtio_config_readl(&d, CFG(size_max)), 1 << 20);
    ck_assert_uint_eq(qvirtio_config_readw(&d, CFG(num_queues)), 3);
    ck_assert_uint_eq(qvirtio_config_readl(&d, CFG(max_discard_seg)), 1);
    ck_assert_uint_eq(qvirtio_config_readl(&d, CFG(max_write_zeroes_seg)), 1);
    ck_assert_uint_gt(qvirtio_config_readl(&d, CFG(max_discard_sectors)), 0);
    ck_assert_uint_eq(qvirtio_config_readb(&d, CFG(write_zeroes_may_unmap)), 1);
    /* Past the structure: zero. */
    ck_assert_uint_eq(qvirtio_config_readl(&d, 0x100), 0);

    /* Queue registers: sizes, notify offsets, absent queues read 0. */
    for (uint16_t i = 0; i < 3; i++) {
        qvirtio_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, i, 2);
        ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2),
                          256);
        ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_Q_NOFF, 2),
                          i);
    }
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 3, 2);
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 0);

    /* What the board will use for ioeventfds, and its hook. */
    vp = virtio_blk_pci(vm.vblk[0]);
    ck_assert_uint_gt(atomic_load(&vm.hook_calls[0]), 0);
    ck_assert(virtio_pci_queue_notify_gpa(vp, 2, &gpa));
    ck_assert_uint_eq(gpa, d.notify + 2 * 4);
    ck_assert(!virtio_pci_queue_notify_gpa(vp, 3, &gpa));
    ck_assert_int_ge(virtio_pci_queue_notify_fd(vp, 0), 0);
    ck_assert_int_eq(virtio_pci_queue_notify_fd(vp, 3), -EINVAL);
    vm_stop();
}
END_TEST

START_TEST(test_feature_negotiation)
{
    QVirtioDevice d;
    uint64_t offered;
    unsigned hooks;

    vm_start(NULL);
    ck_assert(qvirtio_pci_find(&vm.q, VIRTIO_ID_BLOCK, 0, &d));
    offered = qvirtio_device_features(&d);

    /* A modern-only device refuses a driver without VERSION_1. */
    ck_assert(!qvirtio_negotiate_raw(&d, offered & ~F(VIRTIO_F_VERSION_1)));
    ck_assert(!(qvirtio_get_status(&d) & VIRTIO_CONFIG_S_FEATURES_OK));
    /* ... and one that accepts what was not offered. */
    ck_assert(qvirtio_reset(&d));
    ck_assert(!qvirtio_negotiate_raw(&d, F(VIRTIO_F_VERSION_1) |
                                             F(VIRTIO_F_RING_PACKED)));
    /* DRIVER_OK without FEATURES_OK does not stick. */
    qvirtio_set_status(&d, qvirtio_get_status(&d) | VIRTIO_CONFIG_S_DRIVER_OK);
    ck_assert(!(qvirtio_get_status(&d) & VIRTIO_CONFIG_S_DRIVER_OK));

    ck_assert(qvirtio_reset(&d));
    ck_assert_uint_eq(qvirtio_get_status(&d), 0);
    ck_assert(qvirtio_negotiate(&d, offered));
    /* Features are fixed once FEATURES_OK is set. */
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_GFSELECT, 0, 4);
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_GF, 0, 4);
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_GF, 4),
                      offered >> 32);

    /* Vectors the table lacks read back as NO_VECTOR; bad sizes are kept out.
     */
    ck_assert_uint_eq(qvirtio_set_config_vector(&d, 1), 1);
    ck_assert_uint_eq(qvirtio_set_config_vector(&d, 2), QVIRTIO_NO_VECTOR);
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_Q_SELECT, 0, 2);
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_Q_SIZE, 100, 2);
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2),
                      256);
    qvirtio_common_write(&d, VIRTIO_PCI_COMMON_Q_SIZE, 64, 2);
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2), 64);

    /* Reset brings everything back. */
    hooks = atomic_load(&vm.hook_calls[0]);
    ck_assert(qvirtio_reset(&d));
    ck_assert_uint_gt(atomic_load(&vm.hook_calls[0]), hooks);
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_Q_SIZE, 2),
                      256);
    ck_assert_uint_eq(qvirtio_common_read(&d, VIRTIO_PCI_COMMON_MSIX, 2),
                      QVIRTIO_NO_VECTOR);
    vm_stop();
}
END_TEST

/* ---- Data ---------------------------------------------------------------- */

START_TEST(test_read_write_integrity)
{
    static const struct {
        uint64_t sector;
        uint32_t len;
    } cases[] = {{0, 512},
                 {1, 4096},
                 {77, 65536},
                 {VM_SECTORS - 256, 131072},
                 {VM_SECTORS - 1, 512}};
    QVirtioBlkReq r;
    uint8_t disk[8192];
    uint64_t buf;

    start_one(1, NULL, true, 0);
    buf = vm_alloc(131072);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vm_fill(buf, cases[i].len, 0x55);
        r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                            .sector = cases[i].sector,
                            .data = buf,
                            .len = cases[i].len};
        ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
        ck_assert_uint_eq(r.used_len, cases[i].len + 1);
        ck_assert(
            vm_check_pattern(0, buf, cases[i].sector * 512, cases[i].len));
    }

    /* Write a new pattern, read it back through the device and the file. */
    vm_fill(buf, 8192, 0x3c);
    r = (QVirtioBlkReq){
        .type = VIRTIO_BLK_T_OUT, .sector = 100, .data = buf, .len = 8192};
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(r.used_len, 1);
    ck_assert_int_eq(pread(vm.img_fd[0], disk, sizeof(disk), 100 * 512),
                     (ssize_t)sizeof(disk));
    ck_assert(!memcmp(disk, gm_ptr(&vm.ram, buf, 8192), sizeof(disk)));
    vm_fill(buf, 8192, 0);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 100, buf, 8192),
                     VIRTIO_BLK_S_OK);
    ck_assert(!memcmp(disk, gm_ptr(&vm.ram, buf, 8192), sizeof(disk)));
    /* The sectors around it are untouched. */
    ck_assert_int_eq(pread(vm.img_fd[0], disk, 512, 99 * 512), 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(disk[i], vm_pattern(0, 99 * 512 + i));
    }
    ck_assert_int_eq(pread(vm.img_fd[0], disk, 512, 116 * 512), 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(disk[i], vm_pattern(0, 116 * 512 + i));
    }
    vm_stop();
}
END_TEST

/* A read scattered over three buffers of one chain: one request, 3 iovecs. */
START_TEST(test_scattered_chain)
{
    struct virtio_blk_outhdr h = {.type = VIRTIO_BLK_T_IN, .sector = 16};
    uint64_t hdr, st, d1, d2, d3;
    QVirtQueue *vq;
    uint16_t head;
    uint32_t len;

    start_one(1, NULL, false, 0);
    vq = &b.vq[0];
    hdr = vm_alloc(4096);
    st = hdr + 64;
    d1 = vm_alloc(4096);
    d2 = vm_alloc(4096);
    d3 = vm_alloc(4096);
    qos_memwrite(&vm.q, hdr, &h, sizeof(h));
    head = qvirtqueue_add(vq, hdr, 8, false, true); /* header split in two */
    qvirtqueue_add(vq, hdr + 8, 8, false, true);
    qvirtqueue_add(vq, d1, 512, true, true);
    qvirtqueue_add(vq, d2, 0, true, true); /* empty: ignored */
    qvirtqueue_add(vq, d2, 1024, true, true);
    qvirtqueue_add(vq, d3, 512, true, true);
    qvirtqueue_add(vq, st, 1, true, false);
    qvirtqueue_publish(vq, head);
    qvirtqueue_kick(vq);
    ck_assert(qvirtqueue_wait(vq, head, &len, VM_TIMEOUT_MS));
    ck_assert_uint_eq(len, 2048 + 1);
    ck_assert(vm_check_byte(st, 1, VIRTIO_BLK_S_OK));
    ck_assert(vm_check_pattern(0, d1, 16 * 512, 512));
    ck_assert(vm_check_pattern(0, d2, 16 * 512 + 512, 1024));
    ck_assert(vm_check_pattern(0, d3, 16 * 512 + 1536, 512));
    vm_stop();
}
END_TEST

START_TEST(test_flush_and_get_id)
{
    QVirtioBlkReq r = {.type = VIRTIO_BLK_T_FLUSH};
    BlockStats before, after;
    char id[21] = {0};
    uint64_t buf;

    start_one(1, NULL, true, F(VIRTIO_BLK_F_FLUSH));
    buf = vm_alloc(4096);
    blk_get_stats(vm.blk[0], &before);
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(r.used_len, 1);
    blk_get_stats(vm.blk[0], &after);
    ck_assert_uint_gt(after.syncs, before.syncs);
    ck_assert_uint_eq(after.op[BLOCK_OP_FLUSH].ops,
                      before.op[BLOCK_OP_FLUSH].ops + 1);

    /* GET_ID: 20 bytes, NUL-padded. */
    vm_fill(buf, 64, 0xee);
    r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_GET_ID, .data = buf, .len = 20};
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(r.used_len, 21);
    qos_memread(&vm.q, buf, id, 20);
    ck_assert_str_eq(id, VM_SERIAL(0));
    ck_assert(vm_check_byte(buf + strlen(VM_SERIAL(0)),
                            20 - strlen(VM_SERIAL(0)), 0));
    /* A short buffer gets what fits and nothing beyond. */
    vm_fill(buf, 64, 0xee);
    r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_GET_ID, .data = buf, .len = 6};
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(r.used_len, 7);
    ck_assert(!memcmp(gm_ptr(&vm.ram, buf, 6), VM_SERIAL(0), 6));
    ck_assert_uint_eq(*(uint8_t *)gm_ptr(&vm.ram, buf + 6, 1),
                      (uint8_t)(0xee + 6 * 7));
    vm_stop();
}
END_TEST

static int dwz(uint32_t type, uint64_t sector, uint32_t n, uint32_t flags)
{
    QVirtioBlkReq r = {
        .type = type, .sector = sector, .num_sectors = n, .dwz_flags = flags};

    return qvirtio_blk_request(&b, 0, &r);
}

START_TEST(test_discard_and_write_zeroes)
{
    struct virtio_blk_discard_write_zeroes two[2] = {
        {.sector = 0, .num_sectors = 1}, {.sector = 8, .num_sectors = 1}};
    uint64_t buf, seg;

    start_one(1, NULL, true, ALL_FEATURES);
    buf = vm_alloc(65536);
    seg = vm_alloc(4096);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_DISCARD, 8, 8, 0), VIRTIO_BLK_S_OK);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 32, 8,
                         VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
                     VIRTIO_BLK_S_OK);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 48, 16, 0),
                     VIRTIO_BLK_S_OK);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, 65536),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 0, 8 * 512));
    ck_assert(vm_check_byte(buf + 8 * 512, 8 * 512, 0));
    ck_assert(vm_check_pattern(0, buf + 16 * 512, 16 * 512, 16 * 512));
    ck_assert(vm_check_byte(buf + 32 * 512, 8 * 512, 0));
    ck_assert(vm_check_pattern(0, buf + 40 * 512, 40 * 512, 8 * 512));
    ck_assert(vm_check_byte(buf + 48 * 512, 16 * 512, 0));
    ck_assert(vm_check_pattern(0, buf + 64 * 512, 64 * 512, 64 * 512));

    /* What the spec says to refuse, and out-of-range requests. */
    ck_assert_int_eq(
        dwz(VIRTIO_BLK_T_DISCARD, 0, 1, VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP),
        VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 0, 1, 0x2),
                     VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_DISCARD, VM_SECTORS - 1, 2, 0),
                     VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, UINT64_MAX / 4, 1, 0),
                     VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(
        dwz(VIRTIO_BLK_T_DISCARD, 0, VIRTIO_BLK_MAX_DWZ_SECTORS + 1, 0),
        VIRTIO_BLK_S_IOERR);
    /* Two segments: more than max_discard_seg; a short segment. */
    qos_memwrite(&vm.q, seg, two, sizeof(two));
    ck_assert_int_eq(vm_raw_request(&b.vq[0], VIRTIO_BLK_T_DISCARD, 0, seg,
                                    sizeof(two), 0, 0, NULL),
                     VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(vm_raw_request(&b.vq[0], VIRTIO_BLK_T_WRITE_ZEROES, 0, seg,
                                    8, 0, 0, NULL),
                     VIRTIO_BLK_S_IOERR);
    /* None of the refused ones zeroed anything. */
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, 4096),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 0, 4096));
    vm_stop();

    /* Not negotiated: not supported. */
    start_one(1, NULL, true, 0);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_DISCARD, 8, 8, 0), VIRTIO_BLK_S_UNSUPP);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 8, 8, 0),
                     VIRTIO_BLK_S_UNSUPP);
    vm_stop();
}
END_TEST

START_TEST(test_indirect_descriptors)
{
    QVirtioBlkReq r;
    uint64_t buf;

    start_one(1, NULL, true, F(VIRTIO_RING_F_INDIRECT_DESC));
    ck_assert(b.vq[0].indirect);
    buf = vm_alloc(16384);
    vm_fill(buf, 16384, 0x11);
    r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_OUT,
                        .sector = 200,
                        .data = buf,
                        .len = 16384,
                        .indirect = true};
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(b.vq[0].num_free, b.vq[0].size); /* one desc, returned */
    vm_fill(buf, 16384, 0);
    r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                        .sector = 200,
                        .data = buf,
                        .len = 16384,
                        .indirect = true};
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert_uint_eq(r.used_len, 16385);
    for (int i = 0; i < 16384; i++) {
        ck_assert_uint_eq(*(uint8_t *)gm_ptr(&vm.ram, buf + i, 1),
                          (uint8_t)(0x11 + i * 7 + (i >> 9)));
    }
    r = (QVirtioBlkReq){.type = VIRTIO_BLK_T_FLUSH, .indirect = true};
    ck_assert_int_eq(qvirtio_blk_request(&b, 0, &r), VIRTIO_BLK_S_OK);
    ck_assert(!vm_needs_reset(&b));
    vm_stop();
}
END_TEST

/* ---- Interrupts ---------------------------------------------------------- */

START_TEST(test_event_idx_suppression)
{
    QVirtQueue *vq;
    uint64_t buf;
    unsigned base;

    start_one(1, NULL, true, F(VIRTIO_RING_F_EVENT_IDX));
    vq = &b.vq[0];
    ck_assert(vq->event_idx);
    buf = vm_alloc(4096);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, 512), 0);
    ck_assert(vm_wait_msi(0, 1, 1));
    base = atomic_load(&vm.msi[0].count[1]);

    /* "Interrupt me when the used index passes 3": only the 4th does. */
    vq->hold_used_event = true;
    qvirtqueue_set_used_event(vq, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, i, buf, 512),
                         0);
    }
    ck_assert(vm_wait_msi(0, 1, base + 1));
    qvirtqueue_set_used_event(vq, 4);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 9, buf, 512), 0);
    /* The 5th interrupt comes after any the 2nd or 3rd could have sent. */
    ck_assert(vm_wait_msi(0, 1, base + 2));
    ck_assert_uint_eq(atomic_load(&vm.msi[0].count[1]), base + 2);
    ck_assert_uint_eq(qvirtqueue_used_idx(vq), 5);
    /* Idle: the device asks for a kick at the next buffer. */
    ck_assert_uint_eq(qvirtqueue_avail_event(vq), vq->avail_idx);
    vm_stop();

    /* Without EVENT_IDX, VRING_AVAIL_F_NO_INTERRUPT does the same. */
    start_one(1, NULL, true, 0);
    vq = &b.vq[0];
    buf = vm_alloc(4096);
    qvirtqueue_set_no_interrupt(vq, true);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, i, buf, 512),
                         0);
    }
    qvirtqueue_set_no_interrupt(vq, false);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, 512), 0);
    ck_assert(vm_wait_msi(0, 1, 1));
    ck_assert_uint_eq(atomic_load(&vm.msi[0].count[1]), 1);
    ck_assert(qvirtio_msix_take(&b.dev, 1));
    ck_assert(!qvirtio_msix_take(&b.dev, 1));
    vm_stop();
}
END_TEST

/* Queues on the main loop and on both IOThreads, all busy at once. */
START_TEST(test_multiqueue_on_iothreads_and_main)
{
    enum { NQ = 4, PER = 8, CHUNK = 16384 };
    static const int owners[NQ] = {ON_MAIN, ON_IO0, ON_IO1, ON_IO0};
    static QVirtioBlkReq r[NQ][PER];
    uint64_t buf;
    uint8_t disk[4096];

    start_one(NQ, owners, true, F(VIRTIO_BLK_F_MQ));
    buf = vm_alloc(NQ * PER * CHUNK);
    for (int q = 0; q < NQ; q++) {
        for (int k = 0; k < PER; k++) {
            int n = q * PER + k;

            r[q][k] = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                                      .sector = n * (CHUNK / 512),
                                      .data = buf + (uint64_t)n * CHUNK,
                                      .len = CHUNK};
            qvirtio_blk_submit(&b, q, &r[q][k]);
        }
    }
    for (int q = 0; q < NQ; q++) {
        qvirtio_blk_kick(&b, q);
    }
    for (int q = 0; q < NQ; q++) {
        for (int k = 0; k < PER; k++) {
            int n = q * PER + k;

            ck_assert(qvirtio_blk_wait(&b, q, &r[q][k], VM_TIMEOUT_MS));
            ck_assert_uint_eq(r[q][k].status, VIRTIO_BLK_S_OK);
            ck_assert(vm_check_pattern(0, buf + (uint64_t)n * CHUNK,
                                       (uint64_t)n * CHUNK, CHUNK));
        }
        /* Completions, and so the interrupts, come from the owner. */
        ck_assert(vm_wait_msi(0, q + 1, 1));
        ck_assert(pthread_equal(atomic_load(&vm.msi[0].thread[q + 1]),
                                vm_owner_thread(owners[q])));
    }

    /* Writes to separate regions from all queues at once. */
    for (int q = 0; q < NQ; q++) {
        for (int k = 0; k < PER; k++) {
            int n = q * PER + k;

            vm_fill(buf + (uint64_t)n * 4096, 4096, n);
            r[q][k] = (QVirtioBlkReq){.type = VIRTIO_BLK_T_OUT,
                                      .sector = 1000 + n * 8,
                                      .data = buf + (uint64_t)n * 4096,
                                      .len = 4096};
            qvirtio_blk_submit(&b, q, &r[q][k]);
        }
        qvirtio_blk_kick(&b, q);
    }
    for (int q = 0; q < NQ; q++) {
        for (int k = 0; k < PER; k++) {
            int n = q * PER + k;

            ck_assert(qvirtio_blk_wait(&b, q, &r[q][k], VM_TIMEOUT_MS));
            ck_assert_uint_eq(r[q][k].status, VIRTIO_BLK_S_OK);
            ck_assert_int_eq(
                pread(vm.img_fd[0], disk, 4096, (1000 + n * 8) * 512), 4096);
            ck_assert(
                !memcmp(disk, gm_ptr(&vm.ram, buf + n * 4096, 4096), 4096));
        }
    }
    ck_assert_uint_eq(blk_in_flight(vm.blk[0]), 0);
    vm_stop();
}
END_TEST

/* The iotest step: 16 x 128 KiB in one batch. */
START_TEST(test_read_batch)
{
    uint64_t buf;

    start_one(1, NULL, true, 0);
    buf = vm_alloc(16 * 131072);
    for (int round = 0; round < 2; round++) {
        ck_assert_int_eq(
            qvirtio_blk_read_batch(&b, 0, round * 256, buf, 16, 131072), 0);
        ck_assert(vm_check_pattern(0, buf, round * 256 * 512, 16 * 131072));
    }
    vm_stop();
}
END_TEST

static bool vector1_pending(void *opaque)
{
    /* 2 table entries of 16 bytes, then the PBA. */
    return qos_readq(&vm.q, *(uint64_t *)opaque + 32) & 2;
}

START_TEST(test_msix_masked_vector_pends)
{
    uint64_t buf, pba;

    start_one(1, NULL, true, 0);
    buf = vm_alloc(4096);
    qvirtio_msix_mask(&b.dev, 1, true);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, 512), 0);
    /* Completed, but the masked vector only pends (it may lag the ring). */
    ck_assert(qos_wait(vector1_pending, &b.dev.msix_table, VM_TIMEOUT_MS));
    pba = b.dev.msix_table + 32;
    ck_assert_uint_eq(atomic_load(&vm.msi[0].count[1]), 0);
    ck_assert(!qvirtio_msix_take(&b.dev, 1));
    qvirtio_msix_mask(&b.dev, 1, false);
    ck_assert(vm_wait_msi(0, 1, 1));
    ck_assert(qvirtio_msix_take(&b.dev, 1));
    ck_assert_uint_eq(qos_readq(&vm.q, pba) & 2, 0);
    vm_stop();
}
END_TEST

static bool intx_high(void *opaque)
{
    return atomic_load((atomic_int *)opaque) == 1;
}

START_TEST(test_intx_and_isr_fallback)
{
    static const int owners[2] = {ON_IO0, ON_MAIN};
    uint64_t buf;

    start_one(2, owners, false, F(VIRTIO_BLK_F_MQ));
    buf = vm_alloc(4096);
    ck_assert_uint_eq(b.vq[0].vector, QVIRTIO_NO_VECTOR);
    for (int q = 0; q < 2; q++) {
        unsigned raises = atomic_load(&vm.irq[0].raises);

        ck_assert_int_eq(qvirtio_blk_rw(&b, q, VIRTIO_BLK_T_IN, 3, buf, 512),
                         0);
        ck_assert(qos_wait(intx_high, &vm.irq[0].level, VM_TIMEOUT_MS));
        ck_assert_uint_eq(atomic_load(&vm.irq[0].raises), raises + 1);
        /* Reading the ISR acknowledges: bit 0, then the line drops. */
        ck_assert_uint_eq(qvirtio_isr(&b.dev) & 3, 1);
        ck_assert_int_eq(atomic_load(&vm.irq[0].level), 0);
        ck_assert_uint_eq(qvirtio_isr(&b.dev), 0);
    }
    ck_assert_uint_eq(atomic_load(&vm.msi[0].stray), 0);
    vm_stop();
}
END_TEST

/* ---- Reset, destroy, several devices ------------------------------------- */

typedef struct InFlight {
    BlockBackend *blk;
    unsigned n;
} InFlight;

static bool in_flight_reached(void *opaque)
{
    InFlight *f = opaque;

    return blk_in_flight(f->blk) >= f->n;
}

static void submit_delayed_reads(uint64_t buf, int nq, int per)
{
    static QVirtioBlkReq r[8][8];
    InFlight f = {.blk = vm.blk[0], .n = nq * per};

    blk_inject_delay_us(vm.blk[0], 300000);
    for (int q = 0; q < nq; q++) {
        for (int k = 0; k < per; k++) {
            r[q][k] = (QVirtioBlkReq){.type = VIRTIO_BLK_T_IN,
                                      .sector = k * 8,
                                      .data = buf + (q * per + k) * 4096,
                                      .len = 4096};
            qvirtio_blk_submit(&b, q, &r[q][k]);
        }
        qvirtio_blk_kick(&b, q);
    }
    /* All of them have reached the block layer and sit in its delay. */
    ck_assert(qos_wait(in_flight_reached, &f, VM_TIMEOUT_MS));
}

START_TEST(test_reset_with_requests_in_flight)
{
    static const int owners[3] = {ON_MAIN, ON_IO0, ON_IO1};
    QVirtioBlkOptions o = {
        .num_queues = 3, .msix = true, .features = F(VIRTIO_BLK_F_MQ)};
    uint64_t buf;

    start_one(3, owners, true, F(VIRTIO_BLK_F_MQ));
    buf = vm_alloc(12 * 4096);
    submit_delayed_reads(buf, 3, 4);
    /* The status write returns only once every queue is quiet. */
    ck_assert(qvirtio_reset(&b.dev));
    ck_assert_uint_eq(blk_in_flight(vm.blk[0]), 0);
    ck_assert_uint_eq(vm_status(&b), 0);
    for (int q = 0; q < 3; q++) {
        ck_assert_uint_eq(qvirtqueue_used_idx(&b.vq[q]), 4);
    }

    /* A new driver on the same device works on every queue. */
    blk_inject_delay_us(vm.blk[0], 0);
    vm_driver(&b, 0, &o);
    for (int q = 0; q < 3; q++) {
        ck_assert_int_eq(
            qvirtio_blk_rw(&b, q, VIRTIO_BLK_T_IN, 40 + q, buf, 4096), 0);
        ck_assert(vm_check_pattern(0, buf, (40 + q) * 512, 4096));
    }
    vm_stop();
}
END_TEST

START_TEST(test_destroy_with_requests_in_flight)
{
    static const int owners[3] = {ON_IO1, ON_MAIN, ON_IO0};
    uint64_t buf;

    start_one(3, owners, true, F(VIRTIO_BLK_F_MQ));
    buf = vm_alloc(12 * 4096);
    submit_delayed_reads(buf, 3, 4);
    vm_stop(); /* destroys the device first; checks nothing is left */
}
END_TEST

START_TEST(test_two_devices)
{
    static QVirtioBlk b2;
    QVirtioBlkOptions o = {.msix = true};
    uint8_t disk[4096];
    char id[21] = {0};
    uint64_t buf;

    vm_start(&(VmOptions){.ndev = 2});
    vm_driver(&b, 0, &o);
    vm_driver(&b2, 1, &o);
    ck_assert_uint_ne(b.dev.pci.devfn, b2.dev.pci.devfn);
    buf = vm_alloc(8192);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 5, buf, 4096), 0);
    ck_assert_int_eq(
        qvirtio_blk_rw(&b2, 0, VIRTIO_BLK_T_IN, 5, buf + 4096, 4096), 0);
    ck_assert(vm_check_pattern(0, buf, 5 * 512, 4096));
    ck_assert(vm_check_pattern(1, buf + 4096, 5 * 512, 4096));
    ck_assert(vm_wait_msi(0, 1, 1));
    ck_assert(vm_wait_msi(1, 1, 1));

    QVirtioBlkReq r = {.type = VIRTIO_BLK_T_GET_ID, .data = buf, .len = 20};
    ck_assert_int_eq(qvirtio_blk_request(&b2, 0, &r), 0);
    qos_memread(&vm.q, buf, id, 20);
    ck_assert_str_eq(id, VM_SERIAL(1));

    /* A write to the second disk leaves the first alone. */
    vm_fill(buf, 4096, 0x77);
    ck_assert_int_eq(qvirtio_blk_rw(&b2, 0, VIRTIO_BLK_T_OUT, 8, buf, 4096), 0);
    ck_assert_int_eq(pread(vm.img_fd[1], disk, 4096, 8 * 512), 4096);
    ck_assert(!memcmp(disk, gm_ptr(&vm.ram, buf, 4096), 4096));
    ck_assert_int_eq(pread(vm.img_fd[0], disk, 4096, 8 * 512), 4096);
    for (int i = 0; i < 4096; i++) {
        ck_assert_uint_eq(disk[i], vm_pattern(0, 8 * 512 + i));
    }
    /* Resetting one does not disturb the other. */
    ck_assert(qvirtio_reset(&b.dev));
    ck_assert_int_eq(qvirtio_blk_rw(&b2, 0, VIRTIO_BLK_T_IN, 20, buf, 4096), 0);
    ck_assert(vm_check_pattern(1, buf, 20 * 512, 4096));
    vm_stop();
}
END_TEST

START_TEST(test_readonly_disk)
{
    uint8_t disk[512];
    uint64_t buf;

    vm_start(&(VmOptions){.readonly = true});
    vm_driver(
        &b, 0,
        &(QVirtioBlkOptions){.features = ALL_FEATURES | F(VIRTIO_BLK_F_RO)});
    ck_assert(b.dev.features & F(VIRTIO_BLK_F_RO));
    buf = vm_alloc(4096);
    vm_fill(buf, 4096, 0x42);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_OUT, 0, buf, 4096),
                     VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_DISCARD, 0, 8, 0), VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(dwz(VIRTIO_BLK_T_WRITE_ZEROES, 0, 8, 0),
                     VIRTIO_BLK_S_IOERR);
    ck_assert_int_eq(pread(vm.img_fd[0], disk, 512, 0), 512);
    for (int i = 0; i < 512; i++) {
        ck_assert_uint_eq(disk[i], vm_pattern(0, i));
    }
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 0, buf, 4096),
                     VIRTIO_BLK_S_OK);
    ck_assert(vm_check_pattern(0, buf, 0, 4096));
    vm_stop();
}
END_TEST

/*
 * While its IOThread busy-polls the ring, the device asks the driver not to
 * kick (EVENT_IDX: avail_event left one behind), as QEMU's io_poll_begin
 * does: the kick would cost a real guest an exit, and the IOThread a
 * wake-up, for a request polling finds anyway. Loop 0: polling that grows
 * to seconds (grow/shrink, x1000 a step), so that after a warm-up it never
 * stops; each request is issued once the device shows it is polling, and
 * none needs a kick, and each still completes. Loop 1: no polling: every
 * request kicks.
 */
START_TEST(test_no_kicks_while_the_iothread_polls)
{
    enum { REQS = 10 };
    VmOptions o = {.poll_set = true};
    QVirtQueue *vq;
    uint64_t buf;
    unsigned kicks;

    if (_i == 0) {
        o.poll = (AioPollParams){.max_ns = 10 * NS_PER_S, .grow = 1000};
    }
    vm_start(&o);
    vm_driver(&b, 0,
              &(QVirtioBlkOptions){.num_queues = 1,
                                   .msix = true,
                                   .features = F(VIRTIO_RING_F_EVENT_IDX)});
    vq = &b.vq[0];
    ck_assert(vq->event_idx);
    buf = vm_alloc(4096);
    /* Short blocks grow the polling time: 4 us, 4 ms, 4 s. */
    for (int i = 0; i < 4; i++) {
        usleep(10000);
        ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, i, buf, 512),
                         0);
    }
    kicks = vq->kicks;
    for (int i = 0; i < REQS; i++) {
        if (_i == 0) {
            int64_t deadline = clock_ns() + 5 * NS_PER_S;

            while (qvirtqueue_avail_event(vq) !=
                   (uint16_t)(vq->avail_idx - 1)) {
                ck_assert_msg(clock_ns() < deadline,
                              "the IOThread never polls");
                usleep(100);
            }
        }
        ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, i, buf, 512),
                         0);
    }
    ck_assert_uint_eq(vq->kicks - kicks, _i == 0 ? 0 : REQS);
    vm_stop();
}
END_TEST

Suite *virtio_blk_suite(void)
{
    Suite *s = suite_create("virtio-blk");
    TCase *tc;

    tc = tcase_create("config");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pci_identity_and_capabilities);
    tcase_add_test(tc, test_feature_negotiation);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_read_write_integrity);
    tcase_add_test(tc, test_scattered_chain);
    tcase_add_test(tc, test_flush_and_get_id);
    tcase_add_test(tc, test_discard_and_write_zeroes);
    tcase_add_test(tc, test_indirect_descriptors);
    tcase_add_test(tc, test_read_batch);
    tcase_add_test(tc, test_readonly_disk);
    suite_add_tcase(s, tc);

    tc = tcase_create("interrupts");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_event_idx_suppression);
    tcase_add_test(tc, test_msix_masked_vector_pends);
    tcase_add_test(tc, test_intx_and_isr_fallback);
    suite_add_tcase(s, tc);

    tc = tcase_create("threads");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_multiqueue_on_iothreads_and_main);
    tcase_add_test(tc, test_reset_with_requests_in_flight);
    tcase_add_test(tc, test_destroy_with_requests_in_flight);
    tcase_add_test(tc, test_two_devices);
    tcase_add_loop_test(tc, test_no_kicks_while_the_iothread_polls, 0, 2);
    suite_add_tcase(s, tc);

    virtio_blk_add_hostile_tests(s);
    return s;
}
