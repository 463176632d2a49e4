#!/bin/busybox sh
# The L1 host's init: Linux (built with iommufd) on L0's VT-d unit. It hands the devices L0
# gave it (edu, nvme) to vfio-pci and runs the project's QEMU with swift-vtd once per case,
# each booting an L2 guest that uses the assigned devices. Everything goes to the console,
# prefixed so the runner on L0 can tell the levels apart:
#   "l1: ..."          this script           "L2[case]: ..."  the L2 QEMU and its guest
#   "l1: counts case phase NAME N ..."       ioctl counts of the L2 QEMU process
# Kernel arguments: svt.cases=NAME:MODE,... (MODE: a host-mode, or "intel" for intel-iommu),
# svt.rounds=N, svt.bigrounds=N (edu rounds of one page and of 1 MiB).
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
export PATH=/bin:/opt/qemu

arg() { sed -n "s/.*\bsvt\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
cases=$(arg cases | tr , ' ')
rounds=$(arg rounds); rounds=${rounds:-100}
bigrounds=$(arg bigrounds); bigrounds=${bigrounds:-0}

dmesg | grep -e 'DMAR: dmar0' -e 'DMAR: Intel(R) Virtualization' -e 'DMAR-IR' -e 'iommufd' \
    | sed 's/^/l1: dmesg: /'

# The devices L0 gave us (one edu and one nvme per case), handed to vfio-pci.
edus=; nvmes=
for d in /sys/bus/pci/devices/*; do
    case "$(cat "$d/vendor"):$(cat "$d/device")" in 0x1234:0x11e8) edus="$edus ${d##*/}" ;; esac
    case "$(cat "$d/class")" in 0x010802) nvmes="$nvmes ${d##*/}" ;; esac
done
for bdf in $edus $nvmes; do
    [ -e "/sys/bus/pci/devices/$bdf/driver" ] && echo "$bdf" > "/sys/bus/pci/devices/$bdf/driver/unbind"
    echo vfio-pci > "/sys/bus/pci/devices/$bdf/driver_override"
    echo "$bdf" > /sys/bus/pci/drivers_probe
    echo "l1: $bdf -> $(basename "$(readlink "/sys/bus/pci/devices/$bdf/driver")")," \
        "cdev $(ls "/sys/bus/pci/devices/$bdf/vfio-dev" 2>/dev/null)"
done
ls /dev/iommu /dev/vfio/devices/* > /dev/null 2>&1 || echo "l1: no /dev/iommu or VFIO cdevs"
echo "l1: ready edus=$(echo $edus | tr ' ' ,) nvmes=$(echo $nvmes | tr ' ' ,) cases=$cases"

# cputime CASE: "utime N stime N", the CPU ticks (1/100 s) the case's QEMU has used in user
# space (QEMU, the library) and in L1's kernel (iommufd, VFIO, L1's VT-d driver) so far.
cputime() {
    for stat in /proc/[0-9]*/stat; do
        dir=${stat%/stat}
        [ "$(cat "$dir/comm" 2>/dev/null)" = qemu-system-x86 ] || continue
        tr '\0' ' ' < "$dir/cmdline" 2>/dev/null | grep -q "SWIFTVTD-HOST-$1 " || continue
        set -- $(cat "$stat")
        echo "utime ${14} stime ${15}"
        return
    done
}

# counts CASE PHASE: one line with the L2 QEMU's ioctl counts and CPU time so far.
counts() {
    echo "l1: counts $1 $2 $(/opt/swiftvtd/ioctl_count "/tmp/counts-$1" 2>/dev/null | tr '\n' ' ')$(cputime "$1")"
}

# run_case NAME MODE EDU NVME [HOT]: one L2 QEMU (swift-vtd with host-mode MODE, or intel-iommu
# for MODE "intel", QEMU's own shadowing: the anchor to compare with) with both devices
# assigned. With HOT, an edu is hot-plugged into a root port once L2 has done its tests, used,
# and unplugged again, driven from L2's console through QEMU's monitor.
run_case() {
    name=$1; mode=$2; edu=$3; nvme=$4; hot=$5; reboot=$6
    monitor="-monitor none"; extra=; noreboot=-no-reboot
    # A rebooting case lets QEMU reset instead of exiting.
    [ -n "$reboot" ] && noreboot=
    if [ -n "$hot" ]; then
        mkfifo "/tmp/mon-$name.in" "/tmp/mon-$name.out"
        monitor="-monitor pipe:/tmp/mon-$name"
        extra="-device pcie-root-port,id=rp0,chassis=1,slot=1 -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"
        while IFS= read -r l; do echo "L2mon[$name]: $l"; done < "/tmp/mon-$name.out" &
    fi
    if [ "$mode" = intel ]; then
        # aw-bits=39: intel-iommu refuses a guest width above the host IOAS's (47 bits here).
        iommu="intel-iommu,intremap=on,caching-mode=on,aw-bits=39"
    else
        # Shadowing maps guest IOVAs into L1's 47-bit IOAS as they are, so a unit that may shadow
        # (auto, shadow) takes aw-bits=39, as intel-iommu does; forced nesting keeps 48.
        aw=39; [ "$mode" = nested ] && aw=48
        iommu="swift-vtd,library=/opt/swiftvtd/libSwiftVTd.so,intremap=on,x-scalable-mode=on,aw-bits=$aw,host-mode=$mode,state-dump=/tmp/state-$name.txt"
    fi
    echo "l1: case $name host-mode=$mode edu=$edu nvme=$nvme start $(date +%s)"
    # L2 runs its edu loop between "edu: start" and "edu: loop done": the counts are taken as
    # those lines pass (edu_vfio pauses around its loop so the snapshots bracket it).
    SWIFTVTD_IOCTL_COUNTS="/tmp/counts-$name" LD_PRELOAD=/opt/swiftvtd/libioctlcount.so \
    timeout 3600 qemu-system-x86_64 -accel tcg -M q35,kernel-irqchip=split -bios qboot.rom \
        -L /usr/share/qemu -cpu max -smp 1 -m 320M -nographic $noreboot -vga none -nodefaults \
        -serial stdio $monitor $extra \
        -object iommufd,id=i0 -device "$iommu" \
        -device "vfio-pci,host=$edu,iommufd=i0" -device "vfio-pci,host=$nvme,iommufd=i0" \
        -kernel /l2/bzImage -initrd /l2/initramfs.cpio.gz \
        -append "console=ttyS0 intel_iommu=on,sm_on iommu.strict=1 panic=-1 loglevel=4 no_timer_check mitigations=off hugepages=1 svt.rounds=$rounds svt.bigrounds=$bigrounds svt.hotplug=${hot:+1} svt.reboot=${reboot:+1} svt.pattern=SWIFTVTD-HOST-$name" \
        2>&1 < /dev/null | while IFS= read -r line; do
            case "$line" in
                "edu: start"*) counts "$name" before ;;
                "edu: loop done"*) counts "$name" after ;;
                "edu: big start"*) counts "$name" big-before ;;
                "edu: big done"*) counts "$name" big-after ;;
                "edu: contig start"*) counts "$name" contig-before ;;
                "edu: contig done"*) counts "$name" contig-after ;;
                "l2: hotplug ready"*)
                    counts "$name" hot-before
                    echo "device_add vfio-pci,host=$hot,id=hot0,bus=rp0,iommufd=i0" > "/tmp/mon-$name.in" ;;
                "l2: unplug ready"*) echo "device_del hot0" > "/tmp/mon-$name.in" ;;
                "l2: unplugged"*)
                    counts "$name" hot-after
                    echo "info swift-vtd" > "/tmp/mon-$name.in" ;;
            esac
            echo "L2[$name]: $line"
        done
    echo "l1: case $name end $(date +%s)"
    counts "$name" end
    grep -e '^host' -e 'host device' -e 'HWPT' "/tmp/state-$name.txt" 2>/dev/null \
        | sed "s/^/l1: state[$name]: /"
}

# Every case at once, each on its own edu and nvme: L1 has a vCPU per L0 core, and each L2
# QEMU keeps one busy.
# A case NAME:MODE:hotplug also gets the edu after the last case's for hot-plugging;
# NAME:MODE:reboot reboots its L2 once.
ncases=$(echo $cases | wc -w)
i=1
for spec in $cases; do
    name=${spec%%:*}; rest=${spec#*:}; mode=${rest%%:*}; flag=${rest#*:}; hot=; reboot=
    [ "$flag" = hotplug ] && hot=$(echo $edus | cut -d' ' -f$((ncases + 1)))
    [ "$flag" = reboot ] && reboot=1
    rm -f "/tmp/counts-$name"
    run_case "$name" "$mode" "$(echo $edus | cut -d' ' -f$i)" "$(echo $nvmes | cut -d' ' -f$i)" "$hot" "$reboot" &
    i=$((i + 1))
done
wait
dmesg | grep -e 'DMAR:.*fault' -e 'DMAR: \[' | tail -64 | sed 's/^/l1: dmesg: /'
echo "l1: done"
poweroff -f
