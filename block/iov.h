/* Helpers for the iovec arrays requests carry. */
#ifndef MINIVMM_BLOCK_IOV_H
#define MINIVMM_BLOCK_IOV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/*
 * Total length of @iov, or -1 if it exceeds @max (checked as it adds up, so
 * a hostile array cannot wrap the sum).
 */
int64_t iov_size_max(const struct iovec *iov, int cnt, uint64_t max);

/* Copy @iov minus its first @skip bytes into @dst; returns the count. */
int iov_tail(struct iovec *dst, const struct iovec *iov, int cnt, size_t skip);

/* Operate on @bytes of @iov starting @offset bytes in. */
void iov_memset(const struct iovec *iov, int cnt, size_t offset, int c,
                size_t bytes);
void iov_to_buf(const struct iovec *iov, int cnt, size_t offset, void *buf,
                size_t bytes);
void iov_from_buf(const struct iovec *iov, int cnt, size_t offset,
                  const void *buf, size_t bytes);

/* True if every base and length is a multiple of @align. */
bool iov_aligned(const struct iovec *iov, int cnt, uint32_t align);

#endif
