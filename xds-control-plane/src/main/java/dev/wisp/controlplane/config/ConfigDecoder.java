package dev.wisp.controlplane.config;

import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.Gateway;
import dev.wisp.controlplane.model.EndpointSlice;
import dev.wisp.controlplane.model.GrpcRoute;
import dev.wisp.controlplane.model.HboneProtocol;
import dev.wisp.controlplane.model.HttpFault;
import dev.wisp.controlplane.model.HttpRoute;
import dev.wisp.controlplane.model.LocalRateLimit;
import dev.wisp.controlplane.model.MeshConfig;
import dev.wisp.controlplane.model.MeshConfigObject;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.MtlsMode;
import dev.wisp.controlplane.model.Namespace;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import dev.wisp.controlplane.model.PeerAuthentication;
import dev.wisp.controlplane.model.RequestAuthentication;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.ServiceDef;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Decodes and validates configuration documents (Kubernetes shape: {@code apiVersion}, {@code kind},
 * {@code metadata}, {@code spec}) into model objects. Pure: text in, objects and errors out.
 *
 * <p>Istio kinds and Wisp's own kinds are decoded strictly (an unknown field is an error, since a
 * misspelt policy field would otherwise widen or narrow a policy silently); {@code Pod},
 * {@code Service} and {@code Node} ignore fields the mesh does not read, since real Kubernetes
 * objects carry many.
 */
public final class ConfigDecoder {
    static final Pattern DNS_SUBDOMAIN = Pattern.compile("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
    static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
    private static final List<String> KINDS = List.of(Pod.KIND, ServiceDef.KIND, NodeDef.KIND,
            AuthorizationPolicy.KIND, PeerAuthentication.KIND, RequestAuthentication.KIND, MeshConfig.KIND,
            Namespace.KIND, Gateway.KIND,
            HttpRoute.KIND,
            GrpcRoute.KIND, EndpointSlice.KIND, HttpFault.KIND, LocalRateLimit.KIND);
    static final String GATEWAY_API = "gateway.networking.k8s.io/v1";
    /** Kubernetes' IANA_SVC_NAME: a container port's name, which a Service's targetPort may give. */
    private static final Pattern PORT_NAME = Pattern.compile("(?=.{1,15}$)(?=.*[a-z])[a-z0-9]([a-z0-9-]*[a-z0-9])?");

    private ConfigDecoder() {}

    /** What one file decodes to: its valid objects with origins, and every error. */
    public record Decoded(List<MeshObject> objects, Map<ObjectRef, Origin> origins, List<ConfigError> errors) {}

    /** Decodes every document of {@code text}; {@code file} names it in errors and origins. */
    public static Decoded decode(String file, String text) {
        requireNonNull(file, "file");
        requireNonNull(text, "text");
        List<ConfigError> errors = new ArrayList<>();
        List<MeshObject> objects = new ArrayList<>();
        Map<ObjectRef, Origin> origins = new LinkedHashMap<>();
        List<YNode> docs;
        try {
            docs = YamlDocuments.parse(text);
        } catch (YamlDocuments.SyntaxException e) {
            errors.add(new ConfigError(file, e.line, null, null, e.getMessage()));
            return new Decoded(List.of(), Map.of(), errors);
        }
        for (YNode doc : docs) {
            int before = errors.size();
            MeshObject o = decodeDocument(new Fields(file, errors), doc);
            if (o != null && errors.size() == before) {
                if (origins.containsKey(o.ref())) {
                    errors.add(new ConfigError(file, doc.line(), o.ref(), null,
                            "defined twice (also at " + origins.get(o.ref()) + ")"));
                } else {
                    objects.add(o);
                    origins.put(o.ref(), new Origin(file, doc.line()));
                }
            }
        }
        return new Decoded(objects, origins, errors);
    }

    private static MeshObject decodeDocument(Fields f, YNode doc) {
        if (!doc.isMap()) {
            f.error(doc, null, "a document must be a mapping with apiVersion, kind, metadata");
            return null;
        }
        String apiVersion = f.string(doc, "apiVersion", "apiVersion");
        String kind = f.string(doc, "kind", "kind");
        if (kind == null || apiVersion == null) {
            f.error(doc, kind == null ? "kind" : "apiVersion", "required");
            return null;
        }
        String expected = switch (kind) {
            case Pod.KIND, ServiceDef.KIND, NodeDef.KIND, Namespace.KIND -> "v1";
            case Gateway.KIND, HttpRoute.KIND, GrpcRoute.KIND -> GATEWAY_API;
            case AuthorizationPolicy.KIND, PeerAuthentication.KIND, RequestAuthentication.KIND ->
                "security.istio.io/v1";
            case MeshConfig.KIND, HttpFault.KIND, LocalRateLimit.KIND -> HttpFault.API_VERSION;
            case EndpointSlice.KIND -> EndpointSlice.API_VERSION;
            default -> null;
        };
        if (expected == null) {
            f.error(f.child(doc, "kind"), "kind", "'" + kind + "' is not one of " + String.join(", ", KINDS));
            return null;
        }
        boolean istioBeta = expected.equals("security.istio.io/v1") && apiVersion.equals("security.istio.io/v1beta1");
        if (!apiVersion.equals(expected) && !istioBeta) {
            f.error(f.child(doc, "apiVersion"), "apiVersion", "'" + apiVersion + "' is not " + expected + " (for kind "
                    + kind + ")");
            return null;
        }
        boolean namespaced = !kind.equals(NodeDef.KIND) && !kind.equals(MeshConfig.KIND)
                && !kind.equals(Namespace.KIND);
        ObjectRef ref = metadata(f, doc, kind, namespaced);
        if (ref == null) {
            return null;
        }
        f.object(ref);
        return switch (kind) {
            case Pod.KIND -> pod(f, doc, ref);
            case ServiceDef.KIND -> service(f, doc, ref);
            case NodeDef.KIND -> node(f, doc, ref);
            case AuthorizationPolicy.KIND -> AuthorizationPolicyDecoder.authorizationPolicy(f, doc, ref);
            case PeerAuthentication.KIND -> peerAuthentication(f, doc, ref);
            case RequestAuthentication.KIND -> RequestAuthenticationDecoder.requestAuthentication(f, doc, ref);
            case Namespace.KIND -> new Namespace(ref, labels(f, doc));
            case Gateway.KIND -> GatewayDecoder.gateway(f, doc, ref);
            case HttpRoute.KIND -> RouteDecoder.httpRoute(f, doc, ref);
            case GrpcRoute.KIND -> RouteDecoder.grpcRoute(f, doc, ref);
            case EndpointSlice.KIND -> EndpointSliceDecoder.endpointSlice(f, doc, ref);
            case HttpFault.KIND -> HttpFaultDecoder.httpFault(f, doc, ref);
            case LocalRateLimit.KIND -> LocalRateLimitDecoder.localRateLimit(f, doc, ref);
            default -> meshConfig(f, doc, ref);
        };
    }

    private static ObjectRef metadata(Fields f, YNode doc, String kind, boolean namespaced) {
        YNode meta = f.child(doc, "metadata");
        if (meta == null || !meta.isMap()) {
            f.error(meta == null ? doc : meta, "metadata", "required: a mapping with at least 'name'");
            return null;
        }
        String name = f.string(meta, "name", "metadata.name");
        String ns = f.string(meta, "namespace", "metadata.namespace");
        if (name == null || !DNS_SUBDOMAIN.matcher(name).matches()) {
            f.error(name == null ? meta : f.child(meta, "name"), "metadata.name", name == null
                    ? "required"
                    : "'" + name + "' is not a valid name (lower-case letters, digits, '-', '.'; at most 253)");
            return null;
        }
        if (!namespaced) {
            if (ns != null) {
                f.object(new ObjectRef(kind, "", name));
                f.error(f.child(meta, "namespace"), "metadata.namespace",
                        kind + " is cluster-scoped; remove namespace");
                return null;
            }
            return new ObjectRef(kind, "", name);
        }
        if (ns == null) {
            ns = "default";
        } else if (!DNS_LABEL.matcher(ns).matches()) {
            f.error(f.child(meta, "namespace"), "metadata.namespace", "'" + ns + "' is not a valid namespace name");
            return null;
        }
        return new ObjectRef(kind, ns, name);
    }

    static Map<String, String> labels(Fields f, YNode doc) {
        Map<String, String> l = f.stringMap(f.child(doc, "metadata"), "labels", "metadata.labels");
        if (l != null) {
            GatewayDecoder.waypointLabels(f, doc, l);
        }
        return l == null ? Map.of() : Map.copyOf(l);
    }

    static Map<String, String> annotations(Fields f, YNode doc) {
        Map<String, String> a = f.stringMap(f.child(doc, "metadata"), "annotations", "metadata.annotations");
        return a == null ? Map.of() : a;
    }

    static InetAddress ip(Fields f, YNode at, String text, String path) {
        try {
            return Cidr.Addresses.parseLiteral(text);
        } catch (IllegalArgumentException e) {
            f.error(at, path, e.getMessage());
            return null;
        }
    }

    private static Pod pod(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = f.child(doc, "spec");
        YNode status = f.child(doc, "status");
        String node = f.string(spec, "nodeName", "spec.nodeName");
        if (node == null) {
            f.error(spec == null ? doc : spec, "spec.nodeName", "required: the node whose agent serves this pod");
        }
        String sa = f.string(spec, "serviceAccountName", "spec.serviceAccountName");
        if (sa == null) {
            sa = f.string(spec, "serviceAccount", "spec.serviceAccount");
        }
        List<InetAddress> ips = new ArrayList<>();
        List<YNode> podIps = f.list(status, "podIPs", "status.podIPs");
        for (int i = 0; i < podIps.size(); i++) {
            String path = "status.podIPs[" + i + "].ip";
            String s = f.string(podIps.get(i), "ip", path);
            InetAddress a = s == null ? null : ip(f, podIps.get(i), s, path);
            if (a != null && !ips.contains(a)) {
                ips.add(a);
            }
        }
        String podIp = f.string(status, "podIP", "status.podIP");
        if (podIp != null) {
            InetAddress a = ip(f, f.child(status, "podIP"), podIp, "status.podIP");
            if (a != null && !ips.contains(a)) {
                ips.addFirst(a);
            }
        }
        String phase = f.string(status, "phase", "status.phase");
        String uid = f.string(f.child(doc, "metadata"), "uid", "metadata.uid");
        if (uid == null) {
            uid = "Kubernetes//Pod/" + ref.namespace() + "/" + ref.name();
        }
        Map<String, Integer> named = new LinkedHashMap<>();
        f.each(spec, "containers", "spec.containers", (c, cPath) -> f.each(c, "ports", cPath + ".ports", (p, path) -> {
            String name = f.string(p, "name", path + ".name");
            String number = f.string(p, "containerPort", path + ".containerPort");
            if (name != null && number != null) {
                named.putIfAbsent(name, f.port(f.child(p, "containerPort"), number, path + ".containerPort"));
            }
        }));
        return new Pod(ref, uid, labels(f, doc), node == null ? "" : node, sa == null ? "default" : sa,
                List.copyOf(ips), phase == null || phase.equals("Running"), Map.copyOf(named));
    }

    private static ServiceDef service(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = f.child(doc, "spec");
        Map<String, String> selector = f.stringMap(spec, "selector", "spec.selector");
        List<InetAddress> vips = new ArrayList<>();
        List<String> clusterIps = new ArrayList<>(f.strings(spec, "clusterIPs", "spec.clusterIPs"));
        String clusterIp = f.string(spec, "clusterIP", "spec.clusterIP");
        if (clusterIp != null && !clusterIps.contains(clusterIp)) {
            clusterIps.addFirst(clusterIp);
        }
        for (String s : clusterIps) {
            if (!s.equals("None") && !s.isEmpty()) {
                InetAddress a = ip(f, f.child(spec, "clusterIP") != null
                        ? f.child(spec, "clusterIP")
                        : f.child(spec, "clusterIPs"), s, "spec.clusterIP");
                if (a != null) {
                    vips.add(a);
                }
            }
        }
        List<ServiceDef.ServicePort> ports = new ArrayList<>();
        f.each(spec, "ports", "spec.ports", (p, path) -> {
            String portText = f.string(p, "port", path + ".port");
            if (portText == null) {
                f.error(p, path + ".port", "required");
                return;
            }
            int port = f.port(f.child(p, "port"), portText, path + ".port");
            String targetText = f.string(p, "targetPort", path + ".targetPort");
            int target = port;
            String targetName = null;
            if (targetText != null && !targetText.chars().allMatch(Character::isDigit)) {
                // Resolved per pod from its containers' named ports (ServiceEndpoints).
                if (!PORT_NAME.matcher(targetText).matches()) {
                    f.error(f.child(p, "targetPort"), path + ".targetPort", "'" + targetText + "' is neither a "
                            + "port number nor a port name (at most 15 lower-case letters, digits, '-')");
                    return;
                }
                targetName = targetText;
                target = 0;
            } else if (targetText != null) {
                target = f.port(f.child(p, "targetPort"), targetText, path + ".targetPort");
            }
            String name = f.string(p, "name", path + ".name");
            ports.add(new ServiceDef.ServicePort(name == null ? "" : name, port, target, targetName,
                    f.string(p, "appProtocol", path + ".appProtocol")));
        });
        return new ServiceDef(ref, selector == null ? Map.of() : Map.copyOf(selector), List.copyOf(vips),
                List.copyOf(ports), labels(f, doc));
    }

    private static NodeDef node(Fields f, YNode doc, ObjectRef ref) {
        YNode spec = f.child(doc, "spec");
        YNode status = f.child(doc, "status");
        List<InetAddress> addresses = new ArrayList<>();
        f.each(status, "addresses", "status.addresses", (n, path) -> {
            String type = f.string(n, "type", path + ".type");
            String address = f.string(n, "address", path + ".address");
            if ("InternalIP".equals(type) && address != null) {
                InetAddress a = ip(f, n, address, path + ".address");
                if (a != null) {
                    addresses.add(a);
                }
            }
        });
        if (addresses.isEmpty()) {
            f.error(status == null ? doc : status, "status.addresses",
                    "needs an InternalIP address: where this node's agent accepts HBONE");
        }
        List<String> cidrs = new ArrayList<>(f.strings(spec, "podCIDRs", "spec.podCIDRs"));
        String cidr = f.string(spec, "podCIDR", "spec.podCIDR");
        if (cidr != null && !cidrs.contains(cidr)) {
            cidrs.addFirst(cidr);
        }
        for (String c : cidrs) {
            try {
                Cidr.parse(c);
            } catch (IllegalArgumentException e) {
                f.error(spec, "spec.podCIDRs", e.getMessage());
            }
        }
        Map<String, String> ann = annotations(f, doc);
        int hbone = 15008;
        String hbonePort = ann.get(NodeDef.HBONE_PORT_ANNOTATION);
        if (hbonePort != null) {
            hbone = f.port(f.child(f.child(doc, "metadata"), "annotations"), hbonePort,
                    "metadata.annotations." + NodeDef.HBONE_PORT_ANNOTATION);
        }
        return new NodeDef(ref, List.copyOf(addresses), hbone, ann.getOrDefault(NodeDef.WIREGUARD_KEY_ANNOTATION, ""),
                ann.getOrDefault(NodeDef.WIREGUARD_ENDPOINT_ANNOTATION, ""), List.copyOf(cidrs));
    }

    private static MeshConfigObject meshConfig(Fields f, YNode doc, ObjectRef ref) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec");
        YNode spec = f.child(doc, "spec");
        f.allowOnly(spec, "spec", "trustDomain", "rootNamespace", "clusterDomain", "defaults", "wireguard", "hbone",
                "extensionProviders");
        YNode defaults = f.child(spec, "defaults");
        f.allowOnly(defaults, "spec.defaults", "mtlsMode");
        YNode wireguard = f.child(spec, "wireguard");
        f.allowOnly(wireguard, "spec.wireguard", "hboneOverWireGuard", "peerIdleTimeout", "keyRotationPeriod");
        String hboneOverWg = f.string(wireguard, "hboneOverWireGuard", "spec.wireguard.hboneOverWireGuard");
        if (hboneOverWg != null && !hboneOverWg.equals("true") && !hboneOverWg.equals("false")) {
            f.error(f.child(wireguard, "hboneOverWireGuard"), "spec.wireguard.hboneOverWireGuard", "'" + hboneOverWg
                    + "' is not true or false");
        }
        Duration idle = RouteFilterDecoder.duration(f, wireguard, "peerIdleTimeout", "spec.wireguard.peerIdleTimeout");
        if (idle != null && (idle.toSeconds() < 1 || idle.toSeconds() > 86_400)) {
            f.error(f.child(wireguard, "peerIdleTimeout"), "spec.wireguard.peerIdleTimeout", "'" + idle
                    + "' is outside 1s-24h");
        }
        Duration rotation = RouteFilterDecoder.duration(f, wireguard, "keyRotationPeriod",
                "spec.wireguard.keyRotationPeriod");
        if (rotation != null && (rotation.toSeconds() < 10 || rotation.toHours() > 8784)) {
            f.error(f.child(wireguard, "keyRotationPeriod"), "spec.wireguard.keyRotationPeriod", "'" + rotation
                    + "' is outside 10s-8784h (leave it out to rotate only on demand)");
        }
        MeshConfig d = MeshConfig.DEFAULT;
        YNode hbone = f.child(spec, "hbone");
        f.allowOnly(hbone, "spec.hbone", "protocol");
        String protocol = f.string(hbone, "protocol", "spec.hbone.protocol");
        Optional<HboneProtocol> hboneProtocol = protocol == null
                ? Optional.of(d.hboneProtocol())
                : HboneProtocol.of(protocol);
        if (hboneProtocol.isEmpty()) {
            f.error(f.child(hbone, "protocol"), "spec.hbone.protocol", "'" + protocol + "' is not h2, h3 or auto");
        }
        String td = f.string(spec, "trustDomain", "spec.trustDomain");
        if (td != null && !DNS_SUBDOMAIN.matcher(td).matches()) {
            f.error(f.child(spec, "trustDomain"), "spec.trustDomain", "'" + td + "' is not a valid trust domain");
        }
        String root = f.string(spec, "rootNamespace", "spec.rootNamespace");
        String domain = f.string(spec, "clusterDomain", "spec.clusterDomain");
        MtlsMode mode = f.enumValue(defaults, "mtlsMode", "spec.defaults.mtlsMode", MtlsMode.class, d.defaultMtls());
        if (mode == MtlsMode.UNSET) {
            f.error(f.child(defaults, "mtlsMode"), "spec.defaults.mtlsMode", "the mesh default cannot be UNSET");
        }
        return new MeshConfigObject(ref, new MeshConfig(td == null ? d.trustDomain() : td,
                root == null ? d.rootNamespace() : root, domain == null ? d.clusterDomain() : domain, mode,
                "true".equals(hboneOverWg), idle == null ? d.wireguardPeerIdle() : idle,
                rotation == null ? d.wireguardKeyRotation() : rotation, hboneProtocol.orElse(d.hboneProtocol()),
                ExtensionProviderDecoder.decode(f, spec)));
    }

    static Map<String, String> selector(Fields f, YNode spec) {
        YNode sel = f.child(spec, "selector");
        f.allowOnly(sel, "spec.selector", "matchLabels");
        Map<String, String> labels = f.stringMap(sel, "matchLabels", "spec.selector.matchLabels");
        return labels == null || labels.isEmpty() ? null : Map.copyOf(labels);
    }

    private static PeerAuthentication peerAuthentication(Fields f, YNode doc, ObjectRef ref) {
        f.allowOnly(doc, "", "apiVersion", "kind", "metadata", "spec");
        YNode spec = f.child(doc, "spec");
        f.allowOnly(spec, "spec", "selector", "mtls", "portLevelMtls");
        Map<String, String> selector = selector(f, spec);
        YNode mtls = f.child(spec, "mtls");
        f.allowOnly(mtls, "spec.mtls", "mode");
        MtlsMode mode = f.enumValue(mtls, "mode", "spec.mtls.mode", MtlsMode.class, MtlsMode.UNSET);
        Map<Integer, MtlsMode> ports = new LinkedHashMap<>();
        Map<String, YNode> portLevel = f.map(spec, "portLevelMtls", "spec.portLevelMtls");
        if (portLevel != null) {
            if (selector == null) {
                f.error(f.child(spec, "portLevelMtls"), "spec.portLevelMtls",
                        "needs spec.selector: port-level modes apply to selected workloads only");
            }
            for (var e : portLevel.entrySet()) {
                String path = "spec.portLevelMtls." + e.getKey();
                int port = f.port(e.getValue(), e.getKey(), path);
                f.allowOnly(e.getValue(), path, "mode");
                MtlsMode m = f.enumValue(e.getValue(), "mode", path + ".mode", MtlsMode.class, MtlsMode.UNSET);
                if (port > 0) {
                    ports.put(port, m);
                }
            }
        }
        return new PeerAuthentication(ref, selector, mode, Map.copyOf(ports));
    }
}
