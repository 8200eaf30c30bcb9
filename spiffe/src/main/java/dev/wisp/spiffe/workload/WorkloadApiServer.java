package dev.wisp.spiffe.workload;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.manager.CertificateManager;
import java.io.IOException;
import java.nio.file.Path;
import java.util.function.Supplier;

/**
 * The SPIFFE Workload API (X.509 part) on a unix socket: {@code FetchX509SVID} streams the
 * workload's SVID and its bundle, and a new message whenever the {@link CertificateManager} renews
 * it; {@code FetchX509Bundles} streams the trust bundle, and a new message on
 * {@link #bundleChanged()}. Calls without the metadata {@code workload.spiffe.io: true} are refused
 * with INVALID_ARGUMENT, as the specification requires. JWT methods answer UNIMPLEMENTED.
 *
 * <p>One socket serves one identity: the node agent opens a socket per pod, in a directory only
 * that pod sees, so the socket's location is what attests the caller.
 */
public interface WorkloadApiServer extends AutoCloseable {
    /**
     * Binds {@code socket} (replacing a stale socket file; mode 0666, access is governed by the
     * directory) and starts serving {@code identity}.
     */
    static WorkloadApiServer start(Path socket, SpiffeId identity, CertificateManager certificates,
            Supplier<TrustBundle> bundle) throws IOException {
        requireNonNull(socket, "socket");
        requireNonNull(identity, "identity");
        requireNonNull(certificates, "certificates");
        requireNonNull(bundle, "bundle");
        return DefaultWorkloadApiServer.start(socket, identity, certificates, bundle);
    }

    Path socket();

    /** Sends the current bundle to every open stream (call after root rotation changes it). */
    void bundleChanged();

    /** Ends every stream, stops the server and removes the socket file. */
    @Override
    void close();
}
