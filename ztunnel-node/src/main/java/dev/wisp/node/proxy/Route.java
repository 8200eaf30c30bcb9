package dev.wisp.node.proxy;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Port;
import dev.wisp.api.workload.v1.PortList;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.TunnelProtocol;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.api.workload.v1.WorkloadStatus;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.Snapshot;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.ToIntFunction;

/**
 * Where an outbound connection goes: a pure function of the state snapshot (and a round-robin
 * counter per service). A service VIP resolves to one of its healthy endpoints; a mesh workload is
 * reached over HBONE through its node's agent (or its waypoint); anything else goes as plain TCP.
 *
 * @param hbone whether to tunnel (otherwise plain TCP to {@code connectTo})
 * @param connectTo where the TCP/TLS connection goes: the node agent, the waypoint, or the destination
 * @param target the destination as the CONNECT {@code :authority} names it (workload ip:port, or the
 *     VIP:port for a waypoint)
 * @param expectedIdentities server SVIDs the client accepts
 * @param destination the destination workload, when known
 * @param service the destination service's hostname, or empty
 * @param viaWaypoint whether {@code connectTo} is the destination's waypoint (then the only expected
 *     identity is the waypoint's)
 */
record Route(boolean hbone, InetSocketAddress connectTo, InetSocketAddress target, List<SpiffeId> expectedIdentities,
        Optional<Workload> destination, String service, boolean viaWaypoint) {

    /**
     * The identity the tunnel's peer proves, as the flow records it: the waypoint's when the route goes
     * through one, else the destination workload's; empty for plain TCP.
     */
    Optional<SpiffeId> peerIdentity() {
        if (!hbone) {
            return Optional.empty();
        }
        return viaWaypoint ? Optional.of(expectedIdentities.getFirst()) : destination.map(IdentityProvider::workloadId);
    }

    /** Why no route exists, phrased for the operator. */
    static final class NoRouteException extends Exception {
        private static final long serialVersionUID = 1L;

        NoRouteException(String message) {
            super(message);
        }

        /** The connection's outcome. */
        Outcome.NoRoute outcome() {
            return new Outcome.NoRoute(getMessage());
        }
    }

    /**
     * @param roundRobin for a service key, the next counter value (used modulo the endpoint count)
     * @param defaultHbonePort for nodes whose resource names no HBONE port
     */
    static Route of(Snapshot s, InetSocketAddress dst, ToIntFunction<String> roundRobin, int defaultHbonePort)
            throws NoRouteException {
        Optional<Service> svc = s.serviceByAddress(dst.getAddress());
        if (svc.isPresent()) {
            return viaService(s, svc.get(), dst, roundRobin, defaultHbonePort);
        }
        Optional<Workload> w = s.workloadByAddress(dst.getAddress());
        if (w.isPresent() && w.get().getTunnelProtocol() == TunnelProtocol.TUNNEL_HBONE) {
            return toWorkload(s, w.get(), dst, "", List.of(), defaultHbonePort);
        }
        return new Route(false, dst, dst, List.of(), w, "", false);
    }

    private static Route viaService(Snapshot s, Service svc, InetSocketAddress dst, ToIntFunction<String> rr,
            int defaultHbonePort) throws NoRouteException {
        String key = svc.getNamespace() + "/" + svc.getHostname();
        Port port = svc.getPortsList().stream().filter(p -> p.getServicePort() == dst.getPort()).findFirst()
                .orElseThrow(() -> new NoRouteException("service " + svc.getHostname() + " has no port "
                        + dst.getPort()));
        if (svc.hasWaypoint()) {
            return toWaypoint(svc.getWaypoint(), dst, Optional.empty(), svc.getHostname(), defaultHbonePort);
        }
        List<Workload> healthy = new ArrayList<>();
        for (Workload w : s.endpoints(key)) {
            if (w.getStatus() == WorkloadStatus.HEALTHY && w.getAddressesCount() > 0) {
                healthy.add(w);
            }
        }
        if (healthy.isEmpty()) {
            throw new NoRouteException("service " + svc.getHostname() + " has no healthy endpoint");
        }
        Workload w = healthy.get(Math.floorMod(rr.applyAsInt(key), healthy.size()));
        int targetPort = targetPort(w.getServicesMap().get(key), port);
        InetSocketAddress target = new InetSocketAddress(sameFamily(w.getAddressesList(), dst.getAddress()),
                targetPort);
        if (w.getTunnelProtocol() != TunnelProtocol.TUNNEL_HBONE) {
            return new Route(false, target, target, List.of(), Optional.of(w), svc.getHostname(), false);
        }
        return toWorkload(s, w, target, svc.getHostname(), svc.getSubjectAltNamesList(), defaultHbonePort);
    }

    private static int targetPort(PortList workloadPorts, Port servicePort) {
        if (workloadPorts != null) {
            for (Port p : workloadPorts.getPortsList()) {
                if (p.getServicePort() == servicePort.getServicePort()) {
                    return p.getTargetPort() == 0 ? p.getServicePort() : p.getTargetPort();
                }
            }
        }
        return servicePort.getTargetPort() == 0 ? servicePort.getServicePort() : servicePort.getTargetPort();
    }

    private static Route toWorkload(Snapshot s, Workload w, InetSocketAddress target, String service,
            List<String> serviceSans, int defaultHbonePort) throws NoRouteException {
        if (w.hasWaypoint()) {
            return toWaypoint(w.getWaypoint(), target, Optional.of(w), service, defaultHbonePort);
        }
        Node node = s.node(w.getNode()).orElseThrow(() -> new NoRouteException("workload " + w.getUid()
                + " runs on node " + w.getNode() + ", which this agent does not know (no Node resource)"));
        if (node.getAddressesCount() == 0) {
            throw new NoRouteException("node " + node.getName() + " has no address for HBONE");
        }
        int port = node.getHbonePort() == 0 ? defaultHbonePort : node.getHbonePort();
        List<SpiffeId> expected = new ArrayList<>();
        serviceSans.forEach(san -> expected.add(SpiffeId.parse(san)));
        expected.add(IdentityProvider.workloadId(w));
        expected.add(IdentityProvider.nodeId(w.getTrustDomain(), w.getNode()));
        return new Route(true, new InetSocketAddress(sameFamily(node.getAddressesList(), target.getAddress()), port),
                target, expected, Optional.of(w), service, false);
    }

    private static Route toWaypoint(GatewayAddress wp, InetSocketAddress target, Optional<Workload> w,
            String service, int defaultHbonePort) {
        int port = wp.getHbonePort() == 0 ? defaultHbonePort : wp.getHbonePort();
        return new Route(true, new InetSocketAddress(address(wp.getAddress()), port), target,
                List.of(SpiffeId.parse(wp.getIdentity())), w, service, true);
    }

    /**
     * The first of {@code addresses} (not empty) of {@code like}'s family, else the first: a dual-stack
     * Service's IPv6 VIP reaches its endpoints' IPv6 addresses, and an IPv6 destination is tunnelled to
     * its node's IPv6 address, each where there is one.
     */
    static InetAddress sameFamily(List<ByteString> addresses, InetAddress like) {
        int size = like.getAddress().length;
        for (ByteString a : addresses) {
            if (a.size() == size) {
                return address(a);
            }
        }
        return address(addresses.getFirst());
    }

    static InetAddress address(ByteString b) {
        try {
            return InetAddress.getByAddress(b.toByteArray());
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("address of " + b.size() + " bytes", e);
        }
    }
}
