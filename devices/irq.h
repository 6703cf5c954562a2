/*
 * Interrupt outputs of devices.
 *
 * A device holds an IrqLine (a level-triggered wire, e.g. PCI INTx or the
 * serial port's IRQ 4) and/or an MsiSink (where message-signalled interrupts
 * go). It does not know what is behind them: under KVM, an in-kernel IOAPIC
 * pin and KVM_SIGNAL_MSI or an irqfd; under qtest, "IRQ raise N" lines on the
 * socket and a plain memory write at the message address.
 */
#ifndef MINIVMM_DEVICES_IRQ_H
#define MINIVMM_DEVICES_IRQ_H

#include <stdint.h>

typedef struct IrqLine {
    void (*set_level)(void *opaque, int gsi, int level);
    void *opaque;
    int gsi; /* the interrupt controller input this wire is connected to */
} IrqLine;

static inline void irq_set(const IrqLine *line, int level)
{
    if (line && line->set_level) {
        line->set_level(line->opaque, line->gsi, level);
    }
}

/*
 * MSI/MSI-X delivery. send() must be callable from any thread (virtio-blk
 * completes on IOThreads, without the big lock).
 */
typedef struct MsiSink {
    void (*send)(void *opaque, uint64_t addr, uint32_t data);
    void *opaque;
} MsiSink;

static inline void msi_send(const MsiSink *sink, uint64_t addr, uint32_t data)
{
    if (sink && sink->send) {
        sink->send(sink->opaque, addr, data);
    }
}

#endif
