/*
 * An 8250/16550A UART: enough for a Linux console (ttyS0) and for the
 * PASS/FAIL lines of bare-metal tests. Output goes to a file descriptor as
 * it is written; input is pushed in by the board (stdin) with
 * serial_receive().
 */
#ifndef MINIVMM_DEVICES_SERIAL_H
#define MINIVMM_DEVICES_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/address-space.h"
#include "devices/irq.h"

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ  4
#define SERIAL_RX_FIFO   16

typedef struct Serial {
    int out_fd; /* -1: output dropped */
    IrqLine irq;
    /* Called when the guest makes room in a full receive FIFO. */
    void (*rx_space)(void *opaque);
    void *rx_space_opaque;

    uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
    bool thr_interrupt; /* THR empty interrupt pending */
    uint8_t rx[SERIAL_RX_FIFO];
    unsigned rx_head, rx_count;
    int irq_level;
} Serial;

/* Map the UART's eight ports at @base. */
int serial_init(Serial *s, AddressSpace *as, uint16_t base, IrqLine irq,
                int out_fd);

/* Queue input bytes (big lock held); returns how many fitted. */
unsigned serial_receive(Serial *s, const uint8_t *buf, unsigned len);
/* Room left in the receive FIFO. */
unsigned serial_rx_room(const Serial *s);

#endif
