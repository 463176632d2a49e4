/* Fuzz target: invalidation queue contents. The harness builds a small legacy translation (one
 * device, two pages) and an interrupt remapping table, warms the caches, then queued
 * invalidation runs the fuzz bytes as descriptors, with the tails the input asks for.
 *
 * Oracle: invalidations change what is cached, never what a translation is. While nothing wrote
 * to the tables, every translation and remap after each tail write gives what it gave before
 * (a cached answer may only grant less). And a run that no status write re-entered leaves the
 * queue at its tail unless it stopped on an error (spec 6.5.2: IQH reaches IQT).
 *
 * Input: configuration, queue setup (IQA.QS, IQA.DW, re-entrant callbacks), up to 4 tails, then
 * the queue's bytes. */
#include "fuzz_guest.h"

#define ROOT 0x0000u
#define CONTEXT 0x1000u
#define SL_TOP 0x2000u /* three levels: 39-bit, supported by every configuration */
#define SL_MID 0x3000u
#define SL_LEAF 0x4000u
#define IRT 0x5000u
#define TABLES_END 0x8000u
#define QUEUE 0x8000u
#define SID 0x0010u
#define TAILS 4

enum { SETUP_QS = 0x07, SETUP_DW = 0x08, SETUP_REENTER = 0x10, SETUP_FAULTS_OFF = 0x20 };

static void put64(FuzzGuest *g, uint64_t gpa, uint64_t value)
{
    memcpy(g->ram + gpa, &value, 8);
}

static void build_tables(FuzzGuest *g)
{
    put64(g, ROOT + (SID >> 8) * 16, CONTEXT | 1);
    put64(g, CONTEXT + (SID & 0xFF) * 16, SL_TOP | 1);           /* present, TT 00 */
    put64(g, CONTEXT + (SID & 0xFF) * 16 + 8, 1 | (1u << 8));    /* AW 1 (3 levels), domain 1 */
    put64(g, SL_TOP, SL_MID | 3);
    put64(g, SL_MID, SL_LEAF | 3);
    put64(g, SL_LEAF + 1 * 8, 0x50000 | 3);                      /* IOVA 0x1000: read-write */
    put64(g, SL_LEAF + 2 * 8, 0x51000 | 1);                      /* IOVA 0x2000: read-only */
    put64(g, IRT + 2 * 16, 1 | (0x61ull << 16) | (0x0300ull << 32)); /* IRTE 2: vector 0x61 */
}

typedef struct Observation {
    swiftvtd_translation xlate[4];
    int irq;
    swiftvtd_msi msi;
} Observation;

static const swiftvtd_translate_request probes[4] = {
    { .sid = SID, .access = SWIFTVTD_ACCESS_READ, .pasid = SWIFTVTD_NO_PASID, .addr = 0x1234 },
    { .sid = SID, .access = SWIFTVTD_ACCESS_WRITE, .pasid = SWIFTVTD_NO_PASID, .addr = 0x1008 },
    { .sid = SID, .access = SWIFTVTD_ACCESS_READ, .pasid = SWIFTVTD_NO_PASID, .addr = 0x2000 },
    { .sid = SID, .access = SWIFTVTD_ACCESS_WRITE, .pasid = SWIFTVTD_NO_PASID, .addr = 0x2000 },
};

static void observe(swiftvtd_t *unit, Observation *o)
{
    for (int i = 0; i < 4; i++) {
        FUZZ_CHECK(swiftvtd_translate(unit, &probes[i], &o->xlate[i]) == SWIFTVTD_OK);
    }
    swiftvtd_msi in = { .address = 0xFEE00000u | (2 << 5) | (1 << 4) };
    o->irq = swiftvtd_interrupt_remap(unit, SID, &in, &o->msi, 0);
}

static void check_unchanged(const Observation *before, const Observation *after)
{
    for (int i = 0; i < 4; i++) {
        const swiftvtd_translation *b = &before->xlate[i], *a = &after->xlate[i];
        FUZZ_CHECK(a->kind == b->kind);
        if (b->kind == SWIFTVTD_XLATE_OK) {
            FUZZ_CHECK(a->translated == b->translated && a->page_mask == b->page_mask);
            FUZZ_CHECK((a->perm & ~b->perm) == 0);
        } else {
            FUZZ_CHECK(a->fault_reason == b->fault_reason);
        }
    }
    FUZZ_CHECK(after->irq == before->irq);
    if (before->irq == SWIFTVTD_IRQ_REMAPPED) {
        FUZZ_CHECK(after->msi.address == before->msi.address && after->msi.data == before->msi.data);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, 0 };
    uint8_t config = fuzz_u8(&in);
    uint8_t setup = fuzz_u8(&in);
    uint16_t tails[TAILS];
    for (int i = 0; i < TAILS; i++) {
        tails[i] = fuzz_u16(&in);
    }

    FuzzGuest g;
    fuzz_guest_init(&g, 0, setup & SETUP_REENTER);
    build_tables(&g);
    size_t queue_bytes = size - in.pos < FUZZ_RAM_SIZE - QUEUE ? size - in.pos : FUZZ_RAM_SIZE - QUEUE;
    if (queue_bytes) {
        memcpy(g.ram + QUEUE, data + in.pos, queue_bytes);
    }
    g.watch_start = 0;
    g.watch_end = TABLES_END;

    swiftvtd_t *unit = fuzz_create(&g, config);
    /* The host listens, as vhost and VFIO do: invalidations send UNMAP (and with caching mode MAP). */
    if (swiftvtd_set_notifier(unit, SID, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_UNMAP | SWIFTVTD_NOTIFY_MAP) != SWIFTVTD_OK) {
        int r = swiftvtd_set_notifier(unit, SID, SWIFTVTD_NO_PASID, SWIFTVTD_NOTIFY_UNMAP);
        FUZZ_CHECK(r == SWIFTVTD_OK || r == SWIFTVTD_EUNSUPPORTED); /* snoop-control refuses all */
    }
    if (!(setup & SETUP_FAULTS_OFF)) {
        swiftvtd_mmio_write(unit, 0x38, 0, 4);               /* FECTL: fault events on */
    }
    swiftvtd_mmio_write(unit, 0xB8, IRT | 3, 8);             /* IRTA: 16 entries */
    fuzz_gcmd(unit, 1u << 24, 0);                            /* SIRTP */
    fuzz_gcmd(unit, 1u << 25, 0);                            /* IRE */
    swiftvtd_mmio_write(unit, 0x20, ROOT, 8);                /* RTADDR, legacy */
    fuzz_gcmd(unit, 1u << 30, 0);                            /* SRTP */
    fuzz_gcmd(unit, 1u << 31, 0);                            /* TE */
    Observation before;
    observe(unit, &before);

    int wide = (setup & SETUP_DW) != 0;
    swiftvtd_mmio_write(unit, 0x90, QUEUE | (wide ? 1u << 11 : 0) | (setup & SETUP_QS), 8); /* IQA */
    swiftvtd_mmio_write(unit, 0xA0, 0, 4);                   /* IECTL: completion events on */
    fuzz_gcmd(unit, 1u << 26, 0);                            /* QIE */
    for (int i = 0; i < TAILS; i++) {
        g.window_writes = 0;
        uint64_t tail = (uint64_t)tails[i] << 4;
        swiftvtd_mmio_write(unit, 0x88, tail, 8);            /* IQT */
        uint32_t fsts = (uint32_t)swiftvtd_mmio_read(unit, 0x34, 4);
        uint32_t gsts = (uint32_t)swiftvtd_mmio_read(unit, 0x1C, 4);
        if (!(fsts & (1u << 4)) && (gsts & (1u << 26)) && g.window_writes == 0) {
            FUZZ_CHECK(swiftvtd_mmio_read(unit, 0x80, 8) == swiftvtd_mmio_read(unit, 0x88, 8));
        }
        Observation after;
        observe(unit, &after);
        if (!g.watch_hit) {
            check_unchanged(&before, &after);
        }
        /* As a driver recovers: clear the queue errors (IQE, ICE, ITE) and go on. */
        swiftvtd_mmio_write(unit, 0x34, fsts & 0x70, 4);
    }
    swiftvtd_destroy(unit);
    return 0;
}
