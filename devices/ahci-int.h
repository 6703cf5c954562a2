/*
 * AHCI internals shared by ahci.c (PCI, interrupts, resets), ahci-regs.c
 * (the register window), ahci-fis.c (FISes, command fetch, PRDT) and
 * ahci-cmd.c (the command engine). Register layouts follow AHCI 1.3.1,
 * section 3; guest-memory structures, section 4.
 */
#ifndef MINIVMM_DEVICES_AHCI_INT_H
#define MINIVMM_DEVICES_AHCI_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "block/block.h"
#include "devices/ahci.h"
#include "devices/ata.h"
#include "devices/pci.h"

#define AHCI_ABAR_SIZE    0x1000
#define AHCI_PORT_BASE    0x100
#define AHCI_PORT_SIZE    0x80
#define AHCI_NUM_SLOTS    32
#define AHCI_VERSION_1_0  0x00010000u
#define AHCI_PCI_BAR_ABAR 5

/* HBA (generic host control) registers, by dword index. */
typedef enum AhciHostReg {
    AHCI_HOST_CAP,
    AHCI_HOST_GHC,
    AHCI_HOST_IS,
    AHCI_HOST_PI,
    AHCI_HOST_VS,
    AHCI_HOST_CCC_CTL,
    AHCI_HOST_CCC_PORTS,
    AHCI_HOST_EM_LOC,
    AHCI_HOST_EM_CTL,
    AHCI_HOST_CAP2,
    AHCI_HOST_BOHC,
    AHCI_HOST__COUNT,
} AhciHostReg;

/* Port registers, by dword index within the port's 0x80 bytes. */
typedef enum AhciPortReg {
    AHCI_PX_CLB,
    AHCI_PX_CLBU,
    AHCI_PX_FB,
    AHCI_PX_FBU,
    AHCI_PX_IS,
    AHCI_PX_IE,
    AHCI_PX_CMD,
    AHCI_PX_RSVD,
    AHCI_PX_TFD,
    AHCI_PX_SIG,
    AHCI_PX_SSTS,
    AHCI_PX_SCTL,
    AHCI_PX_SERR,
    AHCI_PX_SACT,
    AHCI_PX_CI,
    AHCI_PX_SNTF,
    AHCI_PX_FBS,
    AHCI_PX_DEVSLP,
    AHCI_PX__COUNT = AHCI_PORT_SIZE / 4,
} AhciPortReg;

#define AHCI_CAP_NP_SHIFT  0
#define AHCI_CAP_NCS_SHIFT 8
#define AHCI_CAP_ISS_SHIFT 20
#define AHCI_CAP_SAM       (1u << 18)
#define AHCI_CAP_SCLO      (1u << 24)
#define AHCI_CAP_SNCQ      (1u << 30)
#define AHCI_CAP_S64A      (1u << 31)

#define AHCI_GHC_HR (1u << 0)
#define AHCI_GHC_IE (1u << 1)
#define AHCI_GHC_AE (1u << 31)

#define AHCI_PX_IS_DHRS (1u << 0)
#define AHCI_PX_IS_PSS  (1u << 1)
#define AHCI_PX_IS_SDBS (1u << 3)
#define AHCI_PX_IS_DPS  (1u << 5)
#define AHCI_PX_IS_OFS  (1u << 24)
#define AHCI_PX_IS_IFS  (1u << 27)
#define AHCI_PX_IS_HBFS (1u << 29)
#define AHCI_PX_IS_TFES (1u << 30)
/* The bits of PxIS/PxIE that exist (AHCI 1.3.1, 3.3.5 and 3.3.6). */
#define AHCI_PX_IE_MASK 0xfdc000ffu

#define AHCI_PX_CMD_ST        (1u << 0)
#define AHCI_PX_CMD_SUD       (1u << 1)
#define AHCI_PX_CMD_POD       (1u << 2)
#define AHCI_PX_CMD_CLO       (1u << 3)
#define AHCI_PX_CMD_FRE       (1u << 4)
#define AHCI_PX_CMD_CCS_SHIFT 8
#define AHCI_PX_CMD_CCS_MASK  (0x1fu << 8)
#define AHCI_PX_CMD_FR        (1u << 14)
#define AHCI_PX_CMD_CR        (1u << 15)
#define AHCI_PX_CMD_ATAPI     (1u << 24)
#define AHCI_PX_CMD_DLAE      (1u << 25)
/* Software may write these; SUD and POD read 1 (no staggered spin-up, no
 * cold presence detect). */
#define AHCI_PX_CMD_WMASK                                                      \
    (AHCI_PX_CMD_ST | AHCI_PX_CMD_FRE | AHCI_PX_CMD_ATAPI | AHCI_PX_CMD_DLAE)

#define AHCI_PX_CLB_MASK       0xfffffc00u /* 1 KiB aligned */
#define AHCI_PX_FB_MASK        0xffffff00u /* 256-byte aligned (no FBS) */
#define AHCI_PX_SCTL_MASK      0x00000fffu /* IPM, SPD, DET */
#define AHCI_SCTL_DET_COMRESET 1
#define AHCI_SCTL_DET_OFFLINE  4

/* PxSSTS with a disk: IPM active, Gen2 speed, device present + phy up. */
#define AHCI_SSTS_DEV_UP  0x00000123u
#define AHCI_SSTS_OFFLINE 0x00000004u

/* The received-FIS area (no FIS-based switching). */
#define AHCI_RFIS_PSFIS  0x20
#define AHCI_RFIS_RFIS   0x40
#define AHCI_RFIS_SDBFIS 0x58
#define AHCI_RFIS_SIZE   0x100

#define SATA_FIS_REG_H2D   0x27
#define SATA_FIS_REG_D2H   0x34
#define SATA_FIS_SDB       0xa1
#define SATA_FIS_PIO_SETUP 0x5f
#define SATA_FIS_H2D_C     0x80 /* command (vs control) register update */
#define SATA_FIS_I         0x40 /* interrupt */
#define SATA_FIS_D         0x20 /* PIO setup: device to host */

/* Command header DW0 (AHCI 1.3.1, 4.2.2). */
#define AHCI_CMDH_CFL_MASK 0x1f
#define AHCI_CMDH_ATAPI    (1u << 5)
#define AHCI_CMDH_WRITE    (1u << 6)
#define AHCI_CMDH_RESET    (1u << 8)
#define AHCI_CMDH_PMP_MASK (0xfu << 12)
#define AHCI_CMDH_SIZE     32
#define AHCI_CTBA_ALIGN    128
#define AHCI_CT_PRDT       0x80 /* PRDT offset in the command table */
#define AHCI_PRD_SIZE      16
#define AHCI_PRD_DBC_MASK  0x003fffffu
#define AHCI_PRD_I         (1u << 31)

/* What ahci_cmd_fetch() copied out of guest RAM. */
typedef struct AhciCmd {
    uint16_t flags; /* command header DW0, bits 15:0 */
    uint16_t prdtl;
    uint64_t ctba;
    uint64_t hdr_addr;
    uint8_t fis[20];
} AhciCmd;

/* One command slot's in-flight state. */
typedef struct AhciSlot {
    struct AhciPort *port;
    uint8_t slot;
    bool busy;     /* a block request is in flight */
    bool orphaned; /* the port stopped or reset meanwhile: drop the result */
    bool ncq;
    bool dps; /* a PRD entry asked for an interrupt when done */
    uint8_t command;
    uint32_t pio_block; /* PIO: bytes per DRQ data block; 0 for DMA */
    uint32_t bytes;     /* the transfer, for PRDBC */
    uint64_t hdr_addr;  /* the command header, checked at fetch */
    uint64_t trace_id;  /* the request id in a trace (util/trace.h) */
    BlockRequest req;
    struct iovec *iov;
    unsigned iov_cap;
} AhciSlot;

typedef struct AhciPort {
    struct AhciState *hba;
    int index;

    /* Registers. */
    uint32_t clb, clbu, fb, fbu, is, ie, cmd, tfd, sig, sctl, serr, sact, ci;

    /* The disk, if any. */
    BlockBackend *blk;
    AtaDevice ata;

    /* The command engine. */
    AhciSlot slots[AHCI_NUM_SLOTS];
    uint32_t ncq_busy; /* slots with an NCQ command in flight */
    int busy_slot;     /* the non-queued command in flight, or -1 */
    unsigned in_flight;
    bool halted;      /* after a task file error, until ST is cleared */
    bool srst;        /* a control FIS asserted SRST */
    bool d2h_pending; /* the post-reset D2H FIS waits for FRE */
    bool draining;    /* a reset drains: start nothing */
} AhciPort;

struct AhciState {
    PciDevice pci;
    GuestMemory *ram;
    uint32_t cap, ghc, is;
    bool irq_level;
    AhciPort ports[AHCI_NUM_PORTS];
};

/* PxCMD.CCS: the slot software should look at after an error. */
static inline void ahci_port_set_ccs(AhciPort *p, int slot)
{
    p->cmd &= ~AHCI_PX_CMD_CCS_MASK;
    p->cmd |= (uint32_t)slot << AHCI_PX_CMD_CCS_SHIFT;
}

/* Log lines name the controller by its PCI address. */
#define AHCI_LOG_FMT     "ahci %02x.%u"
#define AHCI_LOG_ARGS(s) ((s)->pci.devfn >> 3), ((s)->pci.devfn & 7)

/* ---- ahci.c: interrupts, resets, life cycle ------------------------------ */

/*
 * Recompute IS and drive the interrupt (DATAPATH 7). @event: something new
 * happened, which MSI must signal even if the level was already up.
 */
void ahci_update_irq(AhciState *s, bool event);

/* Set bits of PxIS, then update the interrupt output. */
void ahci_port_raise(AhciPort *p, uint32_t is_bits);

/* PxCMD.CR: set while the list runs or commands are still in flight. */
void ahci_port_update_cr(AhciPort *p);

/* Slot bookkeeping once its block request is gone: CR may fall. */
void ahci_port_slot_idle(AhciPort *p);

/* Wait for every request of @p; nothing new starts meanwhile. */
void ahci_port_drain(AhciPort *p);

/* COMRESET / SRST: the device part of a port reset. */
void ahci_port_reset_device(AhciPort *p);

/* The signature D2H FIS; PxSIG and PxTFD follow it once it has landed. */
bool ahci_port_send_signature(AhciPort *p);

/* PxSCTL.DET 1 -> 0: drain, forget the command list state, reset the disk. */
void ahci_port_comreset(AhciPort *p);

/* GHC.HR (@keep_addresses) or power-on reset. */
void ahci_hba_reset(AhciState *s, bool keep_addresses);

/* ---- ahci-regs.c: the ABAR ----------------------------------------------- */

extern const RegionOps ahci_mmio_ops;

/* ---- ahci-fis.c: guest memory structures --------------------------------- */

/*
 * Write a D2H register FIS carrying PxTFD and these registers into the
 * received-FIS area. False if FIS receive is off (nothing written); the
 * caller raises DHRS otherwise.
 */
bool ahci_port_write_d2h(AhciPort *p, uint16_t count, uint64_t lba,
                         uint8_t device);

/* The D2H FIS (I clear, no interrupt) that accepts an NCQ command. */
void ahci_port_write_ncq_accept(AhciPort *p);
/*
 * A PIO Setup FIS for one DRQ data block: @flags SATA_FIS_I and/or
 * SATA_FIS_D, Status DRDY|DSC|DRQ, @e_status after the block. Likewise
 * false if FIS receive is off; the caller raises PSS for an I bit.
 */
bool ahci_write_pio_setup(AhciPort *p, uint8_t flags, uint8_t e_status,
                          uint16_t xfer_bytes);
/* Set Device Bits (SDBS), likewise. */
bool ahci_write_sdb(AhciPort *p, uint32_t sactive);

/*
 * A PIO data command's transfer succeeded: post the FISes its last DRQ
 * block ends with and return the PxIS bits they raise.
 */
uint32_t ahci_pio_done(AhciPort *p, const AhciSlot *sl);

/*
 * The command in @slot failed: @error in PxTFD, TFES | @is_bits in PxIS,
 * the port halted, @lba (the first sector that failed, or 0) in the D2H
 * FIS. ahci_cmd_fail() also logs the guest's mistake; it is the one
 * mapping from guest errors to device status. ahci_cmd_fail_at() is that
 * for an error at a sector: an address past the end of the disk.
 */
void ahci_port_set_error(AhciPort *p, int slot, uint8_t error, uint32_t is_bits,
                         uint64_t lba);
void ahci_cmd_fail(AhciPort *p, int slot, uint8_t error, uint32_t is_bits,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
void ahci_cmd_fail_at(AhciPort *p, int slot, uint8_t error, uint64_t lba,
                      const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Read @slot's header and command FIS; false after failing the command. */
bool ahci_cmd_fetch(AhciPort *p, int slot, AhciCmd *c);

/*
 * Point @sl's iovec at the guest buffers the PRDT gives for @bytes. Returns
 * the iovec count, or 0 after failing the command.
 */
int ahci_map_prdt(AhciPort *p, AhciSlot *sl, const AhciCmd *c, uint64_t bytes);

/* ---- ahci-cmd.c: the command engine -------------------------------------- */

/* Start what PxCI holds, as far as the port state allows (DATAPATH 3). */
void ahci_port_check_cmds(AhciPort *p);

/* Free what a port's slots allocated. */
void ahci_port_free_slots(AhciPort *p);

#endif
