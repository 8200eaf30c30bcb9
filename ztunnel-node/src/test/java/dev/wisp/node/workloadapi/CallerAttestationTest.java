package dev.wisp.node.workloadapi;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Optional;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Whose process a Workload API caller is, from its {@code /proc/<pid>/cgroup}. */
class CallerAttestationTest {

    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', quoteCharacter = '`', textBlock = """
            the pod's cgroup            | `0::/wisp/c/pods/a\\n`                            | /wisp/c/pods/a  | true  | is in the pod's cgroup /wisp/c/pods/a
            a container below it        | `0::/wisp/c/pods/a/app\\n`                        | /wisp/c/pods/a  | true  | is in the pod's cgroup
            pod path with a slash       | `0::/wisp/c/pods/a\\n`                            | /wisp/c/pods/a/ | true  | is in the pod's cgroup
            hybrid hierarchy            | `12:pids:/x\\n1:name=systemd:/y\\n0::/wisp/c/pods/a\\n` | /wisp/c/pods/a | true | is in the pod's cgroup
            another pod                 | `0::/wisp/c/pods/b\\n`                            | /wisp/c/pods/a  | false | pid 42 in cgroup /wisp/c/pods/b is not in the pod's cgroup /wisp/c/pods/a
            a sibling sharing a prefix  | `0::/wisp/c/pods/ab\\n`                           | /wisp/c/pods/a  | false | is not in the pod's cgroup
            the pod's parent            | `0::/wisp/c/pods\\n`                              | /wisp/c/pods/a  | false | is not in the pod's cgroup
            the node agent              | `0::/wisp/c/nodes/node1\\n`                       | /wisp/c/pods/a  | false | is not in the pod's cgroup
            a removed cgroup            | `0::/wisp/c/pods/a (deleted)\\n`                  | /wisp/c/pods/a  | false | has no cgroup v2 entry
            cgroup v1 only              | `4:memory:/wisp/c/pods/a\\n`                      | /wisp/c/pods/a  | false | has no cgroup v2 entry
            pod in the root cgroup      | `0::/\\n`                                         | /               | false | the pod's cgroup is the root cgroup
            """)
    void decides(String title, String procCgroup, String podCgroup, boolean allowed, String reason) {
        CallerAttestation a = CallerAttestation.decide(42, Optional.of(procCgroup.replace("\\n", "\n")), podCgroup);
        assertThat(a.allowed()).as(title).isEqualTo(allowed);
        assertThat(a.reason()).as(title).contains(reason);
    }

    @ParameterizedTest(name = "pid {0}")
    @CsvSource({"0", "77"})
    void aCallerWhoseCgroupCannotBeReadIsRefused(int pid) {
        CallerAttestation a = CallerAttestation.decide(pid, Optional.empty(), "/wisp/c/pods/a");
        assertThat(a.allowed()).isFalse();
        assertThat(a.reason()).isEqualTo("pid " + pid + " has no readable cgroup (it exited, or is in another pid "
                + "namespace)");
    }
}
