/*
 * msi: interrupts really arrive. AHCI with MSI (address 0xfee00000 | APIC
 * ID << 12, data = the vector): each completed command runs the vector's
 * handler, NCQ completions are driven by interrupts alone, and with MSI
 * off nothing arrives. virtio-blk with MSI-X (table in its own BAR): a
 * used buffer raises the queue's vector and not the config one; with the
 * entry masked the message waits in the PBA and arrives on unmask.
 * Waiting is sti; hlt with a LAPIC tick bounding each sleep.
 */
#include "firmware/tests/lib/ahci.h"
#include "firmware/tests/lib/fw.h"
#include "firmware/tests/lib/irq.h"
#include "firmware/tests/lib/pci.h"
#include "firmware/tests/lib/timer.h"
#include "firmware/tests/lib/virtio-blk.h"

#define AHCI_VECTOR 0x41
#define VBLK_CONFIG 0x50
#define VBLK_QUEUE  0x51
#define IRQ_WAIT_MS 2000
#define AHCI_CMDS   4
#define NCQ_TAGS    8
#define VBLK_BATCH  8
#define SECTOR      512

static AhciPortMem port_mem;
static VirtioBlk blk;
static uint8_t buf[NCQ_TAGS][4096] ALIGNED(4096);

/* ---- AHCI ------------------------------------------------------------- */

static AhciPort *irq_port;
static volatile uint32_t ahci_is_seen;

/* What a driver does: acknowledge the port's events, then the HBA's. */
static void ahci_irq(unsigned vector, void *opaque)
{
    AhciPort *p = opaque;
    uint32_t is = ahci_port_read(p, AHCI_PX_IS);

    (void)vector;
    ahci_port_write(p, AHCI_PX_IS, is);
    ahci_write(p->hba, AHCI_IS, 1u << p->num);
    ahci_is_seen |= is;
}

static bool ahci_msi_setup(Ahci *a, AhciPort *p, uint8_t *cap)
{
    uint16_t flags;

    *cap = pci_find_cap(a->devfn, PCI_CAP_ID_MSI, 0);
    if (!report(*cap != 0, "AHCI has an MSI capability")) {
        return false;
    }
    flags = pci_read16(a->devfn, *cap + PCI_MSI_FLAGS);
    pci_write32(a->devfn, *cap + PCI_MSI_ADDRESS_LO, lapic_msi_address());
    if (flags & PCI_MSI_FLAGS_64BIT) {
        pci_write32(a->devfn, *cap + PCI_MSI_ADDRESS_HI, 0);
        pci_write16(a->devfn, *cap + PCI_MSI_DATA_64, AHCI_VECTOR);
    } else {
        pci_write16(a->devfn, *cap + PCI_MSI_DATA_32, AHCI_VECTOR);
    }
    pci_write16(a->devfn, *cap + PCI_MSI_FLAGS, flags | PCI_MSI_FLAGS_ENABLE);
    /* INTx off: only the message may wake us. */
    pci_write16(a->devfn, PCI_COMMAND,
                pci_read16(a->devfn, PCI_COMMAND) | PCI_COMMAND_INTX_DISABLE);
    irq_port = p;
    irq_set_handler(AHCI_VECTOR, ahci_irq, p);
    ahci_port_write(p, AHCI_PX_IE,
                    AHCI_PX_IS_DHRS | AHCI_PX_IS_SDBS | AHCI_PX_IS_ERRORS);
    ahci_write(a, AHCI_GHC, ahci_read(a, AHCI_GHC) | AHCI_GHC_IE);
    return report(pci_read16(a->devfn, *cap + PCI_MSI_FLAGS) &
                      PCI_MSI_FLAGS_ENABLE,
                  "MSI enabled: address 0x%x data 0x%x", lapic_msi_address(),
                  AHCI_VECTOR);
}

static void issue_read(AhciPort *p, unsigned slot, uint64_t lba, bool ncq)
{
    AhciSg sg = {buf[slot], SECTOR};
    uint8_t fis[20];

    if (ncq) {
        ahci_fis_ncq(fis, ATA_READ_FPDMA_QUEUED, slot, lba, 1);
    } else {
        ahci_fis_h2d(fis, ATA_READ_DMA_EXT, lba, 1);
    }
    ahci_cmd_setup(p, slot, fis, false, &sg, 1);
    ahci_issue(p, 1u << slot, ncq);
}

static void test_ahci_msi(void)
{
    unsigned long base;
    unsigned delivered = 0;
    uint64_t deadline;
    Ahci a;
    AhciPort p;
    uint8_t cap;

    report_prefix_push("ahci");
    if (!report(ahci_init(&a, 0) == 0 &&
                    ahci_port_start(&a, 0, &p, &port_mem) == 0,
                "HBA and port 0 ready") ||
        !ahci_msi_setup(&a, &p, &cap)) {
        report_prefix_pop();
        return;
    }

    /* One command at a time: each completion is one message. */
    base = irq_count[AHCI_VECTOR];
    for (unsigned i = 0; i < AHCI_CMDS; i++) {
        ahci_is_seen = 0;
        issue_read(&p, 0, i, false);
        if (irq_wait(AHCI_VECTOR, base + i + 1, IRQ_WAIT_MS) &&
            !(ahci_port_read(&p, AHCI_PX_CI) & 1) &&
            (ahci_is_seen & AHCI_PX_IS_DHRS)) {
            delivered++;
        }
    }
    report(delivered == AHCI_CMDS,
           "%u of %u DMA reads completed by an interrupt on vector 0x%x",
           delivered, AHCI_CMDS, AHCI_VECTOR);
    irq_settle(10); /* an extra message would be pending by now */
    report(irq_count[AHCI_VECTOR] == base + AHCI_CMDS,
           "one message per command (%lu for %u)",
           irq_count[AHCI_VECTOR] - base, AHCI_CMDS);

    /* NCQ: sleep until every tag is gone, woken by interrupts only. */
    base = irq_count[AHCI_VECTOR];
    ahci_is_seen = 0;
    for (unsigned t = 0; t < NCQ_TAGS; t++) {
        issue_read(&p, t, 100 + t, true);
    }
    deadline = timer_deadline_ms(IRQ_WAIT_MS);
    while (ahci_port_read(&p, AHCI_PX_SACT) && !timer_expired(deadline)) {
        irq_wait(AHCI_VECTOR, irq_count[AHCI_VECTOR] + 1, IRQ_WAIT_MS);
    }
    /*
     * Issuing is slow (an exit per register write): the tags may all be
     * done before the loop sleeps once, their message still pending in
     * the LAPIC. Let it in.
     */
    irq_wait(AHCI_VECTOR, base + 1, IRQ_WAIT_MS);
    report(!ahci_port_read(&p, AHCI_PX_SACT) && irq_count[AHCI_VECTOR] > base &&
               (ahci_is_seen & AHCI_PX_IS_SDBS),
           "%u NCQ reads finished under %lu interrupts (SDB FIS seen)",
           NCQ_TAGS, irq_count[AHCI_VECTOR] - base);

    /* MSI off (and INTx disabled): a completion must stay silent. */
    pci_write16(a.devfn, cap + PCI_MSI_FLAGS,
                pci_read16(a.devfn, cap + PCI_MSI_FLAGS) &
                    ~PCI_MSI_FLAGS_ENABLE);
    irq_settle(10);
    base = irq_count[AHCI_VECTOR];
    issue_read(&p, 0, 7, false);
    report(ahci_wait(&p, 1, IRQ_WAIT_MS) == 0 &&
               !irq_wait(AHCI_VECTOR, base + 1, 50),
           "with MSI disabled the command completes without a message");
    ahci_write(&a, AHCI_GHC, ahci_read(&a, AHCI_GHC) & ~AHCI_GHC_IE);
    irq_set_handler(AHCI_VECTOR, NULL, NULL);
    report_prefix_pop();
}

/* ---- virtio-blk ------------------------------------------------------- */

static void test_virtio_msix(void)
{
    VblkOptions o = {
        .msix = true, .config_irq = VBLK_CONFIG, .queue_irq = VBLK_QUEUE};
    VblkReq r[VBLK_BATCH];
    unsigned long base;
    unsigned done = 0;
    uint64_t deadline;
    bool pending;

    report_prefix_push("virtio-blk");
    if (!report(vblk_init(&blk, 0, &o) == 0, "device ready with MSI-X")) {
        report_prefix_pop();
        return;
    }
    report(blk.config_vector == 0 && blk.queue_vector == 1,
           "MSI-X entries accepted: config %u, queue %u (table at 0x%lx, "
           "%u entries)",
           blk.config_vector, blk.queue_vector, (unsigned long)blk.msix_table,
           blk.msix_entries);

    base = irq_count[VBLK_QUEUE];
    r[0] = (VblkReq){.type = VIRTIO_BLK_T_IN, .data = buf[0], .len = SECTOR};
    vblk_submit(&blk, &r[0]);
    vblk_kick(&blk);
    report(irq_wait(VBLK_QUEUE, base + 1, IRQ_WAIT_MS) && vblk_reap(&blk) &&
               r[0].done && r[0].status == VIRTIO_BLK_S_OK,
           "a read raised vector 0x%x, request done", VBLK_QUEUE);
    report(irq_count[VBLK_CONFIG] == 0, "config vector 0x%x quiet",
           VBLK_CONFIG);

    /* A batch, reaped from the interrupt's wake-ups. */
    base = irq_count[VBLK_QUEUE];
    for (unsigned i = 0; i < VBLK_BATCH; i++) {
        r[i] = (VblkReq){.type = VIRTIO_BLK_T_IN,
                         .sector = 8 * i,
                         .data = buf[i],
                         .len = 4096};
        vblk_submit(&blk, &r[i]);
    }
    vblk_kick(&blk);
    deadline = timer_deadline_ms(IRQ_WAIT_MS);
    while (done < VBLK_BATCH && !timer_expired(deadline)) {
        irq_wait(VBLK_QUEUE, irq_count[VBLK_QUEUE] + 1, IRQ_WAIT_MS);
        done += vblk_reap(&blk);
    }
    report(done == VBLK_BATCH,
           "%u reads in one kick reaped under %lu "
           "interrupts",
           done, irq_count[VBLK_QUEUE] - base);

    /* Masked: the message is held as a pending bit, sent on unmask. */
    vblk_msix_mask(&blk, 1, true);
    irq_settle(10); /* late messages of the batch above, if any */
    base = irq_count[VBLK_QUEUE];
    r[0] = (VblkReq){.type = VIRTIO_BLK_T_IN, .data = buf[0], .len = SECTOR};
    vblk_submit(&blk, &r[0]);
    vblk_kick(&blk);
    report(vblk_wait(&blk, &r[0], IRQ_WAIT_MS) == 0 &&
               !irq_wait(VBLK_QUEUE, base + 1, 50),
           "entry masked: request done, no interrupt");
    pending = vblk_msix_pending(&blk, 1);
    report(pending, "PBA bit 1 set while masked");
    vblk_msix_mask(&blk, 1, false);
    report(irq_wait(VBLK_QUEUE, base + 1, IRQ_WAIT_MS),
           "unmasking delivers the pending message");
    report(!vblk_msix_pending(&blk, 1), "PBA bit clear after delivery");
    report_prefix_pop();
}

int main(const void *fdt)
{
    (void)fdt;
    report_prefix_push("msi");
    report_info("LAPIC ID %u, version 0x%x, TSC %lu kHz", lapic_id(),
                lapic_read(LAPIC_VERSION), (unsigned long)timer_tsc_khz());
    test_ahci_msi();
    test_virtio_msix();
    report(irq_count[IRQ_SPURIOUS_VECTOR] == 0, "no spurious interrupts");
    return report_summary();
}
