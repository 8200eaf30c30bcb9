package dev.wisp.wireguard;

import static java.util.Objects.requireNonNull;

import dev.wisp.wireguard.io.RunningDevice;
import java.io.IOException;

/** Entry point: builds and starts {@link WireGuardDevice}s. */
public final class WireGuard {
    /** The MTU wireguard-go gives its interfaces: 1500 minus IPv6, UDP and WireGuard overhead. */
    public static final int DEFAULT_MTU = 1420;

    private WireGuard() {}

    public static Builder builder(String interfaceName) {
        return new Builder(requireNonNull(interfaceName, "interfaceName"));
    }

    /** Options of a device; everything but the name has a default. */
    public static final class Builder {
        private final String name;
        private Timers timers = Timers.DEFAULTS;
        private boolean tun = true;
        private int mtu = DEFAULT_MTU;
        private UnknownPeerHandler unknownPeers = UnknownPeerHandler.REJECT;
        private int underLoadThreshold = -1;

        private Builder(String name) {
            this.name = name;
        }

        /** Protocol timers; only tests pass anything but {@link Timers#DEFAULTS}. */
        public Builder timers(Timers timers) {
            this.timers = requireNonNull(timers, "timers");
            return this;
        }

        /** Without a TUN interface, decrypted packets are discarded: for tests of the UDP side only. */
        public Builder withoutTun() {
            this.tun = false;
            return this;
        }

        public Builder mtu(int mtu) {
            if (mtu < 576 || mtu > 65_000) {
                throw new IllegalArgumentException("MTU must be 576..65000, got " + mtu);
            }
            this.mtu = mtu;
            return this;
        }

        public Builder unknownPeerHandler(UnknownPeerHandler handler) {
            this.unknownPeers = requireNonNull(handler, "handler");
            return this;
        }

        /**
         * Tests only: the device counts as under load (answers initiations without a valid mac2
         * with a cookie reply, rate-limits handshakes per source) from {@code queuedHandshakes}
         * waiting handshake messages, 0 = always, instead of the protocol's 128.
         */
        public Builder underLoadThresholdForTests(int queuedHandshakes) {
            if (queuedHandshakes < 0) {
                throw new IllegalArgumentException("threshold must be >= 0");
            }
            this.underLoadThreshold = queuedHandshakes;
            return this;
        }

        /** Creates the interface and starts the device. */
        public WireGuardDevice start() throws IOException {
            RunningDevice d = RunningDevice.start(name, timers, tun, mtu);
            d.setUnknownPeerHandler(unknownPeers);
            if (underLoadThreshold >= 0) {
                d.setUnderLoadThresholdForTests(underLoadThreshold);
            }
            return d;
        }
    }
}
