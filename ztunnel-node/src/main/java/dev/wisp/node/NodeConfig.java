package dev.wisp.node;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.admin.AdminServer;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.proxy.OriginalDestinationResolver;
import java.net.InetAddress;
import java.time.Duration;
import java.util.Optional;

/**
 * How to run a node agent. {@link #builder} gives ztunnel's defaults: ports 15001 outbound, 15006
 * inbound plaintext, 15008 HBONE, 15080 SOCKS5 (127.0.0.1), 15000 admin (127.0.0.1), 15020 metrics,
 * 15021 readiness; port 0 picks a free port (tests).
 */
public record NodeConfig(String nodeName, IdentityProvider identities, InetAddress bindAddress, int outboundPort,
        int inboundPlaintextPort, int hbonePort, int socks5Port, int adminPort, int metricsPort, int readinessPort,
        OriginalDestinationResolver resolver, Optional<String> socks5Workload, Duration drainTimeout,
        Duration idleTimeout, int streamsPerConnection, int workerThreads, Duration connectTimeout,
        AdminServer.LogLevels logLevels) {

    public NodeConfig {
        requireNonNull(nodeName, "nodeName");
        requireNonNull(identities, "identities");
        requireNonNull(bindAddress, "bindAddress");
        requireNonNull(resolver, "resolver");
        requireNonNull(socks5Workload, "socks5Workload");
        requireNonNull(drainTimeout, "drainTimeout");
        requireNonNull(idleTimeout, "idleTimeout");
        requireNonNull(connectTimeout, "connectTimeout");
        requireNonNull(logLevels, "logLevels");
    }

    public static Builder builder(String nodeName, IdentityProvider identities) {
        return new Builder(nodeName, identities);
    }

    /** Builder with ztunnel's defaults. */
    public static final class Builder {
        private final String nodeName;
        private final IdentityProvider identities;
        private InetAddress bindAddress = InetAddress.ofLiteral("0.0.0.0");
        private int outbound = 15001;
        private int inbound = 15006;
        private int hbone = 15008;
        private int socks5 = 15080;
        private int admin = 15000;
        private int metrics = 15020;
        private int readiness = 15021;
        private OriginalDestinationResolver resolver = OriginalDestinationResolver.none();
        private Optional<String> socks5Workload = Optional.empty();
        private Duration drain = Duration.ofSeconds(30);
        private Duration idle = Duration.ofMinutes(5);
        private int streams = 100;
        private int workers = 0;
        private Duration connectTimeout = Duration.ofSeconds(10);
        private AdminServer.LogLevels logLevels = (logger, level) -> {
            throw new IllegalArgumentException("changing log levels is not supported by this launcher");
        };

        private Builder(String nodeName, IdentityProvider identities) {
            this.nodeName = requireNonNull(nodeName, "nodeName");
            this.identities = requireNonNull(identities, "identities");
        }

        /** Address of the HBONE, outbound, inbound and metrics/readiness listeners. */
        public Builder bindAddress(InetAddress a) {
            this.bindAddress = requireNonNull(a, "bindAddress");
            return this;
        }

        public Builder ports(int outbound, int inbound, int hbone, int socks5, int admin, int metrics,
                int readiness) {
            this.outbound = outbound;
            this.inbound = inbound;
            this.hbone = hbone;
            this.socks5 = socks5;
            this.admin = admin;
            this.metrics = metrics;
            this.readiness = readiness;
            return this;
        }

        public Builder resolver(OriginalDestinationResolver r) {
            this.resolver = requireNonNull(r, "resolver");
            return this;
        }

        /** The workload (uid) that a SOCKS5 client on loopback stands for. */
        public Builder socks5Workload(String uid) {
            this.socks5Workload = Optional.of(uid);
            return this;
        }

        public Builder drainTimeout(Duration d) {
            this.drain = requireNonNull(d, "drainTimeout");
            return this;
        }

        public Builder idleTimeout(Duration d) {
            this.idle = requireNonNull(d, "idleTimeout");
            return this;
        }

        public Builder streamsPerConnection(int n) {
            this.streams = n;
            return this;
        }

        public Builder workerThreads(int n) {
            this.workers = n;
            return this;
        }

        public Builder logLevels(AdminServer.LogLevels l) {
            this.logLevels = requireNonNull(l, "logLevels");
            return this;
        }

        public NodeConfig build() {
            return new NodeConfig(nodeName, identities, bindAddress, outbound, inbound, hbone, socks5, admin, metrics,
                    readiness, resolver, socks5Workload, drain, idle, streams, workers, connectTimeout, logLevels);
        }
    }
}
