package dev.wisp.node.controlplane;

import dev.wisp.spiffe.MeshIdentities;
import java.time.Duration;
import dev.wisp.base.Threads;
import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.node.NodeSettings.Source.ControlPlane;
import dev.wisp.node.NodeSettings.Source.Credential;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.xds.BearerCredentials;
import dev.wisp.node.xds.WorkloadXdsClient;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.manager.CertificateSigner;
import dev.wisp.spiffe.tls.GrpcTls;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.EventLoopGroup;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;

/**
 * The node agent's link to the control plane: one TLS channel to its gRPC port carrying workload
 * discovery (feeding the agent's state) and certificate signing (the agent's {@link
 * CertificateSigner}), both authenticated by the node credential read from the token file at each
 * call.
 *
 * <p>Trust: the control plane must present the SVID {@code spiffe://<td>/ns/wisp-system/sa/
 * wisp-control-plane} chaining to the bootstrap bundle ({@code --ca-bundle}); the bearer credential
 * is only ever sent inside that channel. The bundle is then kept up to date from the control plane's
 * trust bundle watch ({@link BundleWatch}: at once at each root rotation step) and the roots the CA
 * returns with each certificate.
 *
 * <p>Threads: gRPC's; the bundle is one atomic reference.
 */
public final class ControlPlaneClient implements AutoCloseable {
    private final ManagedChannel channel;
    private final TrustedRoots bundle;
    private final BundleWatch bundleWatch;
    private final GrpcCertificateSigner signer;
    private final BearerCredentials credentials;
    /** Null for a client without workload discovery ({@link #withoutDiscovery}). */
    private final WorkloadXdsClient xds;

    /**
     * Where a client's sockets come from instead of gRPC's shared event loop: {@code loop}, and {@code sockets},
     * which makes each one (e.g. in a node's network namespace, for a process outside it that calls as that node:
     * the control plane takes a node's credential only from the node's addresses).
     */
    public record SocketSource(EventLoopGroup loop, ChannelFactory<? extends Channel> sockets) {
        public SocketSource {
            requireNonNull(loop, "loop");
            requireNonNull(sockets, "sockets");
        }
    }

    private ControlPlaneClient(ControlPlane at, String node, TrustBundle initial, StateUpdates state,
            Supplier<Optional<WireGuardRegistration>> wireguard, Optional<SocketSource> from) {
        this.bundle = new TrustedRoots(initial);
        this.channel = channel(at.host(), at.port(), bundle::get, from);
        Supplier<String> token = () -> readToken(at);
        this.credentials = BearerCredentials.of(token);
        this.signer = new GrpcCertificateSigner(channel, credentials, bundle);
        this.bundleWatch = new BundleWatch(channel, credentials, bundle, WorkloadXdsClient.RECONNECT);
        bundleWatch.start();
        this.xds = state == null
                ? null
                : WorkloadXdsClient.create(channel, node, token, state, WorkloadXdsClient.RECONNECT, wireguard);
    }

    /**
     * The channel and certificate signing only, no workload discovery: for a process that is not a
     * node agent but runs on the node with its credential (the waypoint, which discovers Envoy
     * resources over {@link #channel} with {@link #credentials}).
     *
     * @throws IOException if the token file or the bundle cannot be read
     */
    public static ControlPlaneClient withoutDiscovery(ControlPlane at, String trustDomain) throws IOException {
        requireNonNull(at, "at");
        return new ControlPlaneClient(at, "", initialBundle(at, trustDomain), null, Optional::empty, Optional.empty());
    }

    /**
     * Starts workload discovery for {@code node} into {@code state}; returns at once (an unreachable control plane
     * is retried with backoff while the agent serves what it has).
     *
     * @throws IOException if the token file or the bundle cannot be read
     */
    public static ControlPlaneClient connect(ControlPlane at, String node, String trustDomain, StateUpdates state)
            throws IOException {
        return connect(at, node, trustDomain, state, Optional::empty);
    }

    /**
     * As above, publishing {@code wireguard} (read at each connect) to the control plane's key
     * registry.
     */
    public static ControlPlaneClient connect(ControlPlane at, String node, String trustDomain, StateUpdates state,
            Supplier<Optional<WireGuardRegistration>> wireguard) throws IOException {
        return connect(at, node, trustDomain, state, wireguard, Optional.empty());
    }

    /** As above, with its sockets from {@code from} when given. */
    public static ControlPlaneClient connect(ControlPlane at, String node, String trustDomain, StateUpdates state,
            Supplier<Optional<WireGuardRegistration>> wireguard, Optional<SocketSource> from) throws IOException {
        requireNonNull(wireguard, "wireguard");
        requireNonNull(from, "from");
        requireNonNull(at, "at");
        requireNonNull(node, "node");
        requireNonNull(trustDomain, "trustDomain");
        requireNonNull(state, "state");
        ControlPlaneClient c = new ControlPlaneClient(at, node, initialBundle(at, trustDomain), state, wireguard, from);
        c.xds.start();
        return c;
    }

    private static TrustBundle initialBundle(ControlPlane at, String trustDomain) throws IOException {
        requireNonNull(trustDomain, "trustDomain");
        try {
            readToken(at);
        } catch (UncheckedIOException | IllegalArgumentException e) {
            throw new IOException(e.getMessage(), e);
        }
        TrustBundle initial;
        try {
            initial = TrustBundle.read(trustDomain, at.caBundle());
        } catch (IOException | RuntimeException e) {
            throw new IOException("cannot read the control plane's CA bundle " + at.caBundle() + ": "
                    + e.getMessage() + " (copy bundle.pem from the control plane's state directory, ca/bundle.pem)",
                    e);
        }
        return initial;
    }

    /**
     * A TLS channel to a control plane at {@code host:port} that must present the control plane's
     * SVID of {@code bundle}'s trust domain; the caller closes it.
     */
    public static ManagedChannel channel(String host, int port, Supplier<TrustBundle> bundle) {
        return channel(host, port, bundle, Optional.empty());
    }

    /** As above, with its sockets from {@code from} when given. */
    public static ManagedChannel channel(String host, int port, Supplier<TrustBundle> bundle,
            Optional<SocketSource> from) {
        requireNonNull(host, "host");
        requireNonNull(bundle, "bundle");
        SpiffeId expected = MeshIdentities.controlPlane(bundle.get().trustDomain());
        try {
            // GrpcTls: a handshake may wait for a loaded control plane longer than Netty's 10 s (issue 12).
            NettyChannelBuilder b = NettyChannelBuilder.forAddress(host, port, GrpcTls.client(
                    SpiffeTls.forClientWithoutCertificate(bundle, Set.of(expected), SslProvider.JDK),
                    GrpcTls.HANDSHAKE_TIMEOUT))
                    .maxInboundMessageSize(64 << 20).keepAliveTime(30, TimeUnit.SECONDS);
            from.ifPresent(f -> b.eventLoopGroup(f.loop()).channelFactory(f.sockets()));
            return b.build();
        } catch (SSLException e) {
            throw new IllegalStateException("cannot build the TLS context for the control plane: " + e.getMessage(),
                    e);
        }
    }

    private static String readToken(ControlPlane at) {
        Path file = at.tokenFile();
        String hint = at.credential() == Credential.SERVICE_ACCOUNT_TOKEN
                ? " (the agent pod's projected service-account token: is the DaemonSet's serviceAccountToken "
                        + "volume mounted there?)"
                : " (the control plane writes it to <state-dir>/node-credentials/<node>.token)";
        try {
            String token = Files.readString(file, StandardCharsets.US_ASCII).trim();
            if (token.isEmpty()) {
                throw new IllegalArgumentException("node credential file " + file + " is empty" + hint);
            }
            return token;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the node credential " + file + ": " + e.getMessage() + hint,
                    e);
        }
    }

    /** Signs CSRs with the control plane's CA. */
    public CertificateSigner signer() {
        return signer;
    }

    /** The trust bundle: the bootstrap one, then the roots the CA last sent (a rotation step, a certificate). */
    public Supplier<TrustBundle> bundle() {
        return bundle::get;
    }

    /** Calls {@code listener} after each change of {@link #bundle()} (the Workload API pushes it to pods). */
    public void onBundleChange(Runnable listener) {
        bundle.onChange(listener);
    }

    /** The workload discovery client ({@link WorkloadXdsClient#status}: connected, ACKs, NACKs, last error). */
    public WorkloadXdsClient xds() {
        if (xds == null) {
            throw new IllegalStateException("this control-plane client was made without workload discovery");
        }
        return xds;
    }

    /** The TLS channel to the control plane (owned by this client). */
    public io.grpc.Channel channel() {
        return channel;
    }

    /** The node credential as gRPC call credentials, read from the token file at each call. */
    public io.grpc.CallCredentials credentials() {
        return credentials;
    }

    @Override
    public void close() {
        bundleWatch.close();
        if (xds != null) {
            xds.close();
        }
        channel.shutdownNow();
        Threads.awaitTermination(channel::awaitTermination, Duration.ofSeconds(5));
    }
}
