/*
 * A small AHCI driver for the bare-metal tests: the HBA found through the
 * device tree, one port at a time, commands built by hand, completion by
 * polling PxCI/PxSACT (interrupts are the caller's business: msi.c). Every
 * structure the HBA reads lives in the caller's static memory above 1 MiB.
 */
#ifndef FWTEST_AHCI_H
#define FWTEST_AHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "firmware/tests/lib/io.h"

#define AHCI_VENDOR   0x8086
#define AHCI_DEVICE   0x2922
#define AHCI_ABAR     5
#define AHCI_SLOTS    32
#define AHCI_PRDT_MAX 64
#define AHCI_SECTOR   512

/* HBA registers */
#define AHCI_CAP          0x00
#define AHCI_GHC          0x04
#define AHCI_IS           0x08
#define AHCI_PI           0x0c
#define AHCI_VS           0x10
#define AHCI_CAP_NCS(cap) ((((cap) >> 8) & 0x1f) + 1)
#define AHCI_CAP_SNCQ     (1u << 30)
#define AHCI_CAP_S64A     (1u << 31)
#define AHCI_GHC_HR       (1u << 0)
#define AHCI_GHC_IE       (1u << 1)
#define AHCI_GHC_AE       (1u << 31)

/* Port registers, relative to the port's 0x80 bytes */
#define AHCI_PX_CLB  0x00
#define AHCI_PX_CLBU 0x04
#define AHCI_PX_FB   0x08
#define AHCI_PX_FBU  0x0c
#define AHCI_PX_IS   0x10
#define AHCI_PX_IE   0x14
#define AHCI_PX_CMD  0x18
#define AHCI_PX_TFD  0x20
#define AHCI_PX_SIG  0x24
#define AHCI_PX_SSTS 0x28
#define AHCI_PX_SCTL 0x2c
#define AHCI_PX_SERR 0x30
#define AHCI_PX_SACT 0x34
#define AHCI_PX_CI   0x38

#define AHCI_PX_IS_DHRS   (1u << 0)
#define AHCI_PX_IS_SDBS   (1u << 3)
#define AHCI_PX_IS_ERRORS 0x7d000000u /* TFES HBFS HBDS IFS INFS OFS */
#define AHCI_PX_CMD_ST    (1u << 0)
#define AHCI_PX_CMD_SUD   (1u << 1)
#define AHCI_PX_CMD_POD   (1u << 2)
#define AHCI_PX_CMD_FRE   (1u << 4)
#define AHCI_PX_CMD_FR    (1u << 14)
#define AHCI_PX_CMD_CR    (1u << 15)
#define AHCI_TFD_ERR      0x01
#define AHCI_TFD_DRQ      0x08
#define AHCI_TFD_BSY      0x80

/* ATA commands */
#define ATA_IDENTIFY           0xec
#define ATA_READ_DMA_EXT       0x25
#define ATA_WRITE_DMA_EXT      0x35
#define ATA_READ_FPDMA_QUEUED  0x60
#define ATA_WRITE_FPDMA_QUEUED 0x61
#define ATA_FLUSH_CACHE_EXT    0xea

typedef struct AhciPrd {
    uint64_t dba;
    uint32_t reserved;
    uint32_t dbc; /* byte count - 1, bit 31: interrupt on completion */
} AhciPrd;

typedef struct AhciCmdTable {
    uint8_t cfis[64];
    uint8_t acmd[16];
    uint8_t reserved[48];
    AhciPrd prdt[AHCI_PRDT_MAX];
} ALIGNED(128) AhciCmdTable;

typedef struct AhciCmdHeader {
    uint32_t dw0; /* CFL, W, PRDTL */
    uint32_t prdbc;
    uint64_t ctba;
    uint32_t reserved[4];
} AhciCmdHeader;

/* What one port needs in guest memory: declare it static. */
typedef struct AhciPortMem {
    AhciCmdHeader clb[AHCI_SLOTS] ALIGNED(1024);
    uint8_t rfis[256] ALIGNED(256);
    AhciCmdTable ct[AHCI_SLOTS];
} AhciPortMem;

typedef struct Ahci {
    int node;
    unsigned devfn;
    uint64_t abar;
    uint32_t cap, pi;
    unsigned nslots;
} Ahci;

typedef struct AhciPort {
    Ahci *hba;
    int num;
    uint64_t regs;
    AhciPortMem *mem;
    uint32_t last_is; /* PxIS as ahci_wait() found it, before clearing */
} AhciPort;

/* One piece of a transfer: a PRDT entry. @len is even, at most 4 MiB. */
typedef struct AhciSg {
    void *buf;
    uint32_t len;
} AhciSg;

#define AHCI_ERR_DEVICE  (-1) /* PxIS error bits or TFD.ERR */
#define AHCI_ERR_TIMEOUT (-2)

/*
 * Find the @index-th AHCI function in the device tree, take ABAR from its
 * assigned-addresses, reset the HBA and put it in AHCI mode. Returns 0 or
 * -1 with an INFO line saying what was missing.
 */
int ahci_init(Ahci *a, int index);
uint32_t ahci_read(Ahci *a, unsigned reg);
void ahci_write(Ahci *a, unsigned reg, uint32_t v);
uint32_t ahci_port_read(AhciPort *p, unsigned reg);
void ahci_port_write(AhciPort *p, unsigned reg, uint32_t v);

/*
 * Stop port @num, point it at @mem, start it and wait for its disk. Returns
 * 0 or -1 (no such port, no disk, or the engine would not start).
 */
int ahci_port_start(Ahci *a, int num, AhciPort *p, AhciPortMem *mem);

void ahci_fis_h2d(uint8_t fis[20], uint8_t cmd, uint64_t lba, uint16_t count);
void ahci_fis_ncq(uint8_t fis[20], uint8_t cmd, unsigned tag, uint64_t lba,
                  uint16_t count);
/* Fill slot @slot's header and table; @nsg <= AHCI_PRDT_MAX. */
void ahci_cmd_setup(AhciPort *p, unsigned slot, const uint8_t fis[20],
                    bool write, const AhciSg *sg, unsigned nsg);
/* Issue @slots (NCQ ones go to PxSACT first). */
void ahci_issue(AhciPort *p, uint32_t slots, bool ncq);
/*
 * Poll until none of @slots is in PxCI or PxSACT. Clears PxIS. Returns 0,
 * AHCI_ERR_DEVICE or AHCI_ERR_TIMEOUT (with an INFO line on errors).
 */
int ahci_wait(AhciPort *p, uint32_t slots, unsigned timeout_ms);

/* Non-queued commands on slot 0, waited for. */
int ahci_identify(AhciPort *p, uint16_t id[256]);
int ahci_rw_dma(AhciPort *p, bool write, uint64_t lba, uint16_t sectors,
                const AhciSg *sg, unsigned nsg);

/* IDENTIFY helpers: the model string (trimmed) and the LBA48 capacity. */
void ata_id_string(const uint16_t *id, unsigned word, unsigned words,
                   char *out);
uint64_t ata_id_sectors(const uint16_t *id);

#endif
