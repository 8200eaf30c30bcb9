package dev.wisp.wireguard;

import static java.util.Objects.requireNonNull;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;

/**
 * What to set on one peer, with {@code wg set}'s semantics: null fields are left as they are;
 * {@code replaceAllowedIps} drops the old prefixes before adding {@code allowedIps}.
 */
public record PeerConfig(Key publicKey, Key presharedKey, InetSocketAddress endpoint,
        Duration persistentKeepalive, boolean replaceAllowedIps, List<Prefix> allowedIps) {
    public PeerConfig {
        requireNonNull(publicKey, "publicKey");
        allowedIps = List.copyOf(requireNonNull(allowedIps, "allowedIps"));
    }

    /** A peer with only its key and allowed prefixes (replacing any previous ones). */
    public static PeerConfig of(Key publicKey, InetSocketAddress endpoint, List<Prefix> allowedIps) {
        return new PeerConfig(publicKey, null, endpoint, null, true, allowedIps);
    }
}
