# CPU accounting shared by the benchmarks (sourced, not run): clock ticks from /proc.
#   cpu_ticks PID          utime+stime of a process (all its threads), /proc/PID/stat
#   machine_ticks          user+nice+system+irq+softirq of all CPUs, /proc/stat
#   background_ticks       machine_ticks over $idle_secs (default 5) with no benchmark traffic
#   ksoftirqd_ticks        utime+stime of the kernel's softirq threads
#   cgroup_ticks DIR       cpu_ticks summed over the processes of a cgroup and the cgroups below it
#   find_java              the java of a JDK >= 25: WISP_JAVA, else the newest under /usr/lib/jvm (scripts/lib/java.sh)

cpu_ticks() {
  awk '{print $14+$15}' "/proc/$1/stat" 2>/dev/null || echo 0
}

machine_ticks() {
  awk '$1 == "cpu" {print $2+$3+$4+$7+$8}' /proc/stat
}

idle_secs=${idle_secs:-${WISP_BENCH_IDLE_SECONDS:-5}}
background_ticks() {
  local m0 m1; m0=$(machine_ticks); sleep "$idle_secs"; m1=$(machine_ticks)
  echo $((m1 - m0))
}

ksoftirqd_ticks() {
  local t=0 p
  for p in $(pgrep '^ksoftirqd/'); do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}

cgroup_ticks() {
  local t=0 p
  for p in $(find "$1" -name cgroup.procs -exec cat {} + 2>/dev/null); do t=$((t + $(cpu_ticks "$p"))); done
  echo "$t"
}

# shellcheck source=../../scripts/lib/java.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib/java.sh"
