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
} Api;

static Api api;
static GModule *module;

/* A guest with 1 MiB of RAM at address 0 and a log of the MSIs it received. */
typedef struct Guest {
    uint8_t ram[1 << 20];
    int msi_count;
    uint64_t last_msi_address;
    uint32_t last_msi_data;
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

static swiftvtd_host_ops guest_ops(Guest *g)
{
    swiftvtd_host_ops ops = { .size = sizeof(ops), .opaque = g,
                              .dma_read = guest_read, .dma_write = guest_write,
                              .send_msi = guest_msi };
    return ops;
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

    api.config_init(&cfg);
    cfg.size = sizeof(cfg) - 4;
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
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg;
    char err[256] = "";
    api.config_init(&cfg);
    swiftvtd_t *unit = api.create(&cfg, &ops, err, sizeof(err));
    g_assert_nonnull(unit);
    g_assert_cmpuint(api.mmio_size(unit), ==, 0x230);
    g_assert_cmphex(api.mmio_read(unit, 0x0, 4), ==, 0x10);
    /* Sizes other than 4 and 8 and offsets outside the window read as 0. */
    g_assert_cmphex(api.mmio_read(unit, 0x0, 2), ==, 0);
    g_assert_cmphex(api.mmio_read(unit, 0x10000, 4), ==, 0);
    api.destroy(unit);
    g_free(g);
}

static void test_interrupt_remap_disabled_passes_through(void)
{
    Guest *g = g_new0(Guest, 1);
    swiftvtd_host_ops ops = guest_ops(g);
    swiftvtd_config cfg;
    char err[256] = "";
    api.config_init(&cfg);
    swiftvtd_t *unit = api.create(&cfg, &ops, err, sizeof(err));
    g_assert_nonnull(unit);

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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    load_library();
    g_test_add_func("/swiftvtd/abi-version", test_abi_version);
    g_test_add_func("/swiftvtd/create/rejects-wrong-version", test_create_rejects_wrong_version);
    g_test_add_func("/swiftvtd/create/read-version", test_create_and_read_version);
    g_test_add_func("/swiftvtd/interrupt-remap/disabled-passes-through", test_interrupt_remap_disabled_passes_through);
    return g_test_run();
}
