/* C ABI test: loads libSwiftVTd.so with GModule the way QEMU's glue does and drives it
 * through the public header only. */
#include <glib.h>
#include <gmodule.h>
#include <string.h>
#include "swiftvtd.h"

typedef struct Api {
    uint32_t (*abi_version)(void);
    void (*config_init)(swiftvtd_config *);
    swiftvtd_t *(*create)(const swiftvtd_config *, const swiftvtd_host_ops *, char *, size_t);
    void (*destroy)(swiftvtd_t *);
    void (*reset)(swiftvtd_t *);
    uint64_t (*mmio_size)(const swiftvtd_t *);
    uint64_t (*mmio_read)(swiftvtd_t *, uint64_t, unsigned);
    void (*mmio_write)(swiftvtd_t *, uint64_t, uint64_t, unsigned);
    int (*interrupt_remap)(swiftvtd_t *, uint16_t, const swiftvtd_msi *, swiftvtd_msi *, uint32_t);
    int (*page_request)(swiftvtd_t *, const swiftvtd_pri_request *);
    int (*translate)(swiftvtd_t *, const swiftvtd_translate_request *, swiftvtd_translation *);
    int (*save_state)(swiftvtd_t *, void *, size_t, size_t *);
    int (*load_state)(swiftvtd_t *, const void *, size_t, char *, size_t);
    int (*dump_state)(swiftvtd_t *, char *, size_t, size_t *);
    int (*host_device_attach)(swiftvtd_t *, uint16_t, const swiftvtd_host_device *, char *, size_t);
    int (*host_device_detach)(swiftvtd_t *, uint16_t);
    int (*machine_done)(swiftvtd_t *, uint32_t, char *, size_t);
    int (*dma_view)(swiftvtd_t *, uint16_t);
    int (*set_trace_kinds)(swiftvtd_t *, uint32_t);
} Api;

static Api api;
static GModule *module;

/* A guest with 1 MiB of RAM at address 0 and a log of the MSIs it received. */
typedef struct Guest {
    uint8_t ram[1 << 20];
    int msi_count;
    uint64_t last_msi_address;
    uint32_t last_msi_data;
    int guest_errors;
    char last_log[256];
} Guest;

static int guest_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    Guest *g = opaque;
    if (gpa > sizeof(g->ram) || len > sizeof(g->ram) - gpa) {
        return -1;
    }
    memcpy(buf, g->ram + gpa, len);
    return 0;
}

static int guest_write(void *opaque, uint64_t gpa, const void *buf, uint64_t len)
{
    Guest *g = opaque;
    if (gpa > sizeof(g->ram) || len > sizeof(g->ram) - gpa) {
        return -1;
    }
    memcpy(g->ram + gpa, buf, len);
    return 0;
}

static void guest_msi(void *opaque, uint64_t address, uint32_t data)
{
    Guest *g = opaque;
    g->msi_count++;
    g->last_msi_address = address;
    g->last_msi_data = data;
}

static void guest_log(void *opaque, int level, const char *message)
{
    Guest *g = opaque;
    if (level == SWIFTVTD_LOG_GUEST_ERROR) {
        g->guest_errors++;
    }
    g_strlcpy(g->last_log, message, sizeof(g->last_log));
}

static swiftvtd_host_ops guest_ops(Guest *g)
{
    swiftvtd_host_ops ops = { .size = sizeof(ops), .opaque = g,
                              .dma_read = guest_read, .dma_write = guest_write,
                              .send_msi = guest_msi, .log = guest_log };
    return ops;
}

/* Register offsets and bits (VT-d spec 10.4), as QEMU lays them out. */
enum {
    REG_VER = 0x00, REG_CAP = 0x08, REG_ECAP = 0x10, REG_GCMD = 0x18, REG_GSTS = 0x1C,
    REG_RTADDR = 0x20, REG_FSTS = 0x34, REG_FECTL = 0x38, REG_FEDATA = 0x3C, REG_FEADDR = 0x40,
    REG_IQH = 0x80, REG_IQT = 0x88, REG_IQA = 0x90, REG_ICS = 0x9C, REG_IECTL = 0xA0, REG_IEDATA = 0xA4,
    REG_IEADDR = 0xA8, REG_IQERCD = 0xB0,
};
#define GCMD_TE (1u << 31)
#define GCMD_SRTP (1u << 30)
#define GCMD_QIE (1u << 26)
#define FSTS_IQE (1u << 4)
#define FECTL_IM (1u << 31)
#define FECTL_IP (1u << 30)

static swiftvtd_t *create_unit(Guest *g, void (*configure)(swiftvtd_config *))
{
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg;
    char err[256] = "";
    api.config_init(&cfg);
    if (configure) {
        configure(&cfg);
    }
    swiftvtd_t *unit = api.create(&cfg, &ops, err, sizeof(err));
    if (!unit) {
        g_error("swiftvtd_create: %s", err);
    }
    return unit;
}

static void load_library(void)
{
    const char *path = g_getenv("SWIFTVTD_LIBRARY");
    g_assert_nonnull(path);
    module = g_module_open(path, G_MODULE_BIND_LOCAL);
    if (!module) {
        g_error("g_module_open(%s): %s", path, g_module_error());
    }
#define SYM(field, name) g_assert_true(g_module_symbol(module, name, (gpointer *)&api.field))
    SYM(abi_version, "swiftvtd_abi_version");
    SYM(config_init, "swiftvtd_config_init");
    SYM(create, "swiftvtd_create");
    SYM(destroy, "swiftvtd_destroy");
    SYM(reset, "swiftvtd_reset");
    SYM(mmio_size, "swiftvtd_mmio_size");
    SYM(mmio_read, "swiftvtd_mmio_read");
    SYM(mmio_write, "swiftvtd_mmio_write");
    SYM(interrupt_remap, "swiftvtd_interrupt_remap");
    SYM(page_request, "swiftvtd_page_request");
    SYM(translate, "swiftvtd_translate");
    SYM(save_state, "swiftvtd_save_state");
    SYM(load_state, "swiftvtd_load_state");
    SYM(dump_state, "swiftvtd_dump_state");
    SYM(host_device_attach, "swiftvtd_host_device_attach");
    SYM(host_device_detach, "swiftvtd_host_device_detach");
    SYM(machine_done, "swiftvtd_machine_done");
    SYM(dma_view, "swiftvtd_dma_view");
    SYM(set_trace_kinds, "swiftvtd_set_trace_kinds");
#undef SYM
}

static void test_abi_version(void)
{
    g_assert_cmpuint(api.abi_version(), ==, SWIFTVTD_ABI_VERSION);
}

static void test_create_rejects_wrong_version(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg;
    char err[256] = "";
    api.config_init(&cfg);
    cfg.abi_version = SWIFTVTD_ABI_VERSION + 1;
    g_assert_null(api.create(&cfg, &ops, err, sizeof(err)));
    g_assert_nonnull(strstr(err, "ABI version"));

    /* Smaller than 1.0's config (40 bytes): not this ABI. */
    api.config_init(&cfg);
    cfg.size = offsetof(swiftvtd_config, eim_auto) - 4;
    g_assert_null(api.create(&cfg, &ops, err, sizeof(err)));
    g_assert_nonnull(strstr(err, "config size"));

    api.config_init(&cfg);
    cfg.aw_bits = 40;
    g_assert_null(api.create(&cfg, &ops, err, sizeof(err)));
    g_assert_nonnull(strstr(err, "aw-bits"));
    g_free(g);
}

static void test_create_and_read_version(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    g_assert_cmpuint(api.mmio_size(unit), ==, 0x230);
    g_assert_cmphex(api.mmio_read(unit, 0x0, 4), ==, 0x10);
    /* Sizes other than 4 and 8 and offsets outside the window read as 0. */
    g_assert_cmphex(api.mmio_read(unit, 0x0, 2), ==, 0);
    g_assert_cmphex(api.mmio_read(unit, 0x10000, 4), ==, 0);
    api.destroy(unit);
    g_free(g);
}

static void expect_create_error(swiftvtd_config *cfg, swiftvtd_host_ops *ops, const char *needle)
{
    char err[256] = "";
    g_assert_null(api.create(cfg, ops, err, sizeof(err)));
    if (!strstr(err, needle)) {
        g_error("expected an error mentioning \"%s\", got \"%s\"", needle, err);
    }
}

static void test_create_rejects_bad_configs(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg;

    api.config_init(&cfg);
    cfg.caching_mode = 2;
    expect_create_error(&cfg, &ops, "caching-mode");

    api.config_init(&cfg);
    cfg.flts = 1;
    expect_create_error(&cfg, &ops, "scalable");

    api.config_init(&cfg);
    cfg.fault_records = 0;
    expect_create_error(&cfg, &ops, "fault-records");

    api.config_init(&cfg);
    cfg.reserved1 = 7;
    expect_create_error(&cfg, &ops, "reserved");

    api.config_init(&cfg);
    swiftvtd_host_ops small = ops;
    small.size = 8;
    expect_create_error(&cfg, &small, "host ops size");
    expect_create_error(&cfg, NULL, "host ops");
    expect_create_error(NULL, &ops, "config");
    /* A NULL message buffer is allowed. */
    g_assert_null(api.create(NULL, &ops, NULL, 0));
    g_free(g);
}

static void test_registers_of_the_default_config(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    /* QEMU 10.0's values for the same properties. */
    g_assert_cmphex(api.mmio_read(unit, REG_VER, 4), ==, 0x10);
    g_assert_cmphex(api.mmio_read(unit, REG_CAP, 8), ==, 0x00d2008c222f0606ull);
    g_assert_cmphex(api.mmio_read(unit, REG_ECAP, 8), ==, 0x0000000000f00f4aull);
    g_assert_cmphex(api.mmio_read(unit, REG_FECTL, 4), ==, FECTL_IM);
    /* 64-bit registers read as two halves. */
    g_assert_cmphex(api.mmio_read(unit, REG_CAP, 4), ==, 0x222f0606);
    g_assert_cmphex(api.mmio_read(unit, REG_CAP + 4, 4), ==, 0x00d2008c);
    api.destroy(unit);
    g_free(g);
}

static void test_global_command_sets_status(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    /* RTADDR written as two halves, then SRTP, then TE as Linux does it. */
    api.mmio_write(unit, REG_RTADDR, 0x00345000, 4);
    api.mmio_write(unit, REG_RTADDR + 4, 0x1, 4);
    g_assert_cmphex(api.mmio_read(unit, REG_RTADDR, 8), ==, 0x100345000ull);
    api.mmio_write(unit, REG_GCMD, GCMD_SRTP, 4);
    g_assert_cmphex(api.mmio_read(unit, REG_GSTS, 4), ==, GCMD_SRTP);
    api.mmio_write(unit, REG_GCMD, GCMD_TE, 4);
    g_assert_cmphex(api.mmio_read(unit, REG_GSTS, 4), ==, GCMD_TE | GCMD_SRTP);
    g_assert_cmphex(api.mmio_read(unit, REG_GCMD, 4), ==, 0);
    api.mmio_write(unit, REG_GCMD, 0, 4);
    g_assert_cmphex(api.mmio_read(unit, REG_GSTS, 4), ==, GCMD_SRTP);
    g_assert_cmpint(g->guest_errors, ==, 0);
    api.destroy(unit);
    g_free(g);
}

static void test_bad_accesses_are_logged(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    g_assert_cmphex(api.mmio_read(unit, REG_VER, 1), ==, 0);
    g_assert_cmphex(api.mmio_read(unit, REG_VER + 2, 4), ==, 0);
    g_assert_cmphex(api.mmio_read(unit, UINT64_MAX - 3, 4), ==, 0);
    api.mmio_write(unit, REG_FEDATA, 0xffff, 2);
    api.mmio_write(unit, 0x230, 0xffffffff, 4);
    g_assert_cmpint(g->guest_errors, ==, 5);
    g_assert_nonnull(strstr(g->last_log, "ignored"));
    g_assert_cmphex(api.mmio_read(unit, REG_FEDATA, 4), ==, 0);
    api.destroy(unit);
    g_free(g);
}

static void scalable_mode(swiftvtd_config *cfg)
{
    cfg->scalable_mode = 1;
}

/* An invalid tail in a 256-bit queue is an invalidation queue error: FSTS.IQE, IQERCD and the
   fault event through the host's send_msi. */
static void test_fault_event_msi(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, scalable_mode);
    api.mmio_write(unit, REG_FEDATA, 0x4041, 4);
    api.mmio_write(unit, REG_FEADDR, 0xfee01000, 4);
    api.mmio_write(unit, REG_IQA, 0x10000 | (1u << 11), 8);
    api.mmio_write(unit, REG_GCMD, GCMD_QIE, 4);
    g_assert_cmphex(api.mmio_read(unit, REG_GSTS, 4), ==, GCMD_QIE);

    /* Masked (the reset state): the event waits in FECTL.IP. */
    api.mmio_write(unit, REG_IQT, 1u << 4, 8);
    g_assert_cmphex(api.mmio_read(unit, REG_FSTS, 4), ==, FSTS_IQE);
    g_assert_cmphex(api.mmio_read(unit, REG_IQERCD, 8), ==, 6);
    g_assert_cmphex(api.mmio_read(unit, REG_FECTL, 4), ==, FECTL_IM | FECTL_IP);
    g_assert_cmpint(g->msi_count, ==, 0);

    /* Unmasking delivers it. */
    api.mmio_write(unit, REG_FECTL, 0, 4);
    g_assert_cmpint(g->msi_count, ==, 1);
    g_assert_cmphex(g->last_msi_address, ==, 0xfee01000);
    g_assert_cmphex(g->last_msi_data, ==, 0x4041);
    g_assert_cmphex(api.mmio_read(unit, REG_FECTL, 4), ==, 0);

    /* Cleared and raised again while unmasked: delivered at once. */
    api.mmio_write(unit, REG_FSTS, FSTS_IQE, 4);
    g_assert_cmphex(api.mmio_read(unit, REG_FSTS, 4), ==, 0);
    api.mmio_write(unit, REG_IQT, 3u << 4, 8);
    g_assert_cmpint(g->msi_count, ==, 2);
    api.destroy(unit);
    g_free(g);
}

/* A wait descriptor with IF and SW in a 128-bit queue: the status lands in guest memory and the
   invalidation completion event comes through send_msi. */
static void test_invalidation_event_msi(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    const uint64_t queue = 0x10000, status = 0x20000;
    uint64_t wait[2] = { 0x5 | 1u << 4 | 1u << 5 | (uint64_t)0xC0FFEE << 32, status };
    memcpy(g->ram + queue, wait, sizeof(wait));

    api.mmio_write(unit, REG_IEDATA, 0x4052, 4);
    api.mmio_write(unit, REG_IEADDR, 0xfee02000, 4);
    api.mmio_write(unit, REG_IECTL, 0, 4);
    api.mmio_write(unit, REG_IQA, queue, 8);
    api.mmio_write(unit, REG_GCMD, GCMD_QIE, 4);
    api.mmio_write(unit, REG_IQT, 1u << 4, 8);

    g_assert_cmphex(api.mmio_read(unit, REG_IQH, 8), ==, 1u << 4);
    g_assert_cmphex(api.mmio_read(unit, REG_ICS, 4), ==, 1);
    uint32_t written;
    memcpy(&written, g->ram + status, sizeof(written));
    g_assert_cmphex(written, ==, 0xC0FFEE);
    g_assert_cmpint(g->msi_count, ==, 1);
    g_assert_cmphex(g->last_msi_address, ==, 0xfee02000);
    g_assert_cmphex(g->last_msi_data, ==, 0x4052);
    g_assert_cmphex(api.mmio_read(unit, REG_FSTS, 4), ==, 0);
    api.destroy(unit);
    g_free(g);
}

static void test_reset_restores_the_window(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, scalable_mode);
    uint64_t size = api.mmio_size(unit);
    g_assert_cmpuint(size, ==, 0x230);
    uint32_t *fresh = g_new0(uint32_t, size / 4);
    for (uint64_t off = 0; off < size; off += 4) {
        fresh[off / 4] = api.mmio_read(unit, off, 4);
    }
    for (uint64_t off = 0; off < size; off += 4) {
        api.mmio_write(unit, off, 0xffffffff, 4);
    }
    api.reset(unit);
    for (uint64_t off = 0; off < size; off += 4) {
        g_assert_cmphex(api.mmio_read(unit, off, 4), ==, fresh[off / 4]);
    }
    g_free(fresh);
    api.destroy(unit);
    g_free(g);
}

static void test_interrupt_remap_disabled_passes_through(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);

    /* Out of reset GSTS.IRES is clear: a remappable MSI is delivered as it came. */
    swiftvtd_msi in = { .address = 0xFEE00010, .data = 0 }, out = { 0 };
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &out, 0), ==, SWIFTVTD_IRQ_PASSTHROUGH);
    g_assert_cmphex(out.address, ==, in.address);
    g_assert_cmphex(out.data, ==, in.data);

    /* In place, as the header allows. */
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &in, SWIFTVTD_IRQ_NO_FAULT), ==, SWIFTVTD_IRQ_PASSTHROUGH);
    g_assert_cmphex(in.address, ==, 0xFEE00010);

    /* Malformed calls are errors, not faults. */
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, NULL, &out, 0), ==, SWIFTVTD_EINVAL);
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &out, 0x80), ==, SWIFTVTD_EINVAL);
    in.reserved = 1;
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &out, 0), ==, SWIFTVTD_EINVAL);
    g_assert_cmpint(g->msi_count, ==, 0);
    api.destroy(unit);
    g_free(g);
}

static void test_interrupt_remap_through_irte(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);

    /* IRTE 2 of a 16-entry table at 0x8000: present, vector 0x61, xAPIC destination 3. */
    uint64_t irte_lo = 1 | (0x61ull << 16) | (0x0300ull << 32), irte_hi = 0;
    memcpy(g->ram + 0x8000 + 2 * 16, &irte_lo, 8);
    memcpy(g->ram + 0x8000 + 2 * 16 + 8, &irte_hi, 8);
    /* As a driver enables remapping: IRTA, GCMD.SIRTP, then GCMD.IRE. */
    api.mmio_write(unit, 0xB8, 0x8000 | 3, 8);
    api.mmio_write(unit, 0x18, 1u << 24, 4);
    api.mmio_write(unit, 0x18, 1u << 25, 4);
    g_assert_cmphex(api.mmio_read(unit, 0x1C, 4) & (1u << 25), ==, 1u << 25);

    /* Remappable format, handle 2. */
    swiftvtd_msi in = { .address = 0xFEE00000 | (2 << 5) | (1 << 4), .data = 0 }, out = { 0 };
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &out, 0), ==, SWIFTVTD_IRQ_REMAPPED);
    g_assert_cmphex(out.address, ==, 0xFEE03000);
    g_assert_cmphex(out.data, ==, 0x4061);

    /* Handle 3 is not present: blocked with 0x22 and recorded (FSTS.PPF). */
    in.address = 0xFEE00000 | (3 << 5) | (1 << 4);
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &out, 0), ==, 0x22);
    g_assert_cmphex(api.mmio_read(unit, 0x34, 4) & 2, ==, 2);

    /* Compatibility format with GSTS.CFIS clear: blocked with 0x25. */
    in.address = 0xFEE01000;
    g_assert_cmpint(api.interrupt_remap(unit, 0x0010, &in, &out, 0), ==, 0x25);
    api.destroy(unit);
    g_free(g);
}

static void test_page_request_needs_the_feature(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    swiftvtd_pri_request req = { .size = sizeof(req), .sid = 0x0010, .prg_index = 1,
                                 .pasid = SWIFTVTD_NO_PASID, .flags = SWIFTVTD_PRQ_READ | SWIFTVTD_PRQ_LAST,
                                 .addr = 0x1000 };
    g_assert_cmpint(api.page_request(unit, &req), ==, SWIFTVTD_EUNSUPPORTED);
    req.size = 8;
    g_assert_cmpint(api.page_request(unit, &req), ==, SWIFTVTD_EVERSION);
    api.destroy(unit);
    g_free(g);
}

static void put64(Guest *g, uint64_t gpa, uint64_t value)
{
    memcpy(g->ram + gpa, &value, sizeof(value));
}

/* Legacy tables in guest RAM: root 0x10000 -> context 0x11000 -> a 4-level second-level
 * table 0x12000.. that maps IOVA 0x5000 read/write to 0x80000, for device 00:02.0. */
static void test_translate_through_legacy_tables(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    put64(g, 0x10000, 0x11000 | 1);                     /* root entry of bus 0: present */
    put64(g, 0x11000 + 0x10 * 16, 0x12000 | 1);         /* context entry of devfn 0x10, TT 00 */
    put64(g, 0x11000 + 0x10 * 16 + 8, 1 << 8 | 2);      /* DID 1, AW 2 (4 levels) */
    put64(g, 0x12000, 0x13000 | 3);
    put64(g, 0x13000, 0x14000 | 3);
    put64(g, 0x14000, 0x15000 | 3);
    put64(g, 0x15000 + 5 * 8, 0x80000 | 3);
    api.mmio_write(unit, REG_RTADDR, 0x10000, 8);
    api.mmio_write(unit, REG_GCMD, GCMD_SRTP, 4);
    api.mmio_write(unit, REG_GCMD, GCMD_TE, 4);

    swiftvtd_translate_request req = { .sid = 0x10, .access = SWIFTVTD_ACCESS_WRITE,
                                       .pasid = SWIFTVTD_NO_PASID, .addr = 0x5123 };
    swiftvtd_translation out;
    g_assert_cmpint(api.translate(unit, &req, &out), ==, SWIFTVTD_OK);
    g_assert_cmpint(out.kind, ==, SWIFTVTD_XLATE_OK);
    g_assert_cmphex(out.translated, ==, 0x80123);
    g_assert_cmphex(out.page_mask, ==, ~0xfffull);
    g_assert_cmpuint(out.perm, ==, SWIFTVTD_PERM_READ | SWIFTVTD_PERM_WRITE);

    /* An unmapped read faults with reason 6 and lands in FRCD 0 (F, reason, SID). */
    req.access = SWIFTVTD_ACCESS_READ;
    req.addr = 0x6000;
    g_assert_cmpint(api.translate(unit, &req, &out), ==, SWIFTVTD_OK);
    g_assert_cmpint(out.kind, ==, SWIFTVTD_XLATE_FAULT);
    g_assert_cmpint(out.fault_reason, ==, 0x06);
    uint64_t frcd_high = api.mmio_read(unit, 0x228, 8);
    g_assert_cmphex(frcd_high >> 63, ==, 1);
    g_assert_cmphex((frcd_high >> 32) & 0xff, ==, 0x06);
    g_assert_cmphex(frcd_high & 0xffff, ==, 0x10);

    g_assert_cmpint(api.translate(unit, NULL, &out), ==, SWIFTVTD_EINVAL);
    api.destroy(unit);
    g_free(g);
}

/* Migration and the state dump. A legacy table in guest RAM for 00:03.0 (sid 0x18): root table
   at 0x10000, context table 0x11000, a three-level second-level table mapping IOVA 0x1000 to
   0x40000 (domain 1). */
static void map_legacy_device(Guest *g)
{
    put64(g, 0x10000, 0x11000 | 1);                     /* root entry of bus 0 */
    put64(g, 0x11000 + 0x18 * 16, 0x12000 | 1);         /* context entry: present, TT 00 */
    put64(g, 0x11000 + 0x18 * 16 + 8, 1 | (1 << 8));    /* AW 1 (3 levels), domain 1 */
    put64(g, 0x12000, 0x13000 | 3);
    put64(g, 0x13000, 0x14000 | 3);
    put64(g, 0x14000 + 8, 0x40000 | 3);
}

static void enable_translation(swiftvtd_t *unit)
{
    api.mmio_write(unit, REG_RTADDR, 0x10000, 8);
    api.mmio_write(unit, REG_GCMD, GCMD_SRTP, 4);
    api.mmio_write(unit, REG_GCMD, GCMD_TE, 4);
}

static uint64_t translate_read(swiftvtd_t *unit, uint16_t sid, uint64_t addr)
{
    swiftvtd_translate_request req = { .sid = sid, .access = SWIFTVTD_ACCESS_READ, .pasid = SWIFTVTD_NO_PASID,
                                       .addr = addr };
    swiftvtd_translation out;
    g_assert_cmpint(api.translate(unit, &req, &out), ==, SWIFTVTD_OK);
    g_assert_cmpint(out.kind, ==, SWIFTVTD_XLATE_OK);
    return out.translated;
}

static void *save(swiftvtd_t *unit, size_t *len)
{
    g_assert_cmpint(api.save_state(unit, NULL, 0, len), ==, SWIFTVTD_ENOSPC);
    g_assert_cmpuint(*len, >, 0);
    void *blob = g_malloc(*len);
    size_t again = 0;
    g_assert_cmpint(api.save_state(unit, blob, *len, &again), ==, SWIFTVTD_OK);
    g_assert_cmpuint(again, ==, *len);
    return blob;
}

static void test_state_round_trip(void)
{
    Guest *g = g_new0(Guest, 1);
    map_legacy_device(g);
    swiftvtd_t *source = create_unit(g, NULL), *destination = create_unit(g, NULL);
    enable_translation(source);
    g_assert_cmphex(translate_read(source, 0x18, 0x1234), ==, 0x40234);
    api.mmio_write(source, REG_FEDATA, 0x41, 4);
    api.mmio_write(source, REG_FECTL, 0, 4);

    size_t len;
    void *blob = save(source, &len);
    char err[256] = "x";
    g_assert_cmpint(api.load_state(destination, blob, len, err, sizeof(err)), ==, SWIFTVTD_OK);
    g_assert_cmpstr(err, ==, "");
    for (uint64_t offset = 0; offset < api.mmio_size(source); offset += 4) {
        g_assert_cmphex(api.mmio_read(destination, offset, 4), ==, api.mmio_read(source, offset, 4));
    }
    /* The destination walks the same tables: the root table pointer came along, not the IOTLB. */
    g_assert_cmphex(translate_read(destination, 0x18, 0x1008), ==, 0x40008);
    g_free(blob);
    api.destroy(source);
    api.destroy(destination);
    g_free(g);
}

static void enable_caching_mode(swiftvtd_config *cfg)
{
    cfg->caching_mode = 1;
}

static void test_state_rejects_bad_blobs(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *source = create_unit(g, NULL), *destination = create_unit(g, NULL);
    api.mmio_write(destination, REG_FEDATA, 0x77, 4);
    size_t len;
    uint8_t *blob = save(source, &len);
    char err[256];

    g_assert_cmpint(api.load_state(destination, blob, len - 1, err, sizeof(err)), ==, SWIFTVTD_EINVAL);
    g_assert_nonnull(strstr(err, "truncated"));
    blob[len / 2] ^= 0x10;
    g_assert_cmpint(api.load_state(destination, blob, len, err, sizeof(err)), ==, SWIFTVTD_EINVAL);
    g_assert_nonnull(strstr(err, "corrupted"));
    blob[len / 2] ^= 0x10;
    blob[8] = SWIFTVTD_STATE_VERSION + 1;
    g_assert_cmpint(api.load_state(destination, blob, len, err, sizeof(err)), ==, SWIFTVTD_EVERSION);
    g_assert_nonnull(strstr(err, "version"));
    blob[8] = SWIFTVTD_STATE_VERSION;
    g_assert_cmpint(api.load_state(destination, NULL, len, err, sizeof(err)), ==, SWIFTVTD_EINVAL);

    swiftvtd_t *other = create_unit(g, enable_caching_mode);
    g_assert_cmpint(api.load_state(other, blob, len, err, sizeof(err)), ==, SWIFTVTD_EINVAL);
    g_assert_nonnull(strstr(err, "another configuration"));
    /* Nothing was loaded by the failures. */
    g_assert_cmphex(api.mmio_read(destination, REG_FEDATA, 4), ==, 0x77);
    g_free(blob);
    api.destroy(source);
    api.destroy(destination);
    api.destroy(other);
    g_free(g);
}

static void test_dump_names_device_translation_type(void)
{
    Guest *g = g_new0(Guest, 1);
    map_legacy_device(g);
    swiftvtd_t *unit = create_unit(g, NULL);
    enable_translation(unit);
    translate_read(unit, 0x18, 0x1000);

    size_t needed = 0;
    g_assert_cmpint(api.dump_state(unit, NULL, 0, &needed), ==, SWIFTVTD_ENOSPC);
    char *text = g_malloc(needed);
    g_assert_cmpint(api.dump_state(unit, text, needed, &needed), ==, SWIFTVTD_OK);
    g_assert_cmpuint(strlen(text) + 1, ==, needed);
    g_test_message("%s", text);
    g_assert_nonnull(strstr(text, "\ndevice 00:03.0 pasid none tt multi-level did 1 walks 1\n"));
    g_assert_nonnull(strstr(text, "root table: 0x10000 legacy mode"));
    /* A buffer too small gets the start of the text, still a C string. */
    char small[16];
    g_assert_cmpint(api.dump_state(unit, small, sizeof(small), NULL), ==, SWIFTVTD_ENOSPC);
    g_assert_cmpuint(strlen(small), ==, sizeof(small) - 1);
    g_assert_true(strncmp(small, text, sizeof(small) - 1) == 0);
    g_free(text);
    api.destroy(unit);
    g_free(g);
}

/* No host device: the decision changes nothing the guest sees; malformed host devices are refused. */
static void test_machine_done_without_host_devices(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_t *unit = create_unit(g, NULL);
    uint64_t cap = api.mmio_read(unit, REG_CAP, 8), ecap = api.mmio_read(unit, REG_ECAP, 8);
    swiftvtd_host_device dev = { .size = 4 };
    char text[512] = "";

    g_assert_cmpint(api.host_device_attach(unit, 0x18, &dev, text, sizeof(text)), ==, SWIFTVTD_EVERSION);
    g_assert_cmpint(api.host_device_detach(unit, 0x18), ==, SWIFTVTD_ENOENT);
    g_assert_cmpint(api.machine_done(unit, 7, text, sizeof(text)), ==, SWIFTVTD_EINVAL);
    g_assert_cmpint(api.machine_done(unit, SWIFTVTD_HOST_MODE_AUTO, text, sizeof(text)), ==, SWIFTVTD_OK);
    g_assert_nonnull(strstr(text, "emulated only"));
    g_assert_cmphex(api.mmio_read(unit, REG_CAP, 8), ==, cap);
    g_assert_cmphex(api.mmio_read(unit, REG_ECAP, 8), ==, ecap);
    api.destroy(unit);
    g_free(g);
}

/* The size rule: a 1.0 host's 64-byte ops (no trace member) still work; a newer host's larger
   ops are taken when the bytes this library does not know are zero, refused otherwise. */
static void test_create_takes_older_and_newer_host_ops(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_host_ops ops = guest_ops(g);
    unsigned char buf[sizeof(swiftvtd_host_ops) + 16];
    swiftvtd_config cfg;
    swiftvtd_t *unit;
    char err[256] = "";

    api.config_init(&cfg);
    memset(buf, 0xAA, sizeof(buf));
    ops.size = offsetof(swiftvtd_host_ops, trace);
    memcpy(buf, &ops, offsetof(swiftvtd_host_ops, trace));
    unit = api.create(&cfg, (const swiftvtd_host_ops *)buf, err, sizeof(err));
    g_assert_nonnull(unit);
    g_assert_cmphex(api.mmio_read(unit, REG_VER, 4), ==, 0x10);
    api.destroy(unit);

    memset(buf, 0, sizeof(buf));
    ops.size = sizeof(buf);
    memcpy(buf, &ops, sizeof(ops));
    unit = api.create(&cfg, (const swiftvtd_host_ops *)buf, err, sizeof(err));
    g_assert_nonnull(unit);
    api.destroy(unit);
    buf[sizeof(swiftvtd_host_ops) + 3] = 1;
    expect_create_error(&cfg, (swiftvtd_host_ops *)buf, "does not know");
    g_free(g);
}

/* The size rule for configs: a 1.1 host's 40-byte config (no host facts) still creates a unit,
   with eim as given; a 1.2 host passes eim=auto with the facts and reads back what was chosen. */
static void test_create_takes_1_1_configs_and_resolves_facts(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg, out;
    swiftvtd_t *unit;
    char err[256] = "";
    int (*get_config)(const swiftvtd_t *, swiftvtd_config *);

    g_assert_true(g_module_symbol(module, "swiftvtd_get_config", (gpointer *)&get_config));
    api.config_init(&cfg);
    cfg.size = offsetof(swiftvtd_config, eim_auto);
    cfg.eim = 1;
    cfg.eim_auto = 0xAA; /* past the caller's size: never read */
    unit = api.create(&cfg, &ops, err, sizeof(err));
    g_assert_nonnull(unit);
    out.size = sizeof(out);
    g_assert_cmpint(get_config(unit, &out), ==, SWIFTVTD_OK);
    g_assert_cmpuint(out.eim, ==, 1);
    api.destroy(unit);

    api.config_init(&cfg);
    cfg.eim_auto = 1;
    cfg.kvm_irqchip = 1;
    unit = api.create(&cfg, &ops, err, sizeof(err));
    g_assert_nonnull(unit);
    g_assert_cmpint(get_config(unit, &out), ==, SWIFTVTD_OK);
    g_assert_cmpuint(out.eim, ==, 1);
    g_assert_cmpuint(out.eim_auto, ==, 0);
    api.destroy(unit);
    g_free(g);
}

typedef struct TraceLog {
    int count;
    swiftvtd_trace records[16];
} TraceLog;

static TraceLog trace_log;

static void record_trace(void *opaque, const swiftvtd_trace *t)
{
    (void)opaque;
    g_assert_cmpuint(t->size, ==, sizeof(*t));
    if (trace_log.count < 16) {
        trace_log.records[trace_log.count++] = *t;
    }
}

/* One queued descriptor (a domain-selective IOTLB invalidation of domain 7): the host hears a
   descriptor record with its type and words, then the invalidation with its scope. */
static void test_trace_records_of_a_queued_invalidation(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg;
    swiftvtd_t *unit;
    uint64_t desc = 2 | (2u << 4) | (7ull << 16);

    memset(&trace_log, 0, sizeof(trace_log));
    ops.trace = record_trace;
    api.config_init(&cfg);
    unit = api.create(&cfg, &ops, NULL, 0);
    g_assert_nonnull(unit);
    memcpy(g->ram + 0x4000, &desc, sizeof(desc));
    api.mmio_write(unit, REG_IQA, 0x4000, 8);
    api.mmio_write(unit, REG_GCMD, GCMD_QIE, 4);
    api.mmio_write(unit, REG_IQT, 1 << 4, 8);
    g_assert_cmpint(trace_log.count, ==, 2);
    g_assert_cmpuint(trace_log.records[0].kind, ==, SWIFTVTD_TRACE_IOTLB_INVALIDATE);
    g_assert_cmpuint(trace_log.records[0].scope, ==, SWIFTVTD_SCOPE_DOMAIN);
    g_assert_cmpuint(trace_log.records[0].did, ==, 7);
    g_assert_cmpuint(trace_log.records[1].kind, ==, SWIFTVTD_TRACE_DESCRIPTOR);
    g_assert_cmpuint(trace_log.records[1].code, ==, 2);
    g_assert_cmpuint(trace_log.records[1].scope, ==, 1);
    g_assert_cmphex(trace_log.records[1].words[0], ==, desc);

    /* 1.4: only descriptors wanted; the same invalidation again gives one record, not two. */
    memcpy(g->ram + 0x4010, &desc, sizeof(desc));
    g_assert_cmpint(api.set_trace_kinds(unit, 1u << SWIFTVTD_TRACE_DESCRIPTOR), ==, SWIFTVTD_OK);
    api.mmio_write(unit, REG_IQT, 2 << 4, 8);
    g_assert_cmphex(api.mmio_read(unit, REG_IQH, 8), ==, 2 << 4);
    g_assert_cmpint(trace_log.count, ==, 3);
    g_assert_cmpuint(trace_log.records[2].kind, ==, SWIFTVTD_TRACE_DESCRIPTOR);
    g_assert_cmpint(api.set_trace_kinds(NULL, 0), ==, SWIFTVTD_EINVAL);
    api.destroy(unit);
    g_free(g);
}

/* The context changes a host hears of: how many, and the last one's sid and data. */
typedef struct ViewGuest {
    Guest guest;          /* first: the guest callbacks take it as their opaque */
    int context_changes;
    uint16_t last_sid;
    uint32_t last_data;
} ViewGuest;

static void view_guest_event(void *opaque, const swiftvtd_event *ev)
{
    ViewGuest *v = opaque;

    if (ev->kind == SWIFTVTD_EVENT_CONTEXT_CHANGED) {
        v->context_changes++;
        v->last_sid = ev->sid;
        v->last_data = ev->data;
    }
}

/* Register-based device-selective context-cache invalidation (CCMD at 0x28: ICC, CIRG 3, SID). */
static void invalidate_context_of(swiftvtd_t *unit, uint16_t sid)
{
    api.mmio_write(unit, 0x28, 1ull << 63 | 3ull << 61 | (uint64_t)sid << 16, 8);
}

/* swiftvtd_dma_view: untranslated while remapping is off and for a pass-through context entry,
   translated for a multi-level one, asked again at each CONTEXT_CHANGED the unit sends. */
static void test_dma_view_follows_the_tables(void)
{
    ViewGuest *v = g_new0(ViewGuest, 1);
    swiftvtd_host_ops ops = guest_ops(&v->guest);
    swiftvtd_config cfg;
    char err[256] = "";
    const uint64_t context = 0x11000 + 0x10 * 16;   /* devfn 0x10 on bus 0 */

    ops.opaque = v;
    ops.event = view_guest_event;
    api.config_init(&cfg);
    swiftvtd_t *unit = api.create(&cfg, &ops, err, sizeof(err));
    g_assert_nonnull(unit);
    g_assert_cmpint(api.dma_view(NULL, 0x10), ==, SWIFTVTD_EINVAL);
    g_assert_cmpint(api.dma_view(unit, 0x10), ==, SWIFTVTD_DMA_VIEW_UNTRANSLATED);

    put64(&v->guest, 0x10000, 0x11000 | 1);
    put64(&v->guest, context, 2 << 2 | 1);              /* TT 10: pass-through */
    put64(&v->guest, context + 8, 1 << 8 | 2);          /* DID 1, AW 2 */
    enable_translation(unit);
    g_assert_cmpint(v->context_changes, >, 0);
    g_assert_cmpuint(v->last_data, ==, 1);              /* every device */
    g_assert_cmpint(api.dma_view(unit, 0x10), ==, SWIFTVTD_DMA_VIEW_UNTRANSLATED);
    g_assert_cmpint(api.dma_view(unit, 0x18), ==, SWIFTVTD_DMA_VIEW_TRANSLATED);   /* no context entry */

    /* The guest makes the entry multi-level and invalidates it: the host hears of that device. */
    put64(&v->guest, context, 0x12000 | 1);
    v->context_changes = 0;
    invalidate_context_of(unit, 0x10);
    g_assert_cmpint(v->context_changes, ==, 1);
    g_assert_cmphex(v->last_sid, ==, 0x10);
    g_assert_cmpuint(v->last_data, ==, 0);
    g_assert_cmpint(api.dma_view(unit, 0x10), ==, SWIFTVTD_DMA_VIEW_TRANSLATED);

    /* A reserved TT is malformed: translated, and a request meets its fault in translate. */
    put64(&v->guest, context, 3 << 2 | 1);
    invalidate_context_of(unit, 0x10);
    g_assert_cmpint(api.dma_view(unit, 0x10), ==, SWIFTVTD_DMA_VIEW_TRANSLATED);
    swiftvtd_translate_request req = { .sid = 0x10, .access = SWIFTVTD_ACCESS_READ,
                                       .pasid = SWIFTVTD_NO_PASID, .addr = 0x1000 };
    swiftvtd_translation out;
    g_assert_cmpint(api.translate(unit, &req, &out), ==, SWIFTVTD_OK);
    g_assert_cmpint(out.kind, ==, SWIFTVTD_XLATE_FAULT);

    /* TE clear: every device, untranslated. */
    v->context_changes = 0;
    api.mmio_write(unit, REG_GCMD, 0, 4);
    g_assert_cmpint(v->context_changes, ==, 1);
    g_assert_cmpuint(v->last_data, ==, 1);
    g_assert_cmpint(api.dma_view(unit, 0x10), ==, SWIFTVTD_DMA_VIEW_UNTRANSLATED);
    g_assert_cmpint(api.dma_view(unit, 0x18), ==, SWIFTVTD_DMA_VIEW_UNTRANSLATED);
    api.destroy(unit);
    g_free(v);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    load_library();
    g_test_add_func("/swiftvtd/abi-version", test_abi_version);
    g_test_add_func("/swiftvtd/create/rejects-wrong-version", test_create_rejects_wrong_version);
    g_test_add_func("/swiftvtd/create/read-version", test_create_and_read_version);
    g_test_add_func("/swiftvtd/create/rejects-bad-configs", test_create_rejects_bad_configs);
    g_test_add_func("/swiftvtd/create/older-and-newer-host-ops", test_create_takes_older_and_newer_host_ops);
    g_test_add_func("/swiftvtd/create/1.1-configs-and-host-facts", test_create_takes_1_1_configs_and_resolves_facts);
    g_test_add_func("/swiftvtd/trace/queued-invalidation-and-kinds", test_trace_records_of_a_queued_invalidation);
    g_test_add_func("/swiftvtd/registers/default-config", test_registers_of_the_default_config);
    g_test_add_func("/swiftvtd/registers/gcmd-sets-gsts", test_global_command_sets_status);
    g_test_add_func("/swiftvtd/registers/bad-accesses-logged", test_bad_accesses_are_logged);
    g_test_add_func("/swiftvtd/registers/reset", test_reset_restores_the_window);
    g_test_add_func("/swiftvtd/events/fault-event-msi", test_fault_event_msi);
    g_test_add_func("/swiftvtd/events/invalidation-event-msi", test_invalidation_event_msi);
    g_test_add_func("/swiftvtd/interrupt-remap/disabled-passes-through", test_interrupt_remap_disabled_passes_through);
    g_test_add_func("/swiftvtd/interrupt-remap/through-irte", test_interrupt_remap_through_irte);
    g_test_add_func("/swiftvtd/page-request/needs-the-feature", test_page_request_needs_the_feature);
    g_test_add_func("/swiftvtd/translate/legacy-tables", test_translate_through_legacy_tables);
    g_test_add_func("/swiftvtd/translate/dma-view", test_dma_view_follows_the_tables);
    g_test_add_func("/swiftvtd/state/round-trip", test_state_round_trip);
    g_test_add_func("/swiftvtd/state/rejects-bad-blobs", test_state_rejects_bad_blobs);
    g_test_add_func("/swiftvtd/state/dump", test_dump_names_device_translation_type);
    g_test_add_func("/swiftvtd/host/machine-done-without-devices", test_machine_done_without_host_devices);
    return g_test_run();
}
