package dev.wisp.local;

import static java.util.Objects.requireNonNull;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What {@link LocalMesh#up} runs: a {@link ClusterSpec} (its host link is always on), how to launch
 * {@code wisp}, where logs and configuration go, and the Services and MeshConfig to declare.
 *
 * @param cluster nodes and pods; {@link ClusterSpec#hostLink()} is forced on
 * @param wispCommand the command prefix that runs the {@code wisp} launcher, e.g.
 *        {@code [java, -cp, <classpath>, dev.wisp.cli.Wisp]} ({@link #currentJvmWispCommand()})
 * @param workDir logs ({@code control-plane.log}, {@code node1.log}, …), the control plane's state,
 *        the agents' pods directories; created when absent
 * @param configDir the directory the control plane watches; {@code <workDir>/config} when null. The
 *        generated Node/Pod/Service objects are written there as {@link LocalMesh#generatedFileName}
 * @param services Services to declare beside the pods
 * @param meshConfig a whole {@code MeshConfig} YAML document, or null for the control plane's defaults
 *        (trust domain cluster.local, PERMISSIVE)
 * @param agentArgs extra arguments for every {@code wisp node} (e.g. {@code --dns-upstream ADDR:53})
 * @param wireguard whether every agent runs its node's WireGuard device (strict mode): pod traffic
 *        between nodes is encrypted (on by default)
 * @param agentCapabilities the capabilities (e.g. {@code SYS_ADMIN}) the agents run with, as their
 *        only bounding set (the way a container that drops ALL and adds these runs them), or null
 *        for root's full set
 * @param controlPlaneArgs extra arguments for {@code wisp control-plane} (e.g. {@code --workload-cert-ttl 30s})
 * @param agentCommand the command prefix that runs the agents' {@code wisp} exactly as given (e.g. the
 *        container image's launcher inside a container runtime's set-up), or null for
 *        {@code wispCommand} with the production agent's JVM options and an AOT cache
 * @param wireguardPodCidrsFromNodes with {@code wireguard}: the agents get no
 *        {@code --wireguard-pod-cidr} and take their pod CIDRs from their Node resources, as the
 *        chart runs them; otherwise each is given its node's
 * @param cpuShares each agent's and each pod's CPU weight in a group of its own, as Kubernetes gives
 *        containers with CPU requests ({@link CpuShares}); null (the default) for none: every thread
 *        then competes with the machine's others on its own
 */
public record MeshSpec(ClusterSpec cluster, List<String> wispCommand, Path workDir, Path configDir,
        List<ServiceSpec> services, String meshConfig, List<String> agentArgs, boolean wireguard,
        List<String> agentCapabilities, List<String> controlPlaneArgs, List<String> agentCommand,
        boolean wireguardPodCidrsFromNodes, CpuShares cpuShares) {

    public MeshSpec {
        controlPlaneArgs = List.copyOf(requireNonNull(controlPlaneArgs, "controlPlaneArgs"));
        requireNonNull(cluster, "cluster");
        requireNonNull(wispCommand, "wispCommand");
        requireNonNull(workDir, "workDir");
        if (wispCommand.isEmpty()) {
            throw new IllegalArgumentException("wispCommand is empty: give the command that runs the wisp launcher");
        }
        if (!cluster.hostLink()) {
            cluster = new ClusterSpec(cluster.name(), cluster.nodes(), cluster.pods(), cluster.base(), true,
                    cluster.stack());
        }
        wispCommand = List.copyOf(wispCommand);
        services = List.copyOf(requireNonNull(services, "services"));
        agentArgs = List.copyOf(requireNonNull(agentArgs, "agentArgs"));
        agentCapabilities = agentCapabilities == null ? null : List.copyOf(agentCapabilities);
        agentCommand = agentCommand == null ? null : List.copyOf(agentCommand);
        if (agentCommand != null && agentCommand.isEmpty()) {
            throw new IllegalArgumentException("agentCommand is empty: give the command that runs the agents' wisp");
        }
        workDir = workDir.toAbsolutePath();
        configDir = configDir == null ? workDir.resolve("config") : configDir.toAbsolutePath();
    }

    /**
     * A Kubernetes Service: {@code selector} picks its pods, {@code clusterIp} is its virtual address
     * (any address not in use, e.g. {@link LocalMesh#serviceAddress(ClusterSpec, int)}), traffic to
     * {@code port} goes to the pods' {@code targetPort}.
     */
    public record ServiceSpec(String name, String namespace, Map<String, String> selector, String clusterIp, int port,
            int targetPort) {
        public ServiceSpec {
            requireNonNull(name, "name");
            requireNonNull(namespace, "namespace");
            requireNonNull(clusterIp, "clusterIp");
            selector = Map.copyOf(requireNonNull(selector, "selector"));
            if (port < 1 || port > 65535 || targetPort < 1 || targetPort > 65535) {
                throw new IllegalArgumentException("service " + namespace + "/" + name + ": ports must be in 1..65535");
            }
        }
    }

    public static Builder builder(ClusterSpec cluster) {
        return new Builder(cluster);
    }

    /**
     * What the node agent's transparent upstream sockets need (as {@code bin/node-jvm.options} gives
     * it): the descriptor of a JDK socket channel, to set {@code IP_TRANSPARENT} and {@code SO_MARK}.
     */
    public static final String AGENT_EXPORTS = "--add-exports=java.base/sun.nio.ch=ALL-UNNAMED";

    /**
     * The prefix that runs {@code wisp} on this very JVM binary and class path:
     * {@code [<java>, --enable-native-access=ALL-UNNAMED, --add-exports=…, -Xmx256m, -XX:+UseSerialGC,
     * -XX:MetaspaceSize=64m, -XX:TieredStopAtLevel=1, -cp, <java.class.path>, dev.wisp.cli.Wisp]}.
     * Small heaps and C1 only: a local mesh runs several JVMs on a laptop-sized machine. The node
     * agents a {@link LocalMesh} starts get {@code bin/node-jvm.options} after these ({@link NodeJvmOptions}:
     * the production agent's options, which win where both set a flag); the control plane runs with
     * these alone. The
     * metaspace threshold is raised because an agent loads about 43 MB of class metadata in its
     * first minute: from the default threshold (about 21 MB) that took two or three full
     * collections, measured at 0.9-1.9 s each on the loaded test machine.
     */
    public static List<String> currentJvmWispCommand() {
        String java = ProcessHandle.current().info().command().orElseGet(() -> Path.of(System.getProperty(
                "java.home"), "bin", "java").toString());
        return List.of(java, "--enable-native-access=ALL-UNNAMED", AGENT_EXPORTS, "-Xmx256m", "-XX:+UseSerialGC",
                "-XX:MetaspaceSize=64m", "-XX:TieredStopAtLevel=1", "-cp", System.getProperty("java.class.path"),
                "dev.wisp.cli.Wisp");
    }

    /**
     * Builds a {@link MeshSpec}. Defaults: {@link #currentJvmWispCommand()}, work directory
     * {@code <tmp>/wisp-mesh-<name>}, config directory {@code <workDir>/config}, no services, no
     * MeshConfig, WireGuard on.
     */
    public static final class Builder {
        private final ClusterSpec cluster;
        private List<String> wispCommand;
        private Path workDir;
        private Path configDir;
        private final List<ServiceSpec> services = new ArrayList<>();
        private String meshConfig;
        private final List<String> agentArgs = new ArrayList<>();
        private boolean wireguard = true;
        private final List<String> controlPlaneArgs = new ArrayList<>();
        private List<String> agentCapabilities;
        private List<String> agentCommand;
        private boolean wireguardPodCidrsFromNodes;
        private CpuShares cpuShares;

        private Builder(ClusterSpec cluster) {
            this.cluster = requireNonNull(cluster, "cluster");
        }

        public Builder wispCommand(List<String> command) {
            this.wispCommand = List.copyOf(command);
            return this;
        }

        public Builder workDir(Path dir) {
            this.workDir = requireNonNull(dir, "dir");
            return this;
        }

        public Builder configDir(Path dir) {
            this.configDir = requireNonNull(dir, "dir");
            return this;
        }

        public Builder service(ServiceSpec service) {
            services.add(requireNonNull(service, "service"));
            return this;
        }

        public Builder meshConfig(String yaml) {
            this.meshConfig = requireNonNull(yaml, "yaml");
            return this;
        }

        /** One more argument for every agent's {@code wisp node}. */
        public Builder agentArg(String arg) {
            agentArgs.add(requireNonNull(arg, "arg"));
            return this;
        }

        /** One more argument for {@code wisp control-plane}. */
        public Builder controlPlaneArg(String arg) {
            controlPlaneArgs.add(requireNonNull(arg, "arg"));
            return this;
        }

        /** Whether agents run WireGuard between the nodes (default true). */
        public Builder wireguard(boolean on) {
            this.wireguard = on;
            return this;
        }

        /**
         * The agents run with exactly these capabilities as their bounding set (names as in a
         * container's {@code capabilities.add}, e.g. {@code NET_ADMIN}); by default root's full set.
         */
        public Builder agentCapabilities(List<String> capabilities) {
            this.agentCapabilities = List.copyOf(capabilities);
            return this;
        }

        /**
         * The agents run as {@code command} followed by {@code node …}, nothing added (no JVM options,
         * no AOT cache); the control plane still runs on {@link #wispCommand}.
         */
        public Builder agentCommand(List<String> command) {
            this.agentCommand = List.copyOf(command);
            return this;
        }

        /**
         * The agents' WireGuard takes each node's pod CIDRs from its Node resource (no
         * {@code --wireguard-pod-cidr}), as the chart runs it.
         */
        public Builder wireguardPodCidrsFromNodes() {
            this.wireguardPodCidrsFromNodes = true;
            return this;
        }

        /** The agents and the pods' processes run in CPU groups with these weights ({@link CpuShares}). */
        public Builder cpuShares(CpuShares shares) {
            this.cpuShares = requireNonNull(shares, "shares");
            return this;
        }

        public MeshSpec build() {
            return new MeshSpec(cluster, wispCommand == null ? currentJvmWispCommand() : wispCommand,
                    workDir == null
                            ? Path.of(System.getProperty("java.io.tmpdir"), "wisp-mesh-" + cluster.name())
                            : workDir,
                    configDir, services, meshConfig, agentArgs, wireguard, agentCapabilities, controlPlaneArgs,
                    agentCommand, wireguardPodCidrsFromNodes, cpuShares);
        }
    }
}
