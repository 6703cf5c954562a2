#include "block/iov.h"

#include <string.h>

int64_t iov_size_max(const struct iovec *iov, int cnt, uint64_t max)
{
    uint64_t total = 0;

    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > max - total) {
            return -1;
        }
        total += iov[i].iov_len;
    }
    return (int64_t)total;
}

int iov_tail(struct iovec *dst, const struct iovec *iov, int cnt, size_t skip)
{
    int n = 0;

    for (int i = 0; i < cnt; i++) {
        if (skip >= iov[i].iov_len) {
            skip -= iov[i].iov_len;
            continue;
        }
        dst[n].iov_base = (char *)iov[i].iov_base + skip;
        dst[n].iov_len = iov[i].iov_len - skip;
        skip = 0;
        n++;
    }
    return n;
}

/*
 * Walk @bytes of @iov from @offset, calling fn on each piece with the
 * matching position in a flat buffer.
 */
typedef void IovPieceFunc(void *piece, size_t pos, size_t len, void *opaque);

static void iov_walk(const struct iovec *iov, int cnt, size_t offset,
                     size_t bytes, IovPieceFunc *fn, void *opaque)
{
    size_t pos = 0;

    for (int i = 0; i < cnt && pos < bytes; i++) {
        size_t len;

        if (offset >= iov[i].iov_len) {
            offset -= iov[i].iov_len;
            continue;
        }
        len = iov[i].iov_len - offset;
        if (len > bytes - pos) {
            len = bytes - pos;
        }
        fn((char *)iov[i].iov_base + offset, pos, len, opaque);
        pos += len;
        offset = 0;
    }
}

static void piece_memset(void *piece, size_t pos, size_t len, void *opaque)
{
    (void)pos;
    memset(piece, *(int *)opaque, len);
}

static void piece_to_buf(void *piece, size_t pos, size_t len, void *opaque)
{
    memcpy((char *)opaque + pos, piece, len);
}

static void piece_from_buf(void *piece, size_t pos, size_t len, void *opaque)
{
    memcpy(piece, (const char *)opaque + pos, len);
}

void iov_memset(const struct iovec *iov, int cnt, size_t offset, int c,
                size_t bytes)
{
    iov_walk(iov, cnt, offset, bytes, piece_memset, &c);
}

void iov_to_buf(const struct iovec *iov, int cnt, size_t offset, void *buf,
                size_t bytes)
{
    iov_walk(iov, cnt, offset, bytes, piece_to_buf, buf);
}

void iov_from_buf(const struct iovec *iov, int cnt, size_t offset,
                  const void *buf, size_t bytes)
{
    iov_walk(iov, cnt, offset, bytes, piece_from_buf, (void *)buf);
}

bool iov_aligned(const struct iovec *iov, int cnt, uint32_t align)
{
    uintptr_t bits = 0;

    for (int i = 0; i < cnt; i++) {
        bits |= (uintptr_t)iov[i].iov_base | iov[i].iov_len;
    }
    return (bits & (align - 1)) == 0;
}
