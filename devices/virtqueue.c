#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_ring.h>

#include "devices/virtqueue.h"
#include "util/log.h"

/* Ring layout (virtio 1.x 2.6): offsets into the three areas. */
#define DESC_SIZE         16
#define AVAIL_IDX         2
#define AVAIL_RING(i)     (4 + 2 * (i))
#define USED_IDX          2
#define USED_RING(i)      (4 + 8 * (i))
#define USED_EVENT(vq)    AVAIL_RING((vq)->num) /* in the driver area */
#define AVAIL_EVENT(vq)   USED_RING((vq)->num)  /* in the device area */
#define ELEM_HEADER(size) (((size) + 15) & ~(size_t)15)

typedef struct Desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
} Desc;

static inline uint16_t ld16_acquire(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static inline uint16_t ld16(const uint8_t *p)
{
    return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
}

static inline void st16(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELAXED);
}

static inline void st16_release(uint8_t *p, uint16_t v)
{
    __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE);
}

void virtq_error(VirtQueue *vq, const char *what, uint64_t detail)
{
    if (vq->broken) {
        return;
    }
    vq->broken = true;
    log_guest_error("%s: queue %u: %s (%llu); queue stopped, device needs "
                    "reset",
                    vq->name, vq->index, what, (unsigned long long)detail);
    if (vq->on_error) {
        vq->on_error(vq->opaque, vq);
    }
}

void virtq_reset(VirtQueue *vq)
{
    free(vq->scratch);
    vq->scratch = NULL;
    vq->started = false;
    vq->broken = false;
    vq->desc = vq->avail = vq->used = NULL;
    vq->last_avail_idx = 0;
    vq->used_idx = 0;
    vq->signalled_used = 0;
    vq->signalled_used_valid = false;
    vq->inuse = 0;
    vq->desc_gpa = vq->avail_gpa = vq->used_gpa = 0;
    vq->event_idx = false;
    vq->indirect = false;
}

/* Host view of a ring, or NULL if misaligned or not entirely in RAM. */
static uint8_t *map_ring(const VirtQueue *vq, uint64_t gpa, uint64_t len,
                         uint64_t align)
{
    if (gpa & (align - 1)) {
        return NULL;
    }
    return gm_ptr(vq->ram, gpa, len);
}

int virtq_start(VirtQueue *vq)
{
    uint64_t extra = vq->event_idx ? 2 : 0;

    vq->desc = map_ring(vq, vq->desc_gpa, (uint64_t)DESC_SIZE * vq->num, 16);
    vq->avail = map_ring(vq, vq->avail_gpa, AVAIL_RING(vq->num) + extra, 2);
    vq->used = map_ring(vq, vq->used_gpa, USED_RING(vq->num) + extra, 4);
    vq->started = true;
    if (!vq->desc || !vq->avail || !vq->used) {
        virtq_error(vq, "ring outside RAM or misaligned, size", vq->num);
        return -EFAULT;
    }
    vq->scratch = calloc(vq->num, sizeof(*vq->scratch));
    if (!vq->scratch) {
        virtq_error(vq, "out of memory for queue of size", vq->num);
        return -ENOMEM;
    }
    /* The device area starts clean: no stale used index from a past life. */
    st16(vq->used, 0);
    st16_release(vq->used + USED_IDX, 0);
    return 0;
}

void virtq_stop(VirtQueue *vq)
{
    vq->started = false;
}

static bool ring_usable(const VirtQueue *vq)
{
    return vq->started && !vq->broken && vq->desc;
}

/* The driver's index, checked: it may be at most num ahead of ours. */
static int avail_pending(VirtQueue *vq)
{
    uint16_t idx = ld16_acquire(vq->avail + AVAIL_IDX);
    uint16_t pending = idx - vq->last_avail_idx;

    if (pending > vq->num) {
        virtq_error(vq, "available index jumped past the queue size, idx", idx);
        return -EIO;
    }
    return pending;
}

bool virtq_has_work(VirtQueue *vq)
{
    if (!ring_usable(vq)) {
        return false;
    }
    /* A bad index is "work": popping it reports the error. */
    return ld16_acquire(vq->avail + AVAIL_IDX) != vq->last_avail_idx;
}

static void read_desc(const uint8_t *table, unsigned i, Desc *d)
{
    /* Copied once: the guest may rewrite the table while we look at it. */
    memcpy(d, table + (size_t)i * DESC_SIZE, sizeof(*d));
}

/*
 * DATAPATH 3 (virtio half): a descriptor chain becomes an iovec array
 * pointing straight into guest RAM. Returns the number of iovecs in
 * vq->scratch (readable ones first, *out_num of them) or -EIO.
 */
static int walk_chain(VirtQueue *vq, uint16_t head, unsigned *out_num)
{
    const uint8_t *table = vq->desc;
    unsigned max = vq->num, count = 0, n = 0, i = head;
    bool seen_write = false;
    Desc d;

    read_desc(table, i, &d);
    if (d.flags & VRING_DESC_F_INDIRECT) {
        if (!vq->indirect) {
            virtq_error(vq, "indirect descriptor not negotiated, head", head);
            return -EIO;
        }
        if (d.flags & VRING_DESC_F_NEXT) {
            virtq_error(vq, "indirect descriptor with NEXT, head", head);
            return -EIO;
        }
        if (d.len == 0 || d.len % DESC_SIZE || d.len / DESC_SIZE > max) {
            virtq_error(vq, "bad indirect table length", d.len);
            return -EIO;
        }
        max = d.len / DESC_SIZE;
        table = gm_ptr(vq->ram, d.addr, d.len);
        if (!table) {
            virtq_error(vq, "indirect table outside RAM at", d.addr);
            return -EIO;
        }
        i = 0;
        read_desc(table, i, &d);
    }
    for (;;) {
        /* Bounded by the table size, so a loop ends here too. */
        if (++count > max) {
            virtq_error(vq, "descriptor chain loops or exceeds the queue, head",
                        head);
            return -EIO;
        }
        if (d.flags & VRING_DESC_F_INDIRECT) {
            virtq_error(vq, "nested or chained indirect descriptor, head",
                        head);
            return -EIO;
        }
        if (d.flags & VRING_DESC_F_WRITE) {
            seen_write = true;
        } else if (seen_write) {
            virtq_error(vq, "readable descriptor after a writable one, head",
                        head);
            return -EIO;
        }
        if (d.len) { /* empty buffers carry nothing: no iovec for them */
            void *p = gm_ptr(vq->ram, d.addr, d.len);

            if (!p) {
                virtq_error(vq, "buffer outside RAM at", d.addr);
                return -EIO;
            }
            vq->scratch[n].iov_base = p;
            vq->scratch[n].iov_len = d.len;
            n++;
            if (!seen_write) {
                (*out_num)++;
            }
        }
        if (!(d.flags & VRING_DESC_F_NEXT)) {
            return n;
        }
        i = d.next;
        if (i >= max) {
            virtq_error(vq, "descriptor next index out of range", i);
            return -EIO;
        }
        read_desc(table, i, &d);
    }
}

int virtq_pop(VirtQueue *vq, size_t elem_size, VirtqElement **elemp)
{
    unsigned out_num = 0;
    VirtqElement *elem;
    uint16_t head;
    int pending, n;

    *elemp = NULL;
    if (!ring_usable(vq)) {
        return vq->broken ? -EIO : 0;
    }
    pending = avail_pending(vq);
    if (pending <= 0) {
        return pending;
    }
    if (vq->inuse >= vq->num) {
        virtq_error(vq, "more buffers in flight than the queue size", vq->num);
        return -EIO;
    }
    head = ld16(vq->avail + AVAIL_RING(vq->last_avail_idx % vq->num));
    vq->last_avail_idx++;
    if (head >= vq->num) {
        virtq_error(vq, "head index out of range", head);
        return -EIO;
    }
    n = walk_chain(vq, head, &out_num);
    if (n < 0) {
        return n;
    }
    elem = malloc(ELEM_HEADER(elem_size) + n * sizeof(struct iovec));
    if (!elem) {
        virtq_error(vq, "out of memory for a request, head", head);
        return -EIO;
    }
    memset(elem, 0, elem_size);
    elem->head = head;
    elem->out = (struct iovec *)((uint8_t *)elem + ELEM_HEADER(elem_size));
    elem->out_num = out_num;
    elem->in = elem->out + out_num;
    elem->in_num = n - out_num;
    memcpy(elem->out, vq->scratch, n * sizeof(struct iovec));
    vq->inuse++;
    *elemp = elem;
    return 1;
}

void virtq_push(VirtQueue *vq, const VirtqElement *elem, uint32_t len)
{
    uint8_t *slot = vq->used + USED_RING(vq->used_idx % vq->num);
    uint32_t id = elem->head;

    memcpy(slot, &id, 4);
    memcpy(slot + 4, &len, 4);
    vq->used_idx++;
    /* Orders the buffers, the status byte and the entry before the index. */
    st16_release(vq->used + USED_IDX, vq->used_idx);
    vq->inuse--;
}

bool virtq_should_notify(VirtQueue *vq)
{
    uint16_t old, new;
    bool valid;

    if (!vq->used) {
        return false;
    }
    /* Our used index store must be visible before we read the driver's wish. */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (!vq->event_idx) {
        return !(ld16(vq->avail) & VRING_AVAIL_F_NO_INTERRUPT);
    }
    valid = vq->signalled_used_valid;
    old = vq->signalled_used;
    new = vq->used_idx;
    vq->signalled_used = new;
    vq->signalled_used_valid = true;
    return !valid ||
           vring_need_event(ld16(vq->avail + USED_EVENT(vq)), new, old);
}

void virtq_disable_notify(VirtQueue *vq)
{
    if (!ring_usable(vq)) {
        return;
    }
    /*
     * With EVENT_IDX the driver kicks when its index passes avail_event:
     * one behind what we have taken, it is passed already, and nothing
     * kicks until virtq_enable_notify() (or 65535 buffers later).
     */
    if (vq->event_idx) {
        st16(vq->used + AVAIL_EVENT(vq), (uint16_t)(vq->last_avail_idx - 1));
    } else {
        st16(vq->used, ld16(vq->used) | VRING_USED_F_NO_NOTIFY);
    }
}

bool virtq_enable_notify(VirtQueue *vq)
{
    if (!ring_usable(vq)) {
        return false;
    }
    if (vq->event_idx) {
        st16(vq->used + AVAIL_EVENT(vq), vq->last_avail_idx);
    } else {
        st16(vq->used, ld16(vq->used) & ~VRING_USED_F_NO_NOTIFY);
    }
    /*
     * The driver publishes then reads our wish; we publish our wish then
     * read its index. The fence makes sure one of us sees the other.
     */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    return virtq_has_work(vq);
}
