/*
 * The write log ("logwrites:PATH"), a test backend in the spirit of Linux's
 * dm-log-writes: PATH is opened as a raw image with the usual options (either
 * engine, either cache mode), and every request and every engine operation
 * is recorded, in the order this host saw them, on one clock:
 *
 *   BLOG_REQ_SUBMIT     a device called blk_submit()
 *   BLOG_ENGINE_SUBMIT  the request's I/O was handed to the engine (a bounced
 *                       write shows its aligned read and write separately)
 *   BLOG_ENGINE_DONE    the engine finished it
 *   BLOG_REQ_DONE       the request completed to the device (before its cb)
 *
 * Writes carry a copy of their data. blk_log_replay() then "cuts power" at
 * any tick and builds an image the disk could hold afterwards, which
 * tests/unit/test-crash.c checks against what the guest was promised.
 * docs/datapath.md ("What durable means") has the rules.
 */
#ifndef MINIVMM_BLOCK_LOGWRITES_H
#define MINIVMM_BLOCK_LOGWRITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"

#define BLK_LOG_PREFIX "logwrites:"
#define BLK_LOG_SECTOR 512 /* the unit a torn write tears at */

typedef struct BlockLog BlockLog;

typedef enum BlockLogEvent {
    BLOG_REQ_SUBMIT,
    BLOG_ENGINE_SUBMIT,
    BLOG_ENGINE_DONE,
    BLOG_REQ_DONE,
} BlockLogEvent;

typedef struct BlockLogEntry {
    uint64_t tick; /* the log's clock: strictly increasing */
    BlockLogEvent event;
    BlockOp op;
    bool fua;
    uint64_t req; /* entries of one request share this number */
    uint64_t offset, bytes;
    int ret;       /* *_DONE */
    uint8_t *data; /* *_SUBMIT of a write: what it writes */
} BlockLogEntry;

/* An empty log, for checking the checker with logs written by hand. */
BlockLog *blk_log_new(void);
/* Append a copy of @e (and of e->data, bytes long); its tick is assigned. */
uint64_t blk_log_add(BlockLog *log, const BlockLogEntry *e);

/*
 * The log of a "logwrites:" backend (NULL for any other), with a reference
 * of the caller's: it outlives blk_close(), so a test reads it afterwards.
 */
BlockLog *blk_log_get(BlockBackend *blk);
void blk_log_unref(BlockLog *log);

/* The next tick, for the caller's own events (what a guest saw, and when). */
uint64_t blk_log_tick(BlockLog *log);

/* Entries; read them only while nothing is in flight. */
size_t blk_log_count(BlockLog *log);
const BlockLogEntry *blk_log_entry(BlockLog *log, size_t i);

/*
 * Test-only disk bugs, to show that the checker catches them: a FLUSH that
 * completes at once without flushing, and a disk that ignores FUA (the
 * request's flag is cleared before the engine sees it).
 */
typedef enum BlockLogBug {
    BLOG_BUG_NONE,
    BLOG_BUG_FLUSH_NOOP,
    BLOG_BUG_FUA_IGNORED,
} BlockLogBug;
void blk_log_inject_bug(BlockLog *log, BlockLogBug bug);

/* Which of the writes that a cut leaves in doubt reach the image. */
typedef enum BlockLogKeep {
    BLOG_KEEP_NONE,   /* only what flushes and FUA made durable */
    BLOG_KEEP_ALL,    /* every write the engine was given */
    BLOG_KEEP_TORN,   /* each in doubt cut after a random sector */
    BLOG_KEEP_RANDOM, /* each in doubt: absent, whole or torn */
} BlockLogKeep;

/*
 * Cut power just before tick @cut and write into @image the bytes
 * [@base, @base + @len) of a disk that could survive, starting from
 * @initial (what they held at open). Durable, from the engine's side: a
 * write that completed before a FLUSH was submitted whose completion came
 * before the cut, and a FUA write that completed before it. Every other
 * write handed to the engine before the cut is in doubt; @keep and @seed
 * choose which of them land, whole or torn at a sector. What lands lands in
 * completion order. @base and @len are multiples of BLK_LOG_SECTOR.
 */
void blk_log_replay(BlockLog *log, uint64_t cut, BlockLogKeep keep,
                    uint64_t seed, const uint8_t *initial, uint8_t *image,
                    uint64_t base, uint64_t len);

#endif
