# The devices this project's QEMU is built with (configure --without-default-devices
# --with-devices-x86_64=swiftvtd). Kconfig's "select" pulls in what these need.
# A smaller device set keeps the clean build to a few minutes on two cores.
CONFIG_Q35=y
CONFIG_VTD=y
CONFIG_SWIFT_VTD=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_RNG=y
CONFIG_NVME_PCI=y
CONFIG_E1000E_PCI_EXPRESS=y
CONFIG_PCIE_PORT=y
CONFIG_PCI_EXPRESS_GENERIC_BRIDGE=y
CONFIG_PCI_BRIDGE=y
CONFIG_EDU=y
# Device assignment: vfio-pci, with iommufd (-object iommufd) as its backend beside the
# legacy type1 container. Both need a Linux host; Kconfig enables them only there.
CONFIG_VFIO=y
CONFIG_VFIO_PCI=y
CONFIG_IOMMUFD=y
