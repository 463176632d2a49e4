/* The in-memory guest every fuzz target runs against: RAM at guest-physical 0, the unit's own
 * register window at the address QEMU maps it (so a status write or a table pointer aimed at
 * the window re-enters the library, as DMA to the IOMMU's MMIO does in QEMU), and callbacks
 * that check what the library hands them. Every access is bounds-checked: an out-of-range
 * address is the guest's mistake, answered with the callback's error, never a host overflow. */
#ifndef SWIFTVTD_FUZZ_GUEST_H
#define SWIFTVTD_FUZZ_GUEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "swiftvtd.h"
#include "fuzz_input.h"

#define FUZZ_RAM_SIZE (256u * 1024u)
#define FUZZ_REGISTER_BASE 0xFED90000ull
/* Nested callbacks beyond this depth are refused, as QEMU's re-entrancy guard refuses DMA into a
 * device that is already in its own MMIO handler. It bounds the harness, not the library. */
#define FUZZ_MAX_DEPTH 4

typedef struct FuzzGuest {
    uint8_t *ram;              /* FUZZ_RAM_SIZE bytes */
    swiftvtd_t *unit;          /* set after create, for re-entrant calls */
    int depth;                 /* callbacks currently running inside library calls */
    /* When nonzero (a power of two up to FUZZ_RAM_SIZE), the first `alias` bytes of RAM repeat
     * through all of guest-physical space, so arbitrary table pointers land on fuzz bytes and
     * walks go deep. */
    uint64_t alias;
    /* Writes (DMA or compare-exchange) that touched [watch_start, watch_end) since cleared. */
    uint64_t watch_start, watch_end;
    int watch_hit;
    /* DMA writes that landed in the register window (re-entered swiftvtd_mmio_write). */
    uint64_t window_writes;
    /* When set, callbacks call back into the library (register reads, a probe translation). */
    int reenter;
    uint64_t msis;
    uint64_t events;
} FuzzGuest;

/* Aborts the fuzz run: the library broke a promise of its header. */
#define FUZZ_CHECK(cond) do { if (!(cond)) { __builtin_trap(); } } while (0)

/* Finds guest RAM for [gpa, gpa + len) or returns NULL when any of it is not RAM. */
static inline uint8_t *fuzz_ram(FuzzGuest *g, uint64_t gpa, uint64_t len)
{
    if (g->alias) {
        gpa &= g->alias - 1;
    }
    if (gpa > FUZZ_RAM_SIZE || len > FUZZ_RAM_SIZE - gpa) {
        return NULL;
    }
    return g->ram + gpa;
}

static inline void fuzz_note_write(FuzzGuest *g, const uint8_t *p, uint64_t len)
{
    uint64_t start = (uint64_t)(p - g->ram);
    if (start < g->watch_end && start + len > g->watch_start) {
        g->watch_hit = 1;
    }
}

static inline int fuzz_in_register_window(FuzzGuest *g, uint64_t gpa, uint64_t len)
{
    if (!g->unit) {
        return 0;
    }
    uint64_t size = swiftvtd_mmio_size(g->unit);
    return gpa >= FUZZ_REGISTER_BASE && gpa - FUZZ_REGISTER_BASE < size
        && len <= size - (gpa - FUZZ_REGISTER_BASE);
}

/* Calls that QEMU could make from inside a callback: the big lock is held, other threads may
 * translate. None may deadlock or disturb the outer call. */
static inline void fuzz_reenter(FuzzGuest *g)
{
    if (!g->reenter || !g->unit || g->depth >= FUZZ_MAX_DEPTH) {
        return;
    }
    g->depth++;
    (void)swiftvtd_mmio_read(g->unit, 0x1C, 4); /* GSTS */
    (void)swiftvtd_mmio_read(g->unit, 0x34, 4); /* FSTS */
    swiftvtd_translate_request req = { .sid = 0x0010, .access = SWIFTVTD_ACCESS_READ,
                                       .flags = SWIFTVTD_REQ_NO_FAULT, .pasid = SWIFTVTD_NO_PASID,
                                       .addr = 0x1000 };
    swiftvtd_translation out;
    FUZZ_CHECK(swiftvtd_translate(g->unit, &req, &out) == SWIFTVTD_OK);
    swiftvtd_msi msi = { .address = 0xFEE00010, .data = 0 }, remapped;
    FUZZ_CHECK(swiftvtd_interrupt_remap(g->unit, 0x0010, &msi, &remapped, SWIFTVTD_IRQ_NO_FAULT) >= 0);
    g->depth--;
}

static int fuzz_dma_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    FuzzGuest *g = opaque;
    FUZZ_CHECK(buf != NULL || len == 0);
    fuzz_reenter(g);
    uint8_t *p = fuzz_ram(g, gpa, len);
    if (!p) {
        return -1;
    }
    memcpy(buf, p, len);
    return 0;
}

static int fuzz_dma_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
    FuzzGuest *g = opaque;
    FUZZ_CHECK(buf != NULL || len == 0);
    if (fuzz_in_register_window(g, gpa, len) && (len == 4 || len == 8)) {
        if (g->depth >= FUZZ_MAX_DEPTH) {
            return -1;
        }
        uint64_t value = 0;
        memcpy(&value, buf, len);
        g->depth++;
        g->window_writes++;
        swiftvtd_mmio_write(g->unit, gpa - FUZZ_REGISTER_BASE, value, (unsigned)len);
        g->depth--;
        return 0;
    }
    fuzz_reenter(g);
    uint8_t *p = fuzz_ram(g, gpa, len);
    if (!p) {
        return -1;
    }
    fuzz_note_write(g, p, len);
    memcpy(p, buf, len);
    return 0;
}

static int fuzz_dma_cmpxchg64(void *opaque, uint64_t gpa, uint64_t expected, uint64_t desired, uint64_t *found)
{
    FuzzGuest *g = opaque;
    FUZZ_CHECK(found != NULL);
    uint8_t *p = fuzz_ram(g, gpa, 8);
    if (!p || (gpa & 7) != 0) {
        return -1;
    }
    uint64_t *word = (uint64_t *)(void *)p;
    *found = __atomic_load_n(word, __ATOMIC_SEQ_CST);
    if (*found == expected) {
        fuzz_note_write(g, p, 8);
        __atomic_store_n(word, desired, __ATOMIC_SEQ_CST);
    }
    return 0;
}

static void fuzz_send_msi(void *opaque, uint64_t address, uint32_t data)
{
    FuzzGuest *g = opaque;
    (void)address;
    (void)data;
    g->msis++;
    fuzz_reenter(g);
}

static void fuzz_event(void *opaque, const swiftvtd_event *event)
{
    FuzzGuest *g = opaque;
    FUZZ_CHECK(event != NULL && event->size == sizeof(*event));
    FUZZ_CHECK(event->kind >= SWIFTVTD_EVENT_UNMAP && event->kind <= SWIFTVTD_EVENT_PAGE_GROUP_RESPONSE);
    g->events++;
    fuzz_reenter(g);
}

static void fuzz_log(void *opaque, int level, const char *message)
{
    (void)opaque;
    FUZZ_CHECK(level >= SWIFTVTD_LOG_GUEST_ERROR && level <= SWIFTVTD_LOG_INFO);
    FUZZ_CHECK(message != NULL);
    /* A message is a C string of bounded length (a guest must not make the log unbounded). */
    FUZZ_CHECK(strnlen(message, 4096) < 4096);
}

static inline swiftvtd_host_ops fuzz_host_ops(FuzzGuest *g)
{
    swiftvtd_host_ops ops = { .size = sizeof(ops), .opaque = g,
                              .dma_read = fuzz_dma_read, .dma_write = fuzz_dma_write,
                              .dma_cmpxchg64 = fuzz_dma_cmpxchg64, .send_msi = fuzz_send_msi,
                              .event = fuzz_event, .log = fuzz_log };
    return ops;
}

/* RAM is allocated once per process; each input starts from zeroed RAM. */
static inline void fuzz_guest_init(FuzzGuest *g, uint64_t alias, int reenter)
{
    static uint8_t *ram;
    if (!ram) {
        ram = malloc(FUZZ_RAM_SIZE);
        FUZZ_CHECK(ram != NULL);
    }
    memset(ram, 0, FUZZ_RAM_SIZE);
    memset(g, 0, sizeof(*g));
    g->ram = ram;
    g->alias = alias;
    g->reenter = reenter;
}

/* A unit in one of the fuzz configurations, wired to this guest. */
static inline swiftvtd_t *fuzz_create(FuzzGuest *g, uint8_t selector)
{
    swiftvtd_config cfg;
    fuzz_config(selector, &cfg);
    swiftvtd_host_ops ops = fuzz_host_ops(g);
    char err[256] = "";
    g->unit = swiftvtd_create(&cfg, &ops, err, sizeof(err));
    FUZZ_CHECK(g->unit != NULL); /* every fuzz configuration is valid */
    return g->unit;
}

/* GCMD written the way a driver issues one command at a time: the enables that are on now
 * (read back from GSTS) kept, plus `set`, less `clear`. */
#define FUZZ_GCMD_KEPT 0x86800000u /* TE, QIE, IRE, CFI */
static inline void fuzz_gcmd(swiftvtd_t *unit, uint32_t set, uint32_t clear)
{
    uint32_t status = (uint32_t)swiftvtd_mmio_read(unit, 0x1C, 4);
    swiftvtd_mmio_write(unit, 0x18, ((status & FUZZ_GCMD_KEPT) | set) & ~clear, 4);
}

#endif
