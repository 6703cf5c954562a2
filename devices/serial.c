#include <unistd.h>

#include "devices/serial.h"

/* Registers (offsets from the base port). */
enum {
    UART_RBR_THR = 0, /* DLL when LCR.DLAB */
    UART_IER = 1,     /* DLM when LCR.DLAB */
    UART_IIR_FCR = 2,
    UART_LCR = 3,
    UART_MCR = 4,
    UART_LSR = 5,
    UART_MSR = 6,
    UART_SCR = 7,
};

#define UART_LCR_DLAB     0x80
#define UART_IER_RDI      0x01 /* receive data available */
#define UART_IER_THRI     0x02 /* transmitter holding register empty */
#define UART_IIR_NO_INT   0x01
#define UART_IIR_THRI     0x02
#define UART_IIR_RDI      0x04
#define UART_IIR_FIFO     0xc0 /* FIFOs enabled (16550A) */
#define UART_FCR_ENABLE   0x01
#define UART_FCR_CLEAR_RX 0x02
#define UART_LSR_DR       0x01
#define UART_LSR_THRE     0x20
#define UART_LSR_TEMT     0x40
#define UART_MCR_LOOP     0x10

static void serial_update_irq(Serial *s)
{
    int level = ((s->ier & UART_IER_RDI) && s->rx_count) ||
                ((s->ier & UART_IER_THRI) && s->thr_interrupt);

    if (level != s->irq_level) {
        s->irq_level = level;
        irq_set(&s->irq, level);
    }
}

static uint8_t serial_iir(Serial *s)
{
    uint8_t fifo = (s->fcr & UART_FCR_ENABLE) ? UART_IIR_FIFO : 0;

    if ((s->ier & UART_IER_RDI) && s->rx_count) {
        return fifo | UART_IIR_RDI;
    }
    if ((s->ier & UART_IER_THRI) && s->thr_interrupt) {
        return fifo | UART_IIR_THRI;
    }
    return fifo | UART_IIR_NO_INT;
}

static uint8_t serial_msr(Serial *s)
{
    /* Loopback wires DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD. */
    if (s->mcr & UART_MCR_LOOP) {
        return (s->mcr & 0x0c) << 4 | (s->mcr & 0x02) << 3 |
               (s->mcr & 0x01) << 5;
    }
    return 0xb0; /* DCD, DSR, CTS: a terminal is there */
}

static uint64_t serial_read(void *opaque, uint64_t offset, unsigned size)
{
    Serial *s = opaque;
    uint8_t v = 0;

    (void)size;
    switch (offset) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            return s->dll;
        }
        if (s->rx_count) {
            v = s->rx[s->rx_head];
            s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
            if (s->rx_count-- == SERIAL_RX_FIFO && s->rx_space) {
                s->rx_space(s->rx_space_opaque); /* the input may resume */
            }
        }
        break;
    case UART_IER:
        return (s->lcr & UART_LCR_DLAB) ? s->dlm : s->ier;
    case UART_IIR_FCR:
        v = serial_iir(s);
        /* Reading IIR acknowledges a THR-empty interrupt. */
        if ((v & 0x0f) == UART_IIR_THRI) {
            s->thr_interrupt = false;
        }
        break;
    case UART_LCR:
        return s->lcr;
    case UART_MCR:
        return s->mcr;
    case UART_LSR:
        /* Transmission is instant: the holder is always empty. */
        return UART_LSR_THRE | UART_LSR_TEMT | (s->rx_count ? UART_LSR_DR : 0);
    case UART_MSR:
        return serial_msr(s);
    case UART_SCR:
        return s->scr;
    default:
        return 0xff;
    }
    serial_update_irq(s);
    return v;
}

static void serial_write(void *opaque, uint64_t offset, uint64_t value,
                         unsigned size)
{
    Serial *s = opaque;
    uint8_t v = value;

    (void)size;
    switch (offset) {
    case UART_RBR_THR:
        if (s->lcr & UART_LCR_DLAB) {
            s->dll = v;
            return;
        }
        if (s->mcr & UART_MCR_LOOP) {
            serial_receive(s, &v, 1);
        } else if (s->out_fd >= 0) {
            ssize_t r = write(s->out_fd, &v, 1);

            (void)r; /* a closed console must not stop the guest */
        }
        s->thr_interrupt = true;
        break;
    case UART_IER:
        if (s->lcr & UART_LCR_DLAB) {
            s->dlm = v;
            return;
        }
        /* Enabling THRI with an empty holder raises it at once. */
        if (!(s->ier & UART_IER_THRI) && (v & UART_IER_THRI)) {
            s->thr_interrupt = true;
        }
        s->ier = v & 0x0f;
        break;
    case UART_IIR_FCR:
        s->fcr = v & 0xc9;
        if (v & UART_FCR_CLEAR_RX) {
            s->rx_count = 0;
        }
        break;
    case UART_LCR:
        s->lcr = v;
        return;
    case UART_MCR:
        s->mcr = v & 0x1f;
        return;
    case UART_SCR:
        s->scr = v;
        return;
    default:
        return; /* LSR and MSR are read-only */
    }
    serial_update_irq(s);
}

static const RegionOps serial_ops = {
    .read = serial_read,
    .write = serial_write,
};

unsigned serial_receive(Serial *s, const uint8_t *buf, unsigned len)
{
    unsigned n = 0;

    while (n < len && s->rx_count < SERIAL_RX_FIFO) {
        s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = buf[n++];
        s->rx_count++;
    }
    serial_update_irq(s);
    return n;
}

unsigned serial_rx_room(const Serial *s)
{
    return SERIAL_RX_FIFO - s->rx_count;
}

int serial_init(Serial *s, AddressSpace *as, uint16_t base, IrqLine irq,
                int out_fd)
{
    *s = (Serial){.out_fd = out_fd, .irq = irq};
    return as_add(as, AS_PIO, base, 8, &serial_ops, s, "serial");
}
