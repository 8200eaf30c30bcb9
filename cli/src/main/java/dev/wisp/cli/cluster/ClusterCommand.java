package dev.wisp.cli.cluster;

import dev.wisp.cli.ConfigDirOption;
import dev.wisp.cli.UserException;
import dev.wisp.local.ClusterException;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.Leftovers;
import dev.wisp.local.LocalCluster;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code wisp cluster up/down/status}: the whole mesh on this machine ({@link LocalMesh}) — nodes and
 * pods as network namespaces, the control plane, one capturing node agent per node.
 */
@Command(name = "cluster", mixinStandardHelpOptions = true, description = {
        "Run a whole mesh on this machine (root): nodes and pods as network namespaces, the control",
        "plane watching a YAML directory, one node agent per node capturing its pods with eBPF."}, subcommands = {
                ClusterCommand.Up.class, ClusterCommand.Down.class, ClusterCommand.Status.class})
public final class ClusterCommand {

    @Command(name = "up", mixinStandardHelpOptions = true, description = {
            "Build the cluster, start the mesh and stay in the foreground until Ctrl-C or SIGTERM,",
            "which stop and remove everything. The control plane watches --config-dir (created when",
            "absent): save an",
            "AuthorizationPolicy or PeerAuthentication there and it applies within a second. The",
            "cluster's own Node/Pod/Service objects are generated into that directory as",
            "wisp-cluster-NAME.yaml (removed at shutdown).",
            "A waypoint Gateway saved there (gatewayClassName wisp-waypoint or istio-waypoint,",
            "listener {name: mesh, port: 15008, protocol: HBONE}) gets 'wisp waypoint' in a pod of",
            "its own on node1 (named after the Gateway, service account = the Gateway's name, not",
            "captured; log <work-dir>/waypoint-NS-NAME.log), stopped when the Gateway is removed."})
    static final class Up implements Callable<Integer> {
        @Option(names = "--name", required = true, paramLabel = "NAME", description = "Cluster name: 1-8 lower-case letters or digits, starting with a letter.")
        String name;

        @Option(names = "--nodes", defaultValue = "2", paramLabel = "N", description = "Number of nodes, 1..50 (default: ${DEFAULT-VALUE}).")
        int nodes;

        @Mixin
        ConfigDirOption configDir;

        @Option(names = "--pods", paramLabel = "FILE", description = "Pods and Services to create (YAML: pods: [{name, namespace, serviceAccount, node: node1, labels}], services: [{name, namespace, selector, port, targetPort}]).")
        Path pods;

        @Option(names = "--work-dir", paramLabel = "DIR", description = "Logs, control-plane state, pods directories (default: <tmp>/wisp-mesh-NAME).")
        Path workDir;

        @Option(names = "--base", defaultValue = "200", paramLabel = "B", description = "Address plan: underlay 10.B.0.0/24, pods 10.(B+1).<node>.0/24; even, 10..252 (default: ${DEFAULT-VALUE}).")
        int base;

        @Option(names = "--wireguard", negatable = true, defaultValue = "true", fallbackValue = "true", description = "WireGuard between the nodes (strict: pod traffic between nodes only inside it); --no-wireguard leaves it on the underlay in clear (default: on).")
        boolean wireguard;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() throws InterruptedException {
            PrintWriter out = spec.commandLine().getOut();
            ClusterSpec cluster;
            PodsFile podsFile = pods == null ? new PodsFile(List.of(), List.of()) : null;
            try {
                if (podsFile == null) {
                    podsFile = PodsFile.read(pods, nodes);
                }
                ClusterSpec.Builder b = ClusterSpec.builder(name).nodes(nodes).base(base).hostLink(true);
                podsFile.pods().forEach(b::pod);
                cluster = b.build();
            } catch (IllegalArgumentException e) {
                throw UserException.invalid(e.getMessage());
            }
            MeshSpec.Builder mesh = MeshSpec.builder(cluster).configDir(configDir.dir()).wireguard(wireguard);
            if (workDir != null) {
                mesh.workDir(workDir);
            }
            podsFile.serviceSpecs(cluster).forEach(mesh::service);
            MeshSpec meshSpec = mesh.build();
            refuseIfRunning(name);
            out.println("starting mesh '" + name + "' (" + nodes + " nodes, " + cluster.pods().size()
                    + " pods); logs in " + meshSpec.workDir());
            out.flush();
            // Ctrl-C while starting removes what was built so far; once up, it stops the mesh.
            AtomicReference<LocalMesh> running = new AtomicReference<>();
            Thread hook = new Thread(() -> {
                try {
                    LocalMesh up = running.get();
                    if (up != null) {
                        up.close();
                    } else {
                        LocalMesh.down(name);
                    }
                } catch (RuntimeException e) {
                    System.err.println("error: stopping cluster '" + name + "': " + e.getMessage()
                            + " (run 'wisp cluster down --name " + name + "')");
                }
            }, "wisp-cluster-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            LocalMesh m;
            try {
                m = LocalMesh.up(meshSpec);
                running.set(m);
            } catch (ClusterException e) {
                Runtime.getRuntime().removeShutdownHook(hook);
                throw new UserException(e.getMessage(), e);
            }
            printSummary(out, m);
            CountDownLatch forever = new CountDownLatch(1);
            forever.await();
            return 0;
        }

        static void refuseIfRunning(String name) {
            Optional<LocalMesh.Status> s = LocalMesh.status(name);
            if (s.isPresent() && s.get().ownerAlive()) {
                throw new UserException("cluster '" + name + "' is already running (process " + s.get().ownerPid()
                        + "); stop it there with Ctrl-C or run 'wisp cluster down --name " + name + "'");
            }
        }
    }

    static void printSummary(PrintWriter out, LocalMesh m) {
        String n = m.name();
        out.println();
        out.println("mesh '" + n + "' is up. Ctrl-C stops it and removes everything it created.");
        out.println();
        out.println("  config dir  " + m.configDir() + "   (watched; generated: " + LocalMesh.generatedFileName(n)
                + ")");
        out.println("  logs        " + m.workDir() + "/{control-plane,node1,…}.log");
        out.println("  control plane  " + m.cluster().underlayAddress() + ":" + LocalMesh.XDS_PORT
                + " in namespace " + m.cluster().underlayNetns());
        for (LocalCluster.Node node : m.cluster().nodes()) {
            out.printf("  %-8s %-12s pods %-15s metrics %s%n", node.name(), node.address(), node.podCidr(), m
                    .metricsUrl(node.name()));
        }
        for (LocalCluster.Pod p : m.cluster().pods()) {
            out.printf("  pod %-16s %-12s %-8s %s%n", p.name(), p.ip(), p.node().name(), m.spiffeId(p.name()));
        }
        for (MeshSpec.ServiceSpec s : m.spec().services()) {
            out.printf("  service %s/%s  %s:%d%n", s.namespace(), s.name(), s.clusterIp(), s.port());
        }
        out.println();
        out.println("  apply a policy:   cp policy.yaml " + m.configDir() + "/");
        out.println("               or:  ip netns exec " + m.cluster().underlayNetns()
                + " ./bin/wisp apply -f policy.yaml");
        out.println("  agent admin:      ip netns exec wisp-" + n + "-node1 curl -s 127.0.0.1:15000/flows");
        out.println("  stop from elsewhere: ./bin/wisp cluster down --name " + n);
        out.flush();
    }

    @Command(name = "down", mixinStandardHelpOptions = true, description = {
            "Stop and remove cluster NAME: its processes, network namespaces, links, cgroups and pinned",
            "eBPF objects, and its generated config file. Works after a crash; idempotent."})
    static final class Down implements Callable<Integer> {
        @Option(names = "--name", required = true, paramLabel = "NAME", description = "The cluster's name.")
        String name;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            try {
                ClusterSpec.builder(name).build();
            } catch (IllegalArgumentException e) {
                throw UserException.invalid(e.getMessage());
            }
            try {
                LocalMesh.down(name);
            } catch (ClusterException e) {
                throw new UserException(e.getMessage(), e);
            }
            List<String> left = Leftovers.scan(name);
            if (!left.isEmpty()) {
                throw new UserException("cluster '" + name + "' left " + String.join(", ", left));
            }
            spec.commandLine().getOut().println("cluster '" + name + "' removed");
            return 0;
        }
    }

    @Command(name = "status", mixinStandardHelpOptions = true, description = "List local clusters: owner process, processes, directories, leftovers.")
    static final class Status implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            List<String> names = LocalMesh.registered();
            if (names.isEmpty()) {
                out.println("no local clusters");
            }
            for (String n : names) {
                LocalMesh.status(n).ifPresent(s -> out.printf("%-8s %s  %d processes  config %s  logs %s%n", n, s
                        .ownerAlive()
                                ? "running (pid " + s.ownerPid() + ")"
                                : "owner gone: run 'wisp cluster down "
                                        + "--name " + n + "'",
                        s.processes().size(), s.configDir(), s.workDir()));
            }
            List<String> left = Leftovers.scan();
            if (!left.isEmpty() && names.isEmpty()) {
                out.println("left on the machine:");
                left.forEach(l -> out.println("  " + l));
            }
            out.flush();
            return 0;
        }
    }
}
