package dev.wisp.waypoint.authz;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.wisp.waypoint.route.EnvoyRoutes;
import io.envoyproxy.envoy.config.core.v3.CidrRange;
import io.envoyproxy.envoy.config.rbac.v3.Permission;
import io.envoyproxy.envoy.config.rbac.v3.Policy;
import io.envoyproxy.envoy.config.rbac.v3.Principal;
import io.envoyproxy.envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig;
import io.envoyproxy.envoy.type.matcher.v3.MetadataMatcher;
import io.envoyproxy.envoy.type.matcher.v3.ValueMatcher;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * Envoy RBAC's matching of one request (pure): a {@link Policy} matches when one of its permissions and
 * one of its principals do. Permissions: any, and/or/not, header (pseudo-headers {@code :method},
 * {@code :authority}, {@code :path} too), url_path (the path without query), uri_template ({@code *} one
 * segment, {@code **} the rest, zero or more segments), destination IP and port. Principals: any,
 * and/or/not, authenticated (the peer's SPIFFE ID), direct_remote_ip and remote_ip (both the tunnel's
 * source), header, sourced metadata under {@code istio_authn} (a string, or any element of a list).
 * Anything else never matches, and {@link WaypointAuthorizer} accepts only configurations this class
 * reads ({@link #supported}).
 */
final class RbacMatch {
    private RbacMatch() {}

    static boolean matches(Policy p, AuthzRequest r) {
        return p.getPermissionsList().stream().anyMatch(x -> matches(x, r))
                && p.getPrincipalsList().stream().anyMatch(x -> matches(x, r));
    }

    static boolean matches(Permission p, AuthzRequest r) {
        return switch (p.getRuleCase()) {
            case ANY -> p.getAny();
            case AND_RULES -> p.getAndRules().getRulesList().stream().allMatch(x -> matches(x, r));
            case OR_RULES -> p.getOrRules().getRulesList().stream().anyMatch(x -> matches(x, r));
            case NOT_RULE -> !matches(p.getNotRule(), r);
            case HEADER -> EnvoyRoutes.header(p.getHeader(), r.http());
            case URL_PATH -> p.getUrlPath().hasPath() && EnvoyRoutes.string(p.getUrlPath().getPath(), r.http().path());
            case URI_TEMPLATE -> template(p, r.http().path());
            case DESTINATION_IP -> cidr(p.getDestinationIp(), r.destination().getAddress());
            case DESTINATION_PORT -> p.getDestinationPort() == r.destination().getPort();
            default -> false;
        };
    }

    static boolean matches(Principal p, AuthzRequest r) {
        return switch (p.getIdentifierCase()) {
            case ANY -> p.getAny();
            case AND_IDS -> p.getAndIds().getIdsList().stream().allMatch(x -> matches(x, r));
            case OR_IDS -> p.getOrIds().getIdsList().stream().anyMatch(x -> matches(x, r));
            case NOT_ID -> !matches(p.getNotId(), r);
            case AUTHENTICATED -> r.peer().isPresent() && (!p.getAuthenticated().hasPrincipalName()
                    || EnvoyRoutes.string(p.getAuthenticated().getPrincipalName(), r.peer().get().toString()));
            case DIRECT_REMOTE_IP -> cidr(p.getDirectRemoteIp(), r.source());
            case REMOTE_IP -> cidr(p.getRemoteIp(), r.source());
            case HEADER -> EnvoyRoutes.header(p.getHeader(), r.http());
            case SOURCED_METADATA -> metadata(p.getSourcedMetadata().getMetadataMatcher(), r);
            default -> false;
        };
    }

    /** Whether this class reads every part of {@code p} (a configuration it does not read is refused whole). */
    static boolean supported(Policy p) {
        return !p.hasCondition() && !p.hasCheckedCondition() && p.getPermissionsList().stream()
                .allMatch(RbacMatch::supported) && p.getPrincipalsList().stream().allMatch(RbacMatch::supported);
    }

    private static boolean supported(Permission p) {
        return switch (p.getRuleCase()) {
            case ANY, HEADER, URL_PATH, DESTINATION_IP, DESTINATION_PORT -> true;
            case URI_TEMPLATE -> templateOf(p) != null;
            case AND_RULES -> p.getAndRules().getRulesList().stream().allMatch(RbacMatch::supported);
            case OR_RULES -> p.getOrRules().getRulesList().stream().allMatch(RbacMatch::supported);
            case NOT_RULE -> supported(p.getNotRule());
            default -> false;
        };
    }

    private static boolean supported(Principal p) {
        return switch (p.getIdentifierCase()) {
            case ANY, AUTHENTICATED, DIRECT_REMOTE_IP, REMOTE_IP, HEADER -> true;
            case SOURCED_METADATA -> WaypointAuthorizer.AUTHN_FILTER.equals(
                    p.getSourcedMetadata().getMetadataMatcher().getFilter());
            case AND_IDS -> p.getAndIds().getIdsList().stream().allMatch(RbacMatch::supported);
            case OR_IDS -> p.getOrIds().getIdsList().stream().allMatch(RbacMatch::supported);
            case NOT_ID -> supported(p.getNotId());
            default -> false;
        };
    }

    private static boolean metadata(MetadataMatcher m, AuthzRequest r) {
        List<String> path = new ArrayList<>();
        m.getPathList().forEach(s -> path.add(s.getKey()));
        List<String> values = r.authn().get(path);
        boolean hit = values != null && switch (m.getValue().getMatchPatternCase()) {
            case STRING_MATCH -> values.size() == 1 && EnvoyRoutes.string(m.getValue().getStringMatch(),
                    values.getFirst());
            case LIST_MATCH -> element(m.getValue().getListMatch().getOneOf(), values);
            case PRESENT_MATCH -> m.getValue().getPresentMatch();
            default -> false;
        };
        return hit != m.getInvert();
    }

    private static boolean element(ValueMatcher one, List<String> values) {
        return one.hasStringMatch() && values.stream().anyMatch(v -> EnvoyRoutes.string(one.getStringMatch(), v));
    }

    private static String templateOf(Permission p) {
        try {
            return p.getUriTemplate().getTypedConfig().unpack(UriTemplateMatchConfig.class).getPathTemplate();
        } catch (InvalidProtocolBufferException e) {
            return null;
        }
    }

    /** Envoy's path template: literal segments, {@code *} one non-empty segment, {@code **} last: the rest. */
    private static boolean template(Permission p, String path) {
        String t = templateOf(p);
        if (t == null) {
            return false;
        }
        String[] want = t.split("/", -1);
        String[] got = path.split("/", -1);
        for (int i = 0; i < want.length; i++) {
            if (want[i].equals("**") && i == want.length - 1) {
                return got.length >= want.length;
            }
            if (i >= got.length || !(want[i].equals("*") ? !got[i].isEmpty() : want[i].equals(got[i]))) {
                return false;
            }
        }
        return want.length == got.length;
    }

    private static boolean cidr(CidrRange c, InetAddress ip) {
        byte[] net;
        try {
            net = InetAddress.ofLiteral(c.getAddressPrefix()).getAddress();
        } catch (IllegalArgumentException e) {
            return false;
        }
        byte[] a = ip.getAddress();
        int len = c.hasPrefixLen() ? c.getPrefixLen().getValue() : net.length * 8;
        if (a.length != net.length || len > a.length * 8) {
            return false;
        }
        for (int bit = 0; bit < len; bit++) {
            int mask = 0x80 >>> (bit % 8);
            if ((a[bit / 8] & mask) != (net[bit / 8] & mask)) {
                return false;
            }
        }
        return true;
    }
}
