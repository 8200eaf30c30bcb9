package dev.wisp.e2e;

import dev.wisp.base.Closing;
import dev.wisp.local.AddressPlan;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.IOException;
import java.lang.annotation.ElementType;
import java.lang.annotation.Inherited;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.LifecycleMethodExecutionExceptionHandler;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Meshes that several small e2e classes share instead of each bringing up its own (a mesh up is a
 * control plane and two agent JVMs: most of a small class's time). A class says which with
 * {@link OnSharedMesh}; the classes of a mesh run one after the other ({@code @Order}). A mesh is up
 * when its first class asks for it and goes down, checked for leftovers, after its last class of the
 * run ({@link SharedMeshLifetime}), or at the latest when the run ends ({@link #closeAll}, from
 * {@link SuiteEndLeftovers} or {@link SuiteEndLeftoversE2eTest}).
 * Each is a superset of what its classes had on their own meshes: the same node/pod layout, every
 * class's server ports, the Service and the DNS relay. A class must leave it as it found it (its
 * policies removed: {@link #release}) and must not assert anything another class's traffic could
 * satisfy (a class checks only the logs and records of its own ports, policies and names).
 * Cluster names carry this run's {@link RunSlot}.
 */
final class SharedMeshes {
    /** The IPv4 one's address block. */
    static final int IPV4_BASE = 46;
    /** The dual-stack one's address block. */
    static final int DUAL_BASE = 48;
    /** Pod server's {@link dev.wisp.testing.PodServer} ports: the Service's target and two more. */
    static final int[] SERVER_PORTS = {8080, 9000, 9001};
    private static final Map<Kind, Shared> UP = new EnumMap<>(Kind.class);
    /** How many classes of the running test plan use each shared mesh and have not finished. */
    private static final Map<Kind, Integer> USERS = new EnumMap<>(Kind.class);
    private static volatile boolean failed;

    private SharedMeshes() {}

    /** A shared mesh and its work directory, kept after a failed run for its logs. */
    record Shared(PodDnsE2eTest.DnsMesh dns, Path dir) {}

    /** The shared meshes; a class names its one with {@link OnSharedMesh}. */
    enum Kind {
        /**
         * IPv4 ({@link PodDnsE2eTest}, {@link MeshTrafficE2eTest}): pod client on node 1, pod server on
         * node 2 serving {@link #SERVER_PORTS}, Service {@code server} (VIP {@code .1} port 80 to 8080),
         * agents relaying DNS to a stub at the underlay bridge's address, the client's
         * {@code resolv.conf} naming VIP {@code .53}.
         */
        IPV4("shr4", IPV4_BASE, ClusterSpec.Stack.IPV4),
        /**
         * The same, dual stack ({@link DualStackDnsE2eTest}, {@link DualStackE2eTest}), without WireGuard
         * devices: the DNS stub at the underlay bridge's IPv6 address, the client's {@code resolv.conf}
         * naming the IPv6 VIP {@code ::53}.
         */
        DUAL("shr6", DUAL_BASE, ClusterSpec.Stack.DUAL);

        final String cluster;
        final int base;
        final ClusterSpec.Stack stack;

        Kind(String cluster, int base, ClusterSpec.Stack stack) {
            this.cluster = cluster;
            this.base = base;
            this.stack = stack;
        }
    }

    /**
     * Marks a class that runs on shared mesh {@link #value}: {@link SharedMeshLifetime} counts such classes in
     * the run and takes the mesh down after the last; {@link Watch} keeps the work directory when a
     * test fails.
     */
    @Retention(RetentionPolicy.RUNTIME)
    @Target(ElementType.TYPE)
    @Inherited
    @ExtendWith(Watch.class)
    @interface OnSharedMesh {
        Kind value();
    }

    /** The shared mesh of {@code testClass} (its {@link OnSharedMesh}), up when the first class asks. */
    static PodDnsE2eTest.DnsMesh of(Class<?> testClass) throws Exception {
        OnSharedMesh on = testClass.getAnnotation(OnSharedMesh.class);
        if (on == null) {
            throw new IllegalArgumentException(testClass.getName() + " has no @OnSharedMesh");
        }
        return up(on.value());
    }

    private static synchronized PodDnsE2eTest.DnsMesh up(Kind kind) throws Exception {
        Shared shared = UP.get(kind);
        if (shared != null) {
            return shared.dns();
        }
        String cluster = RunSlot.cluster(kind.cluster);
        int base = kind.base;
        ClusterSpec.Stack stack = kind.stack;
        Path dir = Files.createTempDirectory("wisp-shared-" + cluster + "-");
        MeshSpec.Builder spec = PodApps.clientServerMesh(cluster, base, stack, dir).service(new MeshSpec.ServiceSpec(
                "server", "default", Map.of("app", "server"), LocalMesh.serviceAddress(ClusterSpec.builder(cluster)
                        .base(base).build(), 1),
                80, 8080));
        PodDnsE2eTest.DnsMesh dns;
        if (stack == ClusterSpec.Stack.IPV4) {
            dns = PodDnsE2eTest.DnsMesh.up(spec, "10." + base + ".0.2", serviceAddress(cluster, base, stack, 53));
        } else {
            // HBONE carries every call here; no WireGuard devices to start on a loaded machine.
            dns = PodDnsE2eTest.DnsMesh.up(spec.wireguard(false), AddressPlan.ipv6Of("10." + base + ".0.2"),
                    serviceAddress(cluster, base, stack, 53));
        }
        try {
            PodApps.startServer(dns.mesh(), "server", "server", SERVER_PORTS);
        } catch (IOException | RuntimeException e) {
            Closing.inOrder(dns);
            throw e;
        }
        UP.put(kind, new Shared(dns, dir));
        return dns;
    }

    /** Service VIP {@code i} of the shared cluster: IPv6 in a dual-stack one (its AAAA twin). */
    private static String serviceAddress(String cluster, int base, ClusterSpec.Stack stack, int i) {
        ClusterSpec spec = ClusterSpec.builder(cluster).base(base).stack(stack).build();
        return stack == ClusterSpec.Stack.IPV4 ? LocalMesh.serviceAddress(spec, i) : LocalMesh.serviceAddress6(spec, i);
    }

    private static void deleteTree(Path dir) throws IOException {
        try (Stream<Path> all = Files.walk(dir)) {
            for (Path p : all.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** Registered on every class that uses a shared mesh: a failed test keeps the meshes' work directories. */
    static final class Watch implements TestWatcher, LifecycleMethodExecutionExceptionHandler {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            failed = true;
        }

        @Override
        public void handleBeforeAllMethodExecutionException(ExtensionContext context, Throwable throwable)
                throws Throwable {
            failed = true;
            throw throwable;
        }

        @Override
        public void handleAfterAllMethodExecutionException(ExtensionContext context, Throwable throwable)
                throws Throwable {
            failed = true;
            throw throwable;
        }
    }

    /** The configuration files in {@code mesh}'s config directory now. */
    static Set<Path> config(LocalMesh mesh) throws IOException {
        try (Stream<Path> files = Files.list(mesh.configDir())) {
            return Set.copyOf(files.toList());
        }
    }

    /**
     * Hands {@code mesh} back after a class: removes the configuration files it left (those not in
     * {@code before}, what the directory held when the class began).
     */
    static void release(LocalMesh mesh, Set<Path> before) throws IOException {
        for (Path p : config(mesh)) {
            if (!before.contains(p)) {
                mesh.delete(p.getFileName().toString());
            }
        }
    }

    /**
     * Takes every shared mesh down, checks each left nothing ({@link PodApps#down}), and removes their
     * work directories unless a test on one failed ({@link Watch}); throws the first failure after
     * trying all.
     */
    static synchronized void closeAll() {
        Closing.inOrder(List.copyOf(UP.keySet()).stream().map(k -> (AutoCloseable) () -> down(k))
                .toArray(AutoCloseable[]::new));
    }

    private static synchronized void down(Kind kind) throws Exception {
        Shared s = UP.remove(kind);
        if (s == null) {
            return;
        }
        s.dns().close();
        if (failed) {
            System.out.println("shared mesh " + s.dns().mesh().name() + " down; a test on a shared mesh failed: "
                    + "its logs are kept in " + s.dir());
        } else {
            deleteTree(s.dir());
        }
    }

    /**
     * The classes of a test plan on each shared mesh ({@link SharedMeshLifetime}): the mesh goes down
     * when the count of its unfinished classes reaches zero.
     */
    static synchronized void planned(Map<Kind, Integer> users) {
        USERS.clear();
        USERS.putAll(users);
    }

    /** A class on shared mesh {@code kind} has finished: after the plan's last, the mesh goes down. */
    static synchronized void finished(Kind kind) throws Exception {
        if (USERS.merge(kind, -1, Integer::sum) <= 0) {
            USERS.remove(kind);
            down(kind);
        }
    }
}
