/*
 * Tests of the AHCI controller (devices/ahci*.c), driven through the qos
 * AHCI driver the way a guest would: PCI identity, every register's reset
 * value and write semantics, IDENTIFY, data integrity with READ/WRITE DMA
 * (EXT) and NCQ with 32 tags in flight, FLUSH, SET FEATURES, READ NATIVE
 * MAX, resets, interrupts, two disks and two controllers, and the stall of
 * docs/event-loop.md reproduced through the device. Hostile input is in
 * test-ahci-bad.c.
 *
 * Images live in $MINIVMM_TEST_DIR or /var/tmp.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aio/main-loop.h"
#include "tests/unit/ahci-machine.h"
#include "tests/unit/suites.h"
#include "util/clock.h"

/* ---- PCI and reset values ---------------------------------------------------
 */

START_TEST(test_pci_identity)
{
    QPciDevice *d = &am.a.dev;
    uint64_t size;
    uint8_t cap;

    ck_assert_uint_eq(d->devfn, AM_DEVFN);
    ck_assert_uint_eq(qpci_config_read(d, 0x00, 4), 0x29228086);
    ck_assert_uint_eq(qpci_config_read(d, 0x08, 4) >> 8, 0x010601);
    ck_assert_uint_eq(qpci_config_read(d, 0x3d, 1), 1); /* INTA */
    ck_assert(!qpci_bar_is_io(d, 5));
    qpci_map_bar(d, 5, &size);
    ck_assert_uint_eq(size, 0x1000);
    cap = qpci_find_capability(d, 0x05, 0);
    ck_assert_uint_ne(cap, 0);
    /* ICH9's port enable register takes the six port bits. */
    qpci_config_write(d, 0x92, 0xff, 1);
    ck_assert_uint_eq(qpci_config_read(d, 0x92, 1), 0x3f);
}
END_TEST

START_TEST(test_hba_registers)
{
    QAhci *a = &am.a;
    uint32_t cap = qahci_rreg(a, QAHCI_CAP);

    ck_assert_uint_eq(cap & 0x1f, 5);          /* 6 ports */
    ck_assert_uint_eq(QAHCI_CAP_NCS(cap), 32); /* 32 slots */
    ck_assert(cap & QAHCI_CAP_SNCQ);           /* NCQ */
    ck_assert(cap & (1u << 31));               /* 64-bit */
    ck_assert(cap & (1u << 18));               /* AHCI only */
    ck_assert_uint_ne((cap >> 20) & 0xf, 0);   /* a speed */
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_GHC), QAHCI_GHC_AE);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 0);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_PI), 0x3f);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_VS), 0x00010000);

    /* Read-only registers ignore writes; AE stays set; IE is writable. */
    qahci_wreg(a, QAHCI_CAP, 0);
    qahci_wreg(a, QAHCI_PI, 0);
    qahci_wreg(a, QAHCI_VS, 0);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_CAP), cap);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_PI), 0x3f);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_VS), 0x00010000);
    qahci_wreg(a, QAHCI_GHC, QAHCI_GHC_IE);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_GHC), QAHCI_GHC_AE | QAHCI_GHC_IE);
    qahci_wreg(a, QAHCI_GHC, 0xfffffffc);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_GHC), QAHCI_GHC_AE);
    /* Sub-dword reads work anywhere; 64-bit reads span two registers. */
    ck_assert_uint_eq(qos_readb(&am.q, a->abar + 0x0c), 0x3f);
    ck_assert_uint_eq(qos_readw(&am.q, a->abar + 0x12), 0x0001);
    ck_assert_uint_eq(qos_readq(&am.q, a->abar + 0x0c),
                      0x3f | (uint64_t)0x00010000 << 32);
}
END_TEST

START_TEST(test_port_reset_values)
{
    QAhci *a = &am.a;

    for (int port = 0; port < 6; port++) {
        bool disk = port == 0;

        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CLB), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CLBU), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_FB), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_FBU), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_IS), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_IE), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CMD),
                          QAHCI_PX_CMD_SUD | QAHCI_PX_CMD_POD);
        /* Until the signature FIS lands (FIS receive is off): 7Fh, ~0. */
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_TFD), 0x7f);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_SIG), 0xffffffff);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_SSTS),
                          disk ? 0x123 : 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_SCTL), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_SERR), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_SACT), 0);
        ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CI), 0);
    }
    /* Past the last port, and unimplemented registers, read 0. */
    ck_assert_uint_eq(qahci_rreg(a, 0x100 + 6 * 0x80), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, 0x40), 0);
}
END_TEST

START_TEST(test_port_register_writes)
{
    QAhci *a = &am.a;
    uint64_t fb = qos_alloc(&am.q, 256, 256);

    /* Address registers keep their alignment bits at zero. */
    qahci_px_wreg(a, 1, QAHCI_PX_CLB, 0xffffffff);
    qahci_px_wreg(a, 1, QAHCI_PX_CLBU, 0xffffffff);
    qahci_px_wreg(a, 1, QAHCI_PX_FB, 0xffffffff);
    qahci_px_wreg(a, 1, QAHCI_PX_FBU, 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_CLB), 0xfffffc00);
    ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_CLBU), 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_FB), 0xffffff00);
    ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_FBU), 0xffffffff);

    /* IE holds only the defined interrupt bits. */
    qahci_px_wreg(a, 1, QAHCI_PX_IE, 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_IE), 0xfdc000ff);
    qahci_px_wreg(a, 1, QAHCI_PX_IE, 0);

    /* Read-only registers ignore writes. */
    qahci_px_wreg(a, 0, QAHCI_PX_TFD, 0);
    qahci_px_wreg(a, 0, QAHCI_PX_SIG, 0);
    qahci_px_wreg(a, 0, QAHCI_PX_SSTS, 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x7f);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SIG), 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SSTS), 0x123);

    /* SCTL keeps IPM/SPD/DET; DET=4 takes the link offline. */
    qahci_px_wreg(a, 0, QAHCI_PX_SCTL, 0xffff0304);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SCTL), 0x304);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SSTS) & 0xf, 4);
    qahci_px_wreg(a, 0, QAHCI_PX_SCTL, 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SSTS), 0x123);

    /* SERR is write-1-to-clear: writing ones sets nothing. */
    qahci_px_wreg(a, 0, QAHCI_PX_SERR, 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SERR), 0);

    /* SACT cannot be set while the list is stopped; CI is tested apart. */
    qahci_px_wreg(a, 0, QAHCI_PX_SACT, 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 0);

    /*
     * PxCMD: SUD/POD read 1, FR follows FRE, and turning FIS receive on
     * delivers the disk's signature FIS: PxIS.DHRS, which is
     * write-1-to-clear.
     */
    qahci_px_wreg(a, 0, QAHCI_PX_FB, (uint32_t)fb);
    qahci_px_wreg(a, 0, QAHCI_PX_FBU, 0);
    qahci_px_wreg(a, 0, QAHCI_PX_CMD, QAHCI_PX_CMD_FRE);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CMD),
                      QAHCI_PX_CMD_SUD | QAHCI_PX_CMD_POD | QAHCI_PX_CMD_FRE |
                          QAHCI_PX_CMD_FR);
    ck_assert_uint_eq(am_ram(fb)[0x40], 0x34);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), QAHCI_PX_IS_DHRS);
    qahci_px_wreg(a, 0, QAHCI_PX_IS, 0x7ffffffe); /* not the DHRS bit */
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), QAHCI_PX_IS_DHRS);
    qahci_px_wreg(a, 0, QAHCI_PX_IS, QAHCI_PX_IS_DHRS);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), 0);
    qahci_px_wreg(a, 0, QAHCI_PX_CMD, 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CMD),
                      QAHCI_PX_CMD_SUD | QAHCI_PX_CMD_POD);
}
END_TEST

/*
 * PxTFD and PxSIG copy the disk's signature FIS, so they keep 7Fh and
 * FFFFFFFFh until FIS receive lets it land (as QEMU's do), after GHC.HR
 * too; a port without a disk keeps them whatever FRE does.
 */
START_TEST(test_signature_waits_for_fis_receive)
{
    QAhci *a = &am.a;
    uint64_t fb = qos_alloc(&am.q, 256, 256);

    for (int round = 0; round < 2; round++) {
        ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x7f);
        ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SIG), 0xffffffff);
        ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), 0);
        for (int port = 0; port < 2; port++) {
            qahci_px_wreg(a, port, QAHCI_PX_FB, (uint32_t)fb + port * 256);
            qahci_px_wreg(a, port, QAHCI_PX_FBU, 0);
            qahci_px_wreg(a, port, QAHCI_PX_CMD, QAHCI_PX_CMD_FRE);
        }
        ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x0150);
        ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SIG), 0x101);
        ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), QAHCI_PX_IS_DHRS);
        ck_assert_uint_eq(am_ram(fb)[0x40], 0x34);
        ck_assert_uint_eq(am_ram(fb)[0x40 + 12], 1); /* count: signature */
        ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_TFD), 0x7f);
        ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_SIG), 0xffffffff);
        ck_assert(qahci_hba_reset(a)); /* FRE off again */
        memset(am_ram(fb), 0, 512);
    }
}
END_TEST

/* HBA IS reflects enabled port interrupts; writing it cannot hide them. */
START_TEST(test_hba_is_follows_ports)
{
    QAhci *a = &am.a;

    am_start_port(a, 0);
    qahci_px_wreg(a, 0, QAHCI_PX_IE, 0);
    qahci_slot_prepare(a, 0, 1, (uint8_t[20]){0x27, 0x80, QATA_FLUSH_CACHE},
                       false, 0, NULL, 0);
    qahci_issue(a, 0, 1u << 1, false);
    am_wait_idle(a, 0, 1u << 1);
    /* A masked cause shows in PxIS only; enabling it raises IS. */
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), QAHCI_PX_IS_DHRS);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 0);
    qahci_px_wreg(a, 0, QAHCI_PX_IE, QAHCI_PX_IS_DHRS);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 1);
    qahci_wreg(a, QAHCI_IS, 1);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 1);
    qahci_px_wreg(a, 0, QAHCI_PX_IS, 0xffffffff);
    qahci_wreg(a, QAHCI_IS, 1);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 0);
}
END_TEST

/* ---- IDENTIFY ---------------------------------------------------------------
 */

/* An IDENTIFY string, unswapped and without its trailing spaces. */
static void id_string(const uint16_t *id, int word, int chars, char *out)
{
    for (int i = 0; i < chars; i += 2) {
        out[i] = id[word + i / 2] >> 8;
        out[i + 1] = id[word + i / 2] & 0xff;
    }
    out[chars] = '\0';
    for (int i = chars - 1; i >= 0 && out[i] == ' '; i--) {
        out[i] = '\0';
    }
}

static void identify(QAhci *a, int port, uint16_t id[256])
{
    ck_assert_int_eq(qahci_identify(a, port, id), 0);
}

START_TEST(test_identify)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 512, 512);
    uint64_t fb;
    QAhciPrd prd[2] = {{buf, 256, false}, {buf + 256, 256, true}};
    uint8_t fis[20], sum = 0;
    uint16_t id[256];
    char s[41];

    am_start_port(a, 0);
    fb = a->port[0].fb;
    qahci_fis_h2d(fis, QATA_IDENTIFY, 0, 0, 0);
    qahci_slot_prepare(a, 0, 3, fis, false, 0, prd, 2);
    qahci_issue(a, 0, 1u << 3, false);
    am_wait_idle(a, 0, 1u << 3);

    /* PIO data-in: a PIO Setup FIS, then the D2H FIS; DPS for the I bit. */
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS),
                      QAHCI_PX_IS_DHRS | QAHCI_PX_IS_PSS | QAHCI_PX_IS_DPS);
    ck_assert_uint_eq(am_ram(fb + 0x20)[0], 0x5f);
    ck_assert_uint_eq(am_ram(fb + 0x20)[15], 0x50); /* E_Status */
    ck_assert_uint_eq(am_ram(fb + 0x20)[16] | am_ram(fb + 0x20)[17] << 8, 512);
    ck_assert_uint_eq(am_ram(fb + 0x40)[0], 0x34);
    ck_assert_uint_eq(am_ram(fb + 0x40)[2], 0x50);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x50);
    ck_assert_uint_eq(qahci_slot_prdbc(a, 0, 3), 512);
    memcpy(id, am_ram(buf), 512);

    id_string(id, 27, 40, s);
    ck_assert_str_eq(s, "minivmm SATA disk");
    id_string(id, 10, 20, s);
    ck_assert_str_eq(s, "MVMM0000");
    id_string(id, 23, 8, s);
    ck_assert_str_eq(s, "0.1");
    ck_assert_uint_eq(id[60] | (uint32_t)id[61] << 16, AM_DISK_SECTORS);
    ck_assert_uint_eq(id[100] | (uint64_t)id[101] << 16 |
                          (uint64_t)id[102] << 32 | (uint64_t)id[103] << 48,
                      AM_DISK_SECTORS);
    ck_assert_uint_eq(id[75], 31);              /* NCQ depth 32 */
    ck_assert(id[76] & (1u << 8));              /* NCQ */
    ck_assert_uint_eq(id[49] & 0x300, 0x300);   /* LBA, DMA */
    ck_assert_uint_eq(id[83] & 0xf400, 0x7400); /* LBA48, FLUSH EXT */
    ck_assert_uint_eq(id[86] & 0x3400, 0x3400);
    ck_assert(id[82] & (1u << 5));          /* write cache */
    ck_assert(id[85] & (1u << 5));          /* ... enabled */
    ck_assert_uint_eq(id[88] & 0xff, 0x7f); /* UDMA 0-6 */
    ck_assert_uint_eq(id[255] & 0xff, 0xa5);
    for (int i = 0; i < 512; i++) {
        sum += am_ram(buf)[i];
    }
    ck_assert_uint_eq(sum, 0);
}
END_TEST

START_TEST(test_identify_options)
{
    AhciDiskOptions opts = {
        .serial = "SER-12345678901234567", /* 21 characters */
        .model = "Custom Model",
        .fwrev = "9.9",
    };
    uint16_t id[256];
    char s[41];
    int d = am_add_disk();

    bql_lock();
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 1, am.blk[d], &opts),
                     -EINVAL);
    opts.serial = "bad\tserial";
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 1, am.blk[d], &opts),
                     -EINVAL);
    opts.serial = "SER-1234567890123456"; /* 20: fits */
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 6, am.blk[d], &opts),
                     -EINVAL);
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 0, am.blk[d], &opts), -EBUSY);
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 1, am.blk[d], &opts), 0);
    bql_unlock();

    am_start_port(&am.a, 1);
    identify(&am.a, 1, id);
    id_string(id, 10, 20, s);
    ck_assert_str_eq(s, "SER-1234567890123456");
    id_string(id, 27, 40, s);
    ck_assert_str_eq(s, "Custom Model");
    id_string(id, 23, 8, s);
    ck_assert_str_eq(s, "9.9");
}
END_TEST

/* ---- Data -------------------------------------------------------------------
 */

static void fill(uint64_t gpa, uint64_t bytes, uint8_t seed)
{
    for (uint64_t i = 0; i < bytes; i++) {
        am_ram(gpa)[i] = (uint8_t)(i * 7 + seed + (i >> 9));
    }
}

/* The image file holds guest RAM [gpa, gpa + bytes) at @offset. */
static void check_image(int disk, uint64_t offset, uint64_t gpa, uint64_t bytes)
{
    uint8_t *buf = malloc(bytes);

    ck_assert_int_eq(pread(am.img_fd[disk], buf, bytes, offset),
                     (ssize_t)bytes);
    ck_assert_msg(!memcmp(buf, am_ram(gpa), bytes),
                  "image differs at offset %llu", (unsigned long long)offset);
    free(buf);
}

START_TEST(test_dma_ext_read_write)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 256 << 10, 4096);
    uint64_t buf2 = qos_alloc(&am.q, 256 << 10, 4096);

    am_start_port(a, 0);
    /* Reads: small, 128 KiB in 1.5 KiB PRDs, the last sectors. */
    ck_assert_int_eq(qahci_rw(a, 0, 0, false, 0, 16, buf, 4096), 0);
    am_check_pattern(0, 0, buf, 16 * 512);
    ck_assert_uint_eq(qahci_slot_prdbc(a, 0, 0), 16 * 512);
    ck_assert_int_eq(qahci_rw(a, 0, 5, false, 1000, 256, buf, 1536), 0);
    am_check_pattern(0, 1000 * 512, buf, 256 * 512);
    ck_assert_uint_eq(qahci_slot_prdbc(a, 0, 5), 256 * 512);
    ck_assert_int_eq(
        qahci_rw(a, 0, 31, false, AM_DISK_SECTORS - 8, 8, buf, 4096), 0);
    am_check_pattern(0, (AM_DISK_SECTORS - 8) * 512ULL, buf, 8 * 512);

    /* Writes in 512-byte PRDs reach the image and read back. */
    fill(buf, 64 * 512, 3);
    ck_assert_int_eq(qahci_rw(a, 0, 7, true, 2048, 64, buf, 512), 0);
    check_image(0, 2048 * 512, buf, 64 * 512);
    memset(am_ram(buf2), 0, 64 * 512);
    ck_assert_int_eq(qahci_rw(a, 0, 8, false, 2048, 64, buf2, 65536), 0);
    ck_assert(!memcmp(am_ram(buf), am_ram(buf2), 64 * 512));
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x50);

    /* WRITE DMA FUA EXT. */
    fill(buf, 8 * 512, 9);
    {
        QAhciPrd prd = {buf, 8 * 512, false};
        uint8_t fis[20];

        qahci_fis_h2d(fis, QATA_WRITE_DMA_FUA_EXT, 0, 4096, 8);
        qahci_slot_prepare(a, 0, 2, fis, true, 0, &prd, 1);
        ck_assert_int_eq(qahci_run(a, 0, 2, false), 0);
    }
    check_image(0, 4096 * 512, buf, 8 * 512);
}
END_TEST

START_TEST(test_dma_lba28)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 128 << 10, 4096);
    QAhciPrd prd[32];
    unsigned n;
    uint8_t fis[20];

    am_start_port(a, 0);
    /* READ DMA: 28-bit LBA with bits 27:24 in the device register. */
    qahci_fis_h2d(fis, QATA_READ_DMA, 0, 0x1203, 4);
    fis[7] = 0x40 | 0x0; /* LBA bits 27:24 = 0 */
    n = qahci_prds(prd, 32, buf, 4 * 512, 4096);
    qahci_slot_prepare(a, 0, 0, fis, false, 0, prd, n);
    ck_assert_int_eq(qahci_run(a, 0, 0, false), 0);
    am_check_pattern(0, 0x1203ULL * 512, buf, 4 * 512);

    /* A count of 0 means 256 sectors. */
    qahci_fis_h2d(fis, QATA_READ_DMA, 0, 64, 0);
    n = qahci_prds(prd, 32, buf, 256 * 512, 4096);
    qahci_slot_prepare(a, 0, 1, fis, false, 0, prd, n);
    ck_assert_int_eq(qahci_run(a, 0, 1, false), 0);
    am_check_pattern(0, 64 * 512, buf, 256 * 512);

    /* WRITE DMA. */
    fill(buf, 2 * 512, 11);
    qahci_fis_h2d(fis, QATA_WRITE_DMA, 0, 77, 2);
    n = qahci_prds(prd, 32, buf, 2 * 512, 4096);
    qahci_slot_prepare(a, 0, 2, fis, true, 0, prd, n);
    ck_assert_int_eq(qahci_run(a, 0, 2, false), 0);
    check_image(0, 77 * 512, buf, 2 * 512);
}
END_TEST

START_TEST(test_ncq_32_tags)
{
    QAhci *a = &am.a;
    const uint32_t chunk = 64 << 10, sectors = chunk / 512;
    uint64_t buf = qos_alloc(&am.q, 32 * chunk, 4096);
    uint64_t fb;

    am_start_port(a, 0);
    fb = a->port[0].fb;

    /* 32 writes in flight at once; each tag to its own place. */
    fill(buf, 32 * chunk, 21);
    blk_inject_delay_us(am.blk[0], 200000);
    for (int tag = 0; tag < 32; tag++) {
        qahci_rw_ncq_issue(a, 0, tag, true, (uint64_t)tag * sectors * 3,
                           sectors, buf + (uint64_t)tag * chunk, 8192);
    }
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 32);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 0xffffffff);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CI), 0); /* accepted */
    /* Accepted with a D2H FIS that clears BSY, I clear: no DHRS. */
    ck_assert_uint_eq(am_ram(fb + 0x40)[0], 0x34);
    ck_assert_uint_eq(am_ram(fb + 0x40)[1] & 0x40, 0);
    ck_assert_uint_eq(am_ram(fb + 0x40)[2], 0x50);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS) & QAHCI_PX_IS_DHRS, 0);
    ck_assert_int_eq(qahci_wait(a, 0, 0xffffffff, QAHCI_TIMEOUT_MS), 0);
    blk_inject_delay_us(am.blk[0], 0);
    ck_assert_uint_eq(am_ram(fb + 0x58)[0], 0xa1); /* Set Device Bits */
    for (int tag = 0; tag < 32; tag++) {
        check_image(0, (uint64_t)tag * chunk * 3, buf + (uint64_t)tag * chunk,
                    chunk);
    }

    /* And 32 reads at once, issued with one PxSACT/PxCI write. */
    memset(am_ram(buf), 0, 32 * chunk);
    for (int tag = 0; tag < 32; tag++) {
        uint8_t fis[20];
        QAhciPrd prd[16];
        unsigned n =
            qahci_prds(prd, 16, buf + (uint64_t)tag * chunk, chunk, 4096);

        qahci_fis_ncq(fis, QATA_READ_FPDMA_QUEUED, tag,
                      (uint64_t)tag * sectors * 3, sectors, false);
        qahci_slot_prepare(a, 0, tag, fis, false, 0, prd, n);
    }
    qahci_issue(a, 0, 0xffffffff, true);
    ck_assert_int_eq(qahci_wait(a, 0, 0xffffffff, QAHCI_TIMEOUT_MS), 0);
    for (int tag = 0; tag < 32; tag++) {
        check_image(0, (uint64_t)tag * chunk * 3, buf + (uint64_t)tag * chunk,
                    chunk);
    }
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x50);
}
END_TEST

/* The benchmark's batch of 16 x 128 KiB reads, both ways. */
START_TEST(test_read_batch)
{
    QAhci *a = &am.a;
    const uint32_t bytes = 128 << 10;
    uint64_t buf = qos_alloc(&am.q, 16 * bytes, 4096);

    am_start_port(a, 0);
    for (int ncq = 0; ncq < 2; ncq++) {
        memset(am_ram(buf), 0, 16 * bytes);
        ck_assert_int_eq(
            qahci_read_batch(a, 0, 512 * ncq, 16, bytes, buf, 4096, ncq), 0);
        am_check_pattern(0, 512 * 512ULL * ncq, buf, 16 * bytes);
    }
}
END_TEST

/* ---- Commands without data --------------------------------------------------
 */

START_TEST(test_flush)
{
    QAhci *a = &am.a;
    BlockStats before, after;

    am_start_port(a, 0);
    blk_get_stats(am.blk[0], &before);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_FLUSH_CACHE, 0, 0, 0), 0);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_FLUSH_CACHE_EXT, 0, 0, 0), 0);
    blk_get_stats(am.blk[0], &after);
    ck_assert_uint_eq(after.op[BLOCK_OP_FLUSH].ops,
                      before.op[BLOCK_OP_FLUSH].ops + 2);
    ck_assert_uint_ge(after.syncs, before.syncs + 2);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x50);
}
END_TEST

/*
 * Power management: what Linux sends at power-off must succeed, and a
 * standby writes the cache out (a flush reaches the backend).
 */
START_TEST(test_power_management)
{
    QAhci *a = &am.a;
    BlockStats before, after;
    uint8_t d2h[20];
    uint16_t id[256];

    am_start_port(a, 0);
    ck_assert_int_eq(qahci_identify(a, 0, id), 0);
    ck_assert(id[82] & (1u << 3)); /* the feature set is supported */
    ck_assert(id[85] & (1u << 3)); /* and enabled */

    blk_get_stats(am.blk[0], &before);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_IDLE_IMMEDIATE, 0, 0, 0), 0);
    blk_get_stats(am.blk[0], &after);
    ck_assert_uint_eq(after.op[BLOCK_OP_FLUSH].ops,
                      before.op[BLOCK_OP_FLUSH].ops);

    ck_assert_int_eq(qahci_nondata(a, 0, QATA_STANDBY_IMMEDIATE, 0, 0, 0), 0);
    blk_get_stats(am.blk[0], &after);
    ck_assert_uint_eq(after.op[BLOCK_OP_FLUSH].ops,
                      before.op[BLOCK_OP_FLUSH].ops + 1);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x50);

    ck_assert_int_eq(qahci_nondata(a, 0, QATA_CHECK_POWER_MODE, 0, 0, 0), 0);
    qahci_read_d2h(a, 0, d2h);
    ck_assert_uint_eq(d2h[12], 0xff); /* Count: active or idle */
}
END_TEST

static void expect_abort(QAhci *a, int port, int slot, uint8_t error)
{
    uint8_t d2h[20];
    uint32_t cmd = qahci_px_rreg(a, port, QAHCI_PX_CMD);

    ck_assert(qahci_px_rreg(a, port, QAHCI_PX_IS) & QAHCI_PX_IS_TFES);
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_TFD),
                      (uint32_t)error << 8 | 0x51);
    ck_assert_uint_eq((cmd >> 8) & 0x1f, slot); /* CCS */
    qahci_read_d2h(a, port, d2h);
    ck_assert_uint_eq(d2h[0], 0x34);
    ck_assert_uint_eq(d2h[2], 0x51);
    ck_assert_uint_eq(d2h[3], error);
    ck_assert(qahci_port_recover(a, port));
    ck_assert_uint_eq(qahci_px_rreg(a, port, QAHCI_PX_CI), 0);
}

START_TEST(test_set_features)
{
    QAhci *a = &am.a;
    uint16_t id[256];

    am_start_port(a, 0);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x82, 0, 0), 0);
    identify(a, 0, id);
    ck_assert(!(id[85] & (1u << 5)));
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x02, 0, 0), 0);
    identify(a, 0, id);
    ck_assert(id[85] & (1u << 5));

    /* Transfer modes: UDMA5, then MWDMA2; PIO4 leaves DMA alone. */
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x03, 0, 0x45), 0);
    identify(a, 0, id);
    ck_assert_uint_eq(id[88] & 0x7f00, 1u << 13);
    ck_assert_uint_eq(id[63] & 0x0700, 0);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x03, 0, 0x22), 0);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x03, 0, 0x0c), 0);
    identify(a, 0, id);
    ck_assert_uint_eq(id[88] & 0x7f00, 0);
    ck_assert_uint_eq(id[63] & 0x0700, 1u << 10);

    /* UDMA7 and an unknown subcommand abort. */
    am_stderr_begin();
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x03, 0, 0x47),
                     -EIO);
    ck_assert_int_eq(am_stderr_end(), 1);
    expect_abort(a, 0, 0, 0x04);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x55, 0, 0), -EIO);
    expect_abort(a, 0, 0, 0x04);

    /* With the write cache off, writes still land. */
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x82, 0, 0), 0);
    {
        uint64_t buf = qos_alloc(&am.q, 4096, 4096);

        fill(buf, 4096, 5);
        ck_assert_int_eq(qahci_rw(a, 0, 1, true, 300, 8, buf, 4096), 0);
        check_image(0, 300 * 512, buf, 4096);
    }
}
END_TEST

START_TEST(test_read_native_max)
{
    QAhci *a = &am.a;
    uint8_t d2h[20];

    am_start_port(a, 0);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_READ_NATIVE_MAX, 0, 0, 0), 0);
    qahci_read_d2h(a, 0, d2h);
    ck_assert_uint_eq(qahci_d2h_lba(d2h, false), AM_DISK_SECTORS - 1);
    ck_assert(d2h[7] & 0x40);
    memset(d2h, 0, sizeof(d2h));
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_READ_NATIVE_MAX_EXT, 0, 0, 0), 0);
    qahci_read_d2h(a, 0, d2h);
    ck_assert_uint_eq(qahci_d2h_lba(d2h, true), AM_DISK_SECTORS - 1);
}
END_TEST

START_TEST(test_unknown_command_aborts)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);

    am_start_port(a, 0);
    am_stderr_begin();
    ck_assert_int_eq(qahci_nondata(a, 0, 0xb0, 0xd0, 0, 0), -EIO); /* SMART */
    ck_assert_int_eq(am_stderr_end(), 1);
    /* The failed command stays in PxCI until software stops the list. */
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CI), 1);
    /* The port fetches nothing new while the error stands. */
    qahci_slot_prepare(a, 0, 1, (uint8_t[20]){0x27, 0x80, QATA_FLUSH_CACHE},
                       false, 0, NULL, 0);
    qahci_issue(a, 0, 1u << 1, false);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CI), 3);
    expect_abort(a, 0, 0, 0x04);
    ck_assert_int_eq(qahci_rw(a, 0, 0, false, 0, 8, buf, 4096), 0);
    am_check_pattern(0, 0, buf, 4096);
}
END_TEST

START_TEST(test_exec_device_diagnostic)
{
    QAhci *a = &am.a;
    uint8_t d2h[20];

    am_start_port(a, 0);
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_EXEC_DIAGNOSTIC, 0, 0, 0), 0);
    qahci_read_d2h(a, 0, d2h);
    ck_assert_uint_eq(d2h[3], 0x01); /* device 0 passed */
    ck_assert_uint_eq(d2h[12], 1);   /* the signature */
    ck_assert_uint_eq(d2h[4], 1);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x0150);
}
END_TEST

/* Software reset: a control FIS with SRST, then one without. */
START_TEST(test_software_reset)
{
    QAhci *a = &am.a;
    uint64_t fb, buf = qos_alloc(&am.q, 4096, 4096);
    uint8_t fis[20] = {0x27, 0x00};

    am_start_port(a, 0);
    fb = a->port[0].fb;
    ck_assert_int_eq(qahci_nondata(a, 0, QATA_SET_FEATURES, 0x82, 0, 0), 0);
    memset(am_ram(fb + 0x40), 0, 20);
    fis[15] = 0x04;
    qahci_slot_prepare(a, 0, 0, fis, false,
                       QAHCI_CMDH_RESET | QAHCI_CMDH_CLR_BSY, NULL, 0);
    ck_assert_int_eq(qahci_run(a, 0, 0, false), 0);
    ck_assert_uint_eq(am_ram(fb + 0x40)[0], 0); /* no answer to SRST=1 */
    fis[15] = 0;
    qahci_slot_prepare(a, 0, 1, fis, false, 0, NULL, 0);
    ck_assert_int_eq(qahci_run(a, 0, 1, false), 0);
    ck_assert_uint_eq(am_ram(fb + 0x40)[0], 0x34);
    ck_assert_uint_eq(am_ram(fb + 0x40)[12], 1);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SIG), 0x101);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x0150);
    ck_assert_int_eq(qahci_rw(a, 0, 2, false, 8, 8, buf, 4096), 0);
    am_check_pattern(0, 8 * 512, buf, 4096);
}
END_TEST

/* ---- Resets -----------------------------------------------------------------
 */

START_TEST(test_hba_reset)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);

    am_start_port(a, 0);
    qahci_px_wreg(a, 0, QAHCI_PX_SCTL, 0x300);
    ck_assert(qahci_hba_reset(a));
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_GHC), QAHCI_GHC_AE);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CMD),
                      QAHCI_PX_CMD_SUD | QAHCI_PX_CMD_POD);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IE), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_IS), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SCTL), 0);
    /* FRE is off again, so the new signature FIS has not landed yet. */
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x7f);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SIG), 0xffffffff);
    /* As in QEMU's model, the command list and FIS addresses survive. */
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CLB), a->port[0].clb);
    am_start_port(a, 0);
    ck_assert_int_eq(qahci_rw(a, 0, 0, false, 16, 8, buf, 4096), 0);
    am_check_pattern(0, 16 * 512, buf, 4096);

    /* The power-on reset forgets the addresses too. */
    bql_lock();
    ahci_reset(am.ahci[0]);
    bql_unlock();
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CLB), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_FB), 0);
}
END_TEST

START_TEST(test_comreset)
{
    QAhci *a = &am.a;
    uint64_t fb, buf = qos_alloc(&am.q, 4096, 4096);

    am_start_port(a, 0);
    fb = a->port[0].fb;
    memset(am_ram(fb + 0x40), 0, 20);
    ck_assert(qahci_port_comreset(a, 0));
    ck_assert_uint_eq(am_ram(fb + 0x40)[0], 0x34); /* the signature FIS */
    ck_assert_uint_eq(am_ram(fb + 0x40)[12], 1);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SIG), 0x101);
    ck_assert_int_eq(qahci_rw(a, 0, 0, false, 24, 8, buf, 4096), 0);
    am_check_pattern(0, 24 * 512, buf, 4096);
    /* Nothing comes back on an empty port. */
    ck_assert(!qahci_port_start(a, 1));
    ck_assert(!qahci_port_comreset(a, 1));
    ck_assert_uint_eq(qahci_px_rreg(a, 1, QAHCI_PX_SIG), 0xffffffff);
}
END_TEST

/* Stopping the list with commands in flight: CR falls when they are done. */
START_TEST(test_stop_with_commands_in_flight)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4 * 4096, 4096);
    uint32_t cmd;
    int64_t deadline;

    am_start_port(a, 0);
    blk_inject_delay_us(am.blk[0], 200000);
    for (int tag = 0; tag < 4; tag++) {
        qahci_rw_ncq_issue(a, 0, tag, false, tag * 8, 8, buf + tag * 4096,
                           4096);
    }
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 4);
    cmd = qahci_px_rreg(a, 0, QAHCI_PX_CMD);
    qahci_px_wreg(a, 0, QAHCI_PX_CMD, cmd & ~QAHCI_PX_CMD_ST);
    ck_assert(qahci_px_rreg(a, 0, QAHCI_PX_CMD) & QAHCI_PX_CMD_CR);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CI), 0);
    deadline = clock_ns() + 5 * NS_PER_S;
    while (qahci_px_rreg(a, 0, QAHCI_PX_CMD) & QAHCI_PX_CMD_CR) {
        ck_assert(clock_ns() < deadline);
        usleep(1000);
    }
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 0);
    /* The abandoned commands reported nothing. */
    ck_assert(!(qahci_px_rreg(a, 0, QAHCI_PX_IS) & QAHCI_PX_IS_SDBS));
    blk_inject_delay_us(am.blk[0], 0);
    ck_assert(qahci_port_recover(a, 0));
    ck_assert_int_eq(qahci_rw_ncq(a, 0, 0, false, 40, 8, buf, 4096), 0);
    am_check_pattern(0, 40 * 512, buf, 4096);
}
END_TEST

/* GHC.HR and COMRESET drain what is in flight before they return. */
START_TEST(test_resets_drain)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4 * 4096, 4096);

    am_start_port(a, 0);
    blk_inject_delay_us(am.blk[0], 100000);
    qahci_rw_ncq_issue(a, 0, 0, false, 0, 8, buf, 4096);
    qahci_rw_ncq_issue(a, 0, 1, false, 8, 8, buf + 4096, 4096);
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 2);
    qahci_wreg(a, QAHCI_GHC, QAHCI_GHC_HR | QAHCI_GHC_AE);
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 0);

    am_start_port(a, 0);
    qahci_rw_ncq_issue(a, 0, 5, false, 0, 8, buf, 4096);
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 1);
    qahci_px_wreg(a, 0, QAHCI_PX_SCTL, 1);
    qahci_px_wreg(a, 0, QAHCI_PX_SCTL, 0);
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 0);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 0);
    blk_inject_delay_us(am.blk[0], 0);
    ck_assert(qahci_port_recover(a, 0));
    ck_assert_int_eq(qahci_rw(a, 0, 0, false, 32, 8, buf, 4096), 0);
    am_check_pattern(0, 32 * 512, buf, 4096);
}
END_TEST

START_TEST(test_destroy_with_commands_in_flight)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);

    am_start_port(a, 0);
    blk_inject_delay_us(am.blk[0], 100000);
    qahci_rw_ncq_issue(a, 0, 3, false, 0, 8, buf, 4096);
    bql_lock();
    ahci_destroy(am.ahci[0]);
    am.ahci[0] = NULL;
    ck_assert_uint_eq(blk_in_flight(am.blk[0]), 0);
    bql_unlock();
}
END_TEST

/* ---- Errors from the disk ---------------------------------------------------
 */

START_TEST(test_io_errors)
{
    QAhci *a = &am.a;
    uint64_t fb, buf = qos_alloc(&am.q, 4096, 4096);

    am_start_port(a, 0);
    fb = a->port[0].fb;
    blk_inject_error(am.blk[0], BLOCK_OP_READ, 1, EIO);
    ck_assert_int_eq(qahci_rw(a, 0, 4, false, 0, 8, buf, 4096), -EIO);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_CI), 1u << 4);
    expect_abort(a, 0, 4, 0x04);

    /* Queued: the SDB FIS carries the error and the tag stays in SACT. */
    blk_inject_error(am.blk[0], BLOCK_OP_READ, 1, EIO);
    ck_assert_int_eq(qahci_rw_ncq(a, 0, 2, false, 0, 8, buf, 4096), -EIO);
    ck_assert(qahci_px_rreg(a, 0, QAHCI_PX_IS) & QAHCI_PX_IS_TFES);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 1u << 2);
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_TFD), 0x0451);
    ck_assert_uint_eq(am_ram(fb + 0x58)[0], 0xa1);
    ck_assert_uint_eq(am_ram(fb + 0x58)[2], 0x51);
    ck_assert_uint_eq(am_ram(fb + 0x58)[3], 0x04);
    ck_assert(qahci_port_recover(a, 0));
    ck_assert_uint_eq(qahci_px_rreg(a, 0, QAHCI_PX_SACT), 0);
    ck_assert_int_eq(qahci_rw_ncq(a, 0, 2, false, 0, 8, buf, 4096), 0);
    am_check_pattern(0, 0, buf, 4096);
}
END_TEST

/* ---- More disks, more controllers -------------------------------------------
 */

START_TEST(test_two_disks_two_controllers)
{
    uint64_t buf = qos_alloc(&am.q, 3 * 4096, 4096);
    int d1 = am_add_disk(), d2 = am_add_disk();
    QAhci b;

    bql_lock();
    ck_assert_int_eq(ahci_attach_disk(am.ahci[0], 2, am.blk[d1], NULL), 0);
    am_create_ahci(1, AM_DEVFN2);
    ck_assert_int_eq(ahci_attach_disk(am.ahci[1], 0, am.blk[d2], NULL), 0);
    bql_unlock();

    ck_assert(qahci_init(&b, &am.q, 1));
    ck_assert_uint_eq(b.dev.devfn, AM_DEVFN2);
    ck_assert_uint_ne(b.abar, am.a.abar);
    am_start_port(&am.a, 0);
    am_start_port(&am.a, 2);
    am_start_port(&b, 0);

    ck_assert_int_eq(qahci_rw(&am.a, 0, 0, false, 64, 8, buf, 4096), 0);
    ck_assert_int_eq(qahci_rw(&am.a, 2, 0, false, 64, 8, buf + 4096, 4096), 0);
    ck_assert_int_eq(qahci_rw(&b, 0, 0, false, 64, 8, buf + 8192, 4096), 0);
    am_check_pattern(0, 64 * 512, buf, 4096);
    am_check_pattern(d1, 64 * 512, buf + 4096, 4096);
    am_check_pattern(d2, 64 * 512, buf + 8192, 4096);

    /* A write through the second controller touches only its disk. */
    fill(buf, 4096, 33);
    ck_assert_int_eq(qahci_rw(&b, 0, 1, true, 64, 8, buf, 4096), 0);
    check_image(d2, 64 * 512, buf, 4096);
    ck_assert_int_eq(qahci_rw(&am.a, 2, 1, false, 64, 8, buf + 4096, 4096), 0);
    am_check_pattern(d1, 64 * 512, buf + 4096, 4096);
}
END_TEST

/* ---- Interrupts -------------------------------------------------------------
 */

static void run_flush_keep_is(QAhci *a, int slot)
{
    qahci_slot_prepare(a, 0, slot, (uint8_t[20]){0x27, 0x80, QATA_FLUSH_CACHE},
                       false, 0, NULL, 0);
    qahci_issue(a, 0, 1u << slot, false);
    am_wait_idle(a, 0, 1u << slot);
}

START_TEST(test_intx)
{
    QAhci *a = &am.a;
    IrqProbe *irq = &am.intx[0];

    am_start_port(a, 0);
    ck_assert_int_eq(atomic_load(&irq->level), 0);
    run_flush_keep_is(a, 0);
    ck_assert_int_eq(atomic_load(&irq->level), 1);
    ck_assert_uint_eq(qahci_rreg(a, QAHCI_IS), 1);
    qahci_port_clear_is(a, 0);
    ck_assert_int_eq(atomic_load(&irq->level), 0);

    /* GHC.IE gates the line; PxIE gates the port. */
    qahci_wreg(a, QAHCI_GHC, QAHCI_GHC_AE);
    run_flush_keep_is(a, 1);
    ck_assert_int_eq(atomic_load(&irq->level), 0);
    qahci_wreg(a, QAHCI_GHC, QAHCI_GHC_AE | QAHCI_GHC_IE);
    ck_assert_int_eq(atomic_load(&irq->level), 1);
    qahci_px_wreg(a, 0, QAHCI_PX_IE, 0);
    ck_assert_int_eq(atomic_load(&irq->level), 0);
    qahci_px_wreg(a, 0, QAHCI_PX_IE, 0xffffffff);
    ck_assert_int_eq(atomic_load(&irq->level), 1);
    /* PCI's INTx disable masks it too. */
    qpci_config_write(&a->dev, 0x04, qpci_config_read(&a->dev, 0x04, 2) | 0x400,
                      2);
    ck_assert_int_eq(atomic_load(&irq->level), 0);
    qpci_config_write(&a->dev, 0x04,
                      qpci_config_read(&a->dev, 0x04, 2) & ~0x400u, 2);
    ck_assert_int_eq(atomic_load(&irq->level), 1);
    qahci_port_clear_is(a, 0);
    ck_assert_int_eq(atomic_load(&irq->level), 0);
    ck_assert_uint_eq(atomic_load(&am.msi[0].count), 0);
}
END_TEST

START_TEST(test_msi)
{
    QAhci *a = &am.a;
    MsiProbe *msi = &am.msi[0];
    unsigned before;

    am_start_port(a, 0);
    ck_assert_uint_ne(qahci_msi_enable(a, 0xfee01000, 0x4031), 0);
    before = atomic_load(&msi->count);
    run_flush_keep_is(a, 0);
    ck_assert_uint_eq(atomic_load(&msi->count), before + 1);
    ck_assert_uint_eq(atomic_load(&msi->addr), 0xfee01000);
    ck_assert_uint_eq(atomic_load(&msi->data), 0x4031);
    ck_assert_int_eq(atomic_load(&am.intx[0].level), 0);
    /* A second event while the first is unacknowledged still signals. */
    run_flush_keep_is(a, 1);
    ck_assert_uint_eq(atomic_load(&msi->count), before + 2);
    qahci_port_clear_is(a, 0);
    ck_assert_uint_eq(atomic_load(&msi->count), before + 2);
    ck_assert_int_eq(atomic_load(&am.intx[0].level), 0);
}
END_TEST

/* ---- The stall --------------------------------------------------------------
 */

#define STALL_CAP_MS 200

static AioContextStats main_stats(void)
{
    AioContextStats st;

    aio_context_get_stats(main_loop_context(), &st);
    return st;
}

/*
 * Issue one READ DMA EXT from this thread (a vCPU) just after the main loop
 * fell asleep, and return how long it took. Synchronising on a timeout
 * makes the loop's sleep start right before the issue.
 */
static int64_t timed_read(uint64_t *timeouts_before, uint64_t *timeouts_after)
{
    QAhci *a = &am.a;
    uint64_t buf = qos_alloc(&am.q, 4096, 4096);
    QAhciPrd prd = {buf, 4096, false};
    uint8_t fis[20];
    uint64_t t, it;
    int64_t start;

    qahci_fis_h2d(fis, QATA_READ_DMA_EXT, 0, 100, 8);
    qahci_slot_prepare(a, 0, 0, fis, false, 0, &prd, 1);
    /*
     * A timeout, then the next iteration's sleep: 'sleeping' alone could
     * still be the flag of the sleep that just timed out.
     */
    t = main_stats().wait_timeouts;
    while (main_stats().wait_timeouts == t) {
        usleep(100);
    }
    it = main_stats().iterations;
    while (main_stats().iterations == it || !main_loop_sleeping()) {
        usleep(100);
    }
    *timeouts_before = main_stats().wait_timeouts;
    start = clock_ns();
    qahci_issue(a, 0, 1, false);
    am_wait_idle(a, 0, 1);
    *timeouts_after = main_stats().wait_timeouts;
    am_check_pattern(0, 100 * 512, buf, 4096);
    return clock_ns() - start;
}

START_TEST(test_stall_with_notify_off)
{
    uint64_t before, after;
    int64_t ns;

    am_start_port(&am.a, 0);
    main_loop_set_timeout_ms(STALL_CAP_MS);
    aio_set_notify_on_sqe(false);
    ns = timed_read(&before, &after);
    aio_set_notify_on_sqe(true);
    /* Nobody woke the loop: the read waited for the wait's timeout. */
    ck_assert_uint_gt(after, before);
    ck_assert_int_ge(ns, STALL_CAP_MS / 2 * NS_PER_MS);
}
END_TEST

START_TEST(test_stall_fixed_with_notify_on)
{
    uint64_t before, after;

    am_start_port(&am.a, 0);
    main_loop_set_timeout_ms(STALL_CAP_MS);
    aio_set_notify_on_sqe(true);
    (void)timed_read(&before, &after);
    /*
     * The loop was woken, not timed out: what the fix is. (How long the
     * read took is no test: a loaded machine makes any bound flaky; the
     * benchmarks measure it.)
     */
    ck_assert_uint_eq(after, before);
}
END_TEST

Suite *ahci_suite(void)
{
    Suite *s = suite_create("ahci");
    TCase *tc = tcase_create("device");

    tcase_add_checked_fixture(tc, am_setup, am_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_pci_identity);
    tcase_add_test(tc, test_hba_registers);
    tcase_add_test(tc, test_port_reset_values);
    tcase_add_test(tc, test_port_register_writes);
    tcase_add_test(tc, test_signature_waits_for_fis_receive);
    tcase_add_test(tc, test_hba_is_follows_ports);
    tcase_add_test(tc, test_identify);
    tcase_add_test(tc, test_identify_options);
    tcase_add_test(tc, test_dma_ext_read_write);
    tcase_add_test(tc, test_dma_lba28);
    tcase_add_test(tc, test_ncq_32_tags);
    tcase_add_test(tc, test_read_batch);
    tcase_add_test(tc, test_flush);
    tcase_add_test(tc, test_power_management);
    tcase_add_test(tc, test_set_features);
    tcase_add_test(tc, test_read_native_max);
    tcase_add_test(tc, test_unknown_command_aborts);
    tcase_add_test(tc, test_exec_device_diagnostic);
    tcase_add_test(tc, test_software_reset);
    tcase_add_test(tc, test_hba_reset);
    tcase_add_test(tc, test_comreset);
    tcase_add_test(tc, test_stop_with_commands_in_flight);
    tcase_add_test(tc, test_resets_drain);
    tcase_add_test(tc, test_destroy_with_commands_in_flight);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_two_disks_two_controllers);
    tcase_add_test(tc, test_intx);
    tcase_add_test(tc, test_msi);
    tcase_add_test(tc, test_stall_with_notify_off);
    tcase_add_test(tc, test_stall_fixed_with_notify_on);
    suite_add_tcase(s, tc);
    suite_add_tcase(s, ahci_bad_tcase());
    return s;
}
