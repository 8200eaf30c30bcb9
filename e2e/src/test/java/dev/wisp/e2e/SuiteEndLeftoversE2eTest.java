package dev.wisp.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import dev.wisp.local.Leftovers;
import dev.wisp.local.LocalCluster;
import dev.wisp.testing.Prerequisites;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;

/**
 * Runs last in the e2e module (in the {@code e2e-serial} execution, after the classes that run side
 * by side, and last in it by {@link Order}, see {@code junit-platform.properties}): no namespace,
 * link, cgroup, process or pinned BPF object of any cluster this JVM built is left on the machine.
 * Clusters of other suites running at the same time on the machine are not ours and are only listed.
 * Every other JVM of the module (the side-by-side forks, a run filtered with {@code -Dtest}) makes
 * the same check for its own clusters when it ends, through {@link SuiteEndLeftovers}, which fails
 * the fork.
 */
@Order(Integer.MAX_VALUE)
@RunsAlone
class SuiteEndLeftoversE2eTest {
    static volatile boolean ran;

    @Test
    void nothingOfOursIsLeftOnTheMachine() throws Exception {
        Prerequisites.requireRoot();
        ran = true;
        // A run of this JVM's classes is over: the meshes they shared go down first.
        SharedMeshes.closeAll();
        assertThat(leftovers()).as("left on the machine by clusters of this suite " + ours()).isEmpty();
        List<String> others = Leftovers.scan();
        if (!others.isEmpty()) {
            System.out.println("not ours (another run on this machine?): " + others);
        }
    }

    /** The clusters this JVM built (another engineer's suite may be running its own meanwhile). */
    static Set<String> ours() {
        return new TreeSet<>(LocalCluster.builtInThisJvm());
    }

    static List<String> leftovers() {
        List<String> left = new ArrayList<>();
        for (String c : ours()) {
            left.addAll(Leftovers.scan(c));
        }
        return left;
    }
}
