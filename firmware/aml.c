/*
 * The AML encoder (see aml.h). Encodings are from the ACPI 6.4
 * specification: chapter 20 for the byte stream, 6.4 for resource
 * descriptors.
 */
#include <string.h>

#include "firmware/aml.h"

#define NAME_SEG_LEN 4

void aml_init(Aml *a, void *buf, size_t cap)
{
    a->buf = buf;
    a->len = 0;
    a->cap = cap;
    a->overflow = false;
}

void aml_bytes(Aml *a, const void *p, size_t n)
{
    if (a->overflow || n > a->cap - a->len) {
        a->overflow = true;
        return;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
}

void aml_byte(Aml *a, uint8_t b)
{
    aml_bytes(a, &b, 1);
}

/* Little-endian, @n bytes of @v. */
static void aml_le(Aml *a, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        aml_byte(a, (uint8_t)(v >> (8 * i)));
    }
}

/* One NameSeg: up to four characters, padded with '_'. */
static void aml_name_seg(Aml *a, const char *seg, size_t len)
{
    for (size_t i = 0; i < NAME_SEG_LEN; i++) {
        aml_byte(a, i < len ? (uint8_t)seg[i] : '_');
    }
}

void aml_name_string(Aml *a, const char *path)
{
    const char *p = path;
    unsigned segs = 0;

    if (*p == '\\') {
        aml_byte(a, AML_ROOT_CHAR);
        p++;
    }
    while (*p == '^') {
        aml_byte(a, AML_PARENT_CHAR);
        p++;
    }
    if (!*p) {
        aml_byte(a, 0x00); /* NullName: the root or the parent itself */
        return;
    }
    for (const char *s = p; s; s = strchr(s, '.')) {
        segs++;
        s++;
    }
    if (segs == 2) {
        aml_byte(a, AML_DUAL_NAME);
    } else if (segs > 2) {
        aml_byte(a, AML_MULTI_NAME);
        aml_byte(a, (uint8_t)segs);
    }
    while (*p) {
        size_t len = strcspn(p, ".");

        aml_name_seg(a, p, len);
        p += len;
        if (*p == '.') {
            p++;
        }
    }
}

void aml_integer(Aml *a, uint64_t v)
{
    if (v == 0) {
        aml_byte(a, AML_ZERO_OP);
    } else if (v == 1) {
        aml_byte(a, AML_ONE_OP);
    } else if (v == UINT64_MAX) {
        aml_byte(a, AML_ONES_OP);
    } else if (v <= UINT8_MAX) {
        aml_byte(a, AML_BYTE_PREFIX);
        aml_le(a, v, 1);
    } else if (v <= UINT16_MAX) {
        aml_byte(a, AML_WORD_PREFIX);
        aml_le(a, v, 2);
    } else if (v <= UINT32_MAX) {
        aml_byte(a, AML_DWORD_PREFIX);
        aml_le(a, v, 4);
    } else {
        aml_byte(a, AML_QWORD_PREFIX);
        aml_le(a, v, 8);
    }
}

void aml_string(Aml *a, const char *s)
{
    aml_byte(a, AML_STRING_PREFIX);
    aml_bytes(a, s, strlen(s) + 1); /* with its NUL */
}

static uint8_t hex_digit(char c)
{
    return c >= 'A' ? c - 'A' + 10 : c - '0';
}

/*
 * Three letters of five bits each ('A' = 1), then four hex digits; the
 * 32-bit value is stored big-endian, so the bytes come out in this order.
 */
void aml_eisaid(Aml *a, const char *id)
{
    uint8_t c1 = id[0] - '@', c2 = id[1] - '@', c3 = id[2] - '@';

    aml_byte(a, AML_DWORD_PREFIX);
    aml_byte(a, (uint8_t)(c1 << 2 | c2 >> 3));
    aml_byte(a, (uint8_t)(c2 << 5 | c3));
    aml_byte(a, (uint8_t)(hex_digit(id[3]) << 4 | hex_digit(id[4])));
    aml_byte(a, (uint8_t)(hex_digit(id[5]) << 4 | hex_digit(id[6])));
}

void aml_name(Aml *a, const char *name)
{
    aml_byte(a, AML_NAME_OP);
    aml_name_string(a, name);
}

/* Reserve the longest PkgLength; aml_close() gives back what it needs not. */
static size_t aml_open(Aml *a)
{
    size_t mark = a->len;

    aml_le(a, 0, AML_PKGLENGTH_ROOM);
    return mark;
}

size_t aml_scope(Aml *a, const char *path)
{
    size_t mark;

    aml_byte(a, AML_SCOPE_OP);
    mark = aml_open(a);
    aml_name_string(a, path);
    return mark;
}

size_t aml_device(Aml *a, const char *name)
{
    size_t mark;

    aml_byte(a, AML_EXT_OP_PREFIX);
    aml_byte(a, AML_EXT_DEVICE_OP);
    mark = aml_open(a);
    aml_name_string(a, name);
    return mark;
}

size_t aml_package(Aml *a, uint8_t elements)
{
    size_t mark;

    aml_byte(a, AML_PACKAGE_OP);
    mark = aml_open(a);
    aml_byte(a, elements);
    return mark;
}

/*
 * PkgLength counts itself and the body after it. One byte holds up to 63;
 * otherwise bits 7-6 of the lead byte say how many bytes follow, its bits
 * 3-0 are the low nibble and each following byte the next eight bits.
 */
void aml_close(Aml *a, size_t mark)
{
    size_t body, total = 0;
    unsigned n;

    if (a->overflow) {
        return;
    }
    body = a->len - mark - AML_PKGLENGTH_ROOM;
    for (n = 1; n <= AML_PKGLENGTH_ROOM; n++) {
        total = body + n;
        if (total < (n == 1 ? 0x40u : 1u << (4 + 8 * (n - 1)))) {
            break;
        }
    }
    if (n > AML_PKGLENGTH_ROOM) {
        a->overflow = true; /* more than 256 MiB of AML: not from us */
        return;
    }
    memmove(a->buf + mark + n, a->buf + mark + AML_PKGLENGTH_ROOM, body);
    a->len -= AML_PKGLENGTH_ROOM - n;
    if (n == 1) {
        a->buf[mark] = (uint8_t)total;
        return;
    }
    a->buf[mark] = (uint8_t)((n - 1) << 6 | (total & 0x0F));
    for (unsigned i = 1; i < n; i++) {
        a->buf[mark + i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
    }
}

void aml_buffer(Aml *a, const void *bytes, size_t n)
{
    size_t mark;

    aml_byte(a, AML_BUFFER_OP);
    mark = aml_open(a);
    aml_integer(a, n); /* BufferSize */
    aml_bytes(a, bytes, n);
    aml_close(a, mark);
}

/* ---- Resource descriptors ------------------------------------------------
 */

#define RES_IO            0x47 /* small item 0x08, 7 bytes */
#define RES_IRQ_NO_FLAGS  0x22 /* small item 0x04, 2 bytes */
#define RES_END_TAG       0x79 /* small item 0x0F, 1 byte */
#define RES_MEM32_FIXED   0x86 /* large items: tag, then a 16-bit length */
#define RES_DWORD_ADDRESS 0x87
#define RES_WORD_ADDRESS  0x88

#define RES_IO_DECODE16 0x01
#define RES_MEM_RW      0x01

/* Address space descriptors: what the range is, and its general flags. */
#define RES_SPACE_MEM      0
#define RES_SPACE_IO       1
#define RES_SPACE_BUS      2
#define RES_FIXED_WINDOW   0x0C /* min and max fixed, positive decode, ... */
#define RES_IO_ENTIRE      0x03 /* ... both ISA and non-ISA ports */
#define RES_MEM_NONCACHE_W 0x01 /* ... read-write, not cacheable */

void aml_res_io(Aml *a, uint16_t base, uint8_t len)
{
    aml_byte(a, RES_IO);
    aml_byte(a, RES_IO_DECODE16);
    aml_le(a, base, 2); /* minimum base */
    aml_le(a, base, 2); /* maximum base: the ports do not move */
    aml_byte(a, 1);     /* alignment */
    aml_byte(a, len);
}

void aml_res_irq(Aml *a, uint8_t irq)
{
    aml_byte(a, RES_IRQ_NO_FLAGS);
    aml_le(a, 1u << irq, 2); /* a mask of ISA IRQs 0-15 */
}

void aml_res_mem32_fixed(Aml *a, uint32_t base, uint32_t len)
{
    aml_byte(a, RES_MEM32_FIXED);
    aml_le(a, 9, 2);
    aml_byte(a, RES_MEM_RW);
    aml_le(a, base, 4);
    aml_le(a, len, 4);
}

/* Word or DWord address space: granularity, min, max, offset, length. */
static void aml_res_window(Aml *a, uint8_t tag, unsigned width, uint8_t space,
                           uint8_t type_flags, uint64_t base, uint64_t len)
{
    aml_byte(a, tag);
    aml_le(a, 3 + 5 * width, 2);
    aml_byte(a, space);
    aml_byte(a, RES_FIXED_WINDOW);
    aml_byte(a, type_flags);
    aml_le(a, 0, width); /* granularity: 0 for a fixed window */
    aml_le(a, base, width);
    aml_le(a, base + len - 1, width);
    aml_le(a, 0, width); /* translation: addresses are the same both sides */
    aml_le(a, len, width);
}

void aml_res_bus_window(Aml *a, uint16_t first, uint16_t last)
{
    aml_res_window(a, RES_WORD_ADDRESS, 2, RES_SPACE_BUS, 0, first,
                   last - first + 1);
}

void aml_res_io_window(Aml *a, uint16_t base, uint32_t len)
{
    aml_res_window(a, RES_WORD_ADDRESS, 2, RES_SPACE_IO, RES_IO_ENTIRE, base,
                   len);
}

void aml_res_mem_window(Aml *a, uint32_t base, uint32_t len)
{
    aml_res_window(a, RES_DWORD_ADDRESS, 4, RES_SPACE_MEM, RES_MEM_NONCACHE_W,
                   base, len);
}

void aml_res_end(Aml *a)
{
    aml_byte(a, RES_END_TAG);
    aml_byte(a, 0); /* checksum 0: "the descriptors are summed as if right" */
}
