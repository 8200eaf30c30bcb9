package dev.wisp.controlplane.model;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;

/**
 * MeshConfig's {@code spec.hbone.protocol}: the framing node agents dial each other with, unless an
 * agent's own {@code wisp node --hbone} flag says otherwise (the flag wins).
 */
public enum HboneProtocol {
    /** HTTP/2 CONNECT over TLS over TCP (the default). */
    H2,
    /** HTTP/3 CONNECT over QUIC only. */
    H3,
    /** HTTP/3, falling back to HTTP/2 when the peer does not answer on QUIC in time. */
    AUTO;

    /** How a MeshConfig spells it: {@code h2}, {@code h3}, {@code auto}. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** The protocol spelled {@code label}, if it is one. */
    public static Optional<HboneProtocol> of(String label) {
        return Arrays.stream(values()).filter(p -> p.label().equals(label)).findFirst();
    }
}
