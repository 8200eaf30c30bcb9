package dev.wisp.node.state;

import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Address;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.HboneProtocol;
import dev.wisp.api.workload.v1.Group;
import dev.wisp.api.workload.v1.Match;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Port;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Rules;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.StringMatch;
import dev.wisp.api.workload.v1.TunnelProtocol;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.spiffe.InvalidSpiffeIdException;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/** Checks one discovery resource before it enters the index; every refusal names resource and field. */
final class ResourceValidator {
    /** The one kind of resource each type URL carries. */
    private static final Map<String, Resource.KindCase> KIND_OF_TYPE = Map.of(StateUpdates.WORKLOAD,
            Resource.KindCase.WORKLOAD, StateUpdates.SERVICE, Resource.KindCase.SERVICE, StateUpdates.AUTHORIZATION,
            Resource.KindCase.AUTHORIZATION, StateUpdates.NODE, Resource.KindCase.NODE);

    private ResourceValidator() {}

    static void validate(String typeUrl, Resource r) throws InvalidResourceException {
        String name = r.getName();
        if (name.isEmpty()) {
            throw new InvalidResourceException("resource of type " + typeUrl + ": field name: empty");
        }
        Resource.KindCase kind = KIND_OF_TYPE.get(typeUrl);
        if (kind == null) {
            throw new InvalidResourceException("resource '" + name + "': unknown type URL " + typeUrl);
        }
        require(r.getKindCase() == kind, name, "kind", "expected " + kind.name().toLowerCase(Locale.ROOT)
                + " for type " + typeUrl + ", found " + r.getKindCase().name().toLowerCase(Locale.ROOT));
        switch (kind) {
            case WORKLOAD -> workload(name, r.getWorkload());
            case SERVICE -> service(name, r.getService());
            case AUTHORIZATION -> authorization(name, r.getAuthorization());
            case NODE -> node(name, r.getNode());
            case KIND_NOT_SET -> throw new IllegalStateException("no type URL maps to KIND_NOT_SET");
        }
    }

    /** The address in {@code bytes}, which {@link #validate} has checked to be 4 or 16 bytes long. */
    static InetAddress address(ByteString bytes) {
        try {
            return InetAddress.getByAddress(bytes.toByteArray());
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("address of " + bytes.size() + " bytes", e);
        }
    }

    private static void workload(String name, Workload w) throws InvalidResourceException {
        require(w.getUid().equals(name), name, "uid", "must equal the resource name, is '" + w.getUid() + "'");
        require(!w.getNamespace().isEmpty(), name, "namespace", "empty");
        addresses(name, "addresses", w.getAddressesList());
        if (w.getTunnelProtocol() == TunnelProtocol.TUNNEL_HBONE) {
            require(!w.getServiceAccount().isEmpty(), name, "service_account", "empty for an HBONE workload");
            require(!w.getNode().isEmpty(), name, "node", "empty for an HBONE workload");
            require(!w.getTrustDomain().isEmpty(), name, "trust_domain", "empty for an HBONE workload");
            spiffeId(name, "trust_domain/namespace/service_account", () -> SpiffeId
                    .forServiceAccount(w.getTrustDomain(), w.getNamespace(), w.getServiceAccount()));
        }
        if (w.hasWaypoint()) {
            gateway(name, "waypoint", w.getWaypoint());
        }
        for (var e : w.getServicesMap().entrySet()) {
            require(e.getKey().contains("/"), name, "services",
                    "key '" + e.getKey() + "' is not <namespace>/<hostname>");
            ports(name, "services[" + e.getKey() + "]", e.getValue().getPortsList());
        }
        for (var port : w.getPortMtlsMap().keySet()) {
            require(port > 0 && port <= 65535, name, "port_mtls", "port " + port + " is outside 1-65535");
        }
    }

    private static void service(String name, Service s) throws InvalidResourceException {
        require(name.equals(s.getNamespace() + "/" + s.getHostname()), name, "name",
                "must be <namespace>/<hostname> = '" + s.getNamespace() + "/" + s.getHostname() + "'");
        addresses(name, "addresses", s.getAddressesList());
        ports(name, "ports", s.getPortsList());
        if (s.hasWaypoint()) {
            gateway(name, "waypoint", s.getWaypoint());
        }
        for (String san : s.getSubjectAltNamesList()) {
            spiffeId(name, "subject_alt_names", () -> SpiffeId.parse(san));
        }
    }

    private static void node(String name, Node n) throws InvalidResourceException {
        require(n.getName().equals(name), name, "name", "must equal the resource name, is '" + n.getName() + "'");
        addresses(name, "addresses", n.getAddressesList());
        require(n.getHbonePort() <= 65535, name, "hbone_port", n.getHbonePort() + " is outside 0-65535");
        require(n.getHboneProtocol() != HboneProtocol.UNRECOGNIZED, name, "hbone_protocol",
                n.getHboneProtocolValue() + " is not a protocol this agent knows (h2, h3, auto)");
    }

    private static void authorization(String name, Authorization a) throws InvalidResourceException {
        require(name.equals(a.getNamespace() + "/" + a.getName()), name, "name",
                "must be <namespace>/<name> = '" + a.getNamespace() + "/" + a.getName() + "'");
        for (int g = 0; g < a.getGroupsCount(); g++) {
            Group group = a.getGroups(g);
            for (int r = 0; r < group.getRulesCount(); r++) {
                Rules rules = group.getRules(r);
                for (int m = 0; m < rules.getMatchesCount(); m++) {
                    match(name, "groups[" + g + "].rules[" + r + "].matches[" + m + "]", rules.getMatches(m));
                }
            }
        }
    }

    private static void match(String name, String path, Match m) throws InvalidResourceException {
        strings(name, path + ".namespaces", m.getNamespacesList());
        strings(name, path + ".not_namespaces", m.getNotNamespacesList());
        strings(name, path + ".principals", m.getPrincipalsList());
        strings(name, path + ".not_principals", m.getNotPrincipalsList());
        cidrs(name, path + ".source_ips", m.getSourceIpsList());
        cidrs(name, path + ".not_source_ips", m.getNotSourceIpsList());
        cidrs(name, path + ".destination_ips", m.getDestinationIpsList());
        cidrs(name, path + ".not_destination_ips", m.getNotDestinationIpsList());
        for (int p : m.getDestinationPortsList()) {
            require(p > 0 && p <= 65535, name, path + ".destination_ports", p + " is outside 1-65535");
        }
        for (int p : m.getNotDestinationPortsList()) {
            require(p > 0 && p <= 65535, name, path + ".not_destination_ports", p + " is outside 1-65535");
        }
    }

    private static void strings(String name, String field, List<StringMatch> matches) throws InvalidResourceException {
        for (StringMatch s : matches) {
            require(s.getMatchTypeCase() != StringMatch.MatchTypeCase.MATCHTYPE_NOT_SET, name, field,
                    "a string match with no exact, prefix, suffix or presence");
        }
    }

    private static void cidrs(String name, String field, List<Address> cidrs) throws InvalidResourceException {
        for (Address a : cidrs) {
            int size = a.getAddress().size();
            require(size == 4 || size == 16, name, field, "address of " + size + " bytes (expected 4 or 16)");
            require(a.getLength() <= size * 8, name, field, "prefix length " + a.getLength() + " exceeds " + size * 8);
        }
    }

    private static void addresses(String name, String field, List<ByteString> addresses)
            throws InvalidResourceException {
        for (ByteString b : addresses) {
            require(b.size() == 4 || b.size() == 16, name, field,
                    "address of " + b.size() + " bytes (expected 4 or 16)");
        }
    }

    private static void ports(String name, String field, List<Port> ports) throws InvalidResourceException {
        for (Port p : ports) {
            require(p.getServicePort() > 0 && p.getServicePort() <= 65535, name, field,
                    "service_port " + p.getServicePort() + " is outside 1-65535");
            require(p.getTargetPort() <= 65535, name, field,
                    "target_port " + p.getTargetPort() + " is outside 0-65535");
        }
    }

    private static void gateway(String name, String field, GatewayAddress g) throws InvalidResourceException {
        int size = g.getAddress().size();
        require(size == 4 || size == 16, name, field + ".address", "address of " + size + " bytes");
        require(g.getHbonePort() <= 65535, name, field + ".hbone_port", g.getHbonePort() + " is outside 0-65535");
        spiffeId(name, field + ".identity", () -> SpiffeId.parse(g.getIdentity()));
    }

    /** Identities are parsed here, at the edge, so that the agent's SpiffeId values never throw later. */
    private static void spiffeId(String name, String field, Supplier<SpiffeId> id) throws InvalidResourceException {
        try {
            id.get();
        } catch (InvalidSpiffeIdException e) {
            throw new InvalidResourceException("resource '" + name + "': field " + field + ": " + e.getMessage());
        }
    }

    private static void require(boolean ok, String resource, String field, String problem)
            throws InvalidResourceException {
        if (!ok) {
            throw new InvalidResourceException("resource '" + resource + "': field " + field + ": " + problem);
        }
    }
}
