/*
 * AHCI: the PCI function, interrupts, resets and the controller's life
 * cycle. The registers are decoded in ahci-regs.c, commands run in
 * ahci-cmd.c, FISes and PRDTs are handled in ahci-fis.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/ahci-int.h"
#include "util/compiler.h"

#define ICH9_AHCI_VENDOR 0x8086
#define ICH9_AHCI_DEVICE 0x2922
#define ICH9_AHCI_CLASS  0x010601 /* mass storage, SATA, AHCI 1.0 */
#define ICH9_AHCI_REV    0x02
/* ICH9 config registers some drivers poke: address map and port enables. */
#define ICH9_MAP      0x90
#define ICH9_MAP_AHCI 0x40
#define ICH9_PCS      0x92

/* ---- Interrupts ------------------------------------------------------------
 */

/*
 * DATAPATH 7: the interrupt. IS summarises the ports with an enabled PxIS
 * bit. Under MSI every new event sends a message (a guest handler that
 * already read IS must still hear about it); INTx is a level.
 */
void ahci_update_irq(AhciState *s, bool event)
{
    bool level, was = s->irq_level;

    s->is = 0;
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        if (s->ports[i].is & s->ports[i].ie) {
            s->is |= 1u << i;
        }
    }
    level = s->is && (s->ghc & AHCI_GHC_IE);
    s->irq_level = level;
    if (pci_msi_enabled(&s->pci)) {
        if (s->pci.intx_level) {
            pci_set_intx(&s->pci, 0);
        }
        if (level && (event || !was)) {
            pci_msi_notify(&s->pci);
        }
    } else if (s->pci.intx_level != level) {
        pci_set_intx(&s->pci, level);
    }
}

void ahci_port_raise(AhciPort *p, uint32_t is_bits)
{
    p->is |= is_bits;
    ahci_update_irq(p->hba, (is_bits & p->ie) != 0);
}

static void ahci_config_written(PciDevice *dev, uint32_t offset, unsigned size)
{
    (void)offset;
    (void)size;
    /* MSI enable or INTx disable may have changed where the level goes. */
    ahci_update_irq(container_of(dev, AhciState, pci), false);
}

static const PciDeviceOps ahci_pci_ops = {
    .config_written = ahci_config_written,
};

/* ---- Resets and draining ----------------------------------------------------
 */

void ahci_port_update_cr(AhciPort *p)
{
    if ((p->cmd & AHCI_PX_CMD_ST) || p->in_flight) {
        p->cmd |= AHCI_PX_CMD_CR;
    } else {
        p->cmd &= ~AHCI_PX_CMD_CR;
    }
}

void ahci_port_slot_idle(AhciPort *p)
{
    ahci_port_update_cr(p);
    if (p->ci) {
        ahci_port_check_cmds(p); /* a waiting non-queued command may go */
    }
}

/*
 * Requests in flight complete into slots marked orphaned, which only do
 * the bookkeeping. blk_drain() waits for them on this thread with the big
 * lock held, as QEMU's bdrv_drain() does: it runs aio_poll() on the main
 * context, which sleeps until their completions arrive.
 */
void ahci_port_drain(AhciPort *p)
{
    p->draining = true;
    for (int i = 0; i < AHCI_NUM_SLOTS; i++) {
        if (p->slots[i].busy) {
            p->slots[i].orphaned = true;
        }
    }
    if (p->blk && p->in_flight) {
        blk_drain(p->blk);
    }
    p->draining = false;
    ahci_port_update_cr(p);
}

/*
 * What PxTFD and PxSIG hold from a reset until the device's first D2H
 * register FIS lands: the bus's "nobody has answered yet" (AHCI 1.3.1,
 * 3.3.8 and 3.3.9 give them as the reset values).
 */
#define AHCI_TFD_NO_FIS 0x7fu
#define AHCI_SIG_NO_FIS 0xffffffffu

/*
 * The disk's first D2H register FIS after a reset carries its signature,
 * and PxSIG and PxTFD are the copies the HBA keeps of what that FIS said
 * (AHCI 1.3.1, 3.3.9 and 10.4: "updated once the first D2H Register FIS is
 * received"). An HBA could also latch them from the link without storing
 * the FIS; we take the reading QEMU takes, so software that polls PxTFD
 * before turning FIS receive on sees the same thing on both: 7Fh and
 * FFFFFFFFh until PxCMD.FRE lets the FIS land. Returns true if it did.
 */
bool ahci_port_send_signature(AhciPort *p)
{
    p->tfd = ATA_ERR_DIAG_PASSED << 8 | ATA_STAT_READY;
    if (!ahci_port_write_d2h(p, 1, 1, 0)) {
        p->tfd = AHCI_TFD_NO_FIS;
        p->sig = AHCI_SIG_NO_FIS;
        p->d2h_pending = true;
        return false;
    }
    p->sig = ATA_SIGNATURE_DISK;
    p->d2h_pending = false;
    ahci_port_raise(p, AHCI_PX_IS_DHRS);
    return true;
}

/*
 * The device side of COMRESET or SRST: the disk comes back idle and sends
 * its signature in a D2H register FIS, which reaches memory (and PxSIG,
 * PxTFD) once FIS receive is on.
 */
void ahci_port_reset_device(AhciPort *p)
{
    p->srst = false;
    if (!p->blk) {
        p->tfd = AHCI_TFD_NO_FIS; /* no device: the bus floats */
        p->sig = AHCI_SIG_NO_FIS;
        p->d2h_pending = false;
        return;
    }
    ahci_port_send_signature(p);
}

/* COMRESET: whatever the port was doing is lost. */
void ahci_port_comreset(AhciPort *p)
{
    ahci_port_drain(p);
    p->ci = 0;
    p->sact = 0;
    p->serr = 0;
    p->halted = false;
    ata_device_hardware_reset(&p->ata); /* a hardware reset of the disk */
    ahci_port_reset_device(p);
}

static void ahci_port_reset(AhciPort *p, bool keep_addresses)
{
    ahci_port_drain(p);
    if (!keep_addresses) {
        p->clb = p->clbu = p->fb = p->fbu = 0;
    }
    p->is = p->ie = 0;
    p->cmd = AHCI_PX_CMD_SUD | AHCI_PX_CMD_POD;
    p->sctl = p->serr = p->sact = p->ci = 0;
    p->halted = false;
    ata_device_hardware_reset(&p->ata);
    ahci_port_reset_device(p);
}

/* GHC.HR keeps the command list and FIS addresses, as QEMU's model does. */
void ahci_hba_reset(AhciState *s, bool keep_addresses)
{
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        ahci_port_reset(&s->ports[i], keep_addresses);
    }
    s->ghc = AHCI_GHC_AE;
    ahci_update_irq(s, false);
}

void ahci_reset(AhciState *s)
{
    ahci_hba_reset(s, false);
}

/* ---- Life cycle -------------------------------------------------------------
 */

int ahci_create(AhciState **out, PciHost *host, uint8_t devfn, GuestMemory *ram,
                const MsiSink *msi, IrqLine intx)
{
    AhciState *s = calloc(1, sizeof(*s));
    int ret;

    if (!s) {
        return -ENOMEM;
    }
    s->ram = ram;
    s->cap = (AHCI_NUM_PORTS - 1) << AHCI_CAP_NP_SHIFT |
             (AHCI_NUM_SLOTS - 1) << AHCI_CAP_NCS_SHIFT |
             2u << AHCI_CAP_ISS_SHIFT | AHCI_CAP_SAM | AHCI_CAP_SCLO |
             AHCI_CAP_SNCQ | AHCI_CAP_S64A;
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        AhciPort *p = &s->ports[i];

        p->hba = s;
        p->index = i;
        p->busy_slot = -1;
        for (int j = 0; j < AHCI_NUM_SLOTS; j++) {
            p->slots[j].port = p;
            p->slots[j].slot = j;
        }
    }

    pci_device_init(&s->pci, "ahci", ICH9_AHCI_VENDOR, ICH9_AHCI_DEVICE,
                    ICH9_AHCI_CLASS, ICH9_AHCI_REV);
    s->pci.ops = &ahci_pci_ops;
    s->pci.intx = intx;
    s->pci.msi_sink = msi;
    pci_register_bar(&s->pci, AHCI_PCI_BAR_ABAR, AHCI_ABAR_SIZE, 0,
                     &ahci_mmio_ops, s);
    pci_msi_init(&s->pci);
    pci_set_byte(&s->pci, ICH9_MAP, ICH9_MAP_AHCI);
    s->pci.wmask[ICH9_PCS] = (1u << AHCI_NUM_PORTS) - 1;

    ret = pci_host_plug(host, &s->pci, devfn);
    if (ret < 0) {
        pci_device_cleanup(&s->pci);
        free(s);
        return ret;
    }
    ahci_hba_reset(s, false);
    *out = s;
    return 0;
}

int ahci_attach_disk(AhciState *s, int port, BlockBackend *blk,
                     const AhciDiskOptions *opts)
{
    AhciPort *p;
    char serial[ATA_SERIAL_LEN + 1];

    if (port < 0 || port >= AHCI_NUM_PORTS || !blk) {
        return -EINVAL;
    }
    p = &s->ports[port];
    if (p->blk) {
        return -EBUSY;
    }
    snprintf(serial, sizeof(serial), "MVMM000%d", port);
    if (!ata_device_init(&p->ata, blk_size(blk) / ATA_SECTOR_SIZE,
                         opts && opts->serial ? opts->serial : serial,
                         opts && opts->model ? opts->model
                                             : "minivmm SATA disk",
                         opts && opts->fwrev ? opts->fwrev : "0.1")) {
        return -EINVAL;
    }
    p->blk = blk;
    ahci_port_reset_device(p); /* the disk announces itself */
    return 0;
}

void ahci_quiesce(AhciState *s)
{
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        ahci_port_drain(&s->ports[i]);
    }
}

void ahci_destroy(AhciState *s)
{
    if (!s) {
        return;
    }
    for (int i = 0; i < AHCI_NUM_PORTS; i++) {
        ahci_port_drain(&s->ports[i]);
        ahci_port_free_slots(&s->ports[i]);
    }
    if (s->pci.host) {
        pci_host_unplug(s->pci.host, &s->pci);
    }
    pci_device_cleanup(&s->pci);
    free(s);
}
