package dev.wisp.wireguard;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * One peer as {@code wg show} reports it. {@code lastHandshake} is null before the first handshake;
 * {@code endpoint} null while unknown.
 */
public record PeerStatus(Key publicKey, boolean hasPresharedKey, InetSocketAddress endpoint, Instant lastHandshake,
        long txBytes, long rxBytes, Duration persistentKeepalive, List<Prefix> allowedIps) {}
