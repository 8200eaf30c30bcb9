package dev.wisp.node.xds;

import io.grpc.CallCredentials;
import io.grpc.Metadata;
import io.grpc.SecurityLevel;
import io.grpc.Status;
import java.util.concurrent.Executor;
import java.util.function.Supplier;

/**
 * The node credential as gRPC call credentials ({@code authorization: Bearer <credential>}). The
 * credential is read per call, so that a rotated token is picked up at reconnect, and it is never
 * attached to a call on a channel without TLS.
 */
public final class BearerCredentials extends CallCredentials {
    private static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);
    private final Supplier<String> credential;

    private BearerCredentials(Supplier<String> credential) {
        this.credential = credential;
    }

    /** Credentials that send what {@code credential} returns at each call. */
    public static BearerCredentials of(Supplier<String> credential) {
        return new BearerCredentials(java.util.Objects.requireNonNull(credential, "credential"));
    }

    @Override
    public void applyRequestMetadata(RequestInfo info, Executor executor, MetadataApplier applier) {
        if (info.getSecurityLevel() != SecurityLevel.PRIVACY_AND_INTEGRITY) {
            applier.fail(Status.UNAUTHENTICATED.withDescription("refusing to send the node credential to "
                    + info.getAuthority() + " over a channel without TLS"));
            return;
        }
        try {
            Metadata m = new Metadata();
            m.put(AUTHORIZATION, "Bearer " + credential.get());
            applier.apply(m);
        } catch (RuntimeException e) {
            applier.fail(
                    Status.UNAUTHENTICATED.withDescription("cannot read the node credential: " + e.getMessage())
                            .withCause(e));
        }
    }
}
