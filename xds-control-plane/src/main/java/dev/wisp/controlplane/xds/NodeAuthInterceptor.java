package dev.wisp.controlplane.xds;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;

/**
 * Authenticates every call by its {@code authorization: Bearer <credential>} metadata and puts the
 * authenticated node into the call's {@link Context}; calls without a valid credential end with
 * UNAUTHENTICATED before any service code runs.
 */
public final class NodeAuthInterceptor implements ServerInterceptor {
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);
    /** The node the call's credential speaks for. */
    public static final Context.Key<String> NODE = Context.key("wisp-node");
    private final NodeAuthenticator authenticator;

    public NodeAuthInterceptor(NodeAuthenticator authenticator) {
        this.authenticator = java.util.Objects.requireNonNull(authenticator, "authenticator");
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        String value = headers.get(AUTHORIZATION);
        NodeAuthenticator.Result result = value != null && value.regionMatches(true, 0, "Bearer ", 0, 7)
                ? authenticator.authenticate(value.substring(7).trim())
                : new NodeAuthenticator.Refused("missing 'authorization: Bearer <node credential>' metadata");
        if (!(result instanceof NodeAuthenticator.Authenticated(String node))) {
            call.close(Status.UNAUTHENTICATED.withDescription(((NodeAuthenticator.Refused) result).reason()),
                    new Metadata());
            return new ServerCall.Listener<>() {
            };
        }
        return Contexts.interceptCall(Context.current().withValue(NODE, node), call, headers, next);
    }
}
