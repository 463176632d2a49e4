/* Fuzz target: guest tables under translate. The fuzz bytes are guest RAM from address 0, where
 * the root table is latched (legacy, scalable or a blocking mode); context, PASID and page tables
 * are wherever the fuzz bytes point. With aliasing, RAM repeats every 4, 16 or 64 KiB, so any
 * pointer lands on fuzz bytes and walks go deep.
 *
 * Oracle: the requests run once with caches warming up as they go, then each again alone on a
 * unit whose caches were just emptied (reset). While no table byte changed (no accessed/dirty
 * update, no write at all), a translation served from a cache must be one a fresh walk gives:
 * same outcome, same fault reason, same output page, and no permission the walk does not grant.
 *
 * Replay (the MAP events for every present translation) must then end and report what it sent.
 *
 * Input: configuration, mode (TTM, TE off, aliasing, re-entrant callbacks), request count,
 * requests (sid, pasid, address, access, flags), then RAM. */
#include <stdio.h>
#include "fuzz_guest.h"

#define MAX_REQUESTS 8

enum { MODE_TTM = 0x03, MODE_TE_OFF = 0x04, MODE_ALIAS = 0x18, MODE_REENTER = 0x20 };

static const uint64_t alias_sizes[] = { 0, 4096, 16384, 65536 };

static void enable(swiftvtd_t *unit, uint8_t mode)
{
    swiftvtd_mmio_write(unit, 0x38, 0, 4);                           /* FECTL: fault events on */
    swiftvtd_mmio_write(unit, 0x20, (uint64_t)(mode & MODE_TTM) << 10, 8); /* RTADDR 0, TTM */
    fuzz_gcmd(unit, 1u << 30, 0);                                   /* SRTP */
    if (!(mode & MODE_TE_OFF)) {
        fuzz_gcmd(unit, 1u << 31, 0);                               /* TE */
    }
}

static swiftvtd_translation translate(swiftvtd_t *unit, const swiftvtd_translate_request *req)
{
    swiftvtd_translation out;
    memset(&out, 0xA5, sizeof(out));
    FUZZ_CHECK(swiftvtd_translate(unit, req, &out) == SWIFTVTD_OK);
    FUZZ_CHECK(out.kind == SWIFTVTD_XLATE_OK || out.kind == SWIFTVTD_XLATE_FAULT);
    if (out.kind == SWIFTVTD_XLATE_OK) {
        /* 4 KiB, 2 MiB or 1 GiB pages, the request's offset kept. */
        FUZZ_CHECK(out.page_mask == ~0xFFFull || out.page_mask == ~0x1FFFFFull || out.page_mask == ~0x3FFFFFFFull);
        FUZZ_CHECK((out.translated & ~out.page_mask) == (req->addr & ~out.page_mask));
        FUZZ_CHECK(out.identity <= 1 && (out.perm & ~7u) == 0);
        if (!(req->flags & SWIFTVTD_REQ_ATS)) {
            uint32_t asked = req->access & (SWIFTVTD_PERM_READ | SWIFTVTD_PERM_WRITE);
            FUZZ_CHECK((out.perm & asked) == asked);
        }
    }
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, 0 };
    uint8_t config = fuzz_u8(&in);
    uint8_t mode = fuzz_u8(&in);
    int count = fuzz_u8(&in) % MAX_REQUESTS + 1;
    swiftvtd_translate_request requests[MAX_REQUESTS];
    for (int i = 0; i < count; i++) {
        /* One field a statement: initialiser expressions are unsequenced in C. */
        uint32_t pasid = fuzz_u32(&in);
        requests[i] = (swiftvtd_translate_request){ .pasid = (pasid & 0x80000000u) ? SWIFTVTD_NO_PASID : pasid & 0xFFFFF };
        requests[i].sid = fuzz_u16(&in);
        requests[i].addr = fuzz_u64(&in);
        uint8_t access = fuzz_u8(&in);
        requests[i].access = access & 7 ? access & 7 : SWIFTVTD_ACCESS_READ;
        requests[i].flags = (access >> 3) & 7;
    }

    FuzzGuest g;
    fuzz_guest_init(&g, alias_sizes[(mode & MODE_ALIAS) >> 3], mode & MODE_REENTER);
    size_t ram_bytes = size - in.pos < FUZZ_RAM_SIZE ? size - in.pos : FUZZ_RAM_SIZE;
    if (ram_bytes) {
        memcpy(g.ram, data + in.pos, ram_bytes);
    }
    g.watch_start = 0;
    g.watch_end = FUZZ_RAM_SIZE;

    swiftvtd_t *unit = fuzz_create(&g, config);
    enable(unit, mode);
    swiftvtd_translation warm[MAX_REQUESTS];
    for (int i = 0; i < count; i++) {
        warm[i] = translate(unit, &requests[i]);
        if (getenv("FUZZ_VERBOSE")) { /* to check a seed: FUZZ_VERBOSE=1 fuzz-translate FILE */
            fprintf(stderr, "request %d: sid %04x pasid %x addr %llx -> %s %llx reason %#x\n", i, requests[i].sid,
                    requests[i].pasid, (unsigned long long)requests[i].addr, warm[i].kind ? "fault" : "ok",
                    (unsigned long long)warm[i].translated, warm[i].fault_reason);
        }
    }
    for (int i = 0; i < count && !g.watch_hit; i++) {
        swiftvtd_reset(unit);
        enable(unit, mode);
        swiftvtd_translation fresh = translate(unit, &requests[i]);
        if (g.watch_hit) {
            break;
        }
        FUZZ_CHECK(warm[i].kind == fresh.kind);
        if (fresh.kind == SWIFTVTD_XLATE_FAULT) {
            FUZZ_CHECK(warm[i].fault_reason == fresh.fault_reason);
        } else {
            FUZZ_CHECK(warm[i].translated == fresh.translated && warm[i].page_mask == fresh.page_mask);
            FUZZ_CHECK(warm[i].identity == fresh.identity);
            FUZZ_CHECK((warm[i].perm & ~fresh.perm) == 0);
        }
    }
    /* Replay walks whole tables, which the guest wrote: it must end whatever they hold (self-
     * referencing tables, every entry present). Callbacks do not re-enter here: QEMU replays
     * from the host side, and millions of re-entrant probes would only slow the run. */
    g.reenter = 0;
    for (int i = 0; i < count; i++) {
        uint64_t before = g.events;
        int mapped = swiftvtd_replay(unit, requests[i].sid, requests[i].pasid);
        FUZZ_CHECK(mapped >= 0 && g.events - before == (uint64_t)mapped);
    }
    swiftvtd_destroy(unit);
    return 0;
}
