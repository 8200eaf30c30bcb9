package dev.wisp.controlplane.kubernetes;

import io.fabric8.kubernetes.api.model.Event;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Tells the object's owner why the control plane refused it: a {@code Warning} Event with reason
 * {@code Refused} on the object, whose message names the field ({@code spec.action: 'DENYY' is not
 * one of ...}), so that {@code kubectl describe} shows it. Each refusal (object uid, resource
 * version, message) is posted once. Called on the source's reading thread only.
 */
final class RefusalEvents {
    private static final Logger log = LoggerFactory.getLogger(RefusalEvents.class);
    static final String REASON = "Refused";
    static final String COMPONENT = "wisp-control-plane";
    private final KubernetesClient client;
    /** Reading thread only. */
    private Set<String> posted = new HashSet<>();

    RefusalEvents(KubernetesClient client) {
        this.client = client;
    }

    void report(List<ClusterObjects.Refusal> refusals) {
        Set<String> now = new HashSet<>();
        for (ClusterObjects.Refusal r : refusals) {
            HasMetadata o = r.object();
            String key = o.getMetadata().getUid() + "@" + o.getMetadata().getResourceVersion() + ": " + r.message();
            now.add(key);
            if (posted.contains(key)) {
                continue;
            }
            log.warn("refused {} {}/{}: {}", o.getKind(), o.getMetadata().getNamespace(), o.getMetadata().getName(),
                    r.message());
            post(o, r.message());
        }
        posted = now;
    }

    private void post(HasMetadata o, String message) {
        String namespace = o.getMetadata().getNamespace() == null ? "default" : o.getMetadata().getNamespace();
        String now = Instant.now().toString();
        Event event = new EventBuilder()
                .withNewMetadata()
                .withGenerateName(o.getMetadata().getName().toLowerCase(Locale.ROOT) + ".")
                .withNamespace(namespace)
                .endMetadata()
                .withNewInvolvedObject()
                .withApiVersion(o.getApiVersion())
                .withKind(o.getKind())
                .withName(o.getMetadata().getName())
                .withNamespace(o.getMetadata().getNamespace())
                .withUid(o.getMetadata().getUid())
                .withResourceVersion(o.getMetadata().getResourceVersion())
                .endInvolvedObject()
                .withType("Warning")
                .withReason(REASON)
                .withMessage(message)
                .withNewSource().withComponent(COMPONENT).endSource()
                .withFirstTimestamp(now)
                .withLastTimestamp(now)
                .withCount(1)
                .build();
        try {
            client.v1().events().inNamespace(namespace).resource(event).create();
        } catch (KubernetesClientException e) {
            log.warn("cannot post the Event for {} {}: {} (may the control plane create events?)", o.getKind(),
                    o.getMetadata().getName(), e.getMessage());
        }
    }
}
