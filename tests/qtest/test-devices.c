/*
 * AHCI and virtio-blk data tests over the qtest socket, against minivmm and
 * (QTEST_TARGET=qemu) against QEMU's q35 AHCI and virtio-blk-pci. The same
 * drivers pass on both: what they encode is the hardware, not our quirks.
 *
 * Each machine gets one SATA disk and one virtio disk, each on its own
 * image (QEMU refuses two drives on one file) filled with a known pattern.
 */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "firmware/pci-assign.h"
#include "tests/qos/ahci.h"
#include "tests/qos/virtio-blk.h"
#include "tests/qtest/libqtest.h"
#include "tests/qtest/suites.h"

#define IMAGE_SIZE (16u << 20)
#define SECTOR     512

static QTest *qt;
static char sata_img[64], virtio_img[64];

/* Byte @i of the initial pattern of image @seed. */
static uint8_t pattern(unsigned seed, uint64_t i)
{
    return (uint8_t)(i * 7 + (i >> 9) * 13 + seed);
}

static void make_image(char *path, unsigned seed)
{
    static uint8_t buf[1 << 16];
    int fd;

    snprintf(path, 64, "/var/tmp/minivmm-qtest-%d-%u.img", getpid(), seed);
    fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0600);
    ck_assert_int_ge(fd, 0);
    for (uint64_t off = 0; off < IMAGE_SIZE; off += sizeof(buf)) {
        for (size_t i = 0; i < sizeof(buf); i++) {
            buf[i] = pattern(seed, off + i);
        }
        ck_assert_int_eq(write(fd, buf, sizeof(buf)), sizeof(buf));
    }
    close(fd);
}

static void setup(void)
{
    QTestTarget target = qtest_target_from_env();
    char args[512];

    make_image(sata_img, 1);
    make_image(virtio_img, 2);
    if (target == QTEST_QEMU) {
        snprintf(args, sizeof(args),
                 "-drive if=none,id=d0,file=%s,format=raw "
                 "-device ide-hd,drive=d0,bus=ide.0 "
                 "-object iothread,id=io0 "
                 "-drive if=none,id=d1,file=%s,format=raw "
                 "-device virtio-blk-pci,drive=d1,iothread=io0,"
                 "disable-legacy=on,num-queues=2",
                 sata_img, virtio_img);
    } else {
        snprintf(args, sizeof(args),
                 "--iothreads 1 --disk sata:%s "
                 "--disk virtio:%s,iothread=0,queues=2",
                 sata_img, virtio_img);
    }
    qt = qtest_start(target, 256, args);
    ck_assert_ptr_nonnull(qt);
}

static void teardown(void)
{
    if (qt) {
        ck_assert_int_eq(qtest_quit(qt), 0);
        qt = NULL;
    }
    unlink(sata_img);
    unlink(virtio_img);
}

static void check_pattern(Qos *q, uint64_t gpa, unsigned seed, uint64_t off,
                          uint32_t len)
{
    uint8_t *buf = malloc(len);

    qos_memread(q, gpa, buf, len);
    for (uint32_t i = 0; i < len; i++) {
        ck_assert_msg(buf[i] == pattern(seed, off + i),
                      "byte %llu: 0x%02x, expected 0x%02x",
                      (unsigned long long)(off + i), buf[i],
                      pattern(seed, off + i));
    }
    free(buf);
}

/* ---- AHCI
 * ----------------------------------------------------------------------------
 */

START_TEST(test_ahci_identify_and_read)
{
    Qos *q = &qt->qos;
    QAhci a;
    uint16_t id[256];
    uint64_t buf, sectors;

    ck_assert(qahci_init(&a, q, 0));
    ck_assert(qahci_port_present(&a, 0));
    ck_assert(qahci_port_start(&a, 0));
    ck_assert_int_eq(qahci_identify(&a, 0, id), 0);
    sectors = id[100] | (uint64_t)id[101] << 16 | (uint64_t)id[102] << 32;
    ck_assert_uint_eq(sectors, IMAGE_SIZE / SECTOR);
    ck_assert(id[83] & (1 << 10)); /* LBA48 */

    /* 64 KiB at LBA 100 through 4 KiB PRD entries. */
    buf = qos_alloc(q, 65536, 4096);
    ck_assert_int_eq(qahci_rw(&a, 0, 0, false, 100, 128, buf, 4096), 0);
    check_pattern(q, buf, 1, 100 * SECTOR, 65536);
}
END_TEST

/*
 * The IDENTIFY words a driver acts on (ATA8-ACS 7.16), on both machines:
 * capacity, the multiple count, the capabilities Linux's libata reads, the
 * command sets, and, where the page carries a signature, its checksum.
 */
START_TEST(test_ahci_identify_words)
{
    Qos *q = &qt->qos;
    QAhci a;
    uint16_t id[256];
    uint64_t sectors = IMAGE_SIZE / SECTOR;
    uint8_t sum = 0;

    ck_assert(qahci_init(&a, q, 0));
    ck_assert(qahci_port_start(&a, 0));
    ck_assert_int_eq(qahci_identify(&a, 0, id), 0);

    ck_assert_uint_eq(id[60] | (uint32_t)id[61] << 16, sectors); /* < 2^28 */
    ck_assert_uint_eq(id[100] | (uint64_t)id[101] << 16 |
                          (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48,
                      sectors);
    /* Words 1, 3, 6: 16 heads, 63 sectors, the cylinders that fit. */
    ck_assert_uint_eq(id[1], sectors / (16 * 63));
    ck_assert_uint_eq(id[3], 16);
    ck_assert_uint_eq(id[6], 63);
    /* 47: 80h in the high byte, at most 16 sectors per DRQ block; 59: the
     * current count valid (bit 8) and no larger than that. */
    ck_assert_uint_eq(id[47], 0x8010);
    ck_assert(id[59] & 0x100);
    ck_assert_uint_le(id[59] & 0xff, id[47] & 0xff);
    ck_assert_uint_eq(id[49] & 0x0300, 0x0300); /* LBA, DMA */
    ck_assert_uint_eq(id[53] & 0x0006, 0x0006); /* 64-70 and 88 valid */
    /* 80: ATA/ATAPI-4 to -7 at least; bits 0 and 15 reserved. */
    ck_assert_uint_eq(id[80] & 0x80f1, 0x00f0);
    /* 82-87: bit 14 one and 15 zero in 83, 84, 87; LBA48 and FLUSH EXT
     * supported (83) and enabled (86); write cache supported and on. */
    ck_assert_uint_eq(id[83] & 0xc000, 0x4000);
    ck_assert_uint_eq(id[84] & 0xc000, 0x4000);
    ck_assert_uint_eq(id[87] & 0xc000, 0x4000);
    ck_assert_uint_eq(id[83] & 0x3400, 0x3400);
    ck_assert_uint_eq(id[86] & 0x3400, 0x3400);
    ck_assert(id[82] & id[85] & (1u << 5));
    /* 88: exactly one UDMA mode selected, and one that is supported. */
    ck_assert_uint_eq(__builtin_popcount(id[88] >> 8), 1);
    ck_assert(id[88] & (id[88] >> 8));
    /* 255: with the signature A5h, all 512 bytes sum to 0 (QEMU leaves the
     * word 0, which ATA8-ACS allows; minivmm always signs the page). */
    if (qt->target == QTEST_MINIVMM) {
        ck_assert_uint_eq(id[255] & 0xff, 0xa5);
    }
    if ((id[255] & 0xff) == 0xa5) {
        for (int i = 0; i < 256; i++) {
            sum += (uint8_t)id[i] + (uint8_t)(id[i] >> 8);
        }
        ck_assert_uint_eq(sum, 0);
    }
}
END_TEST

START_TEST(test_ahci_write_read_dma_and_ncq)
{
    Qos *q = &qt->qos;
    uint8_t out[8192], in[8192];
    QAhci a;
    uint64_t buf;

    ck_assert(qahci_init(&a, q, 0));
    ck_assert(qahci_port_start(&a, 0));
    buf = qos_alloc(q, 32 * 8192, 4096);

    /* DMA EXT: write 8 KiB with 512-byte PRDs, read back through 1 PRD. */
    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = (uint8_t)(i * 31 + 5);
    }
    qos_memwrite(q, buf, out, sizeof(out));
    ck_assert_int_eq(qahci_rw(&a, 0, 3, true, 2048, 16, buf, 512), 0);
    memset(in, 0, sizeof(in));
    qos_memwrite(q, buf, in, sizeof(in));
    ck_assert_int_eq(qahci_rw(&a, 0, 4, false, 2048, 16, buf, 8192), 0);
    qos_memread(q, buf, in, sizeof(in));
    ck_assert_mem_eq(in, out, sizeof(out));

    /* NCQ: 32 reads in flight, one per tag, each its own 8 KiB slice. */
    if (qahci_rreg(&a, QAHCI_CAP) & QAHCI_CAP_SNCQ) {
        for (int tag = 0; tag < 32; tag++) {
            qahci_rw_ncq_issue(&a, 0, tag, false, 4096 + tag * 16, 16,
                               buf + tag * 8192, 4096);
        }
        ck_assert_int_eq(qahci_wait(&a, 0, 0xffffffffu, QAHCI_TIMEOUT_MS), 0);
        for (int tag = 0; tag < 32; tag++) {
            check_pattern(q, buf + tag * 8192, 1,
                          (uint64_t)(4096 + tag * 16) * SECTOR, 8192);
        }
    }
}
END_TEST

/* An MSI is a memory write: point it at guest RAM and watch it land. */
START_TEST(test_ahci_msi_lands_in_ram)
{
    Qos *q = &qt->qos;
    uint32_t word = 0;
    uint64_t buf, landing;
    QAhci a;

    ck_assert(qahci_init(&a, q, 0));
    landing = qos_alloc(q, 4, 4);
    qos_memwrite(q, landing, &word, sizeof(word));
    ck_assert_uint_ne(qahci_msi_enable(&a, landing, 0x4321), 0);
    ck_assert(qahci_port_start(&a, 0)); /* enables PxIE and GHC.IE */
    buf = qos_alloc(q, 4096, 4096);
    ck_assert_int_eq(qahci_rw(&a, 0, 0, false, 8, 8, buf, 4096), 0);
    qos_memread(q, landing, &word, sizeof(word));
    ck_assert_uint_eq(word, 0x4321);
}
END_TEST

/* ---- virtio-blk
 * ---------------------------------------------------------------------- */

START_TEST(test_virtio_blk_read_write_flush)
{
    Qos *q = &qt->qos;
    QVirtioBlkOptions opts = {0};
    QVirtioBlk b;
    uint8_t out[16384], in[16384];
    uint64_t buf;

    ck_assert(qvirtio_blk_init(&b, q, 0, &opts));
    ck_assert_uint_eq(b.capacity, IMAGE_SIZE / SECTOR);
    buf = qos_alloc(q, sizeof(out), 4096);

    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 300, buf, 16384),
                     0);
    check_pattern(q, buf, 2, 300 * SECTOR, 16384);

    for (size_t i = 0; i < sizeof(out); i++) {
        out[i] = (uint8_t)(i * 17 + 3);
    }
    qos_memwrite(q, buf, out, sizeof(out));
    ck_assert_int_eq(
        qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_OUT, 5000, buf, sizeof(out)), 0);
    ck_assert_int_eq(qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0), 0);
    memset(in, 0, sizeof(in));
    qos_memwrite(q, buf, in, sizeof(in));
    ck_assert_int_eq(
        qvirtio_blk_rw(&b, 0, VIRTIO_BLK_T_IN, 5000, buf, sizeof(in)), 0);
    qos_memread(q, buf, in, sizeof(in));
    ck_assert_mem_eq(in, out, sizeof(out));
}
END_TEST

START_TEST(test_virtio_blk_batch_on_two_queues)
{
    Qos *q = &qt->qos;
    QVirtioBlkOptions opts = {.features = 1ull << VIRTIO_BLK_F_MQ,
                              .num_queues = 2};
    QVirtioBlk b;
    uint64_t buf;

    ck_assert(qvirtio_blk_init(&b, q, 0, &opts));
    ck_assert_uint_ge(b.num_queues, 2);
    buf = qos_alloc(q, 16 * 65536, 4096);
    for (unsigned qi = 0; qi < 2; qi++) {
        ck_assert_int_eq(
            qvirtio_blk_read_batch(&b, qi, qi * 4096, buf, 16, 65536), 0);
        for (int i = 0; i < 16; i++) {
            check_pattern(q, buf + i * 65536, 2,
                          (uint64_t)qi * 4096 * SECTOR + i * 65536, 65536);
        }
    }
}
END_TEST

/* ---- PCI configuration through ECAM
 * ----------------------------------------------------------------------------
 */

/* Where ECAM puts (bus 0, @devfn, @offset): PCI Express 4.0, 7.2.2. */
static uint64_t ecam_addr(uint8_t devfn, uint16_t offset)
{
    return PCI_ECAM_BASE + ((uint64_t)devfn << 12) + offset;
}

/*
 * The ECAM window the MCFG table announces (firmware/acpi.c) is a second
 * door to the same configuration space as ports 0xCF8/0xCFC: every function
 * reads alike through both, a write through one is seen through the other,
 * and what is not there reads all-ones. QEMU's q35 keeps its MMCONFIG
 * disabled until firmware programs PCIEXBAR, so this runs on minivmm only.
 */
START_TEST(test_pci_ecam_matches_port_config)
{
    Qos *q = &qt->qos;
    QPciDevice d = {.q = q};
    QPciDevice ahci;
    unsigned present = 0;
    int absent = -1;

    if (qt->target == QTEST_QEMU) {
        return;
    }
    for (unsigned devfn = 0; devfn < 256; devfn++) {
        d.devfn = (uint8_t)devfn;
        uint32_t id = qpci_config_read(&d, 0, 4);

        ck_assert_uint_eq(qos_readl(q, ecam_addr(d.devfn, 0)), id);
        if (id == 0xFFFFFFFF) {
            absent = absent < 0 ? (int)devfn : absent;
            continue;
        }
        present++;
        for (unsigned off = 0; off < 256; off += 4) {
            ck_assert_msg(qos_readl(q, ecam_addr(d.devfn, off)) ==
                              qpci_config_read(&d, (uint8_t)off, 4),
                          "devfn %02x offset %02x differs", devfn, off);
        }
        /* Byte and word reads inside a dword, as Linux's ECAM accessors do. */
        ck_assert_uint_eq(qos_readw(q, ecam_addr(d.devfn, 2)), id >> 16);
        ck_assert_uint_eq(qos_readb(q, ecam_addr(d.devfn, 1)),
                          (id >> 8) & 0xFF);
        /* Extended space (offsets 256-4095) is not implemented: all-ones. */
        ck_assert_uint_eq(qos_readl(q, ecam_addr(d.devfn, 0x100)), 0xFFFFFFFF);
    }
    /* The host bridge, the AHCI controller and the virtio disk at least. */
    ck_assert_uint_ge(present, 3);

    /* A write through ECAM is a write to the device: program BAR5 (ABAR). */
    ck_assert(qpci_find(q, QAHCI_VENDOR, QAHCI_DEVICE, 0, &ahci));
    qos_writel(q, ecam_addr(ahci.devfn, 0x24), 0xFEB00000);
    ck_assert_uint_eq(qpci_config_read(&ahci, 0x24, 4) & ~0xFu, 0xFEB00000);
    qpci_config_write(&ahci, 0x24, 0xFEA00000, 4);
    ck_assert_uint_eq(qos_readl(q, ecam_addr(ahci.devfn, 0x24)) & ~0xFu,
                      0xFEA00000);
    /* Writes to an absent function or to extended space change nothing. */
    ck_assert_int_ge(absent, 0);
    d.devfn = (uint8_t)absent;
    qos_writel(q, ecam_addr(d.devfn, 0x10), 0x12345678);
    ck_assert_uint_eq(qpci_config_read(&d, 0x10, 4), 0xFFFFFFFF);
    qos_writel(q, ecam_addr(ahci.devfn, 0x124), 0);
    ck_assert_uint_eq(qpci_config_read(&ahci, 0x24, 4) & ~0xFu, 0xFEA00000);
}
END_TEST

/* ---- qtest's bulk and width-specific accesses on device registers
 * ----------------------------------------------------------------------------
 */

/* Send @fmt and expect the reply @expected. */
static void expect_reply(const char *expected, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void expect_reply(const char *expected, const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    char *r;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    r = qtest_command(qt, "%s", cmd);
    ck_assert_msg(!strcmp(r, expected), "%s: got '%s', expected '%s'", cmd, r,
                  expected);
    free(r);
}

/*
 * A bulk write, b64write or memset aimed at registers reaches the device as
 * QEMU's memory core cuts it: the widest aligned accesses the region takes,
 * 4 bytes for the AHCI ABAR, which ignores narrower writes. So a client
 * that programs PxCLB/PxCLBU/PxFB with one bulk write reads them back, and
 * a bulk read of registers returns their bytes, little-endian.
 */
START_TEST(test_bulk_access_to_registers)
{
    QAhci a;
    uint64_t px;

    ck_assert(qahci_init(&a, &qt->qos, 0));
    px = a.abar + 0x100; /* port 0, stopped: its addresses are writable */
    ck_assert_uint_eq(qos_readl(&qt->qos, px + QAHCI_PX_CMD) & 1, 0);

    /* PxCLB = 0x12345400, PxCLBU = 0 (one 8-byte bulk write). */
    expect_reply("OK", "write 0x%" PRIx64 " 8 0x0054341200000000", px);
    ck_assert_uint_eq(qos_readl(&qt->qos, px + QAHCI_PX_CLB), 0x12345400);
    ck_assert_uint_eq(qos_readl(&qt->qos, px + QAHCI_PX_CLBU), 0);
    /* PxFB = 0x00abcd00 by b64write ("AM2rAA==" is 00 cd ab 00). */
    expect_reply("OK", "b64write 0x%" PRIx64 " 4 AM2rAA==", px + QAHCI_PX_FB);
    ck_assert_uint_eq(qos_readl(&qt->qos, px + QAHCI_PX_FB), 0x00abcd00);
    /* memset fills PxCLBU with one dword write of 0x01010101. */
    expect_reply("OK", "memset 0x%" PRIx64 " 4 0x01", px + QAHCI_PX_CLBU);
    ck_assert_uint_eq(qos_readl(&qt->qos, px + QAHCI_PX_CLBU), 0x01010101);
    /* And back as bytes: PxCLB, PxCLBU. */
    expect_reply("OK 0x0054341201010101", "read 0x%" PRIx64 " 8", px);
    expect_reply("OK AFQ0EgEBAQE=", "b64read 0x%" PRIx64 " 8", px);
    qos_writel(&qt->qos, px + QAHCI_PX_CLBU, 0);

    /* A write that starts inside a dword cuts it; AHCI ignores the pieces. */
    expect_reply("OK", "write 0x%" PRIx64 " 4 0xffffffff", px + 2);
    ck_assert_uint_eq(qos_readl(&qt->qos, px + QAHCI_PX_CLB), 0x12345400);
}
END_TEST

/* writeb/writew/writel carry only their own bytes, as a bus access does. */
START_TEST(test_width_specific_writes_truncate)
{
    Qos *q = &qt->qos;
    QVirtioBlkOptions opts = {0};
    QVirtioBlk b;

    ck_assert(qvirtio_blk_init(&b, q, 0, &opts));
    /* queue_select (16 bits at 0x16 of the common configuration). */
    expect_reply("OK", "writew 0x%" PRIx64 " 0x0", b.dev.common + 0x16);
    expect_reply("OK", "writeb 0x%" PRIx64 " 0x100", b.dev.common + 0x16);
    ck_assert_uint_eq(qvirtio_common_read(&b.dev, 0x16, 2), 0);
    expect_reply("OK", "writew 0x%" PRIx64 " 0x10000", b.dev.common + 0x16);
    ck_assert_uint_eq(qvirtio_common_read(&b.dev, 0x16, 2), 0);
    /* PIO too: the PCI configuration address latch takes a dword. */
    expect_reply("OK", "outl 0xcf8 0x180000000");
    expect_reply("OK 0x80000000", "inl 0xcf8");
}
END_TEST

/* A qword read of the ABAR at any offset: the bytes the two or three dwords
 * it touches hold (minivmm decodes it whole; QEMU cuts it into dwords). */
START_TEST(test_abar_qword_reads)
{
    QAhci a;
    uint32_t dw[4];
    uint8_t bytes[16];

    ck_assert(qahci_init(&a, &qt->qos, 0));
    for (int i = 0; i < 4; i++) {
        dw[i] = qos_readl(&qt->qos, a.abar + 4 * i); /* CAP GHC IS PI */
        for (int j = 0; j < 4; j++) {
            bytes[4 * i + j] = dw[i] >> (8 * j);
        }
    }
    for (unsigned off = 0; off <= 8; off++) {
        uint64_t want = 0;

        for (int j = 0; j < 8; j++) {
            want |= (uint64_t)bytes[off + j] << (8 * j);
        }
        ck_assert_msg(qos_readq(&qt->qos, a.abar + off) == want,
                      "readq at ABAR+%u", off);
    }
}
END_TEST

Suite *devices_suite(void)
{
    Suite *s = suite_create("qtest-devices");
    TCase *tc = tcase_create("devices");

    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_ahci_identify_and_read);
    tcase_add_test(tc, test_ahci_identify_words);
    tcase_add_test(tc, test_ahci_write_read_dma_and_ncq);
    tcase_add_test(tc, test_ahci_msi_lands_in_ram);
    tcase_add_test(tc, test_virtio_blk_read_write_flush);
    tcase_add_test(tc, test_virtio_blk_batch_on_two_queues);
    tcase_add_test(tc, test_pci_ecam_matches_port_config);
    tcase_add_test(tc, test_bulk_access_to_registers);
    tcase_add_test(tc, test_width_specific_writes_truncate);
    tcase_add_test(tc, test_abar_qword_reads);
    suite_add_tcase(s, tc);
    return s;
}
