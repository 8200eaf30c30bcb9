package dev.wisp.cli.policy;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.controlplane.config.ConfigDecoder;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.translate.Translation;
import dev.wisp.controlplane.translate.Translator;
import dev.wisp.node.rbac.Authorizer;
import dev.wisp.node.rbac.ConnectionAttributes;
import dev.wisp.node.rbac.Verdict;
import dev.wisp.node.state.InvalidResourceException;
import dev.wisp.node.state.StateUpdates;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.spiffe.SpiffeId;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The offline L4 decision of {@code wisp policy check} (pure: no I/O). The file is read with the
 * control plane's decoder and translation, the translation is fed into a node agent's
 * {@link WorkloadIndex} exactly as workload discovery would feed it, and the agent's
 * {@link Authorizer} decides: the same code path a connection takes in the agent.
 *
 * <p>The destination is the workload named by {@code --destination-workload} or, without it, the
 * pod of the file that has the destination address. When the file declares no such pod, one is
 * assumed (namespace and name from {@code --destination-workload}, the given labels), so that a
 * file of policies alone can be checked.
 */
public final class PolicyCheck {
    private static final String ASSUMED_NODE = "policy-check";

    /** What to check. {@code destinationWorkload} is "namespace/name" or empty. */
    public record Query(String sourcePrincipal, InetAddress sourceIp, InetAddress destinationIp, int destinationPort,
            Optional<String> destinationWorkload, Map<String, String> destinationLabels) {
        public Query {
            requireNonNull(sourcePrincipal, "sourcePrincipal");
            requireNonNull(sourceIp, "sourceIp");
            requireNonNull(destinationIp, "destinationIp");
            requireNonNull(destinationWorkload, "destinationWorkload");
            destinationLabels = Map.copyOf(destinationLabels);
        }
    }

    /** The decision, the destination it was taken for, and the policies that were in scope. */
    public record Result(Verdict verdict, String destination, boolean assumedDestination, List<String> inScope) {}

    /** The file is invalid: its errors, in the control plane's {@code file:line Kind ns/name: ...} shape. */
    public static final class InvalidFileException extends Exception {
        private static final long serialVersionUID = 1L;
        private final List<ConfigError> errors;

        InvalidFileException(List<ConfigError> errors) {
            super(errors.size() + " error(s)");
            this.errors = List.copyOf(errors);
        }

        public List<ConfigError> errors() {
            return errors;
        }
    }

    private PolicyCheck() {}

    /**
     * Decides {@code query} under the objects of {@code text} (file name {@code file}).
     *
     * @throws InvalidFileException when the file would be refused by the control plane
     * @throws IllegalArgumentException when the destination cannot be identified
     */
    public static Result check(String file, String text, Query query) throws InvalidFileException {
        requireNonNull(file, "file");
        requireNonNull(text, "text");
        requireNonNull(query, "query");
        ConfigDecoder.Decoded decoded = ConfigDecoder.decode(file, text);
        Pod destination = findPod(decoded.objects(), query);
        boolean assumed = destination == null;
        ConfigDecoder.Decoded withDestination = decoded;
        if (assumed) {
            destination = assumedPod(query);
            List<MeshObject> objects = new ArrayList<>(decoded.objects());
            objects.add(destination);
            Map<ObjectRef, Origin> origins = new LinkedHashMap<>(decoded.origins());
            origins.put(destination.ref(), new Origin("<command line>", 0));
            withDestination = new ConfigDecoder.Decoded(objects, origins, decoded.errors());
        }
        LoadResult loaded = ConfigSet.merge(List.of(withDestination));
        if (!loaded.valid()) {
            throw new InvalidFileException(loaded.errors());
        }
        Translation translation = Translator.translate(loaded.model(), null);
        WorkloadIndex index = WorkloadIndex.create();
        try {
            for (String type : StateUpdates.TYPES) {
                index.apply(type, List.copyOf(translation.resources(type).values()), List.of());
            }
        } catch (InvalidResourceException e) {
            throw new IllegalStateException("the agent refuses the translation of " + file + ": " + e.getMessage(), e);
        }
        String uid = destination.uid();
        Workload workload = index.snapshot().workload(uid).orElseThrow(() -> new IllegalStateException(
                "the translation of " + file + " has no workload for the destination pod"));
        List<Authorization> policies = index.policiesFor(workload);
        Verdict verdict = Authorizer.authorize(new ConnectionAttributes(query.sourceIp(),
                Optional.of(sourceIdentity(query.sourcePrincipal())), query.destinationIp(), query.destinationPort()),
                policies);
        return new Result(verdict, workload.getNamespace() + "/" + workload.getName(), assumed,
                policies.stream().map(p -> p.getNamespace() + "/" + p.getName()).toList());
    }

    /** {@code --source-principal} as a SPIFFE ID; Istio's form without {@code spiffe://} is accepted too. */
    private static SpiffeId sourceIdentity(String principal) {
        return SpiffeId.parse(principal.startsWith("spiffe://") ? principal : "spiffe://" + principal);
    }

    private static Pod findPod(List<MeshObject> objects, Query query) {
        for (MeshObject o : objects) {
            if (o instanceof Pod p) {
                boolean match = query.destinationWorkload().isPresent()
                        ? (p.ref().namespace() + "/" + p.ref().name()).equals(query.destinationWorkload().get())
                        : p.ips().contains(query.destinationIp());
                if (match) {
                    return p;
                }
            }
        }
        return null;
    }

    private static Pod assumedPod(Query query) {
        String nsName = query.destinationWorkload().orElseThrow(() -> new IllegalArgumentException(
                "no pod in the file has address " + query.destinationIp().getHostAddress()
                        + "; name the destination with --destination-workload NS/NAME"));
        int slash = nsName.indexOf('/');
        if (slash <= 0 || slash == nsName.length() - 1 || nsName.indexOf('/', slash + 1) >= 0) {
            throw new IllegalArgumentException("--destination-workload: '" + nsName + "' is not NAMESPACE/NAME");
        }
        String ns = nsName.substring(0, slash);
        String name = nsName.substring(slash + 1);
        return new Pod(new ObjectRef(Pod.KIND, ns, name), "policy-check-" + ns + "-" + name,
                query.destinationLabels(), ASSUMED_NODE, "default", List.of(query.destinationIp()), true);
    }
}
