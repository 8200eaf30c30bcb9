package dev.wisp.node.telemetry;

import static java.util.Objects.requireNonNull;

/**
 * One connection as the agent saw it when it ended or was refused: the record behind the admin
 * API's {@code /flows} and {@code wisp flows}. Empty strings stand for "not known" (a source outside
 * the mesh has no workload or identity).
 *
 * @param seq position in the agent's flow log, increasing from 1 ({@code ?since=} follows it)
 * @param start when the connection was accepted, ISO-8601 UTC
 * @param reporter {@code source} (the client's agent, outbound) or {@code destination} (the
 *     server's agent, inbound), as in Istio's metrics
 * @param sourceAddress client {@code ip:port}
 * @param sourceWorkload client workload name
 * @param sourceNamespace client namespace
 * @param sourceIdentity client SPIFFE ID (on the inbound side: the one its certificate proved)
 * @param destinationAddress the address the client asked for, {@code ip:port}
 * @param destinationWorkload server workload name
 * @param destinationNamespace server namespace
 * @param destinationService service hostname, when the destination was a service
 * @param destinationIdentity the server's SPIFFE ID (expected outbound, own inbound)
 * @param mtls whether the connection was carried over HBONE mutual TLS
 * @param verdict {@link #ALLOWED}, {@link #DENIED} (by policy or STRICT mTLS) or {@link #FAILED}
 *     (refused for another reason: no route, unreachable destination), as the connection's
 *     {@link FlowOutcome} renders it
 * @param reason why, for denied and failed connections, or the error that ended an allowed one
 * @param bytesSent bytes client → server
 * @param bytesReceived bytes server → client
 * @param durationMillis from accept to close
 * @param protocol what carried it between the agents: {@code h2} or {@code h3} (HBONE over HTTP/2
 *     or HTTP/3), {@code tcp} (not over HBONE), empty when refused before it was carried
 */
public record FlowRecord(long seq, String start, String reporter, String sourceAddress, String sourceWorkload,
        String sourceNamespace, String sourceIdentity, String destinationAddress, String destinationWorkload,
        String destinationNamespace, String destinationService, String destinationIdentity, boolean mtls,
        String verdict, String reason, long bytesSent, long bytesReceived, long durationMillis, String protocol) {
    public static final String ALLOWED = "allowed";
    public static final String DENIED = "denied";
    public static final String FAILED = "failed";

    public FlowRecord {
        requireNonNull(start, "start");
        requireNonNull(reporter, "reporter");
        requireNonNull(verdict, "verdict");
        sourceAddress = orEmpty(sourceAddress);
        sourceWorkload = orEmpty(sourceWorkload);
        sourceNamespace = orEmpty(sourceNamespace);
        sourceIdentity = orEmpty(sourceIdentity);
        destinationAddress = orEmpty(destinationAddress);
        destinationWorkload = orEmpty(destinationWorkload);
        destinationNamespace = orEmpty(destinationNamespace);
        destinationService = orEmpty(destinationService);
        destinationIdentity = orEmpty(destinationIdentity);
        reason = orEmpty(reason);
        protocol = orEmpty(protocol);
    }

    /** A record of a connection whose carrier is not known (records written before it was recorded). */
    public FlowRecord(long seq, String start, String reporter, String sourceAddress, String sourceWorkload,
            String sourceNamespace, String sourceIdentity, String destinationAddress, String destinationWorkload,
            String destinationNamespace, String destinationService, String destinationIdentity, boolean mtls,
            String verdict, String reason, long bytesSent, long bytesReceived, long durationMillis) {
        this(seq, start, reporter, sourceAddress, sourceWorkload, sourceNamespace, sourceIdentity, destinationAddress,
                destinationWorkload, destinationNamespace, destinationService, destinationIdentity, mtls, verdict,
                reason, bytesSent, bytesReceived, durationMillis, "");
    }

    /** This record with its place in the log. */
    FlowRecord withSeq(long n) {
        return new FlowRecord(n, start, reporter, sourceAddress, sourceWorkload, sourceNamespace, sourceIdentity,
                destinationAddress, destinationWorkload, destinationNamespace, destinationService,
                destinationIdentity, mtls, verdict, reason, bytesSent, bytesReceived, durationMillis, protocol);
    }

    private static String orEmpty(String s) {
        return s == null ? "" : s;
    }
}
