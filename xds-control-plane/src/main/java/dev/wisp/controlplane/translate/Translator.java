package dev.wisp.controlplane.translate;

import static java.util.Objects.requireNonNull;

import com.google.protobuf.ByteString;
import com.google.protobuf.CodedOutputStream;
import dev.wisp.api.workload.v1.GatewayAddress;
import dev.wisp.api.workload.v1.HboneProtocol;
import dev.wisp.api.workload.v1.MtlsMode;
import dev.wisp.api.workload.v1.Node;
import dev.wisp.api.workload.v1.Port;
import dev.wisp.api.workload.v1.PortList;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Service;
import dev.wisp.api.workload.v1.TunnelProtocol;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.api.workload.v1.WorkloadStatus;
import dev.wisp.controlplane.model.AuthorizationPolicy;
import dev.wisp.controlplane.model.MeshConfig;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.NodeDef;
import dev.wisp.controlplane.model.WireGuardEntry;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.PeerAuthentication;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.model.Selectors;
import dev.wisp.controlplane.model.ServiceEndpoints;
import dev.wisp.controlplane.model.ServiceDef;
import dev.wisp.controlplane.model.WaypointNames;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * Model → workload discovery resources, as pure functions (no I/O, no clock). Each resource's
 * version is a digest of its content, so that a restarted control plane gives unchanged resources
 * the same versions and a reconnecting agent is sent only differences.
 */
public final class Translator {
    private Translator() {}

    /** Translates {@code model}; maps equal to {@code previous}'s are reused (identity = unchanged). */
    public static Translation translate(MeshModel model, Translation previous) {
        return translate(model, previous, Map.of());
    }

    /**
     * Translates {@code model} with the key registry's {@code wireguard} entries (by node name), which
     * give each Node resource its WireGuard key, endpoint and pod CIDRs.
     */
    public static Translation translate(MeshModel model, Translation previous, Map<String, WireGuardEntry> wireguard) {
        requireNonNull(model, "model");
        requireNonNull(wireguard, "wireguard");
        MeshConfig mesh = model.mesh();
        Map<ObjectRef, List<String>> warnings = new LinkedHashMap<>();
        Map<String, Resource> authorizations = new LinkedHashMap<>();
        List<AuthorizationPolicy> selectorPolicies = new ArrayList<>();
        for (AuthorizationPolicy p : model.all(AuthorizationPolicy.class)) {
            if (!p.targetRefs().isEmpty()) {
                // a waypoint's policy (envoy.AuthzTranslator); node agents do not enforce it
                PolicyReducer.unknownProvider(p, mesh).ifPresent(w -> warnings.put(p.ref(), List.of(w)));
                continue;
            }
            PolicyReducer.Reduced r = PolicyReducer.reduce(p, mesh);
            if (!r.warnings().isEmpty()) {
                warnings.put(p.ref(), List.copyOf(r.warnings()));
            }
            if (r.authorization() != null) {
                String name = p.ref().qualifiedName();
                authorizations.put(name, resource(name, Resource.newBuilder().setAuthorization(r.authorization())));
                if (p.selector() != null) {
                    selectorPolicies.add(p);
                }
            }
        }
        Waypoints waypoints = Waypoints.of(model, WaypointNames.ISTIO_AND_WISP, warnings);
        Map<String, Resource> services = new LinkedHashMap<>();
        for (ServiceDef s : model.all(ServiceDef.class)) {
            String name = serviceKey(s, mesh);
            Service.Builder svc = service(s, mesh).toBuilder();
            waypoints.forService(s).ifPresent(svc::setWaypoint);
            services.put(name, resource(name, Resource.newBuilder().setService(svc)));
        }
        Map<String, Resource> workloads = new LinkedHashMap<>();
        Map<String, Set<String>> namespacesByNode = new HashMap<>();
        Map<String, Set<String>> selectedByNode = new HashMap<>();
        List<PeerAuthentication> peerAuths = model.all(PeerAuthentication.class);
        // Services and policies select pods of their own namespace (policies also from the root namespace).
        Map<String, List<ServiceDef>> servicesByNs = new HashMap<>();
        model.all(ServiceDef.class)
                .forEach(s -> servicesByNs.computeIfAbsent(s.ref().namespace(), k -> new ArrayList<>()).add(s));
        Map<String, List<AuthorizationPolicy>> policiesByNs = new HashMap<>();
        selectorPolicies.forEach(p -> policiesByNs.computeIfAbsent(p.ref().namespace(), k -> new ArrayList<>()).add(p));
        Map<String, List<PeerAuthentication>> peerAuthsByNs = new HashMap<>();
        for (PeerAuthentication pa : peerAuths) {
            peerAuthsByNs.computeIfAbsent(pa.ref().namespace(), k -> new ArrayList<>()).add(pa);
        }
        List<PeerAuthentication> rootPeerAuths = peerAuthsByNs.getOrDefault(mesh.rootNamespace(), List.of());
        ServiceEndpoints endpoints = ServiceEndpoints.of(model);
        for (Pod pod : model.all(Pod.class)) {
            String ns = pod.ref().namespace();
            List<AuthorizationPolicy> policies = new ArrayList<>(policiesByNs.getOrDefault(ns, List.of()));
            List<PeerAuthentication> pas = new ArrayList<>(peerAuthsByNs.getOrDefault(ns, List.of()));
            if (!ns.equals(mesh.rootNamespace())) {
                policies.addAll(policiesByNs.getOrDefault(mesh.rootNamespace(), List.of()));
                pas.addAll(rootPeerAuths);
            }
            Workload w = workload(pod, mesh, servicesByNs.getOrDefault(ns, List.of()), endpoints, policies, pas);
            Optional<GatewayAddress> waypoint = waypoints.forPod(pod);
            if (waypoint.isPresent()) {
                w = w.toBuilder().setWaypoint(waypoint.get()).build();
            }
            workloads.put(w.getUid(), resource(w.getUid(), Resource.newBuilder().setWorkload(w)));
            namespacesByNode.computeIfAbsent(pod.nodeName(), n -> new TreeSet<>()).add(pod.ref().namespace());
            selectedByNode.computeIfAbsent(pod.nodeName(), n -> new TreeSet<>())
                    .addAll(w.getAuthorizationPoliciesList());
        }
        Map<String, Resource> nodes = new LinkedHashMap<>();
        for (NodeDef n : model.all(NodeDef.class)) {
            nodes.put(n.ref().name(), resource(n.ref().name(), Resource.newBuilder().setNode(node(n, wireguard.get(n
                    .ref().name()), mesh))));
        }
        Map<String, Map<String, Resource>> byType = new LinkedHashMap<>();
        byType.put(TypeUrls.NODE, reuse(nodes, previous, TypeUrls.NODE));
        byType.put(TypeUrls.SERVICE, reuse(services, previous, TypeUrls.SERVICE));
        byType.put(TypeUrls.WORKLOAD, reuse(workloads, previous, TypeUrls.WORKLOAD));
        byType.put(TypeUrls.AUTHORIZATION, reuse(authorizations, previous, TypeUrls.AUTHORIZATION));
        return new Translation(Collections.unmodifiableMap(byType), Collections.unmodifiableMap(warnings),
                namespacesByNode, selectedByNode);
    }

    private static Map<String, Resource> reuse(Map<String, Resource> fresh, Translation previous, String type) {
        if (previous != null) {
            Map<String, Resource> old = previous.resources(type);
            if (old.size() == fresh.size() && fresh.entrySet().stream().allMatch(e -> old.containsKey(e.getKey())
                    && old.get(e.getKey()).getVersion().equals(e.getValue().getVersion()))) {
                return old;
            }
        }
        return Collections.unmodifiableMap(fresh);
    }

    static String serviceKey(ServiceDef s, MeshConfig mesh) {
        return s.ref().namespace() + "/" + hostname(s, mesh);
    }

    static String hostname(ServiceDef s, MeshConfig mesh) {
        return s.hostname(mesh.clusterDomain());
    }

    static Service service(ServiceDef s, MeshConfig mesh) {
        Service.Builder b = Service.newBuilder()
                .setName(s.ref().name())
                .setNamespace(s.ref().namespace())
                .setHostname(hostname(s, mesh));
        s.clusterIps().forEach(ip -> b.addAddresses(bytes(ip)));
        s.ports().forEach(p -> b.addPorts(Port.newBuilder().setServicePort(p.port()).setTargetPort(p.targetPort())));
        return b.build();
    }

    /**
     * A Node resource: the declared object, with the WireGuard key and endpoint the registry accepted
     * from the node's agent ({@code registered}, may be null: then the annotations, if any). Pod CIDRs
     * are the declared ones; a node without declared CIDRs gets those it registered.
     */
    static Node node(NodeDef n, WireGuardEntry registered, MeshConfig mesh) {
        Node.Builder b = Node.newBuilder()
                .setName(n.ref().name())
                .setHbonePort(n.hbonePort())
                .setWireguardPublicKey(registered != null ? registered.publicKey() : n.wireguardPublicKey())
                .setWireguardEndpoint(registered != null ? registered.endpointText() : n.wireguardEndpoint())
                .addAllPodCidrs(n.podCidrs())
                .setHboneOverWireguard(mesh.hboneOverWireGuard())
                .setWireguardPeerIdleSeconds((int) mesh.wireguardPeerIdle().toSeconds())
                .setWireguardKeyRotationSeconds(mesh.wireguardKeyRotation().toSeconds())
                .setHboneProtocol(switch (mesh.hboneProtocol()) {
                    case H2 -> HboneProtocol.HBONE_H2;
                    case H3 -> HboneProtocol.HBONE_H3;
                    case AUTO -> HboneProtocol.HBONE_AUTO;
                });
        if (n.podCidrs().isEmpty() && registered != null) {
            registered.podCidrs().forEach(c -> b.addPodCidrs(c.toString()));
        }
        n.addresses().forEach(a -> b.addAddresses(bytes(a)));
        return b.build();
    }

    static Workload workload(Pod pod, MeshConfig mesh, List<ServiceDef> services, ServiceEndpoints endpoints,
            List<AuthorizationPolicy> selectorPolicies, List<PeerAuthentication> peerAuths) {
        Map<String, String> labels = pod.labels();
        Workload.Builder b = Workload.newBuilder()
                .setUid(pod.uid())
                .setName(pod.ref().name())
                .setNamespace(pod.ref().namespace())
                .setServiceAccount(pod.serviceAccount())
                .setTrustDomain(mesh.trustDomain())
                .setNode(pod.nodeName())
                .setTunnelProtocol(TunnelProtocol.TUNNEL_HBONE)
                .setWorkloadName(pod.workloadName())
                .setCanonicalName(first(labels, pod.ref().name(), "service.istio.io/canonical-name",
                        "app.kubernetes.io/name", "app"))
                .setCanonicalRevision(first(labels, "latest", "service.istio.io/canonical-revision",
                        "app.kubernetes.io/version", "version"))
                .setStatus(pod.ready() ? WorkloadStatus.HEALTHY : WorkloadStatus.UNHEALTHY);
        pod.ips().forEach(ip -> b.addAddresses(bytes(ip)));
        for (ServiceDef s : services) {
            endpoints.ports(s, pod).ifPresent(ports -> {
                PortList.Builder pl = PortList.newBuilder();
                ports.forEach(p -> pl.addPorts(Port.newBuilder().setServicePort(p.port())
                        .setTargetPort(p.targetPort())));
                b.putServices(serviceKey(s, mesh), pl.build());
            });
        }
        for (AuthorizationPolicy p : selectorPolicies) {
            boolean sameScope = p.ref().namespace().equals(pod.ref().namespace())
                    || p.ref().namespace().equals(mesh.rootNamespace());
            if (sameScope && selects(p.selector(), labels)) {
                b.addAuthorizationPolicies(p.ref().qualifiedName());
            }
        }
        MtlsResolver.Resolved mtls = MtlsResolver.resolve(pod, mesh, peerAuths);
        b.setMtlsMode(mtls.mode());
        b.putAllPortMtls(mtls.ports());
        return b.build();
    }

    /** Kubernetes selector semantics: every selector label present with the same value; empty selects none. */
    static boolean selects(Map<String, String> selector, Map<String, String> labels) {
        return Selectors.selects(selector, labels);
    }

    private static String first(Map<String, String> labels, String fallback, String... keys) {
        for (String k : keys) {
            String v = labels.get(k);
            if (v != null && !v.isEmpty()) {
                return v;
            }
        }
        return fallback;
    }

    static ByteString bytes(InetAddress a) {
        return ByteString.copyFrom(a.getAddress());
    }

    /** A resource whose version is a digest of its deterministic serialization. */
    static Resource resource(String name, Resource.Builder content) {
        Resource unversioned = content.setName(name).clearVersion().build();
        return unversioned.toBuilder().setVersion(digest(unversioned)).build();
    }

    static String digest(Resource r) {
        try {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream(r.getSerializedSize());
            CodedOutputStream out = CodedOutputStream.newInstance(bytes);
            // Map fields (services, port_mtls) must serialize in one order for equal content.
            out.useDeterministicSerialization();
            r.writeTo(out);
            out.flush();
            byte[] d = MessageDigest.getInstance("SHA-256").digest(bytes.toByteArray());
            return HexFormat.of().formatHex(d, 0, 8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }

    /** Mode for the model's MtlsMode. */
    static MtlsMode mode(dev.wisp.controlplane.model.MtlsMode m) {
        return switch (m) {
            case UNSET -> MtlsMode.MTLS_UNSET;
            case DISABLE -> MtlsMode.DISABLE;
            case PERMISSIVE -> MtlsMode.PERMISSIVE;
            case STRICT -> MtlsMode.STRICT;
        };
    }

}
