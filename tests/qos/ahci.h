/*
 * qos AHCI: a guest-side driver for an AHCI HBA, ours or QEMU's ICH9 (q35's
 * 00:1f.2), written on qos.h and pci.h only so that it runs over any
 * transport. It programs the HBA the way Linux's ahci driver does: spin-up
 * and power-on bits, FIS receive before the command list, SERR and IS
 * cleared before use, the AHCI 1.3.1 6.2.2.1 recovery after an error.
 *
 * Completion is found by polling PxCI, PxSACT and PxIS; interrupts are the
 * caller's business. Commands go in 32 slots per port, each with its own
 * command table; RAM comes from qos_alloc().
 */
#ifndef MINIVMM_TESTS_QOS_AHCI_H
#define MINIVMM_TESTS_QOS_AHCI_H

#include <stdbool.h>
#include <stdint.h>

#include "tests/qos/pci.h"
#include "tests/qos/qos.h"

#define QAHCI_VENDOR     0x8086
#define QAHCI_DEVICE     0x2922 /* ICH9 AHCI */
#define QAHCI_BAR        5
#define QAHCI_SLOTS      32
#define QAHCI_MAX_PORTS  32
#define QAHCI_PRDT_MAX   256 /* PRD entries each command table holds */
#define QAHCI_SECTOR     512
#define QAHCI_TIMEOUT_MS 10000

/* HBA registers. */
#define QAHCI_CAP          0x00
#define QAHCI_GHC          0x04
#define QAHCI_IS           0x08
#define QAHCI_PI           0x0c
#define QAHCI_VS           0x10
#define QAHCI_CAP_NCS(cap) ((((cap) >> 8) & 0x1f) + 1)
#define QAHCI_CAP_SNCQ     (1u << 30)
#define QAHCI_CAP_SCLO     (1u << 24)
#define QAHCI_GHC_HR       (1u << 0)
#define QAHCI_GHC_IE       (1u << 1)
#define QAHCI_GHC_AE       (1u << 31)

/* Port registers (offsets within the port). */
#define QAHCI_PX_CLB  0x00
#define QAHCI_PX_CLBU 0x04
#define QAHCI_PX_FB   0x08
#define QAHCI_PX_FBU  0x0c
#define QAHCI_PX_IS   0x10
#define QAHCI_PX_IE   0x14
#define QAHCI_PX_CMD  0x18
#define QAHCI_PX_TFD  0x20
#define QAHCI_PX_SIG  0x24
#define QAHCI_PX_SSTS 0x28
#define QAHCI_PX_SCTL 0x2c
#define QAHCI_PX_SERR 0x30
#define QAHCI_PX_SACT 0x34
#define QAHCI_PX_CI   0x38

#define QAHCI_PX_IS_DHRS (1u << 0)
#define QAHCI_PX_IS_PSS  (1u << 1)
#define QAHCI_PX_IS_SDBS (1u << 3)
#define QAHCI_PX_IS_DPS  (1u << 5)
#define QAHCI_PX_IS_OFS  (1u << 24)
#define QAHCI_PX_IS_IFS  (1u << 27)
#define QAHCI_PX_IS_HBFS (1u << 29)
#define QAHCI_PX_IS_TFES (1u << 30)
/* Bits 23..31: every error PxIS can report. */
#define QAHCI_PX_IS_ERRORS 0xff800000u

#define QAHCI_PX_CMD_ST  (1u << 0)
#define QAHCI_PX_CMD_SUD (1u << 1)
#define QAHCI_PX_CMD_POD (1u << 2)
#define QAHCI_PX_CMD_CLO (1u << 3)
#define QAHCI_PX_CMD_FRE (1u << 4)
#define QAHCI_PX_CMD_FR  (1u << 14)
#define QAHCI_PX_CMD_CR  (1u << 15)

#define QAHCI_TFD_ERR 0x01
#define QAHCI_TFD_DRQ 0x08
#define QAHCI_TFD_BSY 0x80

/* Received-FIS area offsets. */
#define QAHCI_RFIS_PSFIS  0x20
#define QAHCI_RFIS_RFIS   0x40
#define QAHCI_RFIS_SDBFIS 0x58

/* Command header DW0 bits. */
#define QAHCI_CMDH_CFL_H2D 5 /* a register H2D FIS is 5 dwords */
#define QAHCI_CMDH_WRITE   (1u << 6)
#define QAHCI_CMDH_RESET   (1u << 8)
#define QAHCI_CMDH_CLR_BSY (1u << 10)

/* ATA commands the helpers use. */
#define QATA_READ_DMA            0xc8
#define QATA_WRITE_DMA           0xca
#define QATA_READ_DMA_EXT        0x25
#define QATA_WRITE_DMA_EXT       0x35
#define QATA_WRITE_DMA_FUA_EXT   0x3d
#define QATA_READ_FPDMA_QUEUED   0x60
#define QATA_WRITE_FPDMA_QUEUED  0x61
#define QATA_STANDBY_IMMEDIATE   0xe0
#define QATA_IDLE_IMMEDIATE      0xe1
#define QATA_CHECK_POWER_MODE    0xe5
#define QATA_FLUSH_CACHE         0xe7
#define QATA_FLUSH_CACHE_EXT     0xea
#define QATA_IDENTIFY            0xec
#define QATA_SET_FEATURES        0xef
#define QATA_READ_NATIVE_MAX     0xf8
#define QATA_READ_NATIVE_MAX_EXT 0x27
#define QATA_EXEC_DIAGNOSTIC     0x90

typedef struct QAhciPort {
    uint64_t clb;               /* 32 command headers */
    uint64_t fb;                /* received-FIS area */
    uint64_t ctba[QAHCI_SLOTS]; /* one command table per slot */
    uint64_t scratch;           /* 4 KiB for IDENTIFY and the like */
} QAhciPort;

typedef struct QAhci {
    Qos *q;
    QPciDevice dev;
    uint64_t abar;
    uint32_t cap;
    uint32_t pi;
    QAhciPort port[QAHCI_MAX_PORTS];
} QAhci;

/* One physical region descriptor. */
typedef struct QAhciPrd {
    uint64_t addr;
    uint32_t bytes; /* even, 2 B .. 4 MiB */
    bool irq;       /* the I bit: PxIS.DPS when done */
} QAhciPrd;

/* ---- Finding and resetting the HBA ----------------------------------------
 */

/*
 * Find the @index-th 8086:2922 function, map its ABAR, enable memory
 * decoding and bus mastering, and set GHC.AE. False if there is none.
 */
bool qahci_init(QAhci *a, Qos *q, int index);

uint32_t qahci_rreg(QAhci *a, unsigned offset);
void qahci_wreg(QAhci *a, unsigned offset, uint32_t value);
uint32_t qahci_px_rreg(QAhci *a, int port, unsigned offset);
void qahci_px_wreg(QAhci *a, int port, unsigned offset, uint32_t value);

/* GHC.HR, wait for it to clear, AHCI mode again. False on timeout. */
bool qahci_hba_reset(QAhci *a);

/*
 * Route interrupts through MSI: message @data to @addr. Returns the MSI
 * capability offset (0 if the function has none).
 */
uint8_t qahci_msi_enable(QAhci *a, uint64_t addr, uint16_t data);

/* ---- Ports ------------------------------------------------------------------
 */

/* PxSSTS.DET says a device is there and the link is up. */
bool qahci_port_present(QAhci *a, int port);

/*
 * Bring @port up as Linux does: idle it, give it a command list, FIS area
 * and command tables (allocated once), clear SERR/IS, FIS receive on, then
 * the command list if a device is present; all interrupts enabled and
 * GHC.IE set. Returns true if the port runs (PxCMD.ST and CR set).
 */
bool qahci_port_start(QAhci *a, int port);

/* Clear ST and FRE and wait until CR and FR follow. False on timeout. */
bool qahci_port_stop(QAhci *a, int port);

/*
 * After a failed command (AHCI 1.3.1, 6.2.2.1): stop the list, wait for CR,
 * override a stuck BSY/DRQ with CLO if needed, clear SERR and IS, start.
 */
bool qahci_port_recover(QAhci *a, int port);

/*
 * COMRESET through PxSCTL.DET, then wait for the link and for BSY to
 * clear. The list is stopped around it. True if a device came back.
 */
bool qahci_port_comreset(QAhci *a, int port);

/* Clear PxIS (and the port's IS bit); returns what PxIS held. */
uint32_t qahci_port_clear_is(QAhci *a, int port);

/* ---- Building commands ------------------------------------------------------
 */

/* A register H2D FIS for a non-queued command (LBA mode, 48-bit fields). */
void qahci_fis_h2d(uint8_t fis[20], uint8_t command, uint16_t features,
                   uint64_t lba, uint16_t count);
/* The FPDMA form: count in features, tag in count bits 7:3. */
void qahci_fis_ncq(uint8_t fis[20], uint8_t command, uint8_t tag, uint64_t lba,
                   uint16_t count, bool fua);

/* Split [buf, buf + bytes) into PRDs of at most @prd_bytes; returns count. */
unsigned qahci_prds(QAhciPrd *prd, unsigned max, uint64_t buf, uint64_t bytes,
                    uint32_t prd_bytes);

/*
 * Write @slot's command table (@fis and the PRDT) and its command header
 * (FIS length 5, the W bit if @write, PRDBC 0). @extra_flags adds header
 * bits (QAHCI_CMDH_RESET | QAHCI_CMDH_CLR_BSY for a reset FIS).
 */
void qahci_slot_prepare(QAhci *a, int port, int slot, const uint8_t fis[20],
                        bool write, uint16_t extra_flags, const QAhciPrd *prd,
                        unsigned nprd);

/* Write a raw command header: DW0 and the command table address. */
void qahci_slot_header(QAhci *a, int port, int slot, uint32_t dw0,
                       uint64_t ctba);

/* PRDBC of @slot's command header: bytes the HBA transferred. */
uint32_t qahci_slot_prdbc(QAhci *a, int port, int slot);

/* ---- Running commands -------------------------------------------------------
 */

/* Issue @slots: PxSACT first for queued commands, then PxCI. */
void qahci_issue(QAhci *a, int port, uint32_t slots, bool ncq);

/*
 * Wait until @slots leave PxCI and PxSACT, or PxIS reports an error.
 * Returns 0 (PxIS is then cleared), -EIO (PxIS is left for the caller;
 * recover with qahci_port_recover()), or -ETIMEDOUT.
 */
int qahci_wait(QAhci *a, int port, uint32_t slots, int timeout_ms);

/* Run one prepared slot: issue and wait. */
int qahci_run(QAhci *a, int port, int slot, bool ncq);

/* IDENTIFY DEVICE into @id (256 little-endian words). */
int qahci_identify(QAhci *a, int port, uint16_t id[256]);

/*
 * READ/WRITE DMA EXT of @sectors at @lba to or from guest @buf, with PRDs
 * of @prd_bytes each, in @slot.
 */
int qahci_rw(QAhci *a, int port, int slot, bool write, uint64_t lba,
             uint32_t sectors, uint64_t buf, uint32_t prd_bytes);

/* The same with READ/WRITE FPDMA QUEUED, tag = @slot; issue only. */
void qahci_rw_ncq_issue(QAhci *a, int port, int slot, bool write, uint64_t lba,
                        uint32_t sectors, uint64_t buf, uint32_t prd_bytes);
int qahci_rw_ncq(QAhci *a, int port, int slot, bool write, uint64_t lba,
                 uint32_t sectors, uint64_t buf, uint32_t prd_bytes);

/* A command without data (FLUSH, SET FEATURES, READ NATIVE MAX, ...). */
int qahci_nondata(QAhci *a, int port, uint8_t command, uint16_t features,
                  uint64_t lba, uint16_t count);

/* The last D2H register FIS, and the LBA it carries (READ NATIVE MAX). */
void qahci_read_d2h(QAhci *a, int port, uint8_t fis[20]);
uint64_t qahci_d2h_lba(const uint8_t fis[20], bool lba48);

/*
 * The benchmark's batch: @n reads of @bytes each, consecutive on the disk
 * from @lba and in guest RAM from @buf, in slots 0..n-1 issued together
 * (NCQ or READ DMA EXT), then wait for all of them.
 */
int qahci_read_batch(QAhci *a, int port, uint64_t lba, unsigned n,
                     uint32_t bytes, uint64_t buf, uint32_t prd_bytes,
                     bool ncq);

#endif
