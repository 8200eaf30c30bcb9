package dev.wisp.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import picocli.CommandLine.Mixin;
import dev.wisp.node.capture.CniInstall;
import dev.wisp.node.capture.HostRuntime;
import dev.wisp.node.capture.InstallerDaemonSet;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code wisp cni install}: what the chart's {@code install-cni} container runs on every node
 * ({@link CniInstall}): copies the plugin's launcher into the host's CNI bin directory, chains the
 * plugin into the node's primary CNI configuration and keeps it there while it runs. When stopped it
 * leaves the plugin chained (a pod started while the agent is away waits for it), takes it out with
 * {@code --remove-on-exit}, and with {@code --remove-on-uninstall} only once its DaemonSet is
 * deleted ({@link CniInstall#onExit}).
 */
@Command(name = "install", mixinStandardHelpOptions = true, description = {
        "Installs the wisp-cni plugin on this node: copies LAUNCHER to CNI_BIN_DIR/wisp-cni and chains "
                + "{\"type\": \"wisp-cni\"} after the primary plugin in the first configuration of CNI_CONF_DIR, "
                + "then watches that directory and puts it back whenever the primary plugin rewrites its file."})
public final class CniInstallCommand implements Callable<Integer> {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount";

    @Spec
    CommandSpec spec;

    @Option(names = "--cni-bin-dir", paramLabel = "DIR", defaultValue = "/opt/cni/bin", description = "The host's CNI plugin directory (default: ${DEFAULT-VALUE}).")
    Path binDir;

    @Option(names = "--cni-conf-dir", paramLabel = "DIR", defaultValue = "/etc/cni/net.d", description = "The host's CNI configuration directory (default: ${DEFAULT-VALUE}).")
    Path confDir;

    @Option(names = "--launcher", paramLabel = "FILE", defaultValue = "/opt/wisp/bin/wisp-cni", description = "The plugin's launcher, copied to the bin directory as wisp-cni (default: ${DEFAULT-VALUE}).")
    Path launcher;

    @Option(names = "--copy-runtime-to", paramLabel = "DIR", description = "Copy this image's Java runtime and jars into DIR (a host directory mounted here) and use the launcher written beside them instead of --launcher: the plugin runs on the host, which has no JVM of its own.")
    Path copyRuntimeTo;

    @Option(names = "--host-runtime-dir", paramLabel = "DIR", description = "With --copy-runtime-to: the same directory as the host names it, which the launcher refers to (default: the --copy-runtime-to path).")
    Path hostRuntimeDir;

    @Option(names = "--pods-dir", paramLabel = "DIR", defaultValue = "/run/wisp/pods", description = "The agent's pods directory, as the plugin sees it on the host (default: ${DEFAULT-VALUE}).")
    Path podsDir;

    /** {@code --cgroup-root}, {@code --netns-dir}: where the plugin finds a pod on the host. */
    @Mixin
    PodHostOptions podHost;

    @Option(names = "--exclude-namespace", paramLabel = "NS", defaultValue = "kube-system", split = ",", description = "Namespaces whose pods the plugin never enrolls (default: ${DEFAULT-VALUE}).")
    List<String> excludeNamespaces;

    @Option(names = "--enroll-timeout", paramLabel = "SECONDS", defaultValue = "10", description = "How long ADD waits for the agent's confirmation (1-120, default: ${DEFAULT-VALUE}).")
    int enrollTimeout;

    @Option(names = "--kubernetes", description = "Let the plugin read each pod's and namespace's labels through the API server (KUBERNETES_SERVICE_HOST/PORT) with this pod's service-account token and CA, copied beside the configuration, so pods the mesh does not enroll start without waiting for the agent.")
    boolean kubernetes;

    @Option(names = "--service-account-dir", paramLabel = "DIR", defaultValue = SERVICE_ACCOUNT, description = "With --kubernetes: where this pod's token and ca.crt are (default: ${DEFAULT-VALUE}).")
    Path serviceAccountDir;

    /** {@code --enroll-label}, {@code --honor-istio-labels}: as the control plane's. */
    @Mixin
    EnrollmentOptions enrollment;

    @Option(names = "--remove-on-exit", description = "Take the plugin out of the configuration and remove the launcher whenever stopped (without this or --remove-on-uninstall it stays chained).")
    boolean removeOnExit;

    @Option(names = "--remove-on-uninstall", paramLabel = "NAMESPACE/DAEMONSET", description = "When stopped, ask the API server (KUBERNETES_SERVICE_HOST/PORT, with the token and ca.crt of --service-account-dir) whether this DaemonSet still stands: take the plugin out only if it is deleted or being deleted (an uninstall); keep it if it stands (the agent's pod is being replaced) or the API gives no clear answer.")
    String removeOnUninstall;

    @Option(names = "--own-conflist-dir", paramLabel = "DIR", description = "Do not chain: write Wisp alone as "
            + "DIR/wisp-cni.conflist (network wisp-cni, \"chained\": false), for Multus to run as an additional network "
            + "after the pod's primary one (Istio's chained: false); the plugin then reads the pod's addresses in its "
            + "namespace. Not the runtime's configuration directory.")
    Path ownConflistDir;

    @Option(names = "--once", description = "Install once and exit (no watching).")
    boolean once;

    @Option(names = "--uninstall", description = "Take the plugin out and exit.")
    boolean uninstall;

    @Override
    public Integer call() throws Exception {
        InstallerDaemonSet owner = owner();
        Path launcher = copyRuntimeTo == null ? this.launcher : hostRuntime();
        CniInstall install;
        try {
            install = new CniInstall(new CniInstall.Settings(binDir, confDir, launcher, plugin(), kubernetes
                    ? new CniInstall.Credentials(serviceAccountDir.resolve("token"), serviceAccountDir.resolve(
                            "ca.crt"))
                    : null, ownConflistDir));
        } catch (IllegalArgumentException e) {
            throw new UserException("--own-conflist-dir: " + e.getMessage());
        }
        if (uninstall) {
            install.uninstall();
            return 0;
        }
        if (copyRuntimeTo != null) {
            // Before the launcher is replaced: the copy it still runs stays, for calls under way on it.
            HostRuntime.removeOthers(copyRuntimeTo, launcher, binDir.resolve(CniInstall.PLUGIN_TYPE));
        }
        if (once) {
            try {
                CniInstall.Outcome o = install.install();
                spec.commandLine().getOut().println(o == CniInstall.Outcome.NO_PRIMARY
                        ? "no CNI configuration in " + confDir + " yet"
                        : ownConflistDir != null
                                ? "wisp-cni's own conflist in " + ownConflistDir.resolve(CniInstall.OWN_CONFLIST)
                                : "wisp-cni chained in " + confDir);
                return o == CniInstall.Outcome.NO_PRIMARY ? 1 : 0;
            } catch (CniInstall.ConfigException e) {
                throw new UserException("cannot chain wisp-cni: " + e.getMessage());
            }
        }
        // The watch runs on this thread; SIGTERM interrupts it, and the clean-up below runs before the
        // JVM exits. An I/O error ends the command with that error, so the container restarts.
        Thread main = Thread.currentThread();
        AtomicBoolean stopping = new AtomicBoolean();
        CountDownLatch cleaned = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            stopping.set(true);
            main.interrupt();
            try {
                cleaned.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "wisp-cni-install-stop"));
        try {
            install.watch(Duration.ofSeconds(60));
        } catch (InterruptedException e) {
            // stopping
        } catch (IOException e) {
            if (!stopping.get()) {
                throw new UserException("wisp-cni install: " + e);
            }
        } finally {
            Thread.interrupted();
            try {
                install.onExit(removeOnExit, owner);
            } catch (IOException e) {
                spec.commandLine().getErr().println("error: removing wisp-cni: " + e.getMessage());
            }
            cleaned.countDown();
        }
        return 0;
    }

    /**
     * Places this process's own Java runtime and jar directory on the host ({@link HostRuntime}):
     * only from the installed layout (the image's {@code /opt/wisp/lib}), where the jars are files.
     */
    private Path hostRuntime() throws IOException {
        Path codeSource;
        try {
            codeSource = Path.of(CniInstallCommand.class.getProtectionDomain().getCodeSource().getLocation().toURI());
        } catch (java.net.URISyntaxException | SecurityException e) {
            throw new UserException("--copy-runtime-to: cannot tell where Wisp's jars are: " + e.getMessage());
        }
        if (!codeSource.getFileName().toString().endsWith(".jar")) {
            throw new UserException("--copy-runtime-to needs the installed layout (a jar directory such as the "
                    + "image's /opt/wisp/lib), not classes from " + codeSource);
        }
        try {
            return HostRuntime.install(new HostRuntime.Settings(Path.of(System.getProperty("java.home")), codeSource
                    .getParent(), copyRuntimeTo,
                    hostRuntimeDir != null
                            ? hostRuntimeDir
                            : copyRuntimeTo
                                    .toAbsolutePath()));
        } catch (IllegalArgumentException e) {
            throw new UserException("--host-runtime-dir: " + e.getMessage());
        }
    }

    /** The plugin's own fields of its entry in the chain. */
    ObjectNode plugin() {
        if (enrollTimeout < 1 || enrollTimeout > 120) {
            throw new UserException("--enroll-timeout must be 1..120 seconds");
        }
        ObjectNode p = JSON.createObjectNode();
        p.put("podsDir", podsDir.toString()).put("cgroupRoot", podHost.cgroupRoot.toString());
        if (podHost.netnsDirs != null) {
            podHost.netnsDirs.forEach(d -> p.withArray("/netnsDirs").add(d.toString()));
        }
        excludeNamespaces.forEach(n -> p.withArray("/excludeNamespaces").add(n));
        p.put("enrollTimeoutSeconds", enrollTimeout);
        if (kubernetes) {
            p.putObject("kubernetes").put("server", apiServer("--kubernetes")).put("enrollLabel", enrollment.label)
                    .put("honorIstioLabels", enrollment.honorIstioLabels);
        }
        return p;
    }

    /** What --remove-on-uninstall names, or null. */
    InstallerDaemonSet owner() {
        if (removeOnUninstall == null) {
            return null;
        }
        if (removeOnExit) {
            throw new UserException("--remove-on-exit and --remove-on-uninstall exclude each other");
        }
        String[] parts = removeOnUninstall.split("/", -1);
        if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
            throw new UserException("--remove-on-uninstall must be NAMESPACE/DAEMONSET, not '" + removeOnUninstall
                    + "'");
        }
        return new InstallerDaemonSet(URI.create(apiServer("--remove-on-uninstall")), serviceAccountDir.resolve(
                "token"), serviceAccountDir.resolve("ca.crt"), parts[0], parts[1]);
    }

    /** The API server of the pod this runs in, from the environment the kubelet gives every container. */
    private static String apiServer(String option) {
        String host = System.getenv("KUBERNETES_SERVICE_HOST");
        String port = System.getenv("KUBERNETES_SERVICE_PORT");
        if (host == null || port == null) {
            throw new UserException(option + ": KUBERNETES_SERVICE_HOST/PORT are not set (not in a pod?)");
        }
        return "https://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
    }
}
