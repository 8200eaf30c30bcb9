package dev.wisp.node.proxy;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.telemetry.FlowOutcome;
import dev.wisp.node.telemetry.FlowRecord;
import io.netty.handler.codec.socksx.v5.Socks5CommandStatus;
import java.util.Optional;

/**
 * The result of one connection, inbound or outbound: allowed, denied (by policy or by STRICT mTLS),
 * or failed for a named reason. Every proxy path produces one, and everything said about the
 * connection is rendered from it: the HBONE response status ({@link #hboneStatus}), the SOCKS5
 * reply ({@link #socks5Reply}), the metrics' {@code response_flags}, the access log's {@code error=}
 * text and the flow record's verdict and reason. No verdict is ever parsed back out of text.
 *
 * <p>{@code response_flags} use Envoy's names where Envoy has one ({@code NR} no route, {@code UF}
 * upstream connection failure, {@code UPE} upstream protocol error, {@code DPE} downstream protocol
 * error, {@code DC} downstream closed, {@code RL} rate limited: a workload's own limit); Envoy's TCP authorization has no flag, so a denial is
 * {@code DENY}, and a TLS refusal (or a stream refused for a certificate that no longer holds) is {@code TLS}.
 *
 * <p>Reasons are never null (every producer words one); the renderings do not check again.
 *
 * <p>The access log's {@code error=} text is {@code HBONE <status>: <reason>} for every refusal that
 * has an HBONE status (the demo and the e2e tests read {@code HBONE 401: denied by DENY policy
 * ns/name}), {@code TLS <refusal>: <detail>} for a TLS refusal, and the error that ended an allowed
 * connection (a reset, an idle timeout) as is.
 */
public sealed interface Outcome extends FlowOutcome {

    /** A clean allowed connection. */
    static Outcome allowed() {
        return Allowed.CLEAN;
    }

    /** An allowed connection that ended with {@code error} (a reset, a timeout); {@code null}: cleanly. */
    static Outcome ended(String error) {
        return error == null || error.isEmpty() ? Allowed.CLEAN : new Allowed(error);
    }

    /**
     * The connection was let through. {@code endedBy} is the error that ended it (a reset, an idle
     * timeout), empty when it ended cleanly: that is still an allowed connection.
     */
    record Allowed(String endedBy) implements Outcome {
        static final Allowed CLEAN = new Allowed("");

        public Allowed {
            requireNonNull(endedBy, "endedBy");
        }

        @Override
        public String reason() {
            return endedBy;
        }
    }

    /** Refused by an authorization decision: the HBONE answer is 401, the SOCKS5 reply "not allowed". */
    sealed interface Denied extends Outcome {}

    /**
     * Denied by this agent's L4 policy.
     *
     * @param policy the deciding policy as {@code ns/name}, empty when no ALLOW policy matched
     * @param reason the authorizer's words ({@code denied by DENY policy ns/name},
     *     {@code denied: no ALLOW policy matched}), which tests and the demo read
     */
    record Policy(String policy, String reason) implements Denied {
        public Policy {
            requireNonNull(policy, "policy");
            requireNonNull(reason, "reason");
        }
    }

    /** Plaintext to a workload whose PeerAuthentication is STRICT. */
    record StrictMtls(String reason) implements Denied {}

    /**
     * Inbound: the destination is behind a waypoint (its own or a Service's it backs) and the peer's
     * certificate is not that waypoint's (or there is none). The reason begins {@code bypassed waypoint},
     * ztunnel's words for the same 401.
     */
    record BypassedWaypoint(String reason) implements Denied {
        public BypassedWaypoint {
            requireNonNull(reason, "reason");
        }
    }

    /** The destination's agent answered 401: its policy denied the connection (outbound side). */
    record DeniedUpstream(String reason) implements Denied {}

    /** Refused or broken for a reason other than authorization. */
    sealed interface Failed extends Outcome {}

    /** Outbound: no way to the destination (a service without a healthy endpoint or the port, an unknown node). */
    record NoRoute(String reason) implements Failed {}

    /** Inbound: no workload has the destination address (HBONE 503). */
    record NoWorkload(String reason) implements Failed {}

    /**
     * Inbound: a request this agent does not serve (HBONE 400): not CONNECT, END_STREAM on CONNECT,
     * an authority that is a host name or has no port, a workload of another node, an agent port.
     */
    record BadRequest(String reason) implements Failed {}

    /** Outbound: the destination is one of this agent's own ports, which would loop. */
    record Loop(String reason) implements Failed {}

    /** The TCP (or HBONE TLS) connection to the next hop could not be made. */
    record Unreachable(String reason) implements Failed {}

    /**
     * The upstream agent's answer is not HBONE: no {@code :status}, not a HEADERS frame, or a 200
     * that ends the stream (a tunnel that closes as it opens).
     */
    record Malformed(String reason) implements Failed {}

    /** The HBONE server presented an identity the client does not accept for this destination. */
    record PeerIdentity(String reason) implements Failed {}

    /** The upstream agent answered {@code status}, neither 200 nor 401 (which is {@link DeniedUpstream}). */
    record UpstreamStatus(int status, String reason) implements Failed {}

    /** Outbound: the source is not a workload of this node, so the agent has no identity to present. */
    record NoSourceIdentity(String reason) implements Failed {}

    /** The client went away (closed, reset) before the tunnel was up. */
    record ClientClosed(String reason) implements Failed {}

    /**
     * Outbound: refused by the source workload's own limit ({@link WorkloadLimits}: new connections per
     * second, open connections), so that one pod cannot take the agent from the others.
     */
    record Limited(WorkloadLimits.Reason limit, String reason) implements Failed {
        public Limited {
            requireNonNull(limit, "limit");
            requireNonNull(reason, "reason");
        }
    }

    /**
     * Inbound: a CONNECT stream on a connection whose client certificate chain no longer holds — a
     * certificate of it expired, or it no longer chains to the trust bundle (a retired root) — since
     * the handshake that admitted the connection ({@link StaleCredentials}). HBONE 421 (Misdirected
     * Request: "retry on another connection", which a new handshake with renewed credentials is).
     */
    record StaleCertificate(String reason) implements Failed {
        public StaleCertificate {
            requireNonNull(reason, "reason");
        }
    }

    /** Why a TLS handshake on the HBONE port was refused. */
    enum TlsRefusal {
        NO_CERTIFICATE("no client certificate"), TLS_VERSION("not TLS 1.3"), NO_H2("ALPN without h2"), FOREIGN_CA(
                "certificate not signed by the mesh CA"), HANDSHAKE("handshake failed");

        private final String text;

        TlsRefusal(String text) {
            this.text = text;
        }

        /** How the access log and the flow record word it. */
        public String text() {
            return text;
        }
    }

    /** Refused during the TLS handshake, before any HTTP/2 stream: nothing is answered in HBONE. */
    record Tls(TlsRefusal refusal, String detail) implements Failed {
        public Tls {
            requireNonNull(refusal, "refusal");
            requireNonNull(detail, "detail");
        }

        @Override
        public String reason() {
            return detail.isEmpty() ? refusal.text() : refusal.text() + ": " + detail;
        }
    }

    /** Why, in the operator's words; empty for a clean allowed connection. */
    @Override
    String reason();

    /**
     * The status of the HBONE answer: 200, 400 (a request this agent does not serve, a loop), 401
     * (denied), 503 (no workload, no route, unreachable, no identity to present, client gone),
     * 502 (the upstream agent failed or answered something that is not HBONE), 421 (the connection's
     * client certificate no longer holds: retry on a new connection); 0 for a TLS refusal,
     * which ends the connection before any stream exists.
     */
    default int hboneStatus() {
        return switch (this) {
            case Allowed a -> 200;
            case Denied d -> 401;
            case BadRequest b -> 400;
            case Loop l -> 400;
            case NoWorkload n -> 503;
            case NoRoute n -> 503;
            case Unreachable u -> 503;
            case NoSourceIdentity n -> 503;
            case ClientClosed c -> 503;
            case Limited l -> 503;
            case Malformed m -> 502;
            case PeerIdentity p -> 502;
            case UpstreamStatus u -> 502;
            case StaleCertificate s -> 421;
            case Tls t -> 0;
        };
    }

    /** The SOCKS5 reply (RFC 1928 §6): success only for {@link Allowed}. */
    default Socks5CommandStatus socks5Reply() {
        return switch (this) {
            case Allowed a -> Socks5CommandStatus.SUCCESS;
            case Denied d -> Socks5CommandStatus.FORBIDDEN;
            case NoSourceIdentity n -> Socks5CommandStatus.FORBIDDEN;
            case NoRoute n -> Socks5CommandStatus.NETWORK_UNREACHABLE;
            case NoWorkload n -> Socks5CommandStatus.HOST_UNREACHABLE;
            case Unreachable u -> Socks5CommandStatus.HOST_UNREACHABLE;
            case UpstreamStatus u when u.status() == 503 -> Socks5CommandStatus.HOST_UNREACHABLE;
            case Failed f -> Socks5CommandStatus.FAILURE;
        };
    }

    @Override
    default String responseFlags() {
        return switch (this) {
            case Allowed a -> "-";
            case Denied d -> "DENY";
            case NoRoute n -> "NR";
            case NoWorkload n -> "NR";
            case Loop l -> "NR";
            case NoSourceIdentity n -> "NR";
            case Unreachable u -> "UF";
            case PeerIdentity p -> "UF";
            case UpstreamStatus u -> "UF";
            case Malformed m -> "UPE";
            case BadRequest b -> "DPE";
            case ClientClosed c -> "DC";
            case Limited l -> "RL";
            case StaleCertificate s -> "TLS";
            case Tls t -> "TLS";
        };
    }

    @Override
    default String verdict() {
        return switch (this) {
            case Allowed a -> FlowRecord.ALLOWED;
            case Denied d -> FlowRecord.DENIED;
            case Failed f -> FlowRecord.FAILED;
        };
    }

    @Override
    default Optional<String> error() {
        return switch (this) {
            case Allowed a -> a.endedBy().isEmpty() ? Optional.empty() : Optional.of(a.endedBy());
            case Tls t -> Optional.of("TLS " + t.reason());
            default -> Optional.of("HBONE " + hboneStatus() + ": " + reason());
        };
    }
}
