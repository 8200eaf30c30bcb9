package dev.wisp.controlplane.model;

import java.time.Duration;
import java.util.List;
import java.util.Optional;

/**
 * The mesh-wide settings ({@code wisp.dev/v1alpha1 MeshConfig}, at most one object).
 *
 * @param trustDomain SPIFFE trust domain of every workload identity
 * @param rootNamespace policies here without a selector apply mesh-wide (Istio's root namespace)
 * @param clusterDomain DNS suffix of service host names ({@code name.namespace.svc.<clusterDomain>})
 * @param defaultMtls mTLS mode when no PeerAuthentication decides
 * @param hboneOverWireGuard {@code spec.wireguard.hboneOverWireGuard}: whether HBONE between nodes also
 *            goes through the nodes' WireGuard devices (false by default: HBONE is already mutual TLS,
 *            and encrypting it twice costs CPU for no secrecy gained; see ARCHITECTURE.md)
 * @param wireguardPeerIdle {@code spec.wireguard.peerIdleTimeout}: how long a node keeps a
 *            just-in-time WireGuard peer that moves no bytes (180 s by default: past WireGuard's
 *            reject-after time its session is dead anyway, so removing it costs no more than the
 *            handshake the next packet needs)
 * @param wireguardKeyRotation {@code spec.wireguard.keyRotationPeriod}: how often each node replaces
 *            its WireGuard static key; {@link Duration#ZERO} (the default) = only on demand
 *            ({@code wisp wireguard rotate}). Off by default: every WireGuard session already uses
 *            fresh ephemeral keys (forward secrecy every two minutes); the static key only
 *            authenticates a node, and is kept 0600 on it, so rotating it limits how long a stolen
 *            key lets a thief pose as the node, which an operator decides (see ARCHITECTURE.md)
 * @param hboneProtocol {@code spec.hbone.protocol}: how agents dial each other ({@code h2} by default,
 *            until HTTP/3 has been measured on a quiet machine); an agent's {@code --hbone} flag wins
 * @param extensionProviders {@code spec.extensionProviders}: the external authorizers CUSTOM
 *            AuthorizationPolicies name ({@link ExtensionProvider}), by unique name
 */
public record MeshConfig(String trustDomain, String rootNamespace, String clusterDomain, MtlsMode defaultMtls,
        boolean hboneOverWireGuard, Duration wireguardPeerIdle, Duration wireguardKeyRotation,
        HboneProtocol hboneProtocol, List<ExtensionProvider> extensionProviders) {
    public static final String KIND = "MeshConfig";
    public static final Duration DEFAULT_PEER_IDLE = Duration.ofSeconds(180);
    public static final MeshConfig DEFAULT = new MeshConfig("cluster.local", "istio-system", "cluster.local",
            MtlsMode.PERMISSIVE, false, DEFAULT_PEER_IDLE, Duration.ZERO, HboneProtocol.H2, List.of());

    public MeshConfig {
        extensionProviders = List.copyOf(extensionProviders);
    }

    /** The extension provider named {@code name}; empty when none is. */
    public Optional<ExtensionProvider> extensionProvider(String name) {
        return extensionProviders.stream().filter(p -> p.name().equals(name)).findFirst();
    }
}
