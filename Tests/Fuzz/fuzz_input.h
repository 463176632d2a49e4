/* Reading a fuzz input: little-endian fields that read as zero past the end (so every input is
 * a valid program), and the unit configurations a target can ask for with one byte. */
#ifndef SWIFTVTD_FUZZ_INPUT_H
#define SWIFTVTD_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include "swiftvtd.h"

typedef struct FuzzInput {
    const uint8_t *data;
    size_t size;
    size_t pos;
} FuzzInput;

static inline int fuzz_more(const FuzzInput *in)
{
    return in->pos < in->size;
}

static inline uint64_t fuzz_take(FuzzInput *in, unsigned bytes)
{
    uint64_t value = 0;
    for (unsigned i = 0; i < bytes; i++) {
        uint64_t byte = in->pos < in->size ? in->data[in->pos++] : 0;
        value |= byte << (8 * i);
    }
    return value;
}

static inline uint8_t fuzz_u8(FuzzInput *in) { return (uint8_t)fuzz_take(in, 1); }
static inline uint16_t fuzz_u16(FuzzInput *in) { return (uint16_t)fuzz_take(in, 2); }
static inline uint32_t fuzz_u32(FuzzInput *in) { return (uint32_t)fuzz_take(in, 4); }
static inline uint64_t fuzz_u64(FuzzInput *in) { return fuzz_take(in, 8); }

/* Configurations worth fuzzing, all valid: the modes a guest can meet, from QEMU's defaults to
 * everything on. A small IOTLB makes eviction part of every run. */
static inline void fuzz_config(uint8_t selector, swiftvtd_config *cfg)
{
    swiftvtd_config_init(cfg);
    cfg->iotlb_capacity = 16;
    switch (selector % 8) {
    case 0: /* QEMU's defaults: legacy tables, interrupt remapping in xAPIC mode */
        break;
    case 1: /* legacy, caching mode (shadowing hosts), x2APIC */
        cfg->caching_mode = 1;
        cfg->eim = 1;
        cfg->device_iotlb = 1;
        break;
    case 2: /* scalable mode, second level only */
        cfg->scalable_mode = 1;
        cfg->pasid = 1;
        cfg->fault_records = 4;
        break;
    case 3: /* scalable mode, first level (the Linux guest's choice) */
        cfg->scalable_mode = 1;
        cfg->flts = 1;
        cfg->pasid = 1;
        cfg->eim = 1;
        break;
    case 4: /* everything: both levels, nesting, page requests, several fault records */
        cfg->scalable_mode = 1;
        cfg->flts = 1;
        cfg->slts = 1;
        cfg->nesting = 1;
        cfg->pasid = 1;
        cfg->page_requests = 1;
        cfg->device_iotlb = 1;
        cfg->fault_records = 8;
        cfg->eim = 1;
        break;
    case 5: /* a unit that translates nothing and remaps no interrupts */
        cfg->dma_translation = 0;
        cfg->pt = 0;
        cfg->intremap = 0;
        break;
    case 6: /* five-level first-level tables */
        cfg->aw_bits = 57;
        cfg->scalable_mode = 1;
        cfg->flts = 1;
        cfg->fs5lp = 1;
        cfg->pasid = 1;
        cfg->pasid_bits = 8;
        break;
    case 7: /* narrow address width, many fault records, snoop control */
        cfg->aw_bits = 39;
        cfg->fault_records = 256;
        cfg->snoop_control = 1;
        cfg->iotlb_capacity = 64;
        break;
    }
}

#endif
