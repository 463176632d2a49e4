/* Fuzz target: page requests. A unit with page requests on (configuration 4) gets a page
 * request queue whose PQA, PQH, PQT and event control come from the fuzz bytes, then a program
 * of device page requests mixed with the guest's register writes (PRS, PQH, PQT, PQA, PECTL) and
 * a root table (RTADDR, SRTP, TE) and RAM writes, so requests also meet the context entries the
 * input builds.
 * Promises checked: every call answers one of the header's codes, a queued request moves PQT
 * by exactly one descriptor inside the queue, PQT never leaves the queue.
 * Input: setup, PQA, PQH, PQT, PECTL, then ops until the input ends. */
#include "fuzz_guest.h"

enum { SETUP_ALIASED = 0x10, SETUP_REENTER = 0x20 };
enum { OP_REQUEST, OP_PRS, OP_PQH, OP_PQT, OP_PQA, OP_PECTL, OP_ROOT, OP_POKE, OP_COUNT };
#define MAX_OPS 256

static uint64_t queue_bytes(swiftvtd_t *unit)
{
    return 4096ull << (swiftvtd_mmio_read(unit, 0xD0, 8) & 7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, 0 };
    uint8_t setup = fuzz_u8(&in);
    FuzzGuest g;
    fuzz_guest_init(&g, (setup & SETUP_ALIASED) ? FUZZ_RAM_SIZE : 0, setup & SETUP_REENTER);
    swiftvtd_t *unit = fuzz_create(&g, 4);

    swiftvtd_mmio_write(unit, 0xD0, fuzz_u64(&in), 8); /* PQA */
    swiftvtd_mmio_write(unit, 0xC0, fuzz_u64(&in), 8); /* PQH */
    swiftvtd_mmio_write(unit, 0xC8, fuzz_u64(&in), 8); /* PQT */
    swiftvtd_mmio_write(unit, 0xE4, 0x41, 4);          /* PEDATA */
    swiftvtd_mmio_write(unit, 0xE8, 0xFEE00000, 4);    /* PEADDR */
    swiftvtd_mmio_write(unit, 0xE0, fuzz_u32(&in), 4); /* PECTL */

    for (int op = 0; op < MAX_OPS && fuzz_more(&in); op++) {
        switch (fuzz_u8(&in) % OP_COUNT) {
        case OP_REQUEST: {
            swiftvtd_pri_request r = { .size = sizeof(r) };
            r.sid = fuzz_u16(&in);
            r.prg_index = fuzz_u16(&in) & 0x3FF; /* now and then over 9 bits */
            r.pasid = fuzz_u8(&in) & 1 ? SWIFTVTD_NO_PASID : fuzz_u32(&in) & 0x1FFFFF;
            r.flags = fuzz_u8(&in) & 0x3F;       /* now and then an unknown flag */
            r.addr = fuzz_u64(&in);
            uint64_t tail = swiftvtd_mmio_read(unit, 0xC8, 8);
            int result = swiftvtd_page_request(unit, &r);
            FUZZ_CHECK(result == SWIFTVTD_PRQ_QUEUED || result == SWIFTVTD_PRQ_DROPPED || result == SWIFTVTD_EINVAL);
            if (result == SWIFTVTD_PRQ_QUEUED) {
                uint64_t bytes = queue_bytes(unit);
                FUZZ_CHECK(swiftvtd_mmio_read(unit, 0xC8, 8) == (tail % bytes + 32) % bytes);
                FUZZ_CHECK(swiftvtd_mmio_read(unit, 0xDC, 4) & 1); /* PPR */
            }
            break;
        }
        case OP_PRS:
            swiftvtd_mmio_write(unit, 0xDC, fuzz_u8(&in), 4);
            break;
        case OP_PQH:
            swiftvtd_mmio_write(unit, 0xC0, fuzz_u32(&in), 8);
            break;
        case OP_PQT:
            swiftvtd_mmio_write(unit, 0xC8, fuzz_u32(&in), 8);
            break;
        case OP_PQA:
            swiftvtd_mmio_write(unit, 0xD0, fuzz_u32(&in), 8);
            break;
        case OP_PECTL:
            swiftvtd_mmio_write(unit, 0xE0, fuzz_u32(&in), 4);
            break;
        case OP_ROOT: /* remapping on over a root table somewhere in (or outside) RAM */
            swiftvtd_mmio_write(unit, 0x20, fuzz_u32(&in) & ~0x3FFull, 8); /* RTADDR, TTM from the bytes */
            fuzz_gcmd(unit, 1u << 30, 0);                                    /* SRTP */
            fuzz_gcmd(unit, 1u << 31, 0);                                    /* TE */
            break;
        case OP_POKE: { /* the guest writes a quadword of RAM: root and context entries, queue */
            uint64_t gpa = ((uint64_t)fuzz_u16(&in) << 3) % FUZZ_RAM_SIZE;
            uint64_t value = fuzz_u64(&in);
            memcpy(g.ram + gpa, &value, 8);
            break;
        }
        }
        uint64_t tail = swiftvtd_mmio_read(unit, 0xC8, 8);
        FUZZ_CHECK((tail & ~0x7FFE0ull) == 0);
    }
    swiftvtd_destroy(unit);
    return 0;
}
