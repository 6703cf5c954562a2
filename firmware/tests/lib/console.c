/*
 * COM1 output and a small printf. The UART is polled: the tests have no
 * use for its interrupt, and a bounded wait on THRE keeps a missing or
 * stuck UART from hanging a test.
 */
#include "firmware/tests/lib/fw.h"

#define UART_THR   0
#define UART_IER   1
#define UART_FCR   2
#define UART_LCR   3
#define UART_MCR   4
#define UART_LSR   5
#define UART_DLL   0
#define UART_DLM   1
#define LSR_THRE   0x20
#define LCR_DLAB   0x80
#define LCR_8N1    0x03
#define THRE_POLLS 10000

void console_init(void)
{
    outb(FW_COM1 + UART_IER, 0);
    outb(FW_COM1 + UART_LCR, LCR_DLAB);
    outb(FW_COM1 + UART_DLL, 1); /* 115200 baud */
    outb(FW_COM1 + UART_DLM, 0);
    outb(FW_COM1 + UART_LCR, LCR_8N1);
    outb(FW_COM1 + UART_FCR, 0x07); /* FIFOs on and cleared */
    outb(FW_COM1 + UART_MCR, 0x03); /* DTR, RTS */
}

void console_putc(char c)
{
    for (int i = 0; i < THRE_POLLS; i++) {
        if (inb(FW_COM1 + UART_LSR) & LSR_THRE) {
            break;
        }
    }
    outb(FW_COM1 + UART_THR, c);
}

/* ---- Formatting ------------------------------------------------------------
 */

typedef struct Sink {
    char *buf; /* NULL: the console */
    size_t size, len;
} Sink;

static void sink_put(Sink *s, char c)
{
    if (!s->buf) {
        console_putc(c);
    } else if (s->len + 1 < s->size) {
        s->buf[s->len] = c;
    }
    s->len++;
}

static void put_padded(Sink *s, const char *str, size_t n, int width, bool left,
                       char pad)
{
    int fill = width > (int)n ? width - (int)n : 0;

    if (!left && pad == '0' && n && (str[0] == '-')) {
        sink_put(s, '-'); /* zero padding goes after the sign */
        str++;
        n--;
    }
    for (; !left && fill > 0; fill--) {
        sink_put(s, pad);
    }
    for (size_t i = 0; i < n; i++) {
        sink_put(s, str[i]);
    }
    for (; left && fill > 0; fill--) {
        sink_put(s, ' ');
    }
}

static size_t format_uint(char *out, unsigned long long v, unsigned base,
                          bool upper, bool negative)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[24];
    size_t n = 0, len = 0;

    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    if (negative) {
        out[len++] = '-';
    }
    while (n) {
        out[len++] = tmp[--n];
    }
    return len;
}

static int format(Sink *s, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        char num[32], pad = ' ';
        bool left = false;
        int width = 0, lng = 0;
        unsigned long long u;
        long long d;
        const char *str;
        size_t n;

        if (*fmt != '%') {
            sink_put(s, *fmt);
            continue;
        }
        fmt++;
        for (;; fmt++) {
            if (*fmt == '0') {
                pad = '0';
            } else if (*fmt == '-') {
                left = true;
            } else {
                break;
            }
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        for (;; fmt++) {
            if (*fmt == 'l') {
                lng++;
            } else if (*fmt == 'z') {
                lng = 1; /* size_t is unsigned long here */
            } else {
                break;
            }
        }
        switch (*fmt) {
        case 'd':
        case 'i':
            d = lng ? va_arg(ap, long long) : va_arg(ap, int);
            n = format_uint(num, d < 0 ? -(unsigned long long)d : (uint64_t)d,
                            10, false, d < 0);
            put_padded(s, num, n, width, left, pad);
            break;
        case 'u':
        case 'x':
        case 'X':
        case 'o':
            u = lng ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
            n = format_uint(num, u,
                            *fmt == 'u'   ? 10
                            : *fmt == 'o' ? 8
                                          : 16,
                            *fmt == 'X', false);
            put_padded(s, num, n, width, left, pad);
            break;
        case 'p':
            num[0] = '0';
            num[1] = 'x';
            n = 2 + format_uint(num + 2, (uintptr_t)va_arg(ap, void *), 16,
                                false, false);
            put_padded(s, num, n, width, left, ' ');
            break;
        case 'c':
            num[0] = (char)va_arg(ap, int);
            put_padded(s, num, 1, width, left, ' ');
            break;
        case 's':
            str = va_arg(ap, const char *);
            if (!str) {
                str = "(null)";
            }
            put_padded(s, str, strlen(str), width, left, ' ');
            break;
        case '%':
            sink_put(s, '%');
            break;
        case '\0':
            fmt--; /* a lone '%' at the end */
            break;
        default:
            sink_put(s, '%');
            sink_put(s, *fmt);
            break;
        }
    }
    return (int)s->len;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    static char dummy[1];
    Sink s = {.buf = size ? buf : dummy, .size = size ? size : 1};
    int n = format(&s, fmt, ap);

    s.buf[s.len < s.size ? s.len : s.size - 1] = '\0';
    return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

int vprintf(const char *fmt, va_list ap)
{
    Sink s = {0};

    return format(&s, fmt, ap);
}

int printf(const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}
