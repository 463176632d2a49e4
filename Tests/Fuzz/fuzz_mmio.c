/* Fuzz target: register sequences. The input is a guest driver gone wrong: one setup byte (which
 * configuration, aliased RAM, re-entrant callbacks), then operations on the register window,
 * on guest RAM (so the fuzzer can build the tables and queues its register writes point at),
 * and the requests devices make: DMA, interrupts, page requests; now and then a reset, or a
 * migration round trip and a dump. */
#include "fuzz_guest.h"

enum {
    OP_WRITE32, OP_WRITE64, OP_READ, OP_STORE_RAM, OP_COMMAND, OP_INTERRUPT, OP_ODD_ACCESS, OP_DEVICE,
};

#define MAX_STEPS 1024

/* Most offsets land on a register, naturally aligned; with `raw` any 16-bit offset goes. */
static uint64_t pick_offset(swiftvtd_t *unit, uint16_t value, unsigned width, int raw)
{
    if (raw) {
        return value;
    }
    uint64_t slots = swiftvtd_mmio_size(unit) / width;
    return (value % slots) * width;
}

static void command(swiftvtd_t *unit, uint8_t which)
{
    /* TE SRTP SFL EAFL WBF QIE IRE SIRTP CFI */
    static const uint8_t bits[] = { 31, 30, 29, 28, 27, 26, 25, 24, 23 };
    uint32_t bit = 1u << bits[which % sizeof(bits)];
    uint32_t status = (uint32_t)swiftvtd_mmio_read(unit, 0x1C, 4);
    if (status & bit & FUZZ_GCMD_KEPT) {
        fuzz_gcmd(unit, 0, bit);
    } else {
        fuzz_gcmd(unit, bit, 0);
    }
}

static void interrupt(FuzzInput *in, swiftvtd_t *unit, uint8_t op)
{
    uint16_t sid = fuzz_u16(in);
    uint32_t low = fuzz_u32(in);
    swiftvtd_msi msi = { .address = (op & 0x10) ? low : (0xFEE00000u | (low & 0xFFFFF)), .data = fuzz_u32(in) };
    swiftvtd_msi out;
    int r = swiftvtd_interrupt_remap(unit, sid, &msi, &out, (op & 0x20) ? SWIFTVTD_IRQ_NO_FAULT : 0);
    FUZZ_CHECK(r == SWIFTVTD_IRQ_REMAPPED || r == SWIFTVTD_IRQ_PASSTHROUGH
               || (r >= SWIFTVTD_IRQ_FAULT_FIRST && r <= SWIFTVTD_IRQ_FAULT_LAST));
}

static void translate(FuzzInput *in, swiftvtd_t *unit, uint8_t op)
{
    /* Fields read one statement at a time: initialiser expressions are unsequenced in C. */
    swiftvtd_translate_request req = { .access = (op >> 4) & 3 ? (op >> 4) & 3 : SWIFTVTD_ACCESS_READ };
    req.sid = fuzz_u16(in);
    req.flags = fuzz_u8(in) & 7;
    req.pasid = (op & 0x40) ? fuzz_u32(in) : SWIFTVTD_NO_PASID;
    req.addr = fuzz_u64(in);
    swiftvtd_translation out;
    int r = swiftvtd_translate(unit, &req, &out);
    FUZZ_CHECK(r == SWIFTVTD_OK || r == SWIFTVTD_EINVAL);
    if (r == SWIFTVTD_OK) {
        FUZZ_CHECK(out.kind == SWIFTVTD_XLATE_OK || out.kind == SWIFTVTD_XLATE_FAULT);
    }
}

static void page_request(FuzzInput *in, swiftvtd_t *unit)
{
    swiftvtd_pri_request req = { .size = sizeof(req) };
    req.sid = fuzz_u16(in);
    req.prg_index = fuzz_u16(in) % 520;
    req.pasid = fuzz_u32(in);
    req.flags = fuzz_u8(in) & 0x3F;
    req.addr = fuzz_u64(in);
    int r = swiftvtd_page_request(unit, &req);
    FUZZ_CHECK(r == SWIFTVTD_PRQ_QUEUED || r == SWIFTVTD_PRQ_DROPPED || r == SWIFTVTD_EUNSUPPORTED
               || r == SWIFTVTD_EINVAL);
}

/* Mid-sequence, whatever the guest has done: the state saves, loads back into the same unit and
 * saves again to the same bytes, and the dump renders. */
static void migrate_and_dump(swiftvtd_t *unit)
{
    size_t length = 0, again = 0;
    FUZZ_CHECK(swiftvtd_save_state(unit, NULL, 0, &length) == SWIFTVTD_ENOSPC);
    uint8_t *blob = malloc(length), *second = malloc(length);
    FUZZ_CHECK(blob && second);
    FUZZ_CHECK(swiftvtd_save_state(unit, blob, length, NULL) == SWIFTVTD_OK);
    char err[256];
    FUZZ_CHECK(swiftvtd_load_state(unit, blob, length, err, sizeof(err)) == SWIFTVTD_OK);
    FUZZ_CHECK(swiftvtd_save_state(unit, second, length, &again) == SWIFTVTD_OK && again == length);
    FUZZ_CHECK(memcmp(blob, second, length) == 0);
    free(blob);
    free(second);
    size_t needed = 0;
    FUZZ_CHECK(swiftvtd_dump_state(unit, NULL, 0, &needed) == SWIFTVTD_ENOSPC);
    char *text = malloc(needed + 1024); /* the text may grow between calls, not by much */
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(swiftvtd_dump_state(unit, text, needed + 1024, NULL) == SWIFTVTD_OK);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, 0 };
    uint8_t setup = fuzz_u8(&in);
    FuzzGuest g;
    fuzz_guest_init(&g, (setup & 0x10) ? FUZZ_RAM_SIZE : 0, setup & 0x20);
    swiftvtd_t *unit = fuzz_create(&g, setup);
    const uint64_t window = swiftvtd_mmio_size(unit);

    for (int step = 0; step < MAX_STEPS && fuzz_more(&in); step++) {
        uint8_t op = fuzz_u8(&in);
        switch (op & 7) {
        case OP_WRITE32:
            swiftvtd_mmio_write(unit, pick_offset(unit, fuzz_u16(&in), 4, op & 8), fuzz_u32(&in), 4);
            break;
        case OP_WRITE64:
            swiftvtd_mmio_write(unit, pick_offset(unit, fuzz_u16(&in), 8, op & 8), fuzz_u64(&in), 8);
            break;
        case OP_READ: {
            unsigned width = (op & 0x10) ? 8 : 4;
            uint64_t offset = pick_offset(unit, fuzz_u16(&in), width, op & 8);
            uint64_t value = swiftvtd_mmio_read(unit, offset, width);
            if (offset == 0x18) {
                FUZZ_CHECK((uint32_t)value == 0); /* GCMD is write-only (a 64-bit read has GSTS above) */
            }
            break;
        }
        case OP_STORE_RAM: {
            uint64_t gpa = (uint64_t)fuzz_u16(&in) * 8;
            uint64_t value = fuzz_u64(&in);
            uint8_t *p = fuzz_ram(&g, gpa, 8);
            if (p) {
                memcpy(p, &value, 8);
            }
            break;
        }
        case OP_COMMAND:
            command(unit, fuzz_u8(&in));
            break;
        case OP_INTERRUPT:
            interrupt(&in, unit, op);
            break;
        case OP_ODD_ACCESS: {
            /* Widths and offsets the window refuses: ignored, and reads give 0. */
            unsigned width = fuzz_u8(&in) % 17;
            uint64_t offset = (op & 0x80) ? fuzz_u64(&in) : fuzz_u16(&in);
            int refused = !(width == 4 || width == 8) || offset % width != 0 || offset >= window
                          || width > window - offset;
            if (op & 0x08) {
                uint64_t value = swiftvtd_mmio_read(unit, offset, width);
                FUZZ_CHECK(!refused || value == 0);
            } else if (refused) {
                swiftvtd_mmio_write(unit, offset, fuzz_u64(&in), width);
            }
            if (op & 0x40) {
                swiftvtd_reset(unit);
            }
            if (op & 0x20) {
                migrate_and_dump(unit);
            }
            break;
        }
        case OP_DEVICE:
            if (op & 0x08) {
                page_request(&in, unit);
            } else {
                translate(&in, unit, op);
            }
            break;
        }
        FUZZ_CHECK(swiftvtd_mmio_size(unit) == window);
    }
    swiftvtd_destroy(unit);
    return 0;
}
