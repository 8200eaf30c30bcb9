package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.bpf.capture.PodRef;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Wisp's chained CNI plugin ({@code wisp cni}): how a pod on a real node is enrolled before its
 * first connection. The container runtime calls it after the primary plugin, with the CNI
 * contract's environment ({@code CNI_COMMAND}, {@code CNI_CONTAINERID}, {@code CNI_NETNS},
 * {@code CNI_IFNAME}, {@code CNI_ARGS} with {@code K8S_POD_NAMESPACE}/{@code K8S_POD_NAME}/{@code
 * K8S_POD_UID}) and the network configuration with {@code prevResult} on stdin.
 *
 * <p>ADD writes the pod's {@code <uid>.json} into the agent's pods directory (atomically: dot-file
 * and rename) with the pod's cgroup, netns and the IPs of {@code prevResult}, then waits, at most
 * {@code enrollTimeoutSeconds}, until the agent confirms with {@code <uid>.enrolled} holding the
 * same netns ({@link NodeCapture} writes it once capture is attached and the in-pod listeners are
 * bound). Without the confirmation the ADD fails (CNI error 11, try again later) and removes the
 * file, so the runtime tears the sandbox down and the kubelet retries: no container of the pod runs
 * before the pod is captured. DEL removes the file (idempotent); CHECK asks that the file and the
 * confirmation are there; VERSION answers the versions below. Pods of {@code excludeNamespaces},
 * and pods opted out by label (below), pass through unchanged.
 *
 * <p>The pod's cgroup comes from the kubelet's layout, from the pod UID: {@code
 * kubepods[.slice]/[QoS]/pod<uid>} for the cgroupfs driver and {@code kubepods.slice/kubepods-<qos>.slice/
 * kubepods-<qos>-pod<uid_with_underscores>.slice} for the systemd driver, for each QoS class (the
 * CNI arguments do not carry it); exactly one must exist (the kubelet creates it before it asks the
 * runtime for the sandbox). Everything the caller gives is checked before use: stdin at most 1 MiB,
 * the netns inside one of {@code netnsDirs} (after resolving links), names of one safe pattern.
 *
 * <p>Plugin configuration (beside {@code type: wisp-cni}): {@code podsDir} (/run/wisp/pods),
 * {@code cgroupRoot} (/sys/fs/cgroup), {@code netnsDirs} (/var/run/netns, /run/netns), {@code
 * enrollTimeoutSeconds} (10, 1..120), {@code excludeNamespaces} (kube-system), and optionally {@code
 * kubernetes} ({@code server}, {@code tokenFile}, {@code caFile}, {@code enrollLabel}, {@code
 * honorIstioLabels}): then a pod the mesh does not enroll by its labels ({@code <label>=none}, say)
 * passes through like an excluded namespace's, read from the API server by {@link MeshMembership};
 * an enrolled pod, or one whose labels cannot be read, still fails closed. With {@code "chained":
 * false} (its own conflist, {@code wisp cni install --own-conflist}, for Multus) there is no {@code
 * prevResult}: the pod's addresses are read inside its namespace ({@link NetnsAddresses}) and the
 * result is empty.
 */
public final class CniPlugin {
    public static final List<String> SUPPORTED_VERSIONS = List.of("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0");
    static final int MAX_STDIN = 1 << 20;

    // The CNI specification's error codes.
    static final int INCOMPATIBLE_VERSION = 1;
    static final int UNKNOWN_CONTAINER = 3;
    static final int INVALID_ENVIRONMENT = 4;
    static final int IO_FAILURE = 5;
    static final int DECODE_FAILURE = 6;
    static final int INVALID_CONFIG = 7;
    static final int TRY_AGAIN_LATER = 11;

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern NAME = Pattern.compile("[a-z0-9]([a-z0-9.-]{0,252})");
    static final Pattern UID = Pattern.compile("[a-z0-9]([a-z0-9-]{0,62})");
    private static final Pattern CONTAINER_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,254}");
    private static final List<String> QOS = List.of("", "burstable", "besteffort");

    /** What the runtime gets: the exit status and stdout (a result, version or error JSON). */
    public record Outcome(int exit, String stdout) {}

    /** A CNI error: its code and message (the spec's error JSON). */
    static final class CniException extends Exception {
        private static final long serialVersionUID = 1L;
        final int code;

        CniException(int code, String msg) {
            super(msg);
            this.code = code;
        }
    }

    private CniPlugin() {}

    /** Where a pod's addresses come from when no primary plugin hands a {@code prevResult} on. */
    @FunctionalInterface
    interface Addresses {
        List<InetAddress> of(Path netns) throws IOException;
    }

    /** One call of the plugin, as the runtime makes it. */
    public static Outcome run(Map<String, String> env, InputStream stdin) {
        return run(env, stdin, NetnsAddresses::read);
    }

    /** As {@link #run(Map, InputStream)}, with the own-conflist mode's addresses from {@code addresses}. */
    static Outcome run(Map<String, String> env, InputStream stdin, Addresses addresses) {
        requireNonNull(env, "env");
        requireNonNull(stdin, "stdin");
        requireNonNull(addresses, "addresses");
        String version = "1.0.0";
        try {
            String command = required(env, "CNI_COMMAND");
            JsonNode config = readConfig(stdin, command.equals("VERSION"));
            version = config.path("cniVersion").asText("1.0.0");
            if (!SUPPORTED_VERSIONS.contains(version)) {
                throw new CniException(INCOMPATIBLE_VERSION, "cniVersion '" + version + "' is not one of "
                        + SUPPORTED_VERSIONS);
            }
            return switch (command) {
                case "VERSION" -> new Outcome(0, JSON.writeValueAsString(Map.of("cniVersion", version,
                        "supportedVersions", SUPPORTED_VERSIONS)));
                case "ADD" -> new Outcome(0, add(env, config, addresses));
                case "DEL" -> {
                    del(env, config);
                    yield new Outcome(0, "");
                }
                case "CHECK" -> {
                    check(env, config);
                    yield new Outcome(0, "");
                }
                default -> throw new CniException(INVALID_ENVIRONMENT, "CNI_COMMAND '" + command
                        + "' is not ADD, DEL, CHECK or VERSION");
            };
        } catch (CniException e) {
            return error(version, e.code, e.getMessage());
        } catch (IOException e) {
            return error(version, IO_FAILURE, e.getMessage());
        }
    }

    private static Outcome error(String version, int code, String msg) {
        ObjectNode err = JSON.createObjectNode().put("cniVersion", version).put("code", code).put("msg", msg);
        return new Outcome(code < 100 && code > 0 ? code : 1, err.toString());
    }

    private static JsonNode readConfig(InputStream stdin, boolean mayBeEmpty) throws IOException, CniException {
        byte[] bytes = stdin.readNBytes(MAX_STDIN + 1);
        if (bytes.length == 0 && mayBeEmpty) {
            return JSON.createObjectNode();
        }
        return BoundedJson.object(bytes, MAX_STDIN, "the network configuration on stdin",
                (message, cause) -> new CniException(DECODE_FAILURE, message));
    }

    /** The pod the call is about, from CNI_ARGS. */
    private record Pod(String namespace, String name, String uid) {
        @Override
        public String toString() {
            return namespace + "/" + name + " (uid " + uid + ")";
        }
    }

    private static Pod pod(Map<String, String> env) throws CniException {
        Map<String, String> args = new HashMap<>();
        for (String kv : env.getOrDefault("CNI_ARGS", "").split(";")) {
            int eq = kv.indexOf('=');
            if (eq > 0) {
                args.put(kv.substring(0, eq), kv.substring(eq + 1));
            }
        }
        return new Pod(matching(args, "K8S_POD_NAMESPACE", NAME), matching(args, "K8S_POD_NAME", NAME), matching(args,
                "K8S_POD_UID", UID));
    }

    private static String add(Map<String, String> env, JsonNode config, Addresses addresses) throws IOException,
            CniException {
        matching(env, "CNI_CONTAINERID", CONTAINER_ID);
        required(env, "CNI_IFNAME");
        Pod pod = pod(env);
        Settings s = Settings.of(config);
        JsonNode prev = config.get("prevResult");
        boolean chained = prev != null && prev.isObject();
        if (!chained && !s.ownConflist) {
            throw new CniException(INVALID_CONFIG, "no prevResult: wisp-cni is chained after the primary plugin "
                    + "in a conflist (or, in its own conflist, configured with \"chained\": false)");
        }
        // In its own conflist the plugin configured no interface: its result is empty (CNI 1.0's
        // minimal result), so Multus records nothing for this attachment.
        ObjectNode result = (chained ? (ObjectNode) prev.deepCopy() : JSON.createObjectNode()).put("cniVersion",
                config.path("cniVersion").asText());
        if (!inMesh(s, pod)) {
            return result.toString();
        }
        Path netns = netns(env, s);
        PodRef ref = new PodRef(pod.uid(), cgroup(s.cgroupRoot, pod), netns, chained
                ? ips(prev)
                : ownIps(addresses, netns, pod));
        Path confirmation = PodFile.confirmation(s.podsDir, pod.uid());
        Files.deleteIfExists(confirmation);
        PodFile.write(s.podsDir, ref);
        long deadline = System.nanoTime() + s.enrollTimeout.toNanos();
        while (!confirmed(confirmation, netns)) {
            if (System.nanoTime() > deadline) {
                Files.deleteIfExists(s.podsDir.resolve(pod.uid() + PodFile.SUFFIX));
                throw new CniException(TRY_AGAIN_LATER, "the Wisp node agent did not confirm enrolling pod " + pod
                        + " within " + s.enrollTimeout.toSeconds() + " s (no " + confirmation + "): is it running on "
                        + "this node with --pods-dir " + s.podsDir + "? Its log says why it could not");
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CniException(TRY_AGAIN_LATER, "interrupted while waiting for pod " + pod + "'s enrollment");
            }
        }
        return result.toString();
    }

    /**
     * False for a pod the plugin lets through unchanged: one of {@code excludeNamespaces}, or, when
     * the configuration has a {@code kubernetes} object, one the mesh does not enroll by its and its
     * namespace's labels ({@link MeshMembership}; error 11 when that cannot be told).
     */
    private static boolean inMesh(Settings s, Pod pod) throws CniException {
        if (s.excludeNamespaces.contains(pod.namespace())) {
            return false;
        }
        return s.kubernetes == null || MeshMembership.enrolled(s.kubernetes, pod.namespace(), pod.name(), pod.uid());
    }

    private static boolean confirmed(Path confirmation, Path netns) throws IOException {
        try {
            return Files.readString(confirmation, StandardCharsets.UTF_8).equals(netns.toString());
        } catch (NoSuchFileException e) {
            return false;
        }
    }

    private static void del(Map<String, String> env, JsonNode config) throws IOException, CniException {
        matching(env, "CNI_CONTAINERID", CONTAINER_ID);
        Settings s = Settings.of(config);
        Pod pod = pod(env);
        Files.deleteIfExists(s.podsDir.resolve(pod.uid() + PodFile.SUFFIX));
    }

    private static void check(Map<String, String> env, JsonNode config) throws IOException, CniException {
        matching(env, "CNI_CONTAINERID", CONTAINER_ID);
        Settings s = Settings.of(config);
        Pod pod = pod(env);
        if (!inMesh(s, pod)) {
            return;
        }
        Path netns = netns(env, s);
        if (!Files.exists(s.podsDir.resolve(pod.uid() + PodFile.SUFFIX)) || !confirmed(PodFile.confirmation(
                s.podsDir, pod.uid()), netns)) {
            throw new CniException(UNKNOWN_CONTAINER, "pod " + pod + " is not enrolled by the Wisp node agent");
        }
    }

    /** CNI_NETNS: an existing namespace file inside one of the configured directories, links resolved. */
    private static Path netns(Map<String, String> env, Settings s) throws CniException {
        String given = required(env, "CNI_NETNS");
        Path p;
        try {
            p = Path.of(given);
        } catch (InvalidPathException e) {
            throw new CniException(INVALID_ENVIRONMENT, "CNI_NETNS '" + given + "' is not a path");
        }
        if (!p.isAbsolute() || !p.normalize().equals(p)) {
            throw new CniException(INVALID_ENVIRONMENT, "CNI_NETNS '" + given + "' must be an absolute, normal path");
        }
        Path real;
        try {
            real = p.toRealPath();
        } catch (IOException e) {
            throw new CniException(UNKNOWN_CONTAINER, "CNI_NETNS '" + given + "' does not exist");
        }
        for (Path dir : s.netnsDirs) {
            try {
                if (real.getParent() != null && real.getParent().equals(dir.toRealPath())) {
                    return p;
                }
            } catch (IOException e) {
                // That directory does not exist on this node.
            }
        }
        throw new CniException(INVALID_ENVIRONMENT, "CNI_NETNS '" + given + "' is not in " + s.netnsDirs);
    }

    /** The pod's cgroup in the kubelet's layout (systemd or cgroupfs driver, any QoS class). */
    static Path cgroup(Path root, Pod pod) throws CniException {
        List<Path> found = cgroupCandidates(root, pod.uid());
        if (found.size() != 1) {
            throw new CniException(UNKNOWN_CONTAINER, (found.isEmpty() ? "no" : "more than one") + " cgroup of pod "
                    + pod + " in the kubelet's layout under " + root + (found.isEmpty() ? "" : ": " + found));
        }
        return found.getFirst();
    }

    /**
     * The existing directories among the places the kubelet puts the cgroup of pod {@code uid} under
     * {@code root} (both drivers, every QoS class); exactly one for a running pod.
     */
    static List<Path> cgroupCandidates(Path root, String uid) {
        List<Path> candidates = new ArrayList<>();
        String underscored = uid.replace('-', '_');
        for (String qos : QOS) {
            candidates.add(qos.isEmpty()
                    ? root.resolve("kubepods").resolve("pod" + uid)
                    : root.resolve("kubepods").resolve(qos).resolve("pod" + uid));
            String slice = qos.isEmpty() ? "kubepods" : "kubepods-" + qos;
            Path parent = root.resolve("kubepods.slice");
            candidates.add((qos.isEmpty() ? parent : parent.resolve(slice + ".slice")).resolve(slice + "-pod"
                    + underscored + ".slice"));
        }
        return candidates.stream().filter(Files::isDirectory).toList();
    }

    private static List<InetAddress> ips(JsonNode prev) throws CniException {
        List<InetAddress> out = new ArrayList<>();
        for (JsonNode ip : prev.path("ips")) {
            String address = ip.path("address").asText();
            int slash = address.indexOf('/');
            try {
                out.add(InetAddress.ofLiteral(slash < 0 ? address : address.substring(0, slash)));
            } catch (IllegalArgumentException e) {
                throw new CniException(INVALID_CONFIG, "prevResult.ips: '" + address + "' is not an address");
            }
        }
        if (out.isEmpty() || out.size() > 16) {
            throw new CniException(INVALID_CONFIG, "prevResult.ips must hold 1-16 addresses (the primary plugin's)");
        }
        return out;
    }

    /** The pod's addresses from its namespace, when no primary plugin's result names them. */
    private static List<InetAddress> ownIps(Addresses addresses, Path netns, Pod pod) throws CniException {
        List<InetAddress> ips;
        try {
            ips = addresses.of(netns);
        } catch (IOException e) {
            throw new CniException(IO_FAILURE, "cannot read pod " + pod + "'s addresses in " + netns + ": " + e
                    .getMessage());
        }
        if (ips.isEmpty()) {
            throw new CniException(TRY_AGAIN_LATER, "pod " + pod + " has no address in " + netns + " yet: wisp-cni's "
                    + "own conflist must run after the pod's primary network (as an additional Multus network)");
        }
        if (ips.size() > 16) {
            throw new CniException(INVALID_CONFIG, "pod " + pod + " has " + ips.size() + " addresses in " + netns
                    + " (at most 16)");
        }
        return ips;
    }

    private static String required(Map<String, String> env, String name) throws CniException {
        String v = env.get(name);
        if (v == null || v.isEmpty()) {
            throw new CniException(INVALID_ENVIRONMENT, name + " is not set");
        }
        return v;
    }

    private static String matching(Map<String, String> vars, String name, Pattern pattern) throws CniException {
        String v = vars.get(name);
        if (v == null || !pattern.matcher(v).matches()) {
            throw new CniException(INVALID_ENVIRONMENT, name + (v == null
                    ? " is missing"
                    : " '" + v.substring(0,
                            Math.min(v.length(), 64)) + "' is not a valid value"));
        }
        return v;
    }

    /** The plugin's own fields of the network configuration. */
    private record Settings(Path podsDir, Path cgroupRoot, List<Path> netnsDirs, Duration enrollTimeout,
            List<String> excludeNamespaces, MeshMembership.Api kubernetes, boolean ownConflist) {
        static Settings of(JsonNode c) throws CniException {
            long timeout = c.path("enrollTimeoutSeconds").asLong(10);
            if (timeout < 1 || timeout > 120) {
                throw new CniException(INVALID_CONFIG, "enrollTimeoutSeconds must be 1..120");
            }
            List<Path> netnsDirs = new ArrayList<>();
            if (c.has("netnsDirs")) {
                for (JsonNode d : c.get("netnsDirs")) {
                    netnsDirs.add(absolute(d.asText(), "netnsDirs"));
                }
            } else {
                netnsDirs.addAll(PodDiscovery.DEFAULT_NETNS_DIRS);
            }
            List<String> excluded = new ArrayList<>();
            (c.has("excludeNamespaces") ? c.get("excludeNamespaces") : JSON.valueToTree(List.of("kube-system")))
                    .forEach(n -> excluded.add(n.asText()));
            return new Settings(absolute(c.path("podsDir").asText("/run/wisp/pods"), "podsDir"), absolute(c.path(
                    "cgroupRoot").asText(PodDiscovery.DEFAULT_CGROUP_ROOT.toString()), "cgroupRoot"),
                    List.copyOf(netnsDirs), Duration
                            .ofSeconds(timeout),
                    List.copyOf(excluded), c.has("kubernetes") ? MeshMembership.Api.of(c.get("kubernetes")) : null,
                    !c.path("chained").asBoolean(true));
        }

        private static Path absolute(String path, String field) throws CniException {
            try {
                Path p = Path.of(path);
                if (p.isAbsolute()) {
                    return p.normalize();
                }
            } catch (InvalidPathException e) {
                // refused below
            }
            throw new CniException(INVALID_CONFIG, field + ": '" + path + "' must be an absolute path");
        }
    }
}
