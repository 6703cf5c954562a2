/*
 * The C library functions libfdt and gcc call, freestanding. The build uses
 * -fno-tree-loop-distribute-patterns so these loops are not turned back
 * into calls to themselves.
 */
#include <stddef.h>
#include <stdint.h>

#include "firmware/tests/lib/fw.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    void *d = dst;

    asm volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *d = dst;

    asm volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;

    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);
    }
    while (n--) {
        d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;

    for (size_t i = 0; i < n; i++) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

void *memchr(const void *p, int c, size_t n)
{
    const uint8_t *s = p;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == (uint8_t)c) {
            return (void *)(s + i);
        }
    }
    return NULL;
}

size_t strlen(const char *s)
{
    size_t n = 0;

    while (s[n]) {
        n++;
    }
    return n;
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;

    while (n < max && s[n]) {
        n++;
    }
    return n;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i] || !a[i]) {
            return (uint8_t)a[i] - (uint8_t)b[i];
        }
    }
    return 0;
}

int strcmp(const char *a, const char *b)
{
    return strncmp(a, b, SIZE_MAX);
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c) {
            return (char *)s;
        }
        if (!*s) {
            return NULL;
        }
    }
}

char *strrchr(const char *s, int c)
{
    const char *last = NULL;

    for (;; s++) {
        if (*s == (char)c) {
            last = s;
        }
        if (!*s) {
            return (char *)last;
        }
    }
}

static int digit_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'Z') {
        return c - 'A' + 10;
    }
    return 99;
}

/* No errno here: overflow wraps. Base 0 takes 0x and 0 prefixes. */
unsigned long strtoul(const char *s, char **end, int base)
{
    unsigned long v = 0;
    int d;

    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if ((base == 0 || base == 16) && s[0] == '0' &&
        (s[1] == 'x' || s[1] == 'X') && digit_value(s[2]) < 16) {
        s += 2;
        base = 16;
    } else if (base == 0) {
        base = s[0] == '0' ? 8 : 10;
    }
    while ((d = digit_value(*s)) < base) {
        v = v * base + d;
        s++;
    }
    if (end) {
        *end = (char *)s;
    }
    return v;
}

/*
 * Debian builds libfdt with -fstack-protector-strong: the canary is read
 * from %fs:0x28, and fs.base is 0 here, so it is whatever sits at address
 * 0x28 (reserved low memory nobody writes). A mismatch still means a
 * smashed stack.
 */
void __stack_chk_fail(void)
{
    fw_abort("stack smashing detected");
}

/* Fortified variants, in case a library was built with _FORTIFY_SOURCE. */
void *__memcpy_chk(void *dst, const void *src, size_t n, size_t dstlen)
{
    if (n > dstlen) {
        fw_abort("__memcpy_chk: %zu bytes into %zu", n, dstlen);
    }
    return memcpy(dst, src, n);
}

void *__memmove_chk(void *dst, const void *src, size_t n, size_t dstlen)
{
    if (n > dstlen) {
        fw_abort("__memmove_chk: %zu bytes into %zu", n, dstlen);
    }
    return memmove(dst, src, n);
}

void *__memset_chk(void *dst, int c, size_t n, size_t dstlen)
{
    if (n > dstlen) {
        fw_abort("__memset_chk: %zu bytes into %zu", n, dstlen);
    }
    return memset(dst, c, n);
}
