package dev.wisp.node;

import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Both sides of a hitless upgrade ({@code wisp node --takeover}). The new agent's ({@link #takeOver}):
 * the data listeners of both agents are bound with {@code SO_REUSEPORT} (see {@code Transport.listen}),
 * so the new one binds them beside the running one and both accept for a moment; then
 * {@link #askToHandOver} tells the running agent, on its admin port (loopback only), to stop accepting
 * and drain, and the admin ports it gives up are bound again by the new agent ({@link #bindWhenFree}).
 * Before that, {@link #migrateQueuedConnections} has the kernel move the connections queued on the old
 * agent's closing listeners to the new one's rather than reset them. The running agent's:
 * {@link HandOver}.
 */
final class Takeover {
    private static final Logger LOG = LoggerFactory.getLogger(Takeover.class);
    /** The sysctl of the listener's network namespace that moves queued connections (Linux 5.14). */
    static final Path MIGRATE_REQ = Path.of("/proc/sys/net/ipv4/tcp_migrate_req");
    /** How long the running agent's admin ports may take to become free once it hands over. */
    static final Duration ADMIN_RELEASE = Duration.ofSeconds(15);
    /** The admin endpoint a running agent hands over on. */
    static final String HANDOVER_PATH = "/drain?handover=1";

    private Takeover() {}

    /** Something that starts once the old agent's ports are free (the admin listeners). */
    @FunctionalInterface
    interface Start {
        void start() throws IOException;
    }

    /**
     * The new agent's hand-over sequence, once every listener of its own is bound: queued connections
     * set to move, the running agent on {@code adminPort} asked to hand over, then {@code admin} started
     * as soon as that agent gives its ports up; {@code afterwards} (nullable) runs last (the HTTP/3
     * socket, which the old agent keeps until its drain ends, bound later).
     */
    static void takeOver(int adminPort, Start admin, Runnable afterwards) throws IOException {
        migrateQueuedConnections();
        askToHandOver(adminPort);
        bindWhenFree("admin", () -> {
            admin.start();
            return null;
        });
        if (afterwards != null) {
            afterwards.run();
        }
    }

    /**
     * The running agent's side, asked on its admin port: once, while serving, runs the agent's drain
     * and close from a thread of its own (the admin request is answered meanwhile), then completes
     * {@link #done}. Thread-safe; {@link #asked} is read by the drain and close it runs (capture's
     * pinned settings and the admin ports are then the new agent's).
     */
    static final class HandOver {
        private final AtomicBoolean asked = new AtomicBoolean();
        /** Completed once the drain and close are done: the launcher then exits. */
        private final CompletableFuture<Void> done = new CompletableFuture<>();

        /**
         * @throws IllegalStateException when the agent is not {@code serving}, or handing over already
         */
        void start(boolean serving, Runnable drainAndClose) {
            if (!serving || !asked.compareAndSet(false, true)) {
                throw new IllegalStateException("this agent is not serving (starting, draining or stopped)");
            }
            Thread.ofPlatform().name("wisp-handover").start(() -> {
                try {
                    drainAndClose.run();
                } finally {
                    done.complete(null);
                }
            });
        }

        /** Whether a new agent asked this one to hand over. */
        boolean asked() {
            return asked.get();
        }

        CompletionStage<Void> done() {
            return done;
        }
    }

    /**
     * Sets {@code net.ipv4.tcp_migrate_req=1} in the calling thread's network namespace: a closing
     * {@code SO_REUSEPORT} listener's accept queue (and its handshakes in progress) then moves to
     * another listener of its group instead of being reset. A failure is logged: queued connections
     * would then be reset at the hand-over, which the log says.
     */
    static void migrateQueuedConnections() {
        try {
            if (!"1".equals(Files.readString(MIGRATE_REQ, StandardCharsets.US_ASCII).strip())) {
                Files.writeString(MIGRATE_REQ, "1\n", StandardCharsets.US_ASCII);
                LOG.info("set net.ipv4.tcp_migrate_req=1: connections queued on the old agent's listeners move "
                        + "to this agent's");
            }
        } catch (IOException | RuntimeException e) {
            LOG.warn("cannot set net.ipv4.tcp_migrate_req=1 ({}): connections still queued on the old agent's "
                    + "listeners when it closes them are reset", e.toString());
        }
    }

    /**
     * Fails when something listens on {@code loopback:port} already (the node's agent, as a rule): a
     * second agent would otherwise bind its data listeners beside it ({@code SO_REUSEPORT}) and share
     * its connections unasked.
     */
    static void refuseWhenAgentRuns(int adminPort) throws IOException {
        if (adminPort == 0) {
            return;
        }
        try (ServerSocket probe = new ServerSocket()) {
            probe.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), adminPort));
        } catch (BindException e) {
            throw new IOException("the admin port " + adminPort + " is in use: is an agent already running on this "
                    + "node? 'wisp node --takeover' replaces it without dropping connections", e);
        }
    }

    /**
     * Asks the agent whose admin API is on {@code loopback:adminPort} to hand over: it answers 202
     * and then stops accepting, gives up its admin ports and drains.
     *
     * @throws IOException when no agent answers there, or it refuses (already draining)
     */
    static void askToHandOver(int adminPort) throws IOException {
        URI uri = URI.create("http://" + InetAddress.getLoopbackAddress().getHostAddress() + ":" + adminPort
                + HANDOVER_PATH);
        HttpResponse<String> r;
        try (HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build()) {
            r = http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10))
                    .POST(HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.ofString());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted asking the running agent to hand over", e);
        } catch (java.net.ConnectException | java.net.http.HttpTimeoutException e) {
            throw new IOException("no running agent answers on " + uri + " (" + e + "): nothing to take over; start "
                    + "without --takeover", e);
        } catch (IOException e) {
            // It took the request and closed its admin listener, the answer with it: it is handing over
            // (if not, its admin ports stay taken and bindWhenFree says so).
            LOG.info("the running agent closed its admin listener as it answered ({}): taking its ports", e.toString());
            return;
        }
        if (r.statusCode() != 202) {
            throw new IOException("the running agent refused to hand over (" + uri + "): " + r.statusCode() + " "
                    + r.body().strip());
        }
        LOG.info("the running agent hands over: {}", r.body().strip());
    }

    /** Something that binds a listener, failing while its port is still held. */
    @FunctionalInterface
    interface Binding<T> {
        T bind() throws IOException;
    }

    /**
     * Calls {@code binding} until it succeeds, while the old agent gives its ports up, for at most
     * {@link #ADMIN_RELEASE}.
     */
    static <T> T bindWhenFree(String what, Binding<T> binding) throws IOException {
        long deadline = System.nanoTime() + ADMIN_RELEASE.toNanos();
        for (;;) {
            try {
                return binding.bind();
            } catch (IOException | RuntimeException e) {
                if (System.nanoTime() - deadline > 0) {
                    throw new IOException("the running agent did not give up its " + what + " ports within "
                            + ADMIN_RELEASE + ": " + e.getMessage(), e);
                }
                LOG.debug("{} ports still held by the old agent: {}", what, e.toString());
            }
            try {
                Thread.sleep(50); // polling a port the old agent releases; no event tells us
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted waiting for the " + what + " ports", e);
            }
        }
    }
}
