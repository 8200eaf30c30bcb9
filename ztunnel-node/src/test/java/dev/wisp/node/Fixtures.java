package dev.wisp.node;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.Address;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Group;
import dev.wisp.api.workload.v1.Match;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Port;
import dev.wisp.api.workload.v1.PortList;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Rules;
import dev.wisp.api.workload.v1.Scope;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.StringMatch;
import dev.wisp.api.workload.v1.TunnelProtocol;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import java.net.InetAddress;
import java.util.List;

/** Resources for tests. */
public final class Fixtures {
    private Fixtures() {}

    public static ByteString ip(String s) {
        return ByteString.copyFrom(InetAddress.ofLiteral(s).getAddress());
    }

    public static Workload.Builder workload(String uid, String sa, String node, String address) {
        return Workload.newBuilder().setUid(uid).setName(uid).setNamespace("default").setServiceAccount(sa)
                .setTrustDomain("cluster.local").setNode(node).addAddresses(ip(address))
                .setTunnelProtocol(TunnelProtocol.TUNNEL_HBONE).setWorkloadName(uid + "-deploy")
                .setCanonicalName(uid).setCanonicalRevision("v1");
    }

    public static Resource res(Workload w) {
        return Resource.newBuilder().setName(w.getUid()).setVersion("1").setWorkload(w).build();
    }

    public static Resource res(Workload.Builder w) {
        return res(w.build());
    }

    /** An index holding {@code nodes}, {@code workloads} and {@code services}. */
    public static WorkloadIndex index(List<Resource> nodes, List<Resource> workloads, List<Resource> services)
            throws InvalidResourceException {
        WorkloadIndex index = WorkloadIndex.create();
        index.apply(StateUpdates.NODE, nodes, List.of());
        index.apply(StateUpdates.WORKLOAD, workloads, List.of());
        index.apply(StateUpdates.SERVICE, services, List.of());
        return index;
    }

    public static Resource node(String name, String address, int hbonePort) {
        return Resource.newBuilder().setName(name).setVersion("1")
                .setNode(Node.newBuilder().setName(name).addAddresses(ip(address)).setHbonePort(hbonePort)).build();
    }

    public static Resource service(String host, String vip, int port, int targetPort) {
        return Resource.newBuilder().setName("default/" + host).setVersion("1")
                .setService(Service.newBuilder().setName(host.split("\\.")[0]).setNamespace("default").setHostname(host)
                        .addAddresses(ip(vip)).addPorts(Port.newBuilder().setServicePort(port)
                                .setTargetPort(targetPort)))
                .build();
    }

    public static PortList ports(int servicePort, int targetPort) {
        return PortList.newBuilder().addPorts(Port.newBuilder().setServicePort(servicePort).setTargetPort(targetPort))
                .build();
    }

    /** A NAMESPACE-scoped policy in {@code default} matching the source address {@code ip} (a /32 ipBlock). */
    public static Resource sourceIpPolicy(String name, Action action, String ip) {
        return Resource.newBuilder().setName("default/" + name).setVersion("1")
                .setAuthorization(Authorization.newBuilder().setName(name).setNamespace("default")
                        .setScope(Scope.NAMESPACE).setAction(action)
                        .addGroups(Group.newBuilder().addRules(Rules.newBuilder().addMatches(Match.newBuilder()
                                .addSourceIps(Address.newBuilder().setAddress(ip(ip)).setLength(32))))))
                .build();
    }

    /** A NAMESPACE-scoped policy in {@code default} matching {@code principal} exactly. */
    public static Resource principalPolicy(String name, Action action, String principal) {
        return Resource.newBuilder().setName("default/" + name).setVersion("1")
                .setAuthorization(Authorization.newBuilder().setName(name).setNamespace("default")
                        .setScope(Scope.NAMESPACE).setAction(action)
                        .addGroups(Group.newBuilder().addRules(Rules.newBuilder().addMatches(
                                Match.newBuilder().addPrincipals(StringMatch.newBuilder().setExact(principal))))))
                .build();
    }
}
