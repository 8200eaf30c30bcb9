package dev.wisp.cli;

import dev.wisp.controlplane.ControlPlane;
import dev.wisp.controlplane.ca.CaOptions;
import dev.wisp.spiffe.ca.CaSettings;
import dev.wisp.spiffe.ca.CertificateAuthority;
import dev.wisp.spiffe.ca.NodeAuthorizer;
import dev.wisp.controlplane.kubernetes.AgentTokens;
import dev.wisp.controlplane.kubernetes.KubernetesConfigSource;
import java.io.IOException;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import java.time.Duration;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code wisp control-plane}: runs the control plane until interrupted. */
@Command(name = "control-plane", mixinStandardHelpOptions = true, description = {
        "Run the control plane: read the mesh's configuration from a directory of YAML (watched;",
        "changes apply within a second), serve node agents (workload discovery and certificates),",
        "and answer 'wisp apply/get/delete' and /metrics on the admin address (localhost only)."})
public final class ControlPlaneCommand implements Callable<Integer> {
    @Mixin
    ConfigDirOption configDir;

    /** {@code --enroll-label}, {@code --honor-istio-labels} (with {@code --kubernetes}). */
    @Mixin
    EnrollmentOptions enrollment;

    @Option(names = "--state-dir", paramLabel = "DIR", defaultValue = "/var/lib/wisp/control-plane", description = "Where node credentials and the CA are kept (default: ${DEFAULT-VALUE}).")
    Path stateDir;

    @Option(names = "--listen", paramLabel = "IP:PORT", converter = SocketAddressConverter.class, defaultValue = "0.0.0.0:15012", description = "Where node agents connect (gRPC over TLS; default: ${DEFAULT-VALUE}).")
    InetSocketAddress listen;

    @Option(names = "--admin", paramLabel = "IP:PORT", converter = SocketAddressConverter.class, defaultValue = "127.0.0.1:15014", description = "Admin API, /metrics, the flow stream and the live mesh page /ui; loopback only unless --admin-token-file is given (default: ${DEFAULT-VALUE}).")
    InetSocketAddress admin;

    @Option(names = "--admin-token-file", paramLabel = "FILE", description = "A bearer token (one line, at least 16 characters, file readable by its owner only): the admin API then answers requests from other addresses that send 'Authorization: Bearer <token>', and may listen beyond loopback.")
    Path adminTokenFile;

    @Option(names = "--metrics", paramLabel = "IP:PORT", converter = SocketAddressConverter.class, description = "Also serve /metrics and /healthz/ready (read-only) here, on any address (for Prometheus and a readiness probe).")
    InetSocketAddress metrics;

    @Option(names = "--kubernetes", description = {
            "Read Pods, Services, Namespaces, Nodes and Istio's AuthorizationPolicy/PeerAuthentication from the Kubernetes API (in-cluster, or KUBECONFIG) instead of the directory;",
            "--config-dir then holds the MeshConfig only; agents authenticate with their projected service-account tokens (TokenReview), not node token files."})
    boolean kubernetes;

    @Option(names = "--token-audience", paramLabel = "AUDIENCE", defaultValue = "wisp-control-plane", description = "With --kubernetes: the audience of the agents' projected service-account tokens, checked with a TokenReview (default: ${DEFAULT-VALUE}).")
    String tokenAudience;

    @Option(names = "--agent-service-account", paramLabel = "NAMESPACE/NAME", defaultValue = "wisp-system/wisp-node", description = "With --kubernetes: the ServiceAccount of the node agents; a token of any other account is refused (default: ${DEFAULT-VALUE}).")
    String agentServiceAccount;

    @Option(names = "--cacerts", paramLabel = "DIR", description = {
            "An operator's CA in Istio's cacerts layout: ca-cert.pem, ca-key.pem (mode 0600), root-cert.pem, cert-chain.pem;",
            "checked at start. An empty or absent DIR leaves the self-signed CA of --state-dir. Agents then need root-cert.pem as --ca-bundle."})
    Path cacerts;

    @Option(names = "--workload-cert-ttl", paramLabel = "DURATION", converter = CaCommand.DurationConverter.class, description = "Lifetime of every certificate the CA signs, 30s to 24h (agents renew at half of it; default: 24h).")
    Duration workloadCertTtl;

    @Override
    public Integer call() throws InterruptedException {
        ControlPlane.Options options;
        try {
            options = new ControlPlane.Options(configDir.dir(), stateDir, listen,
                    admin, adminToken()).withCa(
                            new CaOptions(Optional.ofNullable(cacerts),
                                    Optional.ofNullable(workloadCertTtl)));
            if (options.ca().pluggedIn()) {
                // Checked now, so a broken layout is one line at start rather than at the first reading.
                CertificateAuthority.fromCacerts(cacerts,
                        CaSettings.of("cluster.local", NodeAuthorizer.unrestricted()));
            }
        } catch (IOException e) {
            throw UserException.invalid("--cacerts: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw UserException.invalid(e.getMessage());
        }
        ControlPlane cp;
        try {
            cp = kubernetes ? startOnKubernetes(options) : ControlPlane.start(options);
            if (metrics != null) {
                cp.serveMetrics(metrics);
            }
        } catch (IllegalArgumentException e) {
            throw UserException.invalid(e.getMessage());
        } catch (RuntimeException e) {
            throw new UserException(e.getMessage(), e);
        }
        Foreground.holdUntilStopped("wisp-control-plane-shutdown", cp::close);
        return 0;
    }

    /** The token of {@code --admin-token-file}: refused when others may read the file. */
    private Optional<String> adminToken() {
        if (adminTokenFile == null) {
            return Optional.empty();
        }
        try {
            Set<PosixFilePermission> perms = Files.getPosixFilePermissions(adminTokenFile);
            if (perms.stream().anyMatch(p -> p.name().startsWith("GROUP") || p.name().startsWith("OTHERS"))) {
                throw UserException.invalid("--admin-token-file " + adminTokenFile + " may be read by others ("
                        + PosixFilePermissions.toString(perms) + "); chmod 600 it");
            }
            return Optional.of(Files.readString(adminTokenFile).strip());
        } catch (IOException e) {
            throw UserException.invalid("--admin-token-file: cannot read " + adminTokenFile + ": " + e.getMessage());
        }
    }

    /** The cluster as the source, agents authenticated by their service-account tokens (TokenReview). */
    private ControlPlane startOnKubernetes(ControlPlane.Options options) {
        String[] account = agentServiceAccount.split("/", -1);
        if (account.length != 2 || account[0].isEmpty() || account[1].isEmpty()) {
            throw new IllegalArgumentException("--agent-service-account: expected NAMESPACE/NAME, not '"
                    + agentServiceAccount + "'");
        }
        AgentTokens.Settings tokens = new AgentTokens.Settings(tokenAudience, account[0], account[1]);
        KubernetesClient client = new KubernetesClientBuilder().build();
        KubernetesConfigSource source = new KubernetesConfigSource(client, new KubernetesConfigSource.Settings(
                enrollment.enrollment(), configDir.dir(), Duration.ofMinutes(10),
                Duration.ofSeconds(30)));
        return ControlPlane.start(options, source, AgentTokens.create(client, tokens, source));
    }
}
