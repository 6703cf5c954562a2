#include <string.h>

#include "util/base64.h"

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t base64_encoded_len(size_t len)
{
    return (len + 2) / 3 * 4;
}

void base64_encode(const uint8_t *in, size_t len, char *out)
{
    size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];

        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0);

        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out = '\0';
}

long base64_decode(const char *in, uint8_t *out)
{
    uint32_t acc = 0;
    int bits = 0;
    long n = 0;

    for (; *in && *in != '='; in++) {
        const char *p = strchr(alphabet, *in);

        if (!p || !*in) {
            return -1;
        }
        acc = acc << 6 | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = acc >> bits;
        }
    }
    return n;
}
