package dev.wisp.node.telemetry;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.IpText;
import dev.wisp.spiffe.SpiffeId;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Tags;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.net.SocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's metrics (Istio's L4 names on a Prometheus registry) and its access log (logger
 * {@code wisp.access}: one line when a connection opens, one when it completes), and the same
 * completed line as a {@link FlowRecord} in the {@link #flows() flow log}. How a connection ended is
 * given as a {@link FlowOutcome}, whose renderings fill the closed counter's {@code response_flags},
 * the line's {@code error=} and the record's verdict; opened and byte counters carry
 * {@code response_flags="-"}, as the outcome is not known when they start. Thread-safe: Micrometer
 * meters are, the flow log is, and each {@link Flow} keeps its state in atomics and under its own
 * lock (an HTTP/3 tunnel's two channels run on different event loops).
 */
public final class Telemetry {
    /** How many completed connections {@link #flows()} keeps. */
    public static final int FLOW_LOG_CAPACITY = 1000;

    /** Refusal lines written at once before the rate applies, and per second after. */
    static final int REFUSAL_LINES_BURST = 20;
    static final int REFUSAL_LINES_PER_SECOND = 10;

    private static final Logger ACCESS = LoggerFactory.getLogger("wisp.access");
    private final LogBudget refusalLines;
    private final PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final FlowLog flows = new FlowLog(FLOW_LOG_CAPACITY);
    private final List<Runnable> beforeScrape = new CopyOnWriteArrayList<>();

    public Telemetry() {
        this(System::nanoTime);
    }

    /** With the clock that paces refusal lines (tests). */
    Telemetry(LongSupplier nanoTime) {
        refusalLines = new LogBudget(REFUSAL_LINES_BURST, REFUSAL_LINES_PER_SECOND, nanoTime);
    }

    /** The last connections completed or refused, from both sides. */
    public FlowLog flows() {
        return flows;
    }

    /** The registry, for agent-level gauges and counters. */
    public PrometheusMeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition of every metric, after running each {@link #beforeScrape} refresh. */
    public String scrape() {
        beforeScrape.forEach(Runnable::run);
        return registry.scrape();
    }

    /**
     * Runs {@code refresh} at the start of every scrape, on the scraping thread: for series whose rows
     * come and go (one per certificate held), rebuilt from their owner's state.
     */
    public void beforeScrape(Runnable refresh) {
        beforeScrape.add(requireNonNull(refresh, "refresh"));
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
        return new Flow(direction, requireNonNull(labels, "labels"), src, dst, hboneAddress, true);
    }

    /**
     * Records a connection refused before it carried a byte (a TLS refusal, an HBONE 400 or 503):
     * counted opened and closed like any connection, one flow record, and one access-log line
     * ({@code connection complete ... error="..."}, no "opened" line) — the lines paced by a token
     * bucket ({@value #REFUSAL_LINES_BURST} at once, then {@value #REFUSAL_LINES_PER_SECOND} a second;
     * a summary line counts those left out), so that a flood of refusals cannot flood the log.
     *
     * @param src the peer's address as the connection saw it
     * @param dst the address the peer dialled, or asked for
     */
    public void refused(String direction, ConnectionLabels labels, SocketAddress src, SocketAddress dst,
            FlowOutcome outcome) {
        requireNonNull(outcome, "outcome");
        new Flow(direction, requireNonNull(labels, "labels"), src, dst, null, false).refuse(outcome);
    }

    /**
     * One connection's metrics and access-log record. An outbound HBONE connection is opened with
     * its carrier {@link ConnectionLabels#NOT_CARRIED not chosen yet}: it is counted opened when
     * {@link #protocol} names the framing (so every counter of it carries the same
     * {@code request_protocol}), or when it closes without one.
     */
    public final class Flow {
        private final String direction;
        private final SocketAddress src;
        private final SocketAddress dst;
        private final String hbone;
        private final long startNanos = System.nanoTime();
        private final Instant start = Instant.now();
        /** Guarded by this; read by the relay's loops once the framing is chosen. */
        private volatile ConnectionLabels labels;
        private volatile Tags tags;
        private volatile Counter sent;
        private volatile Counter received;
        /** Bytes client→server (received by the destination) and server→client (sent by it). */
        private final AtomicLong toServer = new AtomicLong();
        private final AtomicLong toClient = new AtomicLong();
        /** Guarded by this. */
        private boolean counted;
        private boolean closed;

        private Flow(String direction, ConnectionLabels labels, SocketAddress src, SocketAddress dst, String hbone,
                boolean announce) {
            this.direction = direction;
            this.src = src;
            this.dst = dst;
            this.hbone = hbone;
            label(labels);
            if (!labels.requestProtocol().equals(ConnectionLabels.NOT_CARRIED)) {
                countOpened();
            }
            if (announce && ACCESS.isInfoEnabled()) {
                ACCESS.info("connection opened {}", fields());
            }
        }

        private void label(ConnectionLabels l) {
            this.labels = l;
            this.tags = l.tags();
            this.sent = Counter.builder("istio_tcp_sent_bytes").tags(tags).register(registry);
            this.received = Counter.builder("istio_tcp_received_bytes").tags(tags).register(registry);
        }

        private void countOpened() {
            counted = true;
            Counter.builder("istio_tcp_connections_opened").tags(tags).register(registry).increment();
        }

        /**
         * The HBONE framing ({@link ConnectionLabels#H2}, {@link ConnectionLabels#H3}) chosen after
         * the flow opened, on the outbound side, before any byte is relayed: it labels the metrics,
         * the access log and the flow record.
         */
        public synchronized void protocol(String hboneProtocol) {
            requireNonNull(hboneProtocol, "hboneProtocol");
            if (closed || counted) {
                return;
            }
            label(labels.withProtocol(hboneProtocol));
            countOpened();
        }

        public void toServer(long n) {
            toServer.addAndGet(n);
            received.increment(n);
        }

        public void toClient(long n) {
            toClient.addAndGet(n);
            sent.increment(n);
        }

        /**
         * Counts the connection closed (with the outcome's {@code response_flags}), writes the
         * "complete" line (with the outcome's {@code error=} text) and appends its flow record (with
         * the outcome's verdict and reason); later calls do nothing.
         */
        public synchronized void close(FlowOutcome outcome) {
            finish(outcome, true);
        }

        /** As {@link #close}, the line written only when the refusal lines' budget allows. */
        private synchronized void refuse(FlowOutcome outcome) {
            long suppressed = refusalLines.acquire();
            if (suppressed > 0) {
                ACCESS.warn("{} more refused connections not logged (over {} lines/s; each is in the flow log)",
                        suppressed, REFUSAL_LINES_PER_SECOND);
            }
            finish(outcome, suppressed >= 0);
        }

        private void finish(FlowOutcome outcome, boolean log) {
            requireNonNull(outcome, "outcome");
            if (closed) {
                return;
            }
            closed = true;
            if (!counted) {
                countOpened();
            }
            Counter.builder("istio_tcp_connections_closed").tags(tags.and("response_flags", outcome.responseFlags()))
                    .register(registry).increment();
            long ms = Duration.ofNanos(System.nanoTime() - startNanos).toMillis();
            if (log && outcome.error().isEmpty()) {
                ACCESS.info("connection complete {} bytes_sent={} bytes_recv={} duration={}ms", fields(),
                        toClient.get(), toServer.get(), ms);
            } else if (log) {
                ACCESS.warn("connection complete {} bytes_sent={} bytes_recv={} duration={}ms error=\"{}\"",
                        fields(), toClient.get(), toServer.get(), ms, outcome.error().get());
            }
            flows.add(new FlowRecord(0, start.toString(), labels.reporter(), addr(src),
                    labels.source().map(w -> w.getName()).orElse(""),
                    labels.source().map(w -> w.getNamespace()).orElse(""), id(labels.sourceIdentity()), addr(dst),
                    labels.destination().map(w -> w.getName()).orElse(""),
                    labels.destination().map(w -> w.getNamespace()).orElse(""), labels.destinationService(),
                    id(labels.destinationIdentity()), labels.mutualTls(), outcome.verdict(), outcome.reason(),
                    toServer.get(), toClient.get(), ms, labels.requestProtocol()));
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
                    + labels.destinationIdentity().map(id -> "\"" + id + "\"").orElse("-")
                    + (ConnectionLabels.H3.equals(labels.requestProtocol()) ? " protocol=h3" : "");
        }

        private static String id(Optional<SpiffeId> id) {
            return id.map(SpiffeId::toString).orElse("");
        }

        private static String addr(SocketAddress a) {
            if (a instanceof java.net.InetSocketAddress i) {
                return IpText.hostPort(i);
            }
            return String.valueOf(a);
        }
    }
}
