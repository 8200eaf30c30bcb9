package dev.wisp.controlplane.flows;

import dev.wisp.base.IpText;
import dev.wisp.spiffe.MeshIdentities;
import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.wisp.base.flows.OneLinePerCall;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.X509Svid;
import dev.wisp.spiffe.tls.SpiffeTls;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.handler.ssl.JdkSslContext;
import io.netty.handler.ssl.SslProvider;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The flow relay, as Hubble Relay is to Cilium's agents: merges the node agents' flow records into
 * one stream, pulling each agent's {@code /flows?since=N} (mutual TLS on the agent's flows port,
 * the control plane's own SVID as client certificate, the node agent's identity expected) once a
 * second — only while someone reads the stream, and never over the workload xDS streams, so flow
 * load cannot delay configuration.
 *
 * <p>Two views of the merged records: {@link View#RECORDS}, every agent's record (both of a call over
 * HBONE), and {@link View#CALLS}, one line per call as {@code wisp flows} prints it ({@link
 * OneLinePerCall}: the server agent's record, the client's only when no server agent recorded the
 * call, which it waits up to {@link #PAIRING_GRACE} for), which the live mesh page counts.
 *
 * <p>Threads: one virtual thread pulls while there is demand (a follower subscribed, or a one-off
 * read within the last {@link #LINGER}) and ends by itself after; readers run on their request's
 * thread and wait on the {@link FlowBuffer}. Demand and the pulling thread are guarded by {@code
 * this}; the per-node state belongs to the pulling thread. {@link #close} stops the puller.
 */
public final class FlowRelay implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(FlowRelay.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** How long the relay keeps pulling after a one-off read, so a page polling each second is served fresh. */
    static final Duration LINGER = Duration.ofSeconds(5);
    static final Duration INTERVAL = Duration.ofSeconds(1);
    /** Kept merged records: ten agents' worth of their own logs. */
    static final int CAPACITY = 10_000;
    /** A follower with nothing new gets a blank line this often, which tells a gone client from a quiet mesh. */
    private static final long KEEPALIVE_MILLIS = 15_000;

    /** Where each node's agent serves its flows, and what the relay presents and trusts. */
    public record Sources(Supplier<List<NodeDef>> nodes, int agentPort, Supplier<X509Svid> svid,
            Supplier<TrustBundle> bundle) {
        public Sources {
            requireNonNull(nodes, "nodes");
            requireNonNull(svid, "svid");
            requireNonNull(bundle, "bundle");
            if (agentPort < 1 || agentPort > 65535) {
                throw new IllegalArgumentException("agent flows port " + agentPort + " is outside 1-65535");
            }
        }
    }

    /** How long a client record waits in the calls view for its call's server record: three rounds. */
    static final Duration PAIRING_GRACE = Duration.ofSeconds(3);

    /**
     * The relay's clock: a round every {@code interval}, pulling until {@code linger} after the last
     * demand, a client record waiting {@code grace} for its server record. The product runs {@link
     * #DEFAULT}; the tests run the same logic on a shorter clock.
     */
    record Pacing(Duration interval, Duration linger, Duration grace) {
        static final Pacing DEFAULT = new Pacing(INTERVAL, LINGER, PAIRING_GRACE);

        Pacing {
            requireNonNull(interval, "interval");
            requireNonNull(linger, "linger");
            requireNonNull(grace, "grace");
        }
    }

    /** Which records a reader gets. */
    public enum View {
        /** Every agent's record: both of a call over HBONE, each with its {@code node} and {@code reporter}. */
        RECORDS,
        /** One record per call: the server agent's, the client agent's only when no server agent recorded it. */
        CALLS
    }

    private final Sources sources;
    private final FlowBuffer buffer = new FlowBuffer(CAPACITY);
    private final FlowBuffer calls = new FlowBuffer(CAPACITY);
    /** Guarded by {@link #agents} (the puller's state): pairs the two records of a call for {@link #calls}. */
    private final OneLinePerCall<ObjectNode> pairing;
    private final Pacing pacing;
    private final Counter pulls;
    private final Counter pullErrors;
    // Guarded by `this`.
    private int followers;
    private long lastDemand;
    private long rounds;
    private Thread puller;
    private boolean closed;
    /** Guarded by itself (one puller at a time): per node, its client and the last agent record read. */
    private final Map<String, Agent> agents = new HashMap<>();

    /** One node's agent as the puller knows it; its client is closed whenever the puller ends. */
    private static final class Agent {
        final InetSocketAddress address;
        HttpClient http;
        long last;
        String failure;

        Agent(InetSocketAddress address) {
            this.address = address;
        }

        void closeClient() {
            if (http != null) {
                http.close();
                http = null;
            }
        }
    }

    public FlowRelay(Sources sources, MeterRegistry registry) {
        this(sources, registry, Pacing.DEFAULT);
    }

    FlowRelay(Sources sources, MeterRegistry registry, Pacing pacing) {
        this.sources = requireNonNull(sources, "sources");
        this.pacing = requireNonNull(pacing, "pacing");
        this.pairing = new OneLinePerCall<>(pacing.grace(), FlowRelay::callFields, Comparator.comparing((
                ObjectNode f) -> f.path("start").asText()).thenComparing(f -> f.path("node").asText()));
        this.pulls = Counter.builder("wisp_flow_relay_pulls").description("reads of a node agent's /flows by the "
                + "flow relay").register(registry);
        this.pullErrors = Counter.builder("wisp_flow_relay_pull_errors").description("reads of a node agent's "
                + "/flows that failed").register(registry);
        registry.gauge("wisp_flow_relay_followers", this, r -> r.followers());
    }

    /** Whether the relay is pulling from the agents now. */
    synchronized boolean pulling() {
        return puller != null;
    }

    synchronized int followers() {
        return followers;
    }

    /**
     * The merged records after relay number {@code since}, after one fresh pull of every agent (or
     * what is kept, when that takes over {@code wait}).
     */
    public List<ObjectNode> read(View view, long since, Duration wait) throws InterruptedException {
        long round;
        synchronized (this) {
            round = rounds;
            demand();
            long deadline = System.nanoTime() + wait.toNanos();
            // The round in progress may have asked before this reader came: wait for the one after.
            while (rounds < round + 2 && !closed && System.nanoTime() < deadline) {
                wait(Math.max(1, (deadline - System.nanoTime()) / 1_000_000));
            }
        }
        return of(view).since(since).stream().map(FlowBuffer.Entry::flow).toList();
    }

    /**
     * Writes the records after {@code since} as JSON lines, then each new one as it is merged, until
     * the client goes away (a write fails) or the thread is interrupted (the listener closes).
     */
    public void follow(View view, long since, OutputStream out) throws IOException, InterruptedException {
        synchronized (this) {
            followers++;
            demand();
        }
        try {
            long last = since;
            while (!Thread.currentThread().isInterrupted()) {
                List<FlowBuffer.Entry> next = of(view).await(last, KEEPALIVE_MILLIS);
                StringBuilder lines = new StringBuilder();
                for (FlowBuffer.Entry e : next) {
                    lines.append(JSON.writeValueAsString(e.flow())).append('\n');
                    last = e.seq();
                }
                out.write((next.isEmpty() ? "\n" : lines.toString()).getBytes(StandardCharsets.UTF_8));
                out.flush();
            }
        } finally {
            synchronized (this) {
                followers--;
            }
        }
    }

    private FlowBuffer of(View view) {
        return requireNonNull(view, "view") == View.CALLS ? calls : buffer;
    }

    /** Records demand and starts the puller if it is not running. */
    private void demand() {
        assert Thread.holdsLock(this);
        lastDemand = System.nanoTime();
        if (puller == null && !closed) {
            puller = Thread.ofVirtual().name("wisp-flow-relay").start(this::pullWhileWanted);
        }
    }

    private void pullWhileWanted() {
        try {
            while (true) {
                synchronized (this) {
                    if (closed || (followers == 0 && System.nanoTime() - lastDemand > pacing.linger().toNanos())) {
                        // Under the same lock as demand(): a reader either sees this puller or starts the next.
                        puller = null;
                        notifyAll();
                        break;
                    }
                }
                synchronized (agents) {
                    pullRound();
                }
                synchronized (this) {
                    rounds++;
                    notifyAll();
                }
                Thread.sleep(pacing.interval());
            }
        } catch (InterruptedException e) {
            synchronized (this) {
                puller = null;
                notifyAll();
            }
        }
        // The numbers read stay (the next puller goes on from them); the connections do not. Nothing more
        // is read for now: the client records still waiting for their server record are calls of their own.
        synchronized (agents) {
            agents.values().forEach(Agent::closeClient);
            calls.append(copies(pairing.offer(List.of(), System.nanoTime(), true)));
        }
    }

    /** Reads every node's new records and merges them by start time. */
    private void pullRound() {
        List<ObjectNode> merged = new ArrayList<>();
        Map<String, InetSocketAddress> wanted = new LinkedHashMap<>();
        for (NodeDef n : sources.nodes().get()) {
            if (!n.addresses().isEmpty()) {
                wanted.put(n.ref().name(), new InetSocketAddress(n.addresses().getFirst(), sources.agentPort()));
            }
        }
        agents.entrySet().removeIf(e -> {
            boolean gone = !wanted.containsKey(e.getKey());
            if (gone) {
                e.getValue().closeClient();
            }
            return gone;
        });
        for (var e : wanted.entrySet()) {
            try {
                merged.addAll(pull(e.getKey(), e.getValue()));
            } catch (IOException | RuntimeException ex) {
                pullErrors.increment();
                Agent a = agents.get(e.getKey());
                String why = ex.getMessage() == null ? ex.toString() : ex.getMessage();
                if (a != null && !why.equals(a.failure)) {
                    a.failure = why;
                    LOG.warn("flow relay: cannot read the flows of node {} at {}: {} (is its agent running, and "
                            + "is port {} open from the control plane?)", e.getKey(), e.getValue(), why,
                            sources.agentPort());
                }
            } catch (InterruptedException ex) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        merged.sort(Comparator.comparing((ObjectNode f) -> f.path("start").asText()).thenComparing(f -> f.path(
                "node").asText()));
        List<ObjectNode> perCall = copies(pairing.offer(merged, System.nanoTime(), false));
        buffer.append(merged);
        calls.append(perCall);
    }

    /** Each view numbers its own copy of a record ({@code seq}). */
    private static List<ObjectNode> copies(List<ObjectNode> flows) {
        return flows.stream().map(ObjectNode::deepCopy).toList();
    }

    /** What pairing reads of a relayed record (the agent's fields, snake_case). */
    static OneLinePerCall.Fields callFields(ObjectNode f) {
        return new OneLinePerCall.Fields("source".equals(f.path("reporter").asText()), f.path("mtls").asBoolean(), f
                .path("source_address").asText(), f.path("destination_address").asText(),
                f.path("start").asText(
                        null));
    }

    private List<ObjectNode> pull(String node, InetSocketAddress address) throws IOException,
            InterruptedException {
        Agent a = agents.get(node);
        if (a == null || !a.address.equals(address)) {
            if (a != null) {
                a.closeClient();
            }
            a = new Agent(address);
            agents.put(node, a);
        }
        if (a.http == null) {
            a.http = client(node);
        }
        URI uri = URI.create("https://" + IpText.hostPort(address) + "/flows?since=" + a.last);
        pulls.increment();
        HttpResponse<String> r = a.http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(3)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != 200) {
            throw new IOException("answered " + r.statusCode() + ": " + r.body().strip());
        }
        JsonNode body = JSON.readTree(r.body());
        List<ObjectNode> out = new ArrayList<>();
        for (JsonNode c : body.path("connections")) {
            if (c instanceof ObjectNode o) {
                ObjectNode f = JSON.createObjectNode();
                f.put("node", node);
                f.put("node_seq", o.path("seq").asLong());
                o.remove("seq");
                f.setAll(o);
                out.add(f);
            }
        }
        long newest = body.path("last_seq").asLong(a.last);
        // An agent that restarted numbers from 1 again: start over with it.
        a.last = newest < a.last ? 0 : newest;
        a.failure = null;
        return out;
    }

    /** A client that presents the control plane's SVID and accepts only {@code node}'s agent identity. */
    private HttpClient client(String node) throws IOException {
        TrustBundle bundle = sources.bundle().get();
        if (bundle == null) {
            throw new IOException("no CA yet (no valid configuration)");
        }
        SpiffeId agent = MeshIdentities.nodeAgent(bundle.trustDomain(), node);
        try {
            JdkSslContext tls = (JdkSslContext) SpiffeTls.forClient(sources.svid(), sources.bundle(), Set.of(agent),
                    SslProvider.JDK);
            return HttpClient.newBuilder().sslContext(tls.context()).version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofSeconds(2)).build();
        } catch (SSLException e) {
            throw new IOException("cannot build the relay's TLS context: " + e.getMessage(), e);
        }
    }

    /** Stops pulling; a follower's next wait ends with its listener. */
    @Override
    public void close() {
        Thread t;
        synchronized (this) {
            closed = true;
            t = puller;
            notifyAll();
        }
        if (t != null) {
            t.interrupt();
        }
    }
}
