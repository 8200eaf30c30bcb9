package dev.wisp.node.state;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.util.JsonFormat;
import dev.wisp.api.workload.v1.Resource;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A static state file: the same resources the control plane would send, for an agent without a
 * control plane (local tests, {@code wisp node --state FILE}). YAML or JSON:
 *
 * <pre>
 * resources:
 *   - name: pod-a                      # Resource.name
 *     workload: {uid: pod-a, namespace: default, serviceAccount: client, trustDomain: cluster.local,
 *                node: node1, addresses: [10.0.1.10], tunnelProtocol: TUNNEL_HBONE}
 *   - name: node1
 *     node: {name: node1, addresses: [10.0.0.1]}
 *   - name: default/deny-client
 *     authorization: {name: deny-client, namespace: default, scope: NAMESPACE, action: DENY,
 *                     groups: [{rules: [{matches: [{principals: [{exact: cluster.local/ns/default/sa/client}]}]}]}]}
 * </pre>
 *
 * Field names are the proto's (camelCase or snake_case). Addresses are written as IP text (the
 * proto's bytes are base64 in canonical JSON); CIDRs ({@code sourceIps} etc.) may be written as
 * {@code "10.0.0.0/8"}. The file is loaded through {@link StateUpdates#apply}, so it is validated
 * exactly like control-plane input and replaces everything of each type.
 */
public final class StateFile {
    private static final Set<String> CIDR_FIELDS = Set.of("sourceIps", "source_ips", "notSourceIps",
            "not_source_ips", "destinationIps", "destination_ips", "notDestinationIps", "not_destination_ips");
    private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

    private StateFile() {}

    /** Parses {@code file} into resources by type URL. */
    public static Map<String, List<Resource>> read(Path file) throws IOException, InvalidResourceException {
        requireNonNull(file, "file");
        JsonNode root = YAML.readTree(Files.readString(file));
        return parse(root, file.toString());
    }

    static Map<String, List<Resource>> parse(JsonNode root, String origin) throws InvalidResourceException {
        Map<String, List<Resource>> out = new LinkedHashMap<>();
        StateUpdates.TYPES.forEach(t -> out.put(t, new ArrayList<>()));
        if (root == null || !root.has("resources") || !root.get("resources").isArray()) {
            throw new InvalidResourceException(origin + ": expected a top-level 'resources' list");
        }
        int i = 0;
        for (JsonNode item : root.get("resources")) {
            JsonNode converted = convert(item.deepCopy(), "");
            Resource.Builder b = Resource.newBuilder();
            try {
                JsonFormat.parser().merge(converted.toString(), b);
            } catch (InvalidProtocolBufferException e) {
                throw new InvalidResourceException(origin + ": resources[" + i + "]: " + e.getMessage());
            }
            Resource r = b.build();
            String type = switch (r.getKindCase()) {
                case WORKLOAD -> StateUpdates.WORKLOAD;
                case SERVICE -> StateUpdates.SERVICE;
                case AUTHORIZATION -> StateUpdates.AUTHORIZATION;
                case NODE -> StateUpdates.NODE;
                case KIND_NOT_SET -> throw new InvalidResourceException(origin + ": resources[" + i
                        + "] has none of workload, service, authorization, node");
            };
            out.get(type).add(r);
            i++;
        }
        return out;
    }

    /** Loads {@code file} into {@code target}, replacing what it held of each type. */
    public static void load(Path file, StateUpdates target) throws IOException, InvalidResourceException {
        Map<String, List<Resource>> byType = read(file);
        for (String type : StateUpdates.TYPES) {
            List<Resource> rs = byType.get(type);
            Set<String> keep = new java.util.HashSet<>();
            rs.forEach(r -> keep.add(r.getName()));
            List<String> removed = target.versions(type).keySet().stream().filter(n -> !keep.contains(n)).toList();
            target.apply(type, rs, removed);
        }
    }

    private static JsonNode convert(JsonNode node, String field) throws InvalidResourceException {
        if (node instanceof ObjectNode o) {
            var names = new ArrayList<String>();
            o.fieldNames().forEachRemaining(names::add);
            for (String name : names) {
                JsonNode v = o.get(name);
                if ((name.equals("address") || name.equals("addresses")) && v.isTextual()) {
                    o.set(name, TextNode.valueOf(base64(v.asText(), name)));
                } else if (name.equals("addresses") && v.isArray()) {
                    ArrayNode a = (ArrayNode) v;
                    for (int i = 0; i < a.size(); i++) {
                        if (a.get(i).isTextual()) {
                            a.set(i, TextNode.valueOf(base64(a.get(i).asText(), name)));
                        }
                    }
                } else {
                    o.set(name, convert(v, name));
                }
            }
        } else if (node instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                JsonNode e = a.get(i);
                if (CIDR_FIELDS.contains(field) && e.isTextual()) {
                    String[] parts = e.asText().split("/");
                    ObjectNode cidr = a.objectNode();
                    cidr.put("address", base64(parts[0], field));
                    byte[] raw = ip(parts[0], field);
                    cidr.put("length", parts.length > 1 ? Integer.parseInt(parts[1]) : raw.length * 8);
                    a.set(i, cidr);
                } else {
                    a.set(i, convert(e, field));
                }
            }
        }
        return node;
    }

    private static String base64(String text, String field) throws InvalidResourceException {
        return Base64.getEncoder().encodeToString(ip(text, field));
    }

    private static byte[] ip(String text, String field) throws InvalidResourceException {
        try {
            return InetAddress.ofLiteral(text).getAddress();
        } catch (IllegalArgumentException e) {
            throw new InvalidResourceException("field " + field + ": '" + text + "' is not an IP address");
        }
    }
}
