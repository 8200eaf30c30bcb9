package dev.wisp.controlplane.envoy;

import dev.wisp.controlplane.model.RouteParts.BackendRef;
import dev.wisp.controlplane.model.ServiceDef;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The names of the Envoy resources of one service port. The listener and its route configuration
 * share the name {@code <host>:<port>} ({@code reviews.shop.svc.cluster.local:9080}), which is what a
 * proxyless gRPC client asks for when it dials {@code xds:///<host>:<port>}; the cluster and its load
 * assignment are {@code outbound|<port>||<host>}, as Istio names them.
 */
public final class EnvoyNames {
    /**
     * The endpoint metadata namespace of the HBONE tunnel to an endpoint (fields {@code address},
     * {@code node}, {@code identity}), read by the waypoint.
     */
    public static final String TUNNEL_METADATA = "wisp.dev/hbone";

    private EnvoyNames() {}

    /** The listener's and route configuration's name. */
    public static String listener(ServiceDef s, int port, String clusterDomain) {
        return s.hostname(clusterDomain) + ":" + port;
    }

    /** The cluster's (and its load assignment's) name. */
    public static String cluster(String namespace, String name, int port, String clusterDomain) {
        return "outbound|" + port + "||" + name + "." + namespace + ".svc." + clusterDomain;
    }

    /**
     * A cluster name that no cluster has, for a backend that cannot take traffic: its share of the
     * requests is answered 500 (the route sets {@code cluster_not_found_response_code}).
     */
    static String invalid(BackendRef b) {
        return "invalid|" + b.kind() + "|" + b.display();
    }

    /**
     * The Host/authority values a client may use for the service port: the DNS name, its short
     * forms (within the namespace), and the cluster IPs, each with and without the port.
     */
    static List<String> domains(ServiceDef s, int port, String clusterDomain) {
        String name = s.ref().name();
        String ns = s.ref().namespace();
        List<String> hosts = new ArrayList<>(List.of(s.hostname(clusterDomain), name + "." + ns + ".svc",
                name + "." + ns, name));
        for (InetAddress ip : s.clusterIps()) {
            String a = ip.getHostAddress();
            hosts.add(ip instanceof Inet6Address ? "[" + a + "]" : a);
        }
        List<String> out = new ArrayList<>();
        for (String h : hosts) {
            out.add(h);
            out.add(h + ":" + port);
        }
        return out;
    }
}
