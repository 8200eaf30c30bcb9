package dev.wisp.e2e;

import dev.wisp.testing.PodServer;
import dev.wisp.testing.Prerequisites;
import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.Leftovers;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * Starts {@link PodServer} and {@link PodClient} inside a mesh's pods, and drives a client pod's
 * {@code repl} from the test: each {@link Shell#call} is one new connection made by a process in
 * the pod's cgroup, i.e. captured by the mesh.
 */
final class PodApps {
    private PodApps() {}

    /**
     * The two-node mesh the end-to-end classes share: pod {@code client} (default/client) on the
     * first node, pod {@code server} (default/server, label app=server) on the second.
     */
    static MeshSpec.Builder clientServerMesh(String cluster, int base, Path workDir) {
        return clientServerMesh(cluster, base, ClusterSpec.Stack.IPV4, workDir);
    }

    /** {@link #clientServerMesh(String, int, Path)} with the IP families {@code stack}. */
    static MeshSpec.Builder clientServerMesh(String cluster, int base, ClusterSpec.Stack stack, Path workDir) {
        return MeshSpec.builder(ClusterSpec.builder(cluster).nodes(2).base(base).stack(stack).pod("client", "default",
                "client", 0).pod(new ClusterSpec.PodSpec("server", "default", "server", 1, Map.of("app", "server")))
                .build()).workDir(workDir);
    }

    /**
     * Brings up {@code spec}: what a local mesh needs of the machine (root, {@code ip}, {@code nsenter})
     * and the test's own {@code commands} are checked first, failing the test when missing.
     */
    static LocalMesh up(MeshSpec.Builder spec, String... commands) throws Exception {
        Prerequisites.requireRoot();
        Prerequisites.requireCommands("ip", "nsenter");
        Prerequisites.requireCommands(commands);
        return LocalMesh.up(spec.build());
    }

    /**
     * Brings up {@code spec} (as root, with {@code ip} and {@code nsenter}, failing otherwise) and
     * starts the pod {@code server}'s {@link PodServer} on {@code serverPorts}: the fixture of the
     * client/server mesh tests.
     */
    static LocalMesh upWithServer(MeshSpec.Builder spec, int... serverPorts) throws Exception {
        LocalMesh mesh = up(spec);
        startServer(mesh, "server", "server", serverPorts);
        return mesh;
    }

    /** The demo's three pods: client (default) and curl (other) on node 0, server (default) on node 1. */
    static MeshSpec.Builder demoMesh(String cluster, int base, Path workDir) {
        return MeshSpec.builder(demoCluster(cluster, base)).workDir(workDir);
    }

    /** The cluster of {@link #demoMesh}, with {@code more} pods. */
    static ClusterSpec demoCluster(String cluster, int base, ClusterSpec.PodSpec... more) {
        ClusterSpec.Builder b = ClusterSpec.builder(cluster).nodes(2).base(base).pod("client", "default", "client", 0)
                .pod("curl", "other", "curl", 0)
                .pod(new ClusterSpec.PodSpec("server", "default", "server", 1, Map.of("app", "server")));
        for (ClusterSpec.PodSpec p : more) {
            b.pod(p);
        }
        return b.build();
    }

    /**
     * Removes {@code built} (a {@link LocalMesh} or a {@link dev.wisp.local.LocalCluster}, if it came
     * up) and asserts nothing of its cluster is left.
     */
    static void down(AutoCloseable built, String cluster) throws Exception {
        if (built != null) {
            built.close();
            assertThat(Leftovers.scan(cluster)).as("what cluster " + cluster + " left behind").isEmpty();
        }
    }

    /**
     * The destination agent's access-log line of a connection from {@code clientIp} (identity
     * {@code clientId}) to {@code serverIp:port} that it refused with HBONE 401 for {@code reason}
     * (e.g. {@code denied by DENY policy default/deny-client}): the proof that a call failed because
     * of the policy under test, and not for some other reason. A connection opened just before the
     * policy arrived is closed by the agent's connection manager with the same reason, marked as
     * changed while open: both are that policy's denial.
     */
    static Pattern denied(String clientIp, String clientId, String serverIp, int port, String reason) {
        return Pattern.compile("connection complete direction=inbound src\\.addr=" + Pattern.quote(clientIp)
                + ":\\d+ .*src\\.identity=\"" + Pattern.quote(clientId) + "\" dst\\.addr=" + Pattern.quote(
                        serverIp)
                + ":" + port + " .*error=\"HBONE 401: " + Pattern.quote(reason)
                + "(?: \\(policy changed while the connection was open\\))?\"");
    }

    /**
     * {@code java <jvmOptions> … dev.wisp.cli.Wisp <args>} on this JVM's binary and test class path:
     * a {@code wisp} command (agent, control plane, WireGuard device) as a child process.
     */
    static List<String> wisp(List<String> jvmOptions, List<String> args) {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                "--enable-native-access=ALL-UNNAMED"));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "dev.wisp.cli.Wisp"));
        cmd.addAll(args);
        return cmd;
    }

    /** A child process's log file as it is now; empty while it does not exist. */
    static String read(Path log) {
        try {
            return Files.exists(log) ? Files.readString(log) : "";
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + log, e);
        }
    }

    /** {@code java … <main> args} on this JVM's binary and test class path, small heap. */
    static List<String> java(Class<?> main, String... args) {
        return java(List.of("-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"), main, args);
    }

    /** {@code java <jvmOptions> … <main> args} on this JVM's binary and test class path. */
    static List<String> java(List<String> jvmOptions, Class<?> main, String... args) {
        List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java")));
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /**
     * Asserts that a call pod {@code from} (node 1) made to pod {@code to} (node 2) on {@code port}
     * was captured and carried over HBONE: the destination agent's access log names the client's
     * SPIFFE ID, the client agent's names the server's and the HBONE port 15008, and the client
     * agent's flow ring has the redirected connect with its original destination.
     */
    static void assertCarriedOverHbone(LocalMesh mesh, String from, String to, int port) throws IOException {
        String server = mesh.pod(to).ip();
        String fromNode = mesh.pod(from).node().name();
        String toNode = mesh.pod(to).node().name();
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log(toNode).lines().anyMatch(l -> l.contains(
                "direction=inbound") && l.contains("src.identity=\"" + mesh.spiffeId(from) + "\"")
                && l.contains("dst.addr=" + server + ":" + port)));
        await().atMost(Duration.ofSeconds(10)).until(() -> mesh.log(fromNode).lines().anyMatch(l -> l.contains(
                "direction=outbound") && l.contains("dst.addr=" + server + ":" + port)
                && l.contains("dst.identity=\"" + mesh.spiffeId(to) + "\"")
                && l.matches(".* dst\\.hbone_addr=[0-9.]+:15008 .*")));
        JsonNode flows = new ObjectMapper().readTree(mesh.agentAdmin(fromNode, "/flows")).get("flows");
        assertThat(flows).anySatisfy(f -> {
            assertThat(f.get("redirected").asBoolean()).isTrue();
            assertThat(f.get("original_destination").asText()).isEqualTo(server + ":" + port);
            assertThat(f.get("source").asText()).startsWith(mesh.pod(from).ip() + ":");
        });
    }

    /** Processes a test class starts, killed together when it ends. */
    static final class Started implements AutoCloseable {
        private final List<Process> processes = new ArrayList<>();

        Process add(Process p) {
            processes.add(p);
            return p;
        }

        /**
         * Starts {@code command} in network namespace {@code netns} inside {@code cgroup}, the way a
         * container runtime starts a container in a pod's sandbox (stderr discarded).
         */
        Process inCgroup(Path cgroup, String netns, List<String> command) throws IOException {
            List<String> argv = new ArrayList<>(List.of("/bin/sh", "-c", "echo $$ > \"$0\" && exec \"$@\"", cgroup
                    .resolve("cgroup.procs").toString(), "ip", "netns", "exec", netns));
            argv.addAll(command);
            return add(new ProcessBuilder(argv).redirectError(ProcessBuilder.Redirect.DISCARD).start());
        }

        @Override
        public void close() throws InterruptedException {
            for (Process p : processes) {
                p.destroyForcibly();
                p.waitFor(15, TimeUnit.SECONDS);
            }
        }
    }

    /** Starts a {@link PodServer} named {@code name} in {@code pod} on {@code ports}; returns once it listens. */
    static Process startServer(LocalMesh mesh, String pod, String name, int... ports) throws IOException {
        List<String> args = new ArrayList<>(List.of(name));
        for (int p : ports) {
            args.add(String.valueOf(p));
        }
        return startListening(mesh, pod, java(PodServer.class, args.toArray(String[]::new)));
    }

    /** Starts {@code command} in {@code pod}; returns once it printed {@code listening}. */
    static Process startListening(LocalMesh mesh, String pod, List<String> command) throws IOException {
        Process p = mesh.startInPod(pod, command);
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        String first = out.readLine();
        if (!"listening".equals(first)) {
            throw new IOException("server in pod " + pod + " did not start: " + first);
        }
        Thread.ofPlatform().daemon().start(() -> drain(out));
        return p;
    }

    private static void drain(BufferedReader r) {
        try {
            while (r.readLine() != null) {
                // discard
            }
        } catch (IOException e) {
            // process gone
        }
    }

    /** A {@link PodClient} {@code repl} running in a pod; {@link #close} stops it. */
    static final class Shell implements AutoCloseable {
        private final Process process;
        private final OutputStream in;
        private final BlockingQueue<String> lines = new LinkedBlockingQueue<>();

        Shell(LocalMesh mesh, String pod) throws IOException, InterruptedException {
            this(mesh.startInPod(pod, java(PodClient.class, "repl")), pod);
        }

        /** Over a {@link PodClient} {@code repl} already started in {@code pod}. */
        Shell(Process process, String pod) throws IOException, InterruptedException {
            this.process = process;
            this.in = process.getOutputStream();
            BufferedReader out = new BufferedReader(new InputStreamReader(process.getInputStream(),
                    StandardCharsets.UTF_8));
            Thread.ofPlatform().daemon().start(() -> {
                try {
                    for (String l; (l = out.readLine()) != null;) {
                        lines.add(l);
                    }
                } catch (IOException e) {
                    lines.add("failed client process output closed");
                }
            });
            String first = lines.poll(60, TimeUnit.SECONDS);
            if (!"ready".equals(first)) {
                throw new IOException("client in pod " + pod + " did not start: " + first);
            }
        }

        /** One call from the pod: {@code ok <answer>} or {@code failed <reason>}. */
        String call(String host, int port, int size) throws IOException, InterruptedException {
            return send("call " + host + " " + port + " " + size, Duration.ofSeconds(20));
        }

        /** One HTTP GET from the pod ({@link PodClient#http}): {@code ok <body>} or {@code failed <reason>}. */
        String http(String host, int port) throws IOException, InterruptedException {
            return send("http " + host + " " + port, Duration.ofSeconds(20));
        }

        /** One command line to the pod's {@code repl}; its answer line, {@code within} at most. */
        synchronized String send(String command, Duration within) throws IOException, InterruptedException {
            in.write((command + "\n").getBytes(StandardCharsets.US_ASCII));
            in.flush();
            String r = lines.poll(within.toMillis(), TimeUnit.MILLISECONDS);
            if (r == null) {
                throw new IOException("no answer from the process in the pod within " + within.toSeconds() + " s");
            }
            return r;
        }

        /**
         * Waits, {@code within} at most, until a call of 5 bytes to {@code host:port} answers
         * {@code "ok " + expected} (when {@code answers}) or fails to (when not).
         */
        void awaitAnswers(String host, int port, String expected, boolean answers, Duration within) {
            await().atMost(within).pollInterval(Duration.ofMillis(100))
                    .until(() -> answers(host, port, expected) == answers);
        }

        @Override
        public void close() {
            process.destroy();
        }

        /** Whether a call answers {@code expected}; failures are false, not exceptions. */
        boolean answers(String host, int port, String expected) {
            try {
                return call(host, port, 5).equals("ok " + expected);
            } catch (IOException e) {
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }
    }
}
