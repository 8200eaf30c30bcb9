package dev.wisp.cli.cluster;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.wisp.cli.UserException;
import dev.wisp.local.ClusterSpec;
import dev.wisp.local.LocalMesh;
import dev.wisp.local.MeshSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code --pods FILE} of {@code wisp cluster up}: which pods run on which node, and the Services
 * in front of them. Pod addresses and Service clusterIPs are assigned by the cluster.
 *
 * <pre>
 * pods:
 * - {name: client, namespace: default, serviceAccount: client, node: node1}
 * - {name: server, namespace: default, serviceAccount: server, node: node2, labels: {app: server}}
 * services:
 * - {name: server, namespace: default, selector: {app: server}, port: 80, targetPort: 8080}
 * </pre>
 *
 * {@code labels} default to {@code app: <name>}, {@code serviceAccount} to {@code default}.
 */
record PodsFile(List<ClusterSpec.PodSpec> pods, List<Service> services) {
    /** A Service without its address yet. */
    record Service(String name, String namespace, Map<String, String> selector, int port, int targetPort) {}

    static PodsFile read(Path file, int nodes) {
        String text;
        try {
            text = Files.readString(file);
        } catch (IOException e) {
            throw UserException.invalid("--pods: cannot read " + file + ": " + e.getMessage());
        }
        return parse(file.toString(), text, nodes);
    }

    static PodsFile parse(String where, String text, int nodes) {
        JsonNode root;
        try {
            root = new YAMLMapper().readTree(text);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw UserException.invalid(where + ": not YAML: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw UserException.invalid(where + ": expected 'pods:' and optionally 'services:'");
        }
        unknown(where, root, Set.of("pods", "services"));
        List<ClusterSpec.PodSpec> pods = new ArrayList<>();
        int i = 0;
        for (JsonNode p : root.path("pods")) {
            String at = where + ": pods[" + i++ + "]";
            unknown(at, p, Set.of("name", "namespace", "serviceAccount", "node", "labels"));
            String name = text(at, p, "name", null);
            String node = text(at, p, "node", null);
            if (!node.matches("node[1-9][0-9]*") || Integer.parseInt(node.substring(4)) > nodes) {
                throw UserException.invalid(at + ".node: '" + node + "' is not one of node1..node" + nodes);
            }
            Map<String, String> labels = p.has("labels")
                    ? strings(at + ".labels", p.get("labels"))
                    : Map.of("app",
                            name);
            try {
                pods.add(new ClusterSpec.PodSpec(name, text(at, p, "namespace", "default"), text(at, p,
                        "serviceAccount", "default"), Integer.parseInt(node.substring(4)) - 1, labels));
            } catch (IllegalArgumentException e) {
                throw UserException.invalid(at + ": " + e.getMessage());
            }
        }
        List<Service> services = new ArrayList<>();
        i = 0;
        for (JsonNode s : root.path("services")) {
            String at = where + ": services[" + i++ + "]";
            unknown(at, s, Set.of("name", "namespace", "selector", "port", "targetPort"));
            int port = s.path("port").asInt(0);
            services.add(new Service(text(at, s, "name", null), text(at, s, "namespace", "default"), strings(at
                    + ".selector", s.path("selector")), port, s.path("targetPort").asInt(port)));
        }
        return new PodsFile(pods, services);
    }

    /** The services with addresses from {@link LocalMesh#serviceAddress}. */
    List<MeshSpec.ServiceSpec> serviceSpecs(ClusterSpec cluster) {
        List<MeshSpec.ServiceSpec> out = new ArrayList<>();
        for (int i = 0; i < services.size(); i++) {
            Service s = services.get(i);
            try {
                out.add(new MeshSpec.ServiceSpec(s.name(), s.namespace(), s.selector(), LocalMesh.serviceAddress(
                        cluster, i + 1), s.port(), s.targetPort()));
            } catch (IllegalArgumentException e) {
                throw UserException.invalid("--pods: services[" + i + "]: " + e.getMessage());
            }
        }
        return out;
    }

    private static void unknown(String at, JsonNode n, Set<String> known) {
        if (!n.isObject()) {
            throw UserException.invalid(at + ": expected a mapping");
        }
        for (Iterator<String> it = n.fieldNames(); it.hasNext();) {
            String f = it.next();
            if (!known.contains(f)) {
                throw UserException.invalid(at + ": unknown field '" + f + "' (known: " + String.join(", ", known
                        .stream().sorted().toList()) + ")");
            }
        }
    }

    private static String text(String at, JsonNode n, String field, String dflt) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) {
            if (dflt == null) {
                throw UserException.invalid(at + ": '" + field + "' is required");
            }
            return dflt;
        }
        if (!v.isValueNode()) {
            throw UserException.invalid(at + "." + field + ": expected a string");
        }
        return v.asText();
    }

    private static Map<String, String> strings(String at, JsonNode n) {
        if (!n.isObject()) {
            throw UserException.invalid(at + ": expected a mapping of strings");
        }
        Map<String, String> out = new LinkedHashMap<>();
        n.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }
}
