package dev.wisp.controlplane;

import dev.wisp.controlplane.xds.Refusals;
import io.grpc.Metadata;
import io.grpc.ServerStreamTracer;
import io.grpc.Status;

/**
 * Counts the calls gRPC itself ends before any service code runs because an agent's message is
 * larger than {@link ControlPlane#MAX_AGENT_MESSAGE} ({@code RESOURCE_EXHAUSTED} from the deframer).
 * The node is not known there (the tracer runs below the credential check), so these are counted
 * and logged under node {@code -}. A message protobuf cannot parse (e.g. nested past its recursion
 * limit) is refused by {@link UnparsableMessages}, under the authenticated node.
 *
 * <p>Stateless; called on gRPC's transport threads.
 */
final class RefusedMessages extends ServerStreamTracer.Factory {
    private final Refusals refusals;

    RefusedMessages(Refusals refusals) {
        this.refusals = refusals;
    }

    @Override
    public ServerStreamTracer newServerStreamTracer(String fullMethodName, Metadata headers) {
        return new ServerStreamTracer() {
            @Override
            public void streamClosed(Status status) {
                String d = status.getDescription();
                if (d != null && (status.getCode() == Status.Code.RESOURCE_EXHAUSTED && d.contains(
                        "exceeds maximum") || status.getCode() == Status.Code.INTERNAL
                                && d.contains(
                                        "Invalid protobuf byte sequence"))) {
                    refusals.refuse(Refusals.Reason.MESSAGE_REFUSED, null, fullMethodName + ": " + d);
                }
            }
        };
    }
}
