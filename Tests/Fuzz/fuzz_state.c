/* Fuzz target: migration blobs. The fuzz bytes become the fields of a state blob (latched
 * pointers, next fault record, every register word) that passes the envelope checks: the harness
 * writes the magic, version, length and checksum and the unit's own VER/CAP/ECAP, so the fuzzer
 * spends its time on what a forged or damaged stream could carry inside.
 *
 * Oracle: a blob the unit takes is the unit's state: saving right away gives the same bytes
 * back. Then the unit must survive use from that state: translations, interrupts, a page
 * request, a queue run, the dump, a reset.
 *
 * Input: configuration, flags (bit 0: a root table is latched; bit 1: aliased RAM; bit 2:
 * re-entrant callbacks), root address, root mode, next fault record, IRTA, register words. */
#include "fuzz_guest.h"

#define HEADER 24
#define FIXED 72

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) {
            crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
    }
    return ~crc;
}

static void put(uint8_t *blob, size_t offset, uint64_t value, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        blob[offset + i] = (uint8_t)(value >> (8 * i));
    }
}

static void use(swiftvtd_t *unit, FuzzInput *in)
{
    for (int i = 0; i < 4; i++) {
        /* Fields read one statement at a time: initialiser expressions are unsequenced in C. */
        swiftvtd_translate_request req = { .access = SWIFTVTD_ACCESS_READ };
        req.sid = fuzz_u16(in);
        req.pasid = i & 1 ? fuzz_u32(in) & 0xFFFFF : SWIFTVTD_NO_PASID;
        req.addr = fuzz_u64(in);
        swiftvtd_translation out;
        FUZZ_CHECK(swiftvtd_translate(unit, &req, &out) == SWIFTVTD_OK);
        swiftvtd_msi msi = { 0 }, remapped;
        msi.address = 0xFEE00000u | (fuzz_u32(in) & 0xFFFFF);
        msi.data = fuzz_u32(in);
        FUZZ_CHECK(swiftvtd_interrupt_remap(unit, fuzz_u16(in), &msi, &remapped, 0) >= 0);
    }
    swiftvtd_pri_request pri = { .size = sizeof(pri), .sid = 0x10, .prg_index = 1, .pasid = 1,
                                 .flags = SWIFTVTD_PRQ_READ | SWIFTVTD_PRQ_LAST, .addr = 0x1000 };
    int r = swiftvtd_page_request(unit, &pri);
    FUZZ_CHECK(r == SWIFTVTD_PRQ_QUEUED || r == SWIFTVTD_PRQ_DROPPED || r == SWIFTVTD_EUNSUPPORTED);
    /* Whatever the queue registers say, one more tail write runs it from there. */
    swiftvtd_mmio_write(unit, 0x88, swiftvtd_mmio_read(unit, 0x88, 8) + 16, 8);
    swiftvtd_mmio_write(unit, 0x34, 0xFFFFFFFFu, 4); /* clear every RW1C status bit */
    size_t needed = 0;
    FUZZ_CHECK(swiftvtd_dump_state(unit, NULL, 0, &needed) == SWIFTVTD_ENOSPC && needed > 0);
    char *text = malloc(needed + 4096);
    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(swiftvtd_dump_state(unit, text, needed + 4096, &needed) == SWIFTVTD_OK);
    FUZZ_CHECK(strlen(text) + 1 == needed);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, 0 };
    uint8_t config = fuzz_u8(&in);
    uint8_t flags = fuzz_u8(&in);
    FuzzGuest g;
    fuzz_guest_init(&g, (flags & 2) ? 65536 : 0, flags & 4);
    swiftvtd_t *unit = fuzz_create(&g, config);

    size_t window = swiftvtd_mmio_size(unit);
    size_t length = FIXED + window;
    uint8_t *blob = calloc(1, length);
    FUZZ_CHECK(blob != NULL);
    memcpy(blob, "SWVTDSTA", 8);
    put(blob, 8, SWIFTVTD_STATE_VERSION, 4);
    put(blob, 12, length, 4);
    put(blob, 24, swiftvtd_mmio_read(unit, 0x08, 8), 8);
    put(blob, 32, swiftvtd_mmio_read(unit, 0x10, 8), 8);
    put(blob, 40, window, 4);
    put(blob, 44, flags & 1, 4);
    uint64_t root = fuzz_u64(&in) & ~0xFFFull;
    uint8_t mode = fuzz_u8(&in) & 3;
    put(blob, 48, (flags & 1) ? root : 0, 8);
    put(blob, 56, (flags & 1) ? mode : 0, 4);
    put(blob, 60, fuzz_u8(&in), 4);
    put(blob, 64, fuzz_u64(&in), 8);
    for (size_t offset = 0; offset < window; offset += 4) {
        put(blob, FIXED + offset, fuzz_u32(&in), 4);
    }
    /* VER, CAP and ECAP are the unit's own: a blob with others is refused before anything. */
    for (size_t offset = 0; offset < 0x18; offset += 4) {
        put(blob, FIXED + offset, swiftvtd_mmio_read(unit, offset, 4), 4);
    }
    put(blob, 16, crc32(blob + HEADER, length - HEADER), 4);

    char err[256];
    int r = swiftvtd_load_state(unit, blob, length, err, sizeof(err));
    FUZZ_CHECK(r == SWIFTVTD_OK || r == SWIFTVTD_EINVAL);
    if (r == SWIFTVTD_OK) {
        uint8_t *again = malloc(length);
        size_t needed = 0;
        FUZZ_CHECK(again != NULL);
        FUZZ_CHECK(swiftvtd_save_state(unit, again, length, &needed) == SWIFTVTD_OK && needed == length);
        FUZZ_CHECK(memcmp(again, blob, length) == 0);
        free(again);
    } else {
        FUZZ_CHECK(strstr(err, "invalid") != NULL);
    }
    use(unit, &in);
    swiftvtd_reset(unit);
    use(unit, &in);
    free(blob);
    swiftvtd_destroy(unit);
    return 0;
}
