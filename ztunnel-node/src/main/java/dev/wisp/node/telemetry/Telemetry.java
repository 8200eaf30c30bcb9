package dev.wisp.node.telemetry;

import static java.util.Objects.requireNonNull;

import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.SocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's metrics (Istio's L4 names on a Prometheus registry) and its access log (logger
 * {@code wisp.access}: one line when a connection opens, one when it completes), and the same
 * completed line as a {@link FlowRecord} in the {@link #flows() flow log}. Thread-safe: Micrometer
 * meters are, the flow log is, and each {@link Flow} is confined to its connection's event loop.
 */
public final class Telemetry {
    /** How many completed connections {@link #flows()} keeps. */
    public static final int FLOW_LOG_CAPACITY = 1000;

    private static final Logger ACCESS = LoggerFactory.getLogger("wisp.access");
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final FlowLog flows = new FlowLog(FLOW_LOG_CAPACITY);

    /** The last connections completed or refused, from both sides. */
    public FlowLog flows() {
        return flows;
    }

    /** The registry, for agent-level gauges and counters. */
    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition of every metric. */
    public String scrape() {
        return registry.scrape();
    }

    /** A gauge whose value is read from {@code value} at scrape time. */
    public void gauge(String name, String help, Supplier<Number> value) {
        Gauge.builder(name, value).description(help).register(registry);
    }

    /** A counter without labels. */
    public Counter counter(String name, String help) {
        return Counter.builder(name).description(help).register(registry);
    }

    /**
     * Starts accounting for one connection: counts it opened and writes the "opened" access log line.
     *
     * @param direction {@code inbound} or {@code outbound}
     */
    public Flow open(String direction, ConnectionLabels labels, SocketAddress src, SocketAddress dst,
            String hboneAddress) {
        return new Flow(direction, requireNonNull(labels, "labels"), src, dst, hboneAddress);
    }

    /** One connection's metrics and access-log record. */
    public final class Flow {
        private final String direction;
        private final ConnectionLabels labels;
        private final SocketAddress src;
        private final SocketAddress dst;
        private final String hbone;
        private final long startNanos = System.nanoTime();
        private final Instant start = Instant.now();
        private final Counter sent;
        private final Counter received;
        private final Tags tags;
        /** Bytes client→server (received by the destination) and server→client (sent by it). */
        private final AtomicLong toServer = new AtomicLong();
        private final AtomicLong toClient = new AtomicLong();
        private boolean closed;

        private Flow(String direction, ConnectionLabels labels, SocketAddress src, SocketAddress dst, String hbone) {
            this.direction = direction;
            this.labels = labels;
            this.src = src;
            this.dst = dst;
            this.hbone = hbone;
            this.tags = labels.tags();
            Counter.builder("istio_tcp_connections_opened").tags(tags).register(registry).increment();
            this.sent = Counter.builder("istio_tcp_sent_bytes").tags(tags).register(registry);
            this.received = Counter.builder("istio_tcp_received_bytes").tags(tags).register(registry);
            if (ACCESS.isInfoEnabled()) {
                ACCESS.info("connection opened {}", fields());
            }
        }

        public void toServer(long n) {
            toServer.addAndGet(n);
            received.increment(n);
        }

        public void toClient(long n) {
            toClient.addAndGet(n);
            sent.increment(n);
        }

        /** Counts the connection closed and writes the "complete" line; later calls do nothing. */
        public synchronized void close(String error) {
            if (closed) {
                return;
            }
            closed = true;
            Counter.builder("istio_tcp_connections_closed").tags(tags).register(registry).increment();
            long ms = Duration.ofNanos(System.nanoTime() - startNanos).toMillis();
            if (error == null) {
                ACCESS.info("connection complete {} bytes_sent={} bytes_recv={} duration={}ms", fields(),
                        toClient.get(), toServer.get(), ms);
            } else {
                ACCESS.warn("connection complete {} bytes_sent={} bytes_recv={} duration={}ms error=\"{}\"",
                        fields(), toClient.get(), toServer.get(), ms, error);
            }
            flows.add(record(error, ms));
        }

        private FlowRecord record(String error, long ms) {
            FlowRecord.Outcome o = FlowRecord.Outcome.of(error);
            return new FlowRecord(0, start.toString(), labels.reporter(), addr(src),
                    labels.source().map(w -> w.getName()).orElse(""),
                    labels.source().map(w -> w.getNamespace()).orElse(""), id(labels.sourceIdentity()), addr(dst),
                    labels.destination().map(w -> w.getName()).orElse(""),
                    labels.destination().map(w -> w.getNamespace()).orElse(""), labels.destinationService(),
                    id(labels.destinationIdentity()), labels.mutualTls(), o.verdict(), o.reason(), toServer.get(),
                    toClient.get(), ms);
        }

        private String fields() {
            return "direction=" + direction + " src.addr=" + addr(src) + " src.workload="
                    + labels.source().map(w -> w.getName()).orElse("-") + " src.namespace="
                    + labels.source().map(w -> w.getNamespace()).orElse("-") + " src.identity="
                    + labels.sourceIdentity().map(id -> "\"" + id + "\"").orElse("-")
                    + " dst.addr=" + addr(dst) + (hbone == null ? "" : " dst.hbone_addr=" + hbone)
                    + " dst.service=" + (labels.destinationService().isEmpty() ? "-" : labels.destinationService())
                    + " dst.workload=" + labels.destination().map(w -> w.getName()).orElse("-")
                    + " dst.namespace=" + labels.destination().map(w -> w.getNamespace()).orElse("-")
                    + " dst.identity="
                    + labels.destinationIdentity().map(id -> "\"" + id + "\"").orElse("-");
        }

        private static String id(Optional<SpiffeId> id) {
            return id.map(SpiffeId::toString).orElse("");
        }

        private static String addr(SocketAddress a) {
            if (a instanceof java.net.InetSocketAddress i) {
                return i.getAddress().getHostAddress() + ":" + i.getPort();
            }
            return String.valueOf(a);
        }
    }
}
