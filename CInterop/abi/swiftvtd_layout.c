/* Layout checks for the public ABI structs. Within one major a struct may only grow at its
 * end (swiftvtd.h's size rule); moving or resizing a field bumps SWIFTVTD_ABI_VERSION. */
#include <stddef.h>
#include "swiftvtd.h"

_Static_assert(sizeof(swiftvtd_config) == 48, "swiftvtd_config layout");
_Static_assert(offsetof(swiftvtd_config, aw_bits) == 8, "swiftvtd_config.aw_bits");
_Static_assert(offsetof(swiftvtd_config, fault_records) == 28, "swiftvtd_config.fault_records");
_Static_assert(offsetof(swiftvtd_config, iotlb_capacity) == 32, "swiftvtd_config.iotlb_capacity");
_Static_assert(offsetof(swiftvtd_config, eim_auto) == 40, "swiftvtd_config.eim_auto (1.2)");
_Static_assert(sizeof(swiftvtd_event) == 48, "swiftvtd_event layout");
_Static_assert(sizeof(swiftvtd_host_ops) == 72, "swiftvtd_host_ops layout");
_Static_assert(offsetof(swiftvtd_host_ops, log) == 56, "swiftvtd_host_ops.log (end of 1.0)");
_Static_assert(offsetof(swiftvtd_host_ops, trace) == 64, "swiftvtd_host_ops.trace (1.1)");
_Static_assert(sizeof(swiftvtd_trace) == 72, "swiftvtd_trace layout");
_Static_assert(offsetof(swiftvtd_trace, addr) == 24, "swiftvtd_trace.addr");
_Static_assert(offsetof(swiftvtd_trace, words) == 40, "swiftvtd_trace.words");
_Static_assert(sizeof(swiftvtd_translate_request) == 16, "swiftvtd_translate_request layout");
_Static_assert(sizeof(swiftvtd_translation) == 24, "swiftvtd_translation layout");
_Static_assert(sizeof(swiftvtd_msi) == 16, "swiftvtd_msi layout");
_Static_assert(offsetof(swiftvtd_msi, data) == 8, "swiftvtd_msi.data");
_Static_assert(sizeof(swiftvtd_pri_request) == 24, "swiftvtd_pri_request layout");
_Static_assert(offsetof(swiftvtd_pri_request, pasid) == 8, "swiftvtd_pri_request.pasid");
_Static_assert(offsetof(swiftvtd_pri_request, addr) == 16, "swiftvtd_pri_request.addr");
_Static_assert(sizeof(swiftvtd_host_device) == 40, "swiftvtd_host_device layout");
_Static_assert(offsetof(swiftvtd_host_device, dev_id) == 16, "swiftvtd_host_device.dev_id");
_Static_assert(offsetof(swiftvtd_host_device, hwpt_is_nest_parent) == 28, "swiftvtd_host_device.hwpt_is_nest_parent");
_Static_assert(offsetof(swiftvtd_host_device, name) == 32, "swiftvtd_host_device.name");
