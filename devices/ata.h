/*
 * The parts of the ATA command set (ATA8-ACS) that minivmm's SATA disk
 * speaks: command and register codes, the IDENTIFY DEVICE page, transfer
 * modes. Nothing here knows AHCI; devices/ahci-cmd.c maps FISes onto it.
 */
#ifndef MINIVMM_DEVICES_ATA_H
#define MINIVMM_DEVICES_ATA_H

#include <stdbool.h>
#include <stdint.h>

#define ATA_SECTOR_SIZE 512

/* Commands. */
#define ATA_CMD_READ_SECTORS           0x20
#define ATA_CMD_READ_SECTORS_EXT       0x24
#define ATA_CMD_READ_NATIVE_MAX_EXT    0x27
#define ATA_CMD_READ_MULTIPLE_EXT      0x29
#define ATA_CMD_WRITE_SECTORS          0x30
#define ATA_CMD_WRITE_SECTORS_EXT      0x34
#define ATA_CMD_WRITE_MULTIPLE_EXT     0x39
#define ATA_CMD_READ_DMA_EXT           0x25
#define ATA_CMD_WRITE_DMA_EXT          0x35
#define ATA_CMD_WRITE_DMA_FUA_EXT      0x3d
#define ATA_CMD_READ_FPDMA_QUEUED      0x60
#define ATA_CMD_WRITE_FPDMA_QUEUED     0x61
#define ATA_CMD_EXEC_DEVICE_DIAGNOSTIC 0x90
#define ATA_CMD_READ_MULTIPLE          0xc4
#define ATA_CMD_WRITE_MULTIPLE         0xc5
#define ATA_CMD_SET_MULTIPLE_MODE      0xc6
#define ATA_CMD_READ_DMA               0xc8
#define ATA_CMD_WRITE_DMA              0xca
#define ATA_CMD_STANDBY_IMMEDIATE      0xe0
#define ATA_CMD_IDLE_IMMEDIATE         0xe1
#define ATA_CMD_STANDBY                0xe2
#define ATA_CMD_IDLE                   0xe3
#define ATA_CMD_CHECK_POWER_MODE       0xe5
#define ATA_CMD_SLEEP                  0xe6
#define ATA_CMD_FLUSH_CACHE            0xe7
#define ATA_CMD_FLUSH_CACHE_EXT        0xea
#define ATA_CMD_IDENTIFY_DEVICE        0xec
#define ATA_CMD_SET_FEATURES           0xef
#define ATA_CMD_READ_NATIVE_MAX        0xf8

/* Status register. */
#define ATA_STAT_BSY  0x80
#define ATA_STAT_DRDY 0x40
#define ATA_STAT_DF   0x20
#define ATA_STAT_DSC  0x10
#define ATA_STAT_DRQ  0x08
#define ATA_STAT_ERR  0x01

/* What a healthy, idle disk shows; with ERR set after a failed command. */
#define ATA_STAT_READY (ATA_STAT_DRDY | ATA_STAT_DSC)

/* Error register. */
#define ATA_ERR_ABRT 0x04 /* command aborted (unknown, bad parameters) */
#define ATA_ERR_IDNF 0x10 /* address outside the disk */
/* After a reset or EXECUTE DEVICE DIAGNOSTIC: "device 0 passed". */
#define ATA_ERR_DIAG_PASSED 0x01

/* Device register. */
#define ATA_DEV_LBA     0x40
#define ATA_DEV_FPDMA   0x40 /* bit 6 must be set in FPDMA commands */
#define ATA_DEV_FUA     0x80 /* FPDMA: force unit access */
#define ATA_DEV_LBA28HI 0x0f

/* Device control register (a control FIS). */
#define ATA_CTL_SRST 0x04

/* SET FEATURES subcommands (the features register). */
#define ATA_SF_ENABLE_WCACHE  0x02
#define ATA_SF_SET_XFER_MODE  0x03
#define ATA_SF_DISABLE_WCACHE 0x82

/* Transfer mode values (the count register of SET FEATURES 03h). */
#define ATA_XFER_PIO_DEFAULT  0x00
#define ATA_XFER_PIO_NO_IORDY 0x01
#define ATA_XFER_PIO(n)       (0x08 | (n))
#define ATA_XFER_MWDMA(n)     (0x20 | (n))
#define ATA_XFER_UDMA(n)      (0x40 | (n))

/* The signature a disk reports after a reset (count, LBA low, mid, high). */
#define ATA_SIGNATURE_DISK 0x00000101u

#define ATA_NCQ_DEPTH 32

/*
 * The largest DRQ data block of READ/WRITE MULTIPLE, in sectors (IDENTIFY
 * word 47 bits 7:0); QEMU's MAX_MULT_SECTORS. SET MULTIPLE MODE accepts the
 * powers of two up to it. 16 sectors keep a block's byte count within the
 * 16-bit transfer count of a PIO Setup FIS.
 */
#define ATA_MAX_MULTIPLE_SECTORS 16
#define ATA_LBA28_MAX            ((1u << 28) - 1)

#define ATA_SERIAL_LEN 20
#define ATA_FWREV_LEN  8
#define ATA_MODEL_LEN  40

/* What IDENTIFY DEVICE describes, and what SET FEATURES may change. */
typedef struct AtaDevice {
    uint64_t sectors;
    char serial[ATA_SERIAL_LEN + 1];
    char model[ATA_MODEL_LEN + 1];
    char fwrev[ATA_FWREV_LEN + 1];
    bool write_cache;  /* volatile write cache enabled */
    uint8_t xfer_mode; /* the last DMA mode selected (ATA_XFER_*) */
    /*
     * Sectors per DRQ data block of READ/WRITE MULTIPLE, as SET MULTIPLE
     * MODE chose (a power of two up to ATA_MAX_MULTIPLE_SECTORS), or 0:
     * multiple mode off, those commands abort. IDENTIFY word 59 reports it.
     * Power-on and a hardware reset (COMRESET, an HBA reset) set the
     * default, ata_device_hardware_reset(); a software reset keeps it.
     */
    uint8_t multiple_sectors;
} AtaDevice;

/*
 * Fill @dev with a disk of @sectors and the given strings. Returns false if
 * a string is too long for its IDENTIFY field or is not printable ASCII.
 */
bool ata_device_init(AtaDevice *dev, uint64_t sectors, const char *serial,
                     const char *model, const char *fwrev);

/* The 256-word IDENTIFY DEVICE page, little-endian, checksummed. */
void ata_identify(const AtaDevice *dev, uint16_t words[256]);

/*
 * What power-on and a hardware reset restore. Multiple mode: on, with the
 * largest block. ATA leaves the default to the device (disks of the SATA
 * era ship with 16 sectors, older ones with the mode off); QEMU's ide-hd
 * comes up with 16 too, so a driver sees the same page on both.
 */
static inline void ata_device_hardware_reset(AtaDevice *dev)
{
    dev->multiple_sectors = ATA_MAX_MULTIPLE_SECTORS;
}

/* True if SET FEATURES may select @mode (we claim PIO 0-4, MWDMA 0-2,
 * UDMA 0-6). */
bool ata_xfer_mode_supported(uint8_t mode);

/* "READ DMA EXT" etc., or NULL for a command we do not implement. */
const char *ata_command_name(uint8_t command);

#endif
