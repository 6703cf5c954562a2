/*
 * Opening and closing backends: the option string, raw files and block
 * devices, the null driver.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/block-int.h"
#include "util/log.h"

#define SECTOR_SIZE     512
#define DIO_ALIGN_GUESS 4096 /* when the kernel will not say */

static void set_error(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!err || !errlen) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- Options ------------------------------------------------------------- */

static int parse_on_off(const char *value, bool *out)
{
    if (!strcmp(value, "on")) {
        *out = true;
    } else if (!strcmp(value, "off")) {
        *out = false;
    } else {
        return -EINVAL;
    }
    return 0;
}

static int parse_option(char *item, BlockOptions *opts, char *err,
                        size_t errlen)
{
    char *value = strchr(item, '=');
    char *end;

    if (!value) {
        set_error(err, errlen, "block option '%s' has no value", item);
        return -EINVAL;
    }
    *value++ = '\0';
    if (!strcmp(item, "aio")) {
        if (!strcmp(value, "io_uring")) {
            opts->aio = BLOCK_AIO_IO_URING;
        } else if (!strcmp(value, "threads")) {
            opts->aio = BLOCK_AIO_THREADS;
        } else {
            goto bad_value;
        }
    } else if (!strcmp(item, "cache")) {
        if (!strcmp(value, "none")) {
            opts->cache_none = true;
        } else if (!strcmp(value, "writeback")) {
            opts->cache_none = false;
        } else {
            goto bad_value;
        }
    } else if (!strcmp(item, "readonly")) {
        if (parse_on_off(value, &opts->readonly) < 0) {
            goto bad_value;
        }
    } else if (!strcmp(item, "latency_ns")) {
        errno = 0;
        opts->latency_ns = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-' ||
            opts->latency_ns > BLK_MAX_DELAY_NS) {
            goto bad_value;
        }
    } else {
        set_error(err, errlen,
                  "unknown block option '%s' (aio, cache, readonly, "
                  "latency_ns)",
                  item);
        return -EINVAL;
    }
    return 0;

bad_value:
    set_error(err, errlen, "bad value '%s' for block option '%s'", value, item);
    return -EINVAL;
}

int blk_parse_options(const char *optstring, BlockOptions *opts, char *err,
                      size_t errlen)
{
    char *copy, *item, *save = NULL;
    int ret = 0;

    if (!optstring || !*optstring) {
        return 0;
    }
    copy = strdup(optstring);
    if (!copy) {
        set_error(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        ret = parse_option(item, opts, err, errlen);
        if (ret < 0) {
            break;
        }
    }
    free(copy);
    return ret;
}

/* ---- Raw files and block devices ----------------------------------------- */

/*
 * What O_DIRECT needs of offsets, lengths and buffers. statx() knows for
 * files (Linux 6.1); a block device's logical block size is the rule there.
 */
static uint32_t probe_dio_align(int fd, const struct stat *st)
{
    struct statx stx;
    uint32_t align = 0;
    int sector;

    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align) {
        align = stx.stx_dio_offset_align;
        if (stx.stx_dio_mem_align > align) {
            align = stx.stx_dio_mem_align;
        }
    } else if (S_ISBLK(st->st_mode) && ioctl(fd, BLKSSZGET, &sector) == 0 &&
               sector > 0) {
        align = (uint32_t)sector;
    }
    /* A power of two is what the masks in bounce.c assume. */
    if (!align || (align & (align - 1))) {
        align = DIO_ALIGN_GUESS;
    }
    return align;
}

/*
 * One writer or any number of readers per image, as QEMU's file-posix
 * locks: an OFD lock on the whole file, shared for readonly=on, exclusive
 * otherwise. OFD locks belong to the open file description, not to the
 * process, so two opens conflict even within one minivmm, and the lock
 * goes with the last close. A filesystem that cannot lock (ENOLCK, or
 * EINVAL for no OFD locks) is used unlocked, with a warning, as QEMU does.
 */
static int lock_image(int fd, const char *path, bool readonly, char *err,
                      size_t errlen)
{
    struct flock fl = {.l_type = readonly ? F_RDLCK : F_WRLCK,
                       .l_whence = SEEK_SET}; /* l_len 0: to any end */
    int ret;

    if (fcntl(fd, F_OFD_SETLK, &fl) == 0) {
        return 0;
    }
    ret = -errno;
    if (ret == -EAGAIN || ret == -EACCES) {
        set_error(err, errlen, "image %s is in use by another process", path);
        return -EBUSY;
    }
    log_warn("%s: cannot lock the image (%s); using it unlocked", path,
             strerror(-ret));
    return 0;
}

int blk_open_file(BlockBackend *blk, const char *path, const BlockOptions *o,
                  char *err, size_t errlen)
{
    int flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    struct stat st;
    uint64_t size;
    int ret;

    if (o->cache_none) {
        flags |= O_DIRECT;
    }
    blk->fd = open(path, flags);
    if (blk->fd < 0) {
        ret = -errno;
        if (o->cache_none && ret == -EINVAL) {
            set_error(err, errlen,
                      "%s: cannot open with O_DIRECT (cache=none): %s; "
                      "the filesystem may not support it (try "
                      "cache=writeback)",
                      path, strerror(-ret));
        } else {
            set_error(err, errlen, "%s: cannot open: %s", path, strerror(-ret));
        }
        return ret;
    }
    ret = lock_image(blk->fd, path, o->readonly, err, errlen);
    if (ret < 0) {
        goto fail;
    }
    if (fstat(blk->fd, &st) < 0) {
        ret = -errno;
        set_error(err, errlen, "%s: cannot stat: %s", path, strerror(-ret));
        goto fail;
    }
    if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(blk->fd, BLKGETSIZE64, &size) < 0) {
            ret = -errno;
            set_error(err, errlen, "%s: cannot get the device size: %s", path,
                      strerror(-ret));
            goto fail;
        }
    } else {
        ret = -EINVAL;
        set_error(err, errlen, "%s: not a regular file or block device", path);
        goto fail;
    }
    if (size == 0) {
        ret = -EINVAL;
        set_error(err, errlen, "%s: the image is empty (0 bytes)", path);
        goto fail;
    }
    if (size % SECTOR_SIZE) {
        ret = -EINVAL;
        set_error(err, errlen,
                  "%s: size %" PRIu64 " is not a multiple of %d bytes", path,
                  size, SECTOR_SIZE);
        goto fail;
    }
    blk->size = size;
    blk->align = 1;
    if (o->cache_none) {
        blk->o_direct = true;
        blk->align = probe_dio_align(blk->fd, &st);
        /* Bounced I/O covers whole aligned blocks, which must not pass EOF. */
        if (size % blk->align) {
            ret = -EINVAL;
            set_error(err, errlen,
                      "%s: size %" PRIu64 " is not a multiple of the O_DIRECT "
                      "alignment %" PRIu32 " (try cache=writeback)",
                      path, size, blk->align);
            goto fail;
        }
    }
    blk->drv =
        o->aio == BLOCK_AIO_THREADS ? &blk_threads_driver : &blk_uring_driver;
    return 0;

fail:
    close(blk->fd);
    blk->fd = -1;
    return ret;
}

/* ---- The null driver ----------------------------------------------------- */

#define NULL_PREFIX "null://"

static int parse_size(const char *s, uint64_t *out)
{
    uint64_t n;
    unsigned shift = 0;
    char *end;

    if (*s < '0' || *s > '9') {
        return -EINVAL;
    }
    errno = 0;
    n = strtoull(s, &end, 10);
    if (errno) {
        return -EINVAL;
    }
    switch (*end) {
    case 'K':
    case 'k':
        shift = 10;
        break;
    case 'M':
    case 'm':
        shift = 20;
        break;
    case 'G':
    case 'g':
        shift = 30;
        break;
    case '\0':
        break;
    default:
        return -EINVAL;
    }
    if (shift && *++end) {
        return -EINVAL;
    }
    if (n > (UINT64_MAX >> shift)) {
        return -EINVAL;
    }
    *out = n << shift;
    return 0;
}

int blk_open_null(BlockBackend *blk, const char *spec, char *err, size_t errlen)
{
    uint64_t size;

    if (parse_size(spec + strlen(NULL_PREFIX), &size) < 0 || size == 0 ||
        size % SECTOR_SIZE) {
        set_error(err, errlen,
                  "%s: expected null://SIZE with SIZE a non-zero multiple of "
                  "%d bytes (K, M, G suffixes allowed)",
                  spec, SECTOR_SIZE);
        return -EINVAL;
    }
    blk->size = size;
    blk->align = 1;
    blk->drv = &blk_null_driver;
    return 0;
}

/* ---- Backend lifetime ---------------------------------------------------- */

int blk_open(const char *path, const BlockOptions *opts, BlockBackend **pblk,
             char *err, size_t errlen)
{
    static const BlockOptions defaults;
    BlockBackend *blk;
    int ret;

    *pblk = NULL;
    if (!opts) {
        opts = &defaults;
    }
    if (!path || !*path) {
        set_error(err, errlen, "no image path given");
        return -EINVAL;
    }
    blk = calloc(1, sizeof(*blk));
    if (!blk || !(blk->path = strdup(path))) {
        free(blk);
        set_error(err, errlen, "%s: out of memory", path);
        return -ENOMEM;
    }
    blk->fd = -1;
    blk->readonly = opts->readonly;
    pthread_mutex_init(&blk->lock, NULL);
    LIST_INIT(&blk->serial_active);
    STAILQ_INIT(&blk->serial_waiting);

    if (opts->latency_ns > BLK_MAX_DELAY_NS) {
        set_error(err, errlen, "%s: latency_ns is over a minute", path);
        ret = -EINVAL;
    } else if (!strncmp(path, NULL_PREFIX, strlen(NULL_PREFIX))) {
        ret = blk_open_null(blk, path, err, errlen);
        blk->latency_ns = opts->latency_ns;
    } else if (!strncmp(path, BLK_LOG_PREFIX, strlen(BLK_LOG_PREFIX))) {
        ret = blk_open_logwrites(blk, path, opts, err, errlen);
    } else if (opts->latency_ns) {
        set_error(err, errlen, "%s: latency_ns is for null:// images only",
                  path);
        ret = -EINVAL;
    } else {
        ret = blk_open_file(blk, path, opts, err, errlen);
    }
    if (ret < 0) {
        pthread_mutex_destroy(&blk->lock);
        free(blk->path);
        free(blk);
        return ret;
    }
    *pblk = blk;
    return 0;
}

int blk_open_string(const char *path, const char *optstring,
                    BlockBackend **pblk, char *err, size_t errlen)
{
    BlockOptions opts = {0};
    char msg[256];
    int ret;

    *pblk = NULL;
    ret = blk_parse_options(optstring, &opts, msg, sizeof(msg));
    if (ret < 0) {
        set_error(err, errlen, "%s: %s", path ? path : "(no path)", msg);
        return ret;
    }
    return blk_open(path, &opts, pblk, err, errlen);
}

void blk_close(BlockBackend *blk)
{
    BlockCtx *bctx, *next;

    if (!blk) {
        return;
    }
    blk_drain(blk);
    blk_pool_free(blk);
    blk_log_unref(blk->log);
    for (bctx = atomic_load(&blk->ctxs); bctx; bctx = next) {
        next = bctx->next;
        free(bctx);
    }
    if (blk->fd >= 0) {
        close(blk->fd);
    }
    pthread_mutex_destroy(&blk->lock);
    free(blk->path);
    free(blk);
}

uint64_t blk_size(BlockBackend *blk)
{
    return blk->size;
}

bool blk_is_readonly(BlockBackend *blk)
{
    return blk->readonly;
}

const char *blk_path(BlockBackend *blk)
{
    return blk->path;
}

const char *blk_engine_name(BlockBackend *blk)
{
    return blk->drv->name;
}

uint32_t blk_alignment(BlockBackend *blk)
{
    return blk->align;
}
