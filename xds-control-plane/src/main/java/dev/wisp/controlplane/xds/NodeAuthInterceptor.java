package dev.wisp.controlplane.xds;

import static java.util.Objects.requireNonNull;

import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.Optional;

/**
 * Authenticates every call by its {@code authorization: Bearer <credential>} metadata, then binds
 * the credential to its node ({@link NodeBinding}: the node is still in the configuration, and the
 * call comes from one of its addresses), and puts the authenticated node into the call's
 * {@link Context}; refused calls end (UNAUTHENTICATED, or PERMISSION_DENIED for another address)
 * before any service code runs, each counted and logged through {@link Refusals}. Stateless; runs on
 * gRPC's executor.
 */
public final class NodeAuthInterceptor implements ServerInterceptor {
    static final Metadata.Key<String> AUTHORIZATION = Metadata.Key.of("authorization",
            Metadata.ASCII_STRING_MARSHALLER);
    /** The node the call's credential speaks for. */
    public static final Context.Key<String> NODE = Context.key("wisp-node");
    private final NodeAuthenticator authenticator;
    private final NodeDirectory directory;
    private final Refusals refusals;
    private final boolean bindAddresses;

    public NodeAuthInterceptor(NodeAuthenticator authenticator, NodeDirectory directory, Refusals refusals) {
        this(authenticator, directory, refusals, NodeBinding.BIND_ADDRESSES);
    }

    NodeAuthInterceptor(NodeAuthenticator authenticator, NodeDirectory directory, Refusals refusals,
            boolean bindAddresses) {
        this.authenticator = requireNonNull(authenticator, "authenticator");
        this.directory = requireNonNull(directory, "directory");
        this.refusals = requireNonNull(refusals, "refusals");
        this.bindAddresses = bindAddresses;
    }

    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers,
            ServerCallHandler<Q, R> next) {
        String value = headers.get(AUTHORIZATION);
        NodeAuthenticator.Result result = value != null && value.regionMatches(true, 0, "Bearer ", 0, 7)
                ? authenticator.authenticate(value.substring(7).trim())
                : new NodeAuthenticator.Refused("missing 'authorization: Bearer <node credential>' metadata");
        String method = call.getMethodDescriptor().getFullMethodName();
        return switch (result) {
            case NodeAuthenticator.Refused(String reason) -> {
                refusals.refuse(Refusals.Reason.UNAUTHENTICATED, null, method + ": " + reason);
                yield refused(call, Status.UNAUTHENTICATED.withDescription(reason));
            }
            case NodeAuthenticator.Revoked(String node, String reason) -> {
                refusals.refuse(Refusals.Reason.NODE_REMOVED, node, method + ": " + reason);
                yield refused(call, Status.UNAUTHENTICATED.withDescription(reason));
            }
            case NodeAuthenticator.Authenticated(String node) -> {
                Optional<NodeBinding.Refusal> unbound = NodeBinding.check(node,
                        call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR), directory, bindAddresses);
                if (unbound.isPresent()) {
                    NodeBinding.Refusal r = unbound.get();
                    refusals.refuse(r.reason(), node, method + ": " + r.message());
                    yield refused(call, (r.reason() == Refusals.Reason.NODE_REMOVED
                            ? Status.UNAUTHENTICATED
                            : Status.PERMISSION_DENIED).withDescription(r.message()));
                }
                yield Contexts.interceptCall(Context.current().withValue(NODE, node), call, headers, next);
            }
        };
    }

    private static <Q, R> ServerCall.Listener<Q> refused(ServerCall<Q, R> call, Status status) {
        call.close(status, new Metadata());
        return new ServerCall.Listener<>() {
        };
    }
}
