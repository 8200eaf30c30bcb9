package dev.wisp.node.rbac;

import static java.util.Objects.requireNonNull;

import dev.wisp.base.IpText;
import com.google.protobuf.ByteString;
import dev.wisp.api.workload.v1.Action;
import dev.wisp.api.workload.v1.Address;
import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Group;
import dev.wisp.api.workload.v1.Match;
import dev.wisp.api.workload.v1.Rules;
import dev.wisp.api.workload.v1.StringMatch;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Istio AuthorizationPolicy at L4, as ztunnel enforces it: a pure function of the connection's
 * attributes and the policies in scope for the destination workload.
 *
 * <p>Order: any matching DENY denies; with no ALLOW policy the connection is allowed; otherwise a
 * matching ALLOW is required. Dry-run policies are evaluated only to report what they would have
 * done. A policy matches when any of its groups matches (a group without rules matches every
 * connection; a policy without groups matches none); a group matches when all its rules match; a
 * rule when any of its matches matches; a match when every non-empty field holds (values OR-ed)
 * and no {@code not_*} value matches. {@code when} conditions arrive already translated into rules
 * (source.ip → source_ips, source.namespace → namespaces, source.principal → principals,
 * destination.ip → destination_ips, destination.port → destination_ports).
 */
public final class Authorizer {
    private Authorizer() {}

    /** Decides whether {@code connection} may reach its destination under {@code policies}. */
    public static Verdict authorize(ConnectionAttributes connection, List<Authorization> policies) {
        requireNonNull(connection, "connection");
        requireNonNull(policies, "policies");
        List<String> dryRun = new ArrayList<>();
        boolean anyAllow = false;
        String allowedBy = null;
        String deniedBy = null;
        for (Authorization policy : policies) {
            boolean matches = matches(policy, connection);
            String name = policy.getNamespace() + "/" + policy.getName();
            if (policy.getDryRun()) {
                if (policy.getAction() == Action.DENY) {
                    dryRun.add(name + ": would " + (matches ? "deny" : "not deny"));
                } else {
                    dryRun.add(name + ": would " + (matches ? "allow" : "not allow"));
                }
                continue;
            }
            if (policy.getAction() == Action.DENY) {
                if (matches && deniedBy == null) {
                    deniedBy = name;
                }
            } else {
                anyAllow = true;
                if (matches && allowedBy == null) {
                    allowedBy = name;
                }
            }
        }
        if (deniedBy != null) {
            return new Verdict(false, deniedBy, "denied by DENY policy " + deniedBy, dryRun);
        }
        if (!anyAllow) {
            return new Verdict(true, "", "allowed: no ALLOW policy in scope", dryRun);
        }
        if (allowedBy != null) {
            return new Verdict(true, allowedBy, "allowed by ALLOW policy " + allowedBy, dryRun);
        }
        return new Verdict(false, "", "denied: no ALLOW policy matched", dryRun);
    }

    static boolean matches(Authorization policy, ConnectionAttributes c) {
        for (Group group : policy.getGroupsList()) {
            if (matches(group, c)) {
                return true;
            }
        }
        return false;
    }

    private static boolean matches(Group group, ConnectionAttributes c) {
        for (Rules rules : group.getRulesList()) {
            if (!matches(rules, c)) {
                return false;
            }
        }
        return true;
    }

    private static boolean matches(Rules rules, ConnectionAttributes c) {
        if (rules.getMatchesCount() == 0) {
            return true;
        }
        for (Match m : rules.getMatchesList()) {
            if (matches(m, c)) {
                return true;
            }
        }
        return false;
    }

    private static boolean matches(Match m, ConnectionAttributes c) {
        Optional<String> ns = c.sourceNamespace();
        Optional<String> principal = c.sourcePrincipal();
        return positive(m.getNamespacesList(), ns) && !negative(m.getNotNamespacesList(), ns)
                && positive(m.getPrincipalsList(), principal) && !negative(m.getNotPrincipalsList(), principal)
                && (m.getSourceIpsCount() == 0 || anyCidr(m.getSourceIpsList(), c.sourceIp()))
                && !anyCidr(m.getNotSourceIpsList(), c.sourceIp())
                && (m.getDestinationIpsCount() == 0 || anyCidr(m.getDestinationIpsList(), c.destinationIp()))
                && !anyCidr(m.getNotDestinationIpsList(), c.destinationIp())
                && (m.getDestinationPortsCount() == 0 || m.getDestinationPortsList().contains(c.destinationPort()))
                && !m.getNotDestinationPortsList().contains(c.destinationPort());
    }

    private static boolean positive(List<StringMatch> values, Optional<String> actual) {
        return values.isEmpty() || actual.isPresent() && values.stream().anyMatch(v -> matches(v, actual.get()));
    }

    private static boolean negative(List<StringMatch> values, Optional<String> actual) {
        return actual.isPresent() && values.stream().anyMatch(v -> matches(v, actual.get()));
    }

    /** Istio's string match: exact, prefix ({@code x*}), suffix ({@code *x}), presence ({@code *}). */
    static boolean matches(StringMatch m, String value) {
        return switch (m.getMatchTypeCase()) {
            case EXACT -> value.equals(m.getExact());
            case PREFIX -> value.startsWith(m.getPrefix());
            case SUFFIX -> value.endsWith(m.getSuffix());
            case PRESENCE -> m.getPresence() && !value.isEmpty();
            case MATCHTYPE_NOT_SET -> false;
        };
    }

    private static boolean anyCidr(List<Address> cidrs, InetAddress ip) {
        byte[] bytes = ip.getAddress();
        for (Address cidr : cidrs) {
            if (inCidr(cidr.getAddress(), cidr.getLength(), bytes)) {
                return true;
            }
        }
        return false;
    }

    /**
     * Whether {@code ip} lies in {@code network/length}. An IPv4-mapped IPv6 address
     * ({@code ::ffff:a.b.c.d}) is the IPv4 address it carries, on either side (a prefix of at least 96
     * bits), so that {@code ::ffff:10.0.0.1} cannot slip past a DENY of {@code 10.0.0.0/8}, nor a
     * {@code ::ffff:10.0.0.0/104} block miss {@code 10.0.0.1}.
     */
    static boolean inCidr(ByteString network, int length, byte[] ip) {
        if (IpText.isIpv4Mapped(ip)) {
            ip = java.util.Arrays.copyOfRange(ip, 12, 16);
        }
        if (network.size() == 16 && length >= 96 && IpText.isIpv4Mapped(network.toByteArray())) {
            network = network.substring(12);
            length -= 96;
        }
        if (network.size() != ip.length) {
            return false;
        }
        int full = length / 8;
        for (int i = 0; i < full; i++) {
            if (network.byteAt(i) != ip[i]) {
                return false;
            }
        }
        int rest = length % 8;
        if (rest == 0) {
            return true;
        }
        int mask = (0xff << (8 - rest)) & 0xff;
        return (network.byteAt(full) & mask) == (ip[full] & mask);
    }

}
