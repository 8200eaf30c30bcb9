package dev.wisp.controlplane.kubernetes;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.wisp.controlplane.model.NodeDef;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import java.util.Map;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes a node's validated WireGuard key and endpoint as annotations on its {@code Node} (as
 * Cilium keeps its nodes' keys), so that {@code kubectl get node -o yaml} shows them and a
 * restarted control plane serves them from the Node until the agent registers again. A JSON merge
 * patch of {@code metadata.annotations} only, never a whole object (the chart's role may patch
 * nodes, nothing more); skipped when the Node already carries both values. Only the control plane
 * writes them, only for claims its key registry accepted: agents have no right on Nodes. Called on
 * the source's reading thread.
 */
final class NodeKeyAnnotations {
    private static final Logger log = LoggerFactory.getLogger(NodeKeyAnnotations.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private final KubernetesClient client;
    /** The Node as last read (the informer's store), or null. */
    private final Function<String, Node> cached;

    NodeKeyAnnotations(KubernetesClient client, Function<String, Node> cached) {
        this.client = client;
        this.cached = cached;
    }

    void write(String node, String publicKey, String endpoint) {
        Node n = cached.apply(node);
        Map<String, String> now = n == null || n.getMetadata().getAnnotations() == null
                ? Map.of()
                : n.getMetadata().getAnnotations();
        if (publicKey.equals(now.get(NodeDef.WIREGUARD_KEY_ANNOTATION)) && endpoint.equals(now.get(
                NodeDef.WIREGUARD_ENDPOINT_ANNOTATION))) {
            return;
        }
        try {
            client.nodes().withName(node).patch(PatchContext.of(PatchType.JSON_MERGE), patch(publicKey, endpoint));
            log.info("Node {} annotated with its WireGuard key {} at {}", node, publicKey, endpoint);
        } catch (KubernetesClientException e) {
            log.warn("cannot annotate Node {} with its WireGuard key: {} (may the control plane patch nodes?)", node,
                    e.getMessage());
        }
    }

    /** {@code {"metadata":{"annotations":{key annotation: key, endpoint annotation: endpoint}}}}. */
    static String patch(String publicKey, String endpoint) {
        try {
            return JSON.writeValueAsString(Map.of("metadata", Map.of("annotations", Map.of(
                    NodeDef.WIREGUARD_KEY_ANNOTATION, publicKey, NodeDef.WIREGUARD_ENDPOINT_ANNOTATION, endpoint))));
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
