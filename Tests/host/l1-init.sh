#!/bin/busybox sh
# The L1 host's init: Linux (built with iommufd) on L0's VT-d unit. It hands the devices L0
# gave it (edu, nvme) to vfio-pci and runs the project's QEMU with swift-vtd once per case,
# each booting an L2 guest that uses the assigned devices. Everything goes to the console,
# prefixed so the runner on L0 can tell the levels apart:
#   "l1: ..."          this script           "L2[case]: ..."  the L2 QEMU and its guest
#   "l1: counts case phase NAME N ..."       ioctl counts of the L2 QEMU process
# Kernel arguments: svt.cases=NAME:MODE,... (MODE: a host-mode, HOSTMODE-legacy for swift-vtd in
# legacy mode, or "intel" / "intel-sm" for intel-iommu in legacy / scalable mode),
# svt.rounds=N, svt.bigrounds=N (edu rounds of one page and of 1 MiB), svt.profile=1 (a perf
# profile of each case's QEMU over its scattered 1 MiB loop, its own turns of it with svt.turns,
# printed as "l1: perf[case]: ..."),
# svt.serial=1 (the cases one after the other instead of side by side), svt.turns=N (side by side,
# but their 1 MiB loops in turns of N pairs, one case at a time: see take_turn).
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
profile=$(arg profile)
if [ "$profile" = 1 ]; then
    if command -v perf > /dev/null; then
        # Root in an initramfs, but say so anyway: every event and kernel symbols.
        echo -1 > /proc/sys/kernel/perf_event_paranoid
        echo 0 > /proc/sys/kernel/kptr_restrict
    else
        echo "l1: perf: not in this image (build-images.sh copies it with SWIFTVTD_HOST_PERF=1)"
        profile=
    fi
fi

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

# qemu_pid CASE: the process id of the case's QEMU (found as cputime finds it).
qemu_pid() {
    for stat in /proc/[0-9]*/stat; do
        dir=${stat%/stat}
        [ "$(cat "$dir/comm" 2>/dev/null)" = qemu-system-x86 ] || continue
        tr '\0' ' ' < "$dir/cmdline" 2>/dev/null | grep -q "SWIFTVTD-HOST-$1 " || continue
        echo "${dir#/proc/}"
        return
    done
}

# profile_start CASE / profile_stop CASE: perf samples the case's QEMU, every thread, user and
# kernel, with call chains, between the two. cpu-clock: L1 runs under TCG, which has no
# hardware counters, so only software events count.
# With turns the loop spans the other cases' turns too, when this case's L2 idles: perf then
# starts with its events off and samples only this case's turns, switched through a control
# FIFO (profile_turn).
profile_start() {
    pid=$(qemu_pid "$1")
    [ -n "$pid" ] || { echo "l1: perf[$1]: no QEMU process to profile"; return; }
    if [ "$turns" -gt 0 ]; then
        profile_record "$pid" "perf-$1" "perfctl-$1"
        # A second profile of the same QEMU over the other cases' turns: what it does while its
        # L2 waits for its turn (it still takes CPU from L1's two vCPUs then).
        profile_record "$pid" "perfidle-$1" "perfidlectl-$1"
    else
        profile_record "$pid" "perf-$1"
    fi
}
# profile_record PID NAME [CONTROL]: perf on PID into /tmp/NAME.data, its pid in /tmp/NAME.pid;
# with CONTROL, started with its events off and switched through the FIFO /tmp/CONTROL.
profile_record() {
    control=
    if [ -n "$3" ]; then
        mkfifo "/tmp/$3"
        control="-D -1 --control fifo:/tmp/$3"
    fi
    perf record -q -N -e cpu-clock -F 499 -g -p "$1" -o "/tmp/$2.data" $control > "/tmp/$2.err" 2>&1 &
    echo $! > "/tmp/$2.pid"
}
profile_stop() {
    [ -f "/tmp/perf-$1.pid" ] && kill -INT "$(cat "/tmp/perf-$1.pid")"
    [ -f "/tmp/perfidle-$1.pid" ] && kill -INT "$(cat "/tmp/perfidle-$1.pid")"
    rm -f "/tmp/perfctl-$1" "/tmp/perfidlectl-$1"
}
# profile_turn CASE enable|disable: switches the case's sampling at a turn's start and end, and
# the other cases' idle sampling with it (nothing while no profile is being recorded: the
# contiguous loop's turns). Opened read-write, so a perf that has gone does not block the write.
profile_turn() {
    [ -p "/tmp/perfctl-$1" ] && echo "$2" 1<> "/tmp/perfctl-$1"
    for idle in /tmp/perfidlectl-*; do
        [ "$idle" != "/tmp/perfidlectl-$1" ] && [ -p "$idle" ] && echo "$2" 1<> "$idle"
    done
    return 0
}

# profile_report CASE: the recorded profile, once the case's QEMU has ended (at the lowest
# priority: cases still running are measured meanwhile): samples by shared object, then by
# object and symbol (self time), then by object and symbol with what they call (children; call
# chains through code built without frame pointers are cut short, so read those as lower bounds).
# profile_wait NAME: until the perf recording /tmp/NAME.data has written it and exited.
profile_wait() {
    pid=$(cat "/tmp/$1.pid" 2>/dev/null)
    while [ -n "$pid" ] && [ -d "/proc/$pid" ]; do sleep 1; done
}
profile_report() {
    data=/tmp/perf-$1.data
    profile_wait "perf-$1"
    if [ ! -s "$data" ]; then
        echo "l1: perf[$1]: no profile: $(tail -3 "/tmp/perf-$1.err" 2>/dev/null | tr '\n' ' ')"
        return
    fi
    # busybox has renice but no nice: COMMAND at the lowest priority.
    lowprio() { sh -c 'renice -n 19 -p $$ > /dev/null 2>&1; exec "$@"' lowprio "$@"; }
    # perf's header, less its blank and hint lines.
    quiet() { grep -v -e '^$' -e '^#$' -e '^# To display' -e '^# (Tip' -e '^# \.\.\.'; }
    {
        echo "== by object"
        lowprio perf report -i "$data" --stdio --no-children --sort dso -g none --percent-limit 0.1 2>&1 \
            | quiet | head -30
        # Which of QEMU's threads ran (named with debug-threads): the vCPU running L2, the main
        # loop, RCU, workers.
        echo "== by thread"
        lowprio perf report -i "$data" --stdio --no-children --sort pid -g none 2>&1 | quiet
        # Every symbol: the runner sorts them into kinds of work (run-host-tests.py, profile_kinds).
        echo "== by object and symbol, self"
        lowprio perf report -i "$data" --stdio --no-children --sort dso,sym -g none 2>&1 | quiet
        # Call chains through the JIT code and QEMU end in addresses perf cannot name: left out.
        echo "== by object and symbol, with callees (children)"
        lowprio perf report -i "$data" --stdio --children --sort dso,sym -g none --percent-limit 1 2>&1 \
            | quiet | grep -v '\[unknown\]' | head -60
    } | sed "s/^/l1: perf[$1]: /"
    idle=/tmp/perfidle-$1.data
    profile_wait "perfidle-$1"
    [ -s "$idle" ] || return 0
    {
        echo "== idle, by thread"
        lowprio perf report -i "$idle" --stdio --no-children --sort pid -g none 2>&1 | quiet
        echo "== idle, by object and symbol, self"
        lowprio perf report -i "$idle" --stdio --no-children --sort dso,sym -g none 2>&1 | quiet | head -50
    } | sed "s/^/l1: perfidle[$1]: /"
}

# counts CASE PHASE: one line with the L2 QEMU's ioctl counts and CPU time so far.
counts() {
    echo "l1: counts $1 $2 $(/opt/swiftvtd/ioctl_count "/tmp/counts-$1" 2>/dev/null | tr '\n' ' ')$(cputime "$1")"
}

# Turns (svt.turns=N): each L2 runs its 1 MiB loops N pairs at a time, starting a turn when a line
# arrives on its console, and L1 hands the turn round the cases in their svt.cases order. Cases
# compared with each other then measure in the same minutes, a few seconds apart, where serial
# cases measure many minutes apart (the machine under L0 changes speed more than that), and
# never two loops at once, as side by side they would. /tmp/turn holds the index of the case
# whose turn it is; a case whose QEMU has ended (/tmp/ended-I) is passed over.
turns=$(arg turns); turns=${turns:-0}
turn_lock() { until mkdir /tmp/turn.lock 2> /dev/null; do sleep 0.05; done; }
turn_unlock() { rmdir /tmp/turn.lock; }
# pass_turn I: if case I has the turn, hands it to the next case that has not ended (lock held).
pass_turn() {
    [ "$(cat /tmp/turn)" = "$1" ] || return 0
    j=$1; k=0
    while [ $k -lt "$ncases" ]; do
        j=$((j % ncases + 1)); k=$((k + 1))
        [ -e "/tmp/ended-$j" ] || break
    done
    echo "$j" > /tmp/turn
}
# take_turn I NAME: waits for case I's turn, then lets its L2 begin (a line on its console). A
# case that waited 20 minutes goes on regardless and says so.
take_turn() {
    waited=0
    while :; do
        turn_lock
        t=$(cat /tmp/turn)
        [ "$t" != "$1" ] && [ -e "/tmp/ended-$t" ] && pass_turn "$t"
        turn_unlock
        [ "$t" = "$1" ] && break
        if [ $waited -ge 6000 ]; then
            echo "l1: turn: case $2 waited 20 minutes for case $t's turn, going on"
            break
        fi
        sleep 0.2; waited=$((waited + 1))
    done
    [ -n "$profile" ] && profile_turn "$2" enable
    # Opened read-write: a FIFO whose QEMU has just gone would block a write-only open.
    echo go 1<> "/tmp/gate-$2"
}
end_turns() {
    turn_lock; touch "/tmp/ended-$1"; pass_turn "$1"; turn_unlock
}

# run_case NAME MODE EDU NVME [HOT]: one L2 QEMU (swift-vtd with host-mode MODE, or intel-iommu
# for MODE "intel" or "intel-sm", QEMU's own shadowing: the anchor to compare with) with both devices
# assigned. With HOT, an edu is hot-plugged into a root port once L2 has done its tests, used,
# and unplugged again, driven from L2's console through QEMU's monitor.
run_case() {
    name=$1; mode=$2; edu=$3; nvme=$4; hot=$5; reboot=$6; pt=$7; index=$8
    monitor="-monitor none"; extra=; noreboot=-no-reboot
    # L2's console input: with turns, a FIFO that take_turn writes to (QEMU opens it read-write,
    # so it never sees an end of file).
    gate=/dev/null
    [ "$turns" -gt 0 ] && { gate=/tmp/gate-$name; mkfifo "$gate"; }
    # A rebooting case lets QEMU reset instead of exiting.
    [ -n "$reboot" ] && noreboot=
    if [ -n "$hot" ]; then
        mkfifo "/tmp/mon-$name.in" "/tmp/mon-$name.out"
        monitor="-monitor pipe:/tmp/mon-$name"
        extra="-device pcie-root-port,id=rp0,chassis=1,slot=1 -global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"
        while IFS= read -r l; do echo "L2mon[$name]: $l"; done < "/tmp/mon-$name.out" &
    fi
    # MODE "intel" is intel-iommu in legacy mode, "intel-sm" in scalable mode (second-level, as
    # swift-vtd's shadow); a swift-vtd MODE ending in "-legacy" runs that host-mode in legacy
    # mode, so that each shadow can be compared with the other in both translation modes.
    case "$mode" in
        intel|intel-sm)
            # aw-bits=39: intel-iommu refuses a guest width above the host IOAS's (47 bits here).
            iommu="intel-iommu,intremap=on,caching-mode=on,aw-bits=39"
            [ "$mode" = intel-sm ] && iommu="$iommu,x-scalable-mode=on" ;;
        *)
            sm=on; hostmode=$mode
            case "$mode" in *-legacy) sm=off; hostmode=${mode%-legacy} ;; esac
            # Shadowing maps guest IOVAs into L1's 47-bit IOAS as they are, so a unit that will
            # shadow takes aw-bits=39, as intel-iommu does. Nesting binds first-level tables,
            # which need 48: forced nesting, and auto where L1's IOMMU can nest (ECAP.NEST, bit
            # 26), where auto nests (at 39 it would shadow: first-level needs 48).
            aw=39
            case "$hostmode" in
                nested) aw=48 ;;
                auto) [ $(( 0x$(cat /sys/class/iommu/dmar0/intel-iommu/ecap) >> 26 & 1 )) = 1 ] && aw=48 ;;
            esac
            iommu="swift-vtd,library=/opt/swiftvtd/libSwiftVTd.so,intremap=on,x-scalable-mode=$sm,aw-bits=$aw,host-mode=$hostmode,state-dump=/tmp/state-$name.txt" ;;
    esac
    echo "l1: case $name host-mode=$mode edu=$edu nvme=$nvme start $(date +%s)"
    # L2 runs its edu loop between "edu: start" and "edu: loop done": the counts are taken as
    # those lines pass (edu_vfio pauses around its loop so the snapshots bracket it).
    SWIFTVTD_IOCTL_COUNTS="/tmp/counts-$name" LD_PRELOAD=/opt/swiftvtd/libioctlcount.so \
    timeout 3600 qemu-system-x86_64 -accel tcg -M q35,kernel-irqchip=split -bios qboot.rom \
        -L /usr/share/qemu -cpu max -smp 1 -m 320M -nographic $noreboot -vga none -nodefaults \
        -name "$name,debug-threads=on" \
        -serial stdio $monitor $extra \
        -object iommufd,id=i0 -device "$iommu" \
        -device "vfio-pci,host=$edu,iommufd=i0" -device "vfio-pci,host=$nvme,iommufd=i0" \
        -kernel /l2/bzImage -initrd /l2/initramfs.cpio.gz \
        -append "console=ttyS0 intel_iommu=on,sm_on iommu.strict=1 panic=-1 loglevel=4 no_timer_check mitigations=off hugepages=1 ${pt:+iommu=pt} svt.rounds=$rounds svt.bigrounds=$bigrounds svt.hotplug=${hot:+1} svt.reboot=${reboot:+1} svt.turn=$turns svt.pattern=SWIFTVTD-HOST-$name" \
        2>&1 <> "$gate" | while IFS= read -r line; do
            case "$line" in
                "edu: start"*) counts "$name" before ;;
                "edu: loop done"*) counts "$name" after ;;
                "edu: big start"*)
                    counts "$name" big-before
                    [ -n "$profile" ] && profile_start "$name" ;;
                "edu: big done"*)
                    [ -n "$profile" ] && profile_stop "$name"
                    counts "$name" big-after ;;
                "edu: contig start"*) counts "$name" contig-before ;;
                "edu: "*" turn "*" ready"*) take_turn "$index" "$name" ;;
                "edu: "*" turn "*" pairs, "*)
                    [ -n "$profile" ] && profile_turn "$name" disable
                    turn_lock; pass_turn "$index"; turn_unlock ;;
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
    end_turns "$index"
    counts "$name" end
    [ -n "$profile" ] && profile_report "$name"
    grep -e '^host' -e 'host device' -e 'HWPT' "/tmp/state-$name.txt" 2>/dev/null \
        | sed "s/^/l1: state[$name]: /"
}

# Every case at once, each on its own edu and nvme: L1 has a vCPU per L0 core, and each L2
# QEMU keeps one busy. With svt.serial=1 one after the other instead: each case's QEMU then has
# a vCPU of L1 to itself, so its CPU time and time per pair do not depend on what the other
# cases were doing meanwhile (side by side they share two vCPUs, and a case's figures move
# with how many others were running during its loop).
# A case NAME:MODE:hotplug also gets the edu after the last case's for hot-plugging;
# NAME:MODE:reboot reboots its L2 once; NAME:MODE:pt boots L2 with iommu=pt (its kernel's
# devices pass through; only what VFIO in L2 drives is translated).
serial=$(arg serial)
[ "$serial" = 1 ] && turns=0
ncases=$(echo $cases | wc -w)
echo 1 > /tmp/turn
i=1
for spec in $cases; do
    name=${spec%%:*}; rest=${spec#*:}; mode=${rest%%:*}; flag=${rest#*:}; hot=; reboot=; pt=
    [ "$flag" = hotplug ] && hot=$(echo $edus | cut -d' ' -f$((ncases + 1)))
    [ "$flag" = reboot ] && reboot=1
    [ "$flag" = pt ] && pt=1
    rm -f "/tmp/counts-$name"
    if [ "$serial" = 1 ]; then
        run_case "$name" "$mode" "$(echo $edus | cut -d' ' -f$i)" "$(echo $nvmes | cut -d' ' -f$i)" "$hot" "$reboot" "$pt" "$i"
    else
        run_case "$name" "$mode" "$(echo $edus | cut -d' ' -f$i)" "$(echo $nvmes | cut -d' ' -f$i)" "$hot" "$reboot" "$pt" "$i" &
    fi
    i=$((i + 1))
done
wait
dmesg | grep -e 'DMAR:.*fault' -e 'DMAR: \[' | tail -64 | sed 's/^/l1: dmesg: /'
echo "l1: done"
poweroff -f
