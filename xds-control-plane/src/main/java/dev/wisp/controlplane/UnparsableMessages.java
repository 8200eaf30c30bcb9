package dev.wisp.controlplane;

import dev.wisp.controlplane.xds.NodeAuthInterceptor;
import dev.wisp.controlplane.xds.Refusals;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import java.io.InputStream;

/**
 * Refuses an agent's message that protobuf cannot parse (malformed, or groups nested past its
 * recursion limit of 100) as a counted, rate-logged refusal of the authenticated node
 * ({@code message_refused}, {@code INVALID_ARGUMENT}), instead of the parse failure gRPC would end
 * the call with from its executor, logging a stack trace for every such message. Each method's
 * request marshaller answers null for what it cannot parse (no exception leaves it; protobuf's
 * parser is iterative up to its limit, so depth costs no stack), and the call's listener ends a call
 * that received null before any service code sees it.
 *
 * <p>Stateless; the listeners run on gRPC's executor, one call's callbacks at a time.
 */
final class UnparsableMessages {
    private UnparsableMessages() {}

    /**
     * {@code service} refusing unparsable requests; put it inside {@link NodeAuthInterceptor}
     * (intercept the result), which gives the refusal its node.
     */
    static ServerServiceDefinition refusing(ServerServiceDefinition service, Refusals refusals) {
        ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(service.getServiceDescriptor().getName());
        for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
            add(b, m, refusals);
        }
        return b.build();
    }

    private static <Q, R> void add(ServerServiceDefinition.Builder b, ServerMethodDefinition<Q, R> m,
            Refusals refusals) {
        MethodDescriptor<Q, R> d = m.getMethodDescriptor();
        MethodDescriptor.Marshaller<Q> requests = d.getRequestMarshaller();
        MethodDescriptor<Q, R> guarded = d.toBuilder().setRequestMarshaller(new MethodDescriptor.Marshaller<Q>() {
            @Override
            public InputStream stream(Q value) {
                return requests.stream(value);
            }

            @Override
            public Q parse(InputStream in) {
                try {
                    return requests.parse(in);
                } catch (RuntimeException e) {
                    return null;
                }
            }
        }).build();
        ServerCallHandler<Q, R> next = m.getServerCallHandler();
        b.addMethod(guarded, (call, headers) -> new Guard<>(call, next.startCall(call, headers),
                NodeAuthInterceptor.NODE.get(), refusals));
    }

    /**
     * Passes a call's events on until a request did not parse; then ends the call as cancelled for
     * the service, which hears nothing more of it.
     */
    private static final class Guard<Q, R> extends ForwardingServerCallListener<Q> {
        /** Where a refused call's later events go: nowhere. */
        private final ServerCall.Listener<Q> ignored = new ServerCall.Listener<>() {
        };
        private final ServerCall<Q, R> call;
        private final ServerCall.Listener<Q> service;
        private final String node;
        private final Refusals refusals;
        private boolean refused;

        Guard(ServerCall<Q, R> call, ServerCall.Listener<Q> service, String node, Refusals refusals) {
            this.call = call;
            this.service = service;
            this.node = node;
            this.refusals = refusals;
        }

        @Override
        protected ServerCall.Listener<Q> delegate() {
            return refused ? ignored : service;
        }

        @Override
        public void onMessage(Q message) {
            if (message != null || refused) {
                super.onMessage(message);
                return;
            }
            refused = true;
            String why = "a message that does not parse as " + call.getMethodDescriptor().getFullMethodName()
                    + "'s request (malformed, or nested past protobuf's recursion limit)";
            refusals.refuse(Refusals.Reason.MESSAGE_REFUSED, node, why);
            call.close(Status.INVALID_ARGUMENT.withDescription(why), new Metadata());
            // The service learns the call is over as a cancellation (a stream unregisters itself).
            service.onCancel();
        }
    }
}
