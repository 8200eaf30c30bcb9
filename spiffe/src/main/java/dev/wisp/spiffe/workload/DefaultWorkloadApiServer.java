package dev.wisp.spiffe.workload;

import java.time.Duration;
import dev.wisp.base.SocketFile;
import dev.wisp.base.Threads;
import com.google.protobuf.ByteString;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.manager.CertificateManager;
import dev.wisp.spiffe.workload.grpc.SpiffeWorkloadAPIGrpc;
import dev.wisp.spiffe.workload.grpc.X509BundlesRequest;
import dev.wisp.spiffe.workload.grpc.X509BundlesResponse;
import dev.wisp.spiffe.workload.grpc.X509SVID;
import dev.wisp.spiffe.workload.grpc.X509SVIDRequest;
import dev.wisp.spiffe.workload.grpc.X509SVIDResponse;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.nio.NioServerDomainSocketChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertificateEncodingException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The Workload API server: grpc-netty on Netty's NIO unix-domain server channel, one event loop
 * thread. Handlers never block: the SVID comes from the certificate manager's future, updates from
 * its listener (on the manager's threads). Each open stream is sent to under its own monitor, since
 * a gRPC StreamObserver must not be called concurrently.
 */
final class DefaultWorkloadApiServer implements WorkloadApiServer {
    private static final Logger log = LoggerFactory.getLogger(WorkloadApiServer.class);
    static final Metadata.Key<String> SECURITY_HEADER = Metadata.Key.of("workload.spiffe.io",
            Metadata.ASCII_STRING_MARSHALLER);

    private final Path socket;
    private final SpiffeId identity;
    private final CertificateManager certificates;
    private final Supplier<TrustBundle> bundle;
    private final EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    /** Open FetchX509SVID streams; concurrent set, each observer guarded by its own monitor. */
    private final Set<ServerCallStreamObserver<X509SVIDResponse>> svidStreams = ConcurrentHashMap.newKeySet();
    /** Open FetchX509Bundles streams; likewise. */
    private final Set<ServerCallStreamObserver<X509BundlesResponse>> bundleStreams = ConcurrentHashMap.newKeySet();
    private final AutoCloseable subscription;
    private Server server;
    /** The socket's file once bound: removed on close unless another process bound its own there since. */
    private SocketFile file;

    private DefaultWorkloadApiServer(Path socket, SpiffeId identity, CertificateManager certificates,
            Supplier<TrustBundle> bundle) {
        this.socket = socket;
        this.identity = identity;
        this.certificates = certificates;
        this.bundle = bundle;
        this.subscription = certificates.addListener(this::onNewSvid);
    }

    static WorkloadApiServer start(Path socket, SpiffeId identity, CertificateManager certificates,
            Supplier<TrustBundle> bundle) throws IOException {
        DefaultWorkloadApiServer s = new DefaultWorkloadApiServer(socket, identity, certificates, bundle);
        try {
            Files.deleteIfExists(socket);
            s.server = NettyServerBuilder.forAddress(UnixDomainSocketAddress.of(socket))
                    .channelType(NioServerDomainSocketChannel.class).bossEventLoopGroup(s.group)
                    .workerEventLoopGroup(s.group).directExecutor()
                    // grpc sets TCP keep-alive on accepted channels; a unix socket has none (and would warn per call).
                    .withChildOption(ChannelOption.SO_KEEPALIVE, null)
                    .addService(ServerInterceptors.intercept(s.new Service(), new SecurityHeaderCheck())).build()
                    .start();
            s.file = SocketFile.bound(socket);
            Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-rw-rw-"));
        } catch (IOException | RuntimeException e) {
            s.close();
            throw new IOException("cannot serve the Workload API on " + socket + ": " + e.getMessage()
                    + " (does the directory exist and is it writable?)", e);
        }
        log.info("Workload API for {} listening on {}", identity, socket);
        return s;
    }

    @Override
    public Path socket() {
        return socket;
    }

    @Override
    public void bundleChanged() {
        X509BundlesResponse bundles = bundlesResponse();
        for (ServerCallStreamObserver<X509BundlesResponse> stream : bundleStreams) {
            send(stream, bundles);
        }
        certificates.current(identity).ifPresent(this::onNewSvid);
    }

    private void onNewSvid(X509Svid svid) {
        if (!svid.id().equals(identity)) {
            return;
        }
        X509SVIDResponse response = svidResponse(svid);
        for (ServerCallStreamObserver<X509SVIDResponse> stream : svidStreams) {
            send(stream, response);
        }
    }

    private static <T> void send(ServerCallStreamObserver<T> stream, T message) {
        synchronized (stream) {
            if (!stream.isCancelled()) {
                try {
                    stream.onNext(message);
                } catch (RuntimeException e) {
                    log.debug("a Workload API stream ended while sending", e);
                }
            }
        }
    }

    private X509SVIDResponse svidResponse(X509Svid svid) {
        return X509SVIDResponse.newBuilder()
                .addSvids(X509SVID.newBuilder().setSpiffeId(svid.id().toString()).setX509Svid(der(svid.chain()))
                        .setX509SvidKey(ByteString.copyFrom(svid.privateKey().getEncoded()))
                        .setBundle(der(bundle.get().roots())))
                .build();
    }

    private X509BundlesResponse bundlesResponse() {
        TrustBundle b = bundle.get();
        return X509BundlesResponse.newBuilder()
                .putBundles(SpiffeId.forTrustDomain(b.trustDomain()).toString(), der(b.roots())).build();
    }

    private static ByteString der(List<X509Certificate> certs) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try {
            for (X509Certificate c : certs) {
                out.writeBytes(c.getEncoded());
            }
        } catch (CertificateEncodingException e) {
            throw new IllegalStateException("cannot DER-encode a certificate", e);
        }
        return ByteString.copyFrom(out.toByteArray());
    }

    @Override
    public void close() {
        try {
            subscription.close();
        } catch (Exception e) {
            log.debug("removing the certificate listener failed", e);
        }
        if (server != null) {
            server.shutdownNow();
            Threads.awaitTermination(server::awaitTermination, Duration.ofSeconds(5));
        }
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
        try {
            if (file != null) {
                file.deleteIfStillOurs();
            }
        } catch (IOException e) {
            log.warn("cannot remove the Workload API socket {}: {}", socket, e.getMessage());
        }
    }

    /** Refuses calls without {@code workload.spiffe.io: true}, before any handler runs. */
    static final class SecurityHeaderCheck implements ServerInterceptor {
        @Override
        public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
                ServerCallHandler<Q, R> next) {
            if (!"true".equals(headers.get(SECURITY_HEADER))) {
                call.close(Status.INVALID_ARGUMENT.withDescription(
                        "security header missing from request: the Workload API requires metadata 'workload.spiffe.io: true'"),
                        new Metadata());
                return new ServerCall.Listener<>() {
                };
            }
            return next.startCall(call, headers);
        }
    }

    /** The gRPC service; JWT methods keep the generated UNIMPLEMENTED answers. */
    final class Service extends SpiffeWorkloadAPIGrpc.SpiffeWorkloadAPIImplBase {
        @Override
        public void fetchX509SVID(X509SVIDRequest request, StreamObserver<X509SVIDResponse> observer) {
            ServerCallStreamObserver<X509SVIDResponse> stream = (ServerCallStreamObserver<X509SVIDResponse>) observer;
            stream.setOnCancelHandler(() -> svidStreams.remove(stream));
            svidStreams.add(stream);
            certificates.fetch(identity).whenComplete((svid, err) -> {
                if (err != null) {
                    svidStreams.remove(stream);
                    Throwable cause = err instanceof CompletionException && err.getCause() != null
                            ? err.getCause()
                            : err;
                    log.warn("Workload API: no certificate for {}: {}", identity, cause.getMessage());
                    synchronized (stream) {
                        if (!stream.isCancelled()) {
                            stream.onError(Status.UNAVAILABLE
                                    .withDescription("no X.509-SVID for " + identity + " yet: " + cause.getMessage())
                                    .asRuntimeException());
                        }
                    }
                    return;
                }
                send(stream, svidResponse(svid));
            });
        }

        @Override
        public void fetchX509Bundles(X509BundlesRequest request, StreamObserver<X509BundlesResponse> observer) {
            ServerCallStreamObserver<X509BundlesResponse> stream = (ServerCallStreamObserver<X509BundlesResponse>) observer;
            stream.setOnCancelHandler(() -> bundleStreams.remove(stream));
            bundleStreams.add(stream);
            send(stream, bundlesResponse());
        }
    }
}
