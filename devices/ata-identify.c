/*
 * ATA tables: the IDENTIFY DEVICE page, transfer modes, command names.
 * Word numbers follow ATA8-ACS, 7.16 (IDENTIFY DEVICE data).
 */
#include <string.h>

#include "devices/ata.h"
#include "util/compiler.h"

static bool ata_string_ok(const char *s, size_t max)
{
    size_t len = strlen(s);

    if (len > max) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

bool ata_device_init(AtaDevice *dev, uint64_t sectors, const char *serial,
                     const char *model, const char *fwrev)
{
    if (!ata_string_ok(serial, ATA_SERIAL_LEN) ||
        !ata_string_ok(model, ATA_MODEL_LEN) ||
        !ata_string_ok(fwrev, ATA_FWREV_LEN)) {
        return false;
    }
    memset(dev, 0, sizeof(*dev));
    dev->sectors = sectors;
    strcpy(dev->serial, serial);
    strcpy(dev->model, model);
    strcpy(dev->fwrev, fwrev);
    dev->write_cache = true;
    dev->xfer_mode = ATA_XFER_UDMA(6);
    ata_device_hardware_reset(dev);
    return true;
}

/*
 * ATA strings are space-padded and stored two characters per word with the
 * first character in the high byte, so a little-endian host reading the
 * page as bytes sees each pair swapped.
 */
static void put_string(uint16_t *words, const char *s, size_t chars)
{
    size_t len = strlen(s);

    for (size_t i = 0; i < chars; i += 2) {
        uint8_t hi = i < len ? s[i] : ' ';
        uint8_t lo = i + 1 < len ? s[i + 1] : ' ';

        words[i / 2] = (uint16_t)(hi << 8 | lo);
    }
}

/*
 * The CHS geometry of words 1-6 and 54-58: 16 heads and 63 sectors per
 * track, as many cylinders as fit up to 16383 (ATA8-ACS, 7.16.7.2: a disk
 * past 8.4 GB reports 16383). Obsolete, but old BIOS-era code reads it.
 */
#define ATA_CHS_HEADS   16
#define ATA_CHS_SECTORS 63
#define ATA_CHS_CYLS    16383

static void put_chs(const AtaDevice *dev, uint16_t w[256])
{
    uint64_t cyls = dev->sectors / (ATA_CHS_HEADS * ATA_CHS_SECTORS);
    uint32_t chs_sectors;

    if (cyls > ATA_CHS_CYLS) {
        cyls = ATA_CHS_CYLS;
    }
    chs_sectors = (uint32_t)cyls * ATA_CHS_HEADS * ATA_CHS_SECTORS;
    w[1] = (uint16_t)cyls;
    w[3] = ATA_CHS_HEADS;
    w[4] = ATA_CHS_SECTORS * ATA_SECTOR_SIZE; /* retired: bytes per track */
    w[5] = ATA_SECTOR_SIZE;                   /* retired: bytes per sector */
    w[6] = ATA_CHS_SECTORS;
    /* Words 54-58: the current translation, the same geometry. */
    w[54] = (uint16_t)cyls;
    w[55] = ATA_CHS_HEADS;
    w[56] = ATA_CHS_SECTORS;
    w[57] = (uint16_t)chs_sectors;
    w[58] = (uint16_t)(chs_sectors >> 16);
}

/*
 * Words that ATA8-ACS (7.16) fixes or leaves to the device are as QEMU
 * 7.2's ide-hd has them, retired ones included, so a guest sees the same
 * page on both; where we differ on purpose, tests/qtest/
 * qemu-diff-allowlist.txt names the word and the reason.
 */
void ata_identify(const AtaDevice *dev, uint16_t w[256])
{
    uint64_t lba28 =
        dev->sectors < ATA_LBA28_MAX ? dev->sectors : ATA_LBA28_MAX;
    uint16_t mwdma_sel = 0, udma_sel = 0;
    uint8_t sum = 0;

    if ((dev->xfer_mode & 0xf8) == ATA_XFER_MWDMA(0)) {
        mwdma_sel = 1u << (8 + (dev->xfer_mode & 7));
    } else if ((dev->xfer_mode & 0xf8) == ATA_XFER_UDMA(0)) {
        udma_sel = 1u << (8 + (dev->xfer_mode & 7));
    }

    memset(w, 0, 512);
    w[0] = 0x0040; /* fixed (non-removable) ATA device */
    put_chs(dev, w);
    w[20] = 3;   /* retired: a dual-ported buffer with read cache */
    w[21] = 512; /* retired: buffer size in sectors */
    w[22] = 4;   /* obsolete: ECC bytes for READ/WRITE LONG */
    put_string(&w[10], dev->serial, ATA_SERIAL_LEN);
    put_string(&w[23], dev->fwrev, ATA_FWREV_LEN);
    put_string(&w[27], dev->model, ATA_MODEL_LEN);
    w[47] = 0x8000 | ATA_MAX_MULTIPLE_SECTORS; /* READ/WRITE MULTIPLE */
    w[49] = 1u << 11 | 1u << 9 | 1u << 8;      /* IORDY, LBA, DMA */
    w[50] = 0x4000;                            /* fixed: bit 14 set */
    w[51] = w[52] = 0x0200; /* obsolete: PIO and DMA cycle timing mode 2 */
    w[53] = 1u << 2 | 1u << 1 | 1u << 0; /* words 54-58, 64-70, 88 valid */
    /*
     * Bit 8: bits 7:0 hold the current multiple count; all 0 while
     * multiple mode is off, as QEMU's ide-hd reports it.
     */
    w[59] = dev->multiple_sectors ? 0x0100 | dev->multiple_sectors : 0;
    w[60] = (uint16_t)lba28;
    w[61] = (uint16_t)(lba28 >> 16);
    w[62] = 0x0007;             /* obsolete: single-word DMA 0-2 */
    w[63] = 0x0007 | mwdma_sel; /* MWDMA 0-2 */
    w[64] = 0x0003;             /* PIO 3-4 */
    w[65] = w[66] = w[67] = w[68] = 120;
    w[75] = ATA_NCQ_DEPTH - 1;
    w[76] = 1u << 8 | 1u << 2 | 1u << 1; /* NCQ; SATA Gen1 and Gen2 */
    w[80] = 0x01f0;                      /* ATA/ATAPI-4 to ATA8-ACS */
    w[82] = 1u << 5 | 1u << 3; /* volatile write cache; power management */
    w[83] = 1u << 14 | 1u << 13 | 1u << 12 | 1u << 10; /* FLUSH (EXT), LBA48 */
    w[84] = 1u << 14 | 1u << 6;                        /* WRITE DMA FUA EXT */
    w[85] = (dev->write_cache ? 1u << 5 : 0) | 1u << 3;
    w[86] = 1u << 13 | 1u << 12 | 1u << 10;
    w[87] = 1u << 14 | 1u << 6;
    w[88] = 0x007f | udma_sel; /* UDMA 0-6 */
    w[100] = (uint16_t)dev->sectors;
    w[101] = (uint16_t)(dev->sectors >> 16);
    w[102] = (uint16_t)(dev->sectors >> 32);
    w[103] = (uint16_t)(dev->sectors >> 48);
    w[106] = 0x4000; /* valid; one 512-byte logical sector per physical */
    /* Word 217, the rotation rate, stays 0: not reported (QEMU's default). */

    /* Word 255: signature A5h, then a byte that makes all 512 sum to 0. */
    w[255] = 0x00a5;
    for (int i = 0; i < 255; i++) {
        sum += (uint8_t)w[i] + (uint8_t)(w[i] >> 8);
    }
    sum += 0xa5;
    w[255] |= (uint16_t)((uint8_t)-sum) << 8;
}

bool ata_xfer_mode_supported(uint8_t mode)
{
    switch (mode & 0xf8) {
    case 0x00:
        return mode <= ATA_XFER_PIO_NO_IORDY;
    case ATA_XFER_PIO(0):
        return (mode & 7) <= 4;
    case ATA_XFER_MWDMA(0):
        return (mode & 7) <= 2;
    case ATA_XFER_UDMA(0):
        return (mode & 7) <= 6;
    default:
        return false;
    }
}

const char *ata_command_name(uint8_t command)
{
    static const struct {
        uint8_t command;
        const char *name;
    } names[] = {
        {ATA_CMD_READ_NATIVE_MAX_EXT, "READ NATIVE MAX ADDRESS EXT"},
        {ATA_CMD_READ_DMA_EXT, "READ DMA EXT"},
        {ATA_CMD_WRITE_DMA_EXT, "WRITE DMA EXT"},
        {ATA_CMD_WRITE_DMA_FUA_EXT, "WRITE DMA FUA EXT"},
        {ATA_CMD_READ_FPDMA_QUEUED, "READ FPDMA QUEUED"},
        {ATA_CMD_WRITE_FPDMA_QUEUED, "WRITE FPDMA QUEUED"},
        {ATA_CMD_EXEC_DEVICE_DIAGNOSTIC, "EXECUTE DEVICE DIAGNOSTIC"},
        {ATA_CMD_READ_DMA, "READ DMA"},
        {ATA_CMD_WRITE_DMA, "WRITE DMA"},
        {ATA_CMD_STANDBY_IMMEDIATE, "STANDBY IMMEDIATE"},
        {ATA_CMD_IDLE_IMMEDIATE, "IDLE IMMEDIATE"},
        {ATA_CMD_STANDBY, "STANDBY"},
        {ATA_CMD_IDLE, "IDLE"},
        {ATA_CMD_CHECK_POWER_MODE, "CHECK POWER MODE"},
        {ATA_CMD_SLEEP, "SLEEP"},
        {ATA_CMD_FLUSH_CACHE, "FLUSH CACHE"},
        {ATA_CMD_FLUSH_CACHE_EXT, "FLUSH CACHE EXT"},
        {ATA_CMD_IDENTIFY_DEVICE, "IDENTIFY DEVICE"},
        {ATA_CMD_SET_FEATURES, "SET FEATURES"},
        {ATA_CMD_READ_NATIVE_MAX, "READ NATIVE MAX ADDRESS"},
        {ATA_CMD_READ_SECTORS, "READ SECTORS"},
        {ATA_CMD_READ_SECTORS_EXT, "READ SECTORS EXT"},
        {ATA_CMD_WRITE_SECTORS, "WRITE SECTORS"},
        {ATA_CMD_WRITE_SECTORS_EXT, "WRITE SECTORS EXT"},
        {ATA_CMD_READ_MULTIPLE, "READ MULTIPLE"},
        {ATA_CMD_READ_MULTIPLE_EXT, "READ MULTIPLE EXT"},
        {ATA_CMD_WRITE_MULTIPLE, "WRITE MULTIPLE"},
        {ATA_CMD_WRITE_MULTIPLE_EXT, "WRITE MULTIPLE EXT"},
        {ATA_CMD_SET_MULTIPLE_MODE, "SET MULTIPLE MODE"},
    };

    for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
        if (names[i].command == command) {
            return names[i].name;
        }
    }
    return NULL;
}
