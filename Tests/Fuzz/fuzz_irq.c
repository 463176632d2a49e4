/* Fuzz target: interrupt remapping. The interrupt remapping table comes from the fuzz bytes;
 * remapping is enabled the way a driver does it (IRTA, SIRTP, IRE), then the requests in the
 * input are remapped. Each request is remapped twice: the answer may not change between a
 * table read and a cache hit.
 * Input: setup, IRTA.S, request count, requests (sid, address, data, mode), table bytes. */
#include "fuzz_guest.h"

#define IRT_BASE 0x10000u
#define MAX_REQUESTS 16

typedef struct Request {
    uint16_t sid;
    uint8_t mode;
    swiftvtd_msi msi;
} Request;

enum { SETUP_CFI = 0x08, SETUP_ALIASED = 0x10, SETUP_REENTER = 0x20, SETUP_EIME = 0x40 };
enum { MODE_RAW_ADDRESS = 1, MODE_PROBE = 2 };

static int remap(swiftvtd_t *unit, const Request *r, uint32_t flags, swiftvtd_msi *out)
{
    memset(out, 0xA5, sizeof(*out));
    int result = swiftvtd_interrupt_remap(unit, r->sid, &r->msi, out, flags);
    if (result == SWIFTVTD_IRQ_REMAPPED) {
        FUZZ_CHECK((out->address & 0xFFF00000u) == 0xFEE00000u && out->reserved == 0);
    } else if (result == SWIFTVTD_IRQ_PASSTHROUGH) {
        FUZZ_CHECK(memcmp(out, &r->msi, sizeof(*out)) == 0);
    } else {
        FUZZ_CHECK(result >= SWIFTVTD_IRQ_FAULT_FIRST && result <= SWIFTVTD_IRQ_FAULT_LAST);
    }
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FuzzInput in = { data, size, 0 };
    uint8_t setup = fuzz_u8(&in);
    uint8_t table_size = fuzz_u8(&in) % 16;
    int count = fuzz_u8(&in) % MAX_REQUESTS + 1;
    Request requests[MAX_REQUESTS];
    for (int i = 0; i < count; i++) {
        requests[i].sid = fuzz_u16(&in);
        uint32_t address = fuzz_u32(&in);
        requests[i].msi = (swiftvtd_msi){ .data = fuzz_u32(&in) };
        requests[i].mode = fuzz_u8(&in);
        requests[i].msi.address = (requests[i].mode & MODE_RAW_ADDRESS) ? address : (0xFEE00000u | (address & 0xFFFFF));
    }

    FuzzGuest g;
    fuzz_guest_init(&g, (setup & SETUP_ALIASED) ? FUZZ_RAM_SIZE : 0, setup & SETUP_REENTER);
    swiftvtd_t *unit = fuzz_create(&g, setup);
    size_t table_bytes = size - in.pos < FUZZ_RAM_SIZE - IRT_BASE ? size - in.pos : FUZZ_RAM_SIZE - IRT_BASE;
    if (in.pos < size) {
        memcpy(g.ram + IRT_BASE, data + in.pos, table_bytes);
    }

    uint64_t eime = (setup & SETUP_EIME) ? 1u << 11 : 0;
    swiftvtd_mmio_write(unit, 0xB8, IRT_BASE | eime | table_size, 8); /* IRTA */
    swiftvtd_mmio_write(unit, 0x38, 0, 4);                             /* FECTL: fault events on */
    fuzz_gcmd(unit, 1u << 24, 0);                                      /* SIRTP */
    fuzz_gcmd(unit, (1u << 25) | ((setup & SETUP_CFI) ? 1u << 23 : 0), 0); /* IRE, CFI */

    for (int i = 0; i < count; i++) {
        const Request *r = &requests[i];
        swiftvtd_msi first, again;
        int result = remap(unit, r, (r->mode & MODE_PROBE) ? SWIFTVTD_IRQ_NO_FAULT : 0, &first);
        FUZZ_CHECK(remap(unit, r, SWIFTVTD_IRQ_NO_FAULT, &again) == result);
        if (result == SWIFTVTD_IRQ_REMAPPED) {
            FUZZ_CHECK(first.address == again.address && first.data == again.data);
        }
    }
    swiftvtd_destroy(unit);
    return 0;
}
