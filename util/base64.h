#ifndef MINIVMM_UTIL_BASE64_H
#define MINIVMM_UTIL_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* Encode @len bytes into @out (room for base64_encoded_len(len) + 1). */
size_t base64_encoded_len(size_t len);
void base64_encode(const uint8_t *in, size_t len, char *out);

/* Decode NUL-terminated @in into @out (room for strlen(in) / 4 * 3).
 * Returns the decoded length, or -1 on a character outside the alphabet. */
long base64_decode(const char *in, uint8_t *out);

#endif
