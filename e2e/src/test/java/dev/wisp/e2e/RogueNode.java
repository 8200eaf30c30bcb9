package dev.wisp.e2e;

import dev.wisp.api.workload.v1.WireGuardRegistration;
import dev.wisp.local.LocalMesh;
import dev.wisp.node.NodeSettings;
import dev.wisp.node.controlplane.ControlPlaneClient;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.testing.Netns;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.noise.CookieGenerator;
import dev.wisp.wireguard.noise.Handshake;
import dev.wisp.wireguard.noise.Identity;
import dev.wisp.wireguard.noise.Tai64n;
import java.io.IOException;
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.LongAdder;

/**
 * What a compromised node of a {@link LocalMesh} can try against another node's traffic: publish a
 * WireGuard registration of its choice with its own valid credential, and send WireGuard handshake
 * initiations with a key of its choice from its own address.
 */
final class RogueNode {
    private RogueNode() {}

    /** A registration as an agent sends it. */
    static WireGuardRegistration claim(Key publicKey, String endpoint, String... podCidrs) {
        return WireGuardRegistration.newBuilder().setPublicKey(publicKey.toBase64()).setEndpoint(endpoint)
                .addAllPodCidrs(List.of(podCidrs)).build();
    }

    /**
     * Opens a workload-discovery stream to {@code mesh}'s control plane with {@code node}'s own
     * credential from {@code node}'s own address, publishing {@code claim}; what the control plane sends back fills the returned
     * index. The caller closes the client.
     */
    static ControlPlaneClient connect(LocalMesh mesh, String node, WireGuardRegistration claim, WorkloadIndex seen)
            throws IOException {
        return ControlPlaneClient.connect(new NodeSettings.Source.ControlPlane(mesh.cluster().underlayAddress(),
                LocalMesh.XDS_PORT, mesh.stateDir().resolve("node-credentials").resolve(node + ".token"), mesh
                        .stateDir().resolve("ca").resolve("bundle.pem")),
                node, "cluster.local", seen, () -> Optional.of(claim), Optional.of(NodeSockets.in(mesh.node(node)
                        .netns())));
    }

    /**
     * Sends, from {@code netns}, a valid handshake initiation (mac1 included) for the device whose
     * public key is {@code to}, made with a fresh key pair no node registered; returns that key.
     */
    static Key sendInitiation(String netns, Key to, InetSocketAddress endpoint) throws Exception {
        Key rogue = Key.generatePrivate();
        byte[] eph = Key.generatePrivate().bytes();
        Handshake h = new Handshake(new Identity(rogue.bytes()), to.bytes(), new byte[32], new LongAdder());
        byte[] msg = h.createInitiation(ThreadLocalRandom.current().nextInt(), Tai64n.of(Instant.now()), eph);
        new CookieGenerator(to.bytes()).stamp(msg, System.nanoTime());
        Netns.call(netns, () -> {
            try (DatagramSocket s = new DatagramSocket()) {
                s.send(new DatagramPacket(msg, msg.length, endpoint));
            }
            return null;
        }, Duration.ofSeconds(10));
        return rogue.publicKey();
    }
}
