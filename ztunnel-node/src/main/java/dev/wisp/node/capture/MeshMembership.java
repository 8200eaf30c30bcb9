package dev.wisp.node.capture;

import com.fasterxml.jackson.databind.JsonNode;
import dev.wisp.base.Enrollment;
import dev.wisp.node.capture.CniPlugin.CniException;
import java.io.IOException;
import java.net.URI;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Whether the pod a CNI call is about is in the mesh, asked of the API server as the control plane
 * decides it ({@link Enrollment} over the pod's and its namespace's labels), so that the plugin lets
 * a pod the mesh does not enroll start without waiting for the agent. The pod's labels are not in
 * the CNI arguments, so the plugin reads the Pod and its Namespace with the token the chart's
 * install container copied beside the configuration (the {@code wisp-node} service account, which
 * may only get pods and namespaces), trusting only the cluster's CA file.
 *
 * <p>Fail closed: any answer that is not a clear "not enrolled" (the API unreachable, refused, the
 * pod missing or of another UID, a token that cannot be read) is CNI error 11, so the runtime retries
 * the sandbox later; it never lets a pod start unenrolled on a guess.
 */
final class MeshMembership {
    /** The plugin configuration's {@code kubernetes} object. */
    record Api(URI server, Path tokenFile, Path caFile, Enrollment enrollment) {
        static Api of(JsonNode k) throws CniException {
            URI server;
            try {
                server = URI.create(k.path("server").asText());
            } catch (IllegalArgumentException e) {
                throw invalid("kubernetes.server is not a URL");
            }
            if (!"https".equals(server.getScheme()) || server.getHost() == null) {
                throw invalid("kubernetes.server must be an https:// URL (the token is sent to it)");
            }
            String label = k.path("enrollLabel").asText(Enrollment.DEFAULT_LABEL);
            if (label.isBlank()) {
                throw invalid("kubernetes.enrollLabel must not be empty");
            }
            return new Api(server, path(k, "tokenFile"), path(k, "caFile"), new Enrollment(label, k.path(
                    "honorIstioLabels").asBoolean(false)));
        }

        private static Path path(JsonNode k, String field) throws CniException {
            try {
                Path p = Path.of(k.path(field).asText());
                if (p.isAbsolute()) {
                    return p;
                }
            } catch (InvalidPathException e) {
                // refused below
            }
            throw invalid("kubernetes." + field + " must be an absolute path");
        }

        private static CniException invalid(String msg) {
            return new CniException(CniPlugin.INVALID_CONFIG, msg);
        }
    }

    private MeshMembership() {}

    /** Whether pod {@code namespace/name} with {@code uid} is enrolled; error 11 when that cannot be told. */
    static boolean enrolled(Api api, String namespace, String name, String uid) throws CniException {
        KubeApiReader reader;
        try {
            reader = new KubeApiReader(api.server(), api.tokenFile(), api.caFile());
        } catch (IOException e) {
            throw unknown(namespace, name, "cannot read the plugin's API credentials (" + e.getMessage() + ")");
        }
        try (reader) {
            String ns = KubeApiReader.segment(namespace);
            JsonNode pod = get(reader, "/api/v1/namespaces/" + ns + "/pods/" + KubeApiReader.segment(name), namespace,
                    name);
            String actual = pod.at("/metadata/uid").asText();
            if (!uid.equals(actual)) {
                throw unknown(namespace, name, "the API's pod of that name has uid '" + actual + "', not " + uid);
            }
            return api.enrollment().enrolled(labels(pod), labels(get(reader, "/api/v1/namespaces/" + ns, namespace,
                    name)));
        }
    }

    private static JsonNode get(KubeApiReader reader, String path, String namespace, String name)
            throws CniException {
        try {
            KubeApiReader.Answer answer = reader.get(path);
            if (answer.status() != 200) {
                throw unknown(namespace, name, "GET " + path + " answered " + answer.status() + (answer.status() == 403
                        ? " (may the wisp-node service account get pods and namespaces?)"
                        : ""));
            }
            return answer.body();
        } catch (KubeApiReader.BadAnswer e) {
            throw unknown(namespace, name, e.getMessage());
        } catch (IOException e) {
            throw unknown(namespace, name, "GET " + reader.resolve(path) + " failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw unknown(namespace, name, "interrupted");
        }
    }

    private static Map<String, String> labels(JsonNode object) {
        Map<String, String> out = new HashMap<>();
        object.at("/metadata/labels").properties().forEach(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }

    private static CniException unknown(String namespace, String name, String why) {
        return new CniException(CniPlugin.TRY_AGAIN_LATER, "cannot tell whether pod " + namespace + "/" + name
                + " is in the mesh: " + why + "; not starting it unenrolled");
    }
}
