package dev.wisp.cli.flows;

import static java.util.Objects.requireNonNull;

import dev.wisp.node.telemetry.FlowRecord;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;

/**
 * Which connections {@code wisp flows} prints ({@code --from}, {@code --to}, {@code --verdict},
 * {@code --namespace}); every given condition must hold. Pure: parsed once, then a predicate over
 * records.
 *
 * <p>{@code --from} and {@code --to} name a workload as {@code namespace/name} or {@code name} (any
 * namespace), or a client or server outside the mesh by its IP address; {@code --to} also matches
 * the service the client asked for ({@code server} or {@code default/server} for {@code
 * server.default.svc.cluster.local}). {@code --namespace} matches either end, as Hubble's does.
 */
public record FlowFilter(Optional<Endpoint> from, Optional<Endpoint> to, Optional<String> verdict,
        Optional<String> namespace) implements Predicate<FlowRecord> {
    /** The verdicts a record has. */
    public static final List<String> VERDICTS = List.of(FlowRecord.ALLOWED, FlowRecord.DENIED, FlowRecord.FAILED);

    /** Every connection. */
    public static final FlowFilter ALL = new FlowFilter(Optional.empty(), Optional.empty(), Optional.empty(),
            Optional.empty());

    public FlowFilter {
        requireNonNull(from, "from");
        requireNonNull(to, "to");
        requireNonNull(verdict, "verdict");
        requireNonNull(namespace, "namespace");
    }

    /** One end of a connection as the user named it: {@code namespace} may be empty (any). */
    public record Endpoint(String namespace, String name) {
        public Endpoint {
            requireNonNull(namespace, "namespace");
            requireNonNull(name, "name");
        }

        /** {@code ns/name}, {@code name} or an IP address. */
        static Endpoint parse(String option, String text) {
            String t = text.strip();
            int slash = t.indexOf('/');
            String ns = slash < 0 ? "" : t.substring(0, slash);
            String name = slash < 0 ? t : t.substring(slash + 1);
            if (name.isEmpty() || name.contains("/") || (slash >= 0 && ns.isEmpty())) {
                throw new IllegalArgumentException(option + ": '" + text + "' is not NAMESPACE/WORKLOAD, WORKLOAD or "
                        + "an IP address");
            }
            return new Endpoint(ns, name);
        }

        boolean matches(String ns, String workload, String address) {
            if (namespace.isEmpty() && host(address).equals(name)) {
                return true;
            }
            return workload.equals(name) && (namespace.isEmpty() || namespace.equals(ns));
        }
    }

    /**
     * The filter the options describe; null options are not conditions.
     *
     * @throws IllegalArgumentException naming the option and what it accepts
     */
    public static FlowFilter parse(String from, String to, String verdict, String namespace) {
        Optional<String> v = Optional.ofNullable(verdict).map(String::strip);
        if (v.isPresent() && !VERDICTS.contains(v.get())) {
            throw new IllegalArgumentException("--verdict: '" + verdict + "' is not one of " + String.join(", ",
                    VERDICTS));
        }
        Optional<String> ns = Optional.ofNullable(namespace).map(String::strip);
        if (ns.isPresent() && (ns.get().isEmpty() || ns.get().contains("/"))) {
            throw new IllegalArgumentException("--namespace: '" + namespace + "' is not a namespace");
        }
        return new FlowFilter(Optional.ofNullable(from).map(f -> Endpoint.parse("--from", f)), Optional.ofNullable(
                to).map(t -> Endpoint.parse("--to", t)), v, ns);
    }

    @Override
    public boolean test(FlowRecord f) {
        if (verdict.isPresent() && !verdict.get().equals(f.verdict())) {
            return false;
        }
        if (namespace.isPresent() && !namespace.get().equals(f.sourceNamespace()) && !namespace.get().equals(f
                .destinationNamespace())) {
            return false;
        }
        if (from.isPresent() && !from.get().matches(f.sourceNamespace(), f.sourceWorkload(), f.sourceAddress())) {
            return false;
        }
        return to.isEmpty() || to.get().matches(f.destinationNamespace(), f.destinationWorkload(), f
                .destinationAddress()) || service(to.get(), f.destinationService());
    }

    /** {@code server.default.svc.cluster.local} is {@code server} and {@code default/server}. */
    private static boolean service(Endpoint e, String hostname) {
        String[] labels = hostname.split("\\.");
        return labels.length >= 2 && labels[0].equals(e.name()) && (e.namespace().isEmpty() || labels[1].equals(e
                .namespace()));
    }

    private static String host(String address) {
        int colon = address.lastIndexOf(':');
        String h = colon < 0 ? address : address.substring(0, colon);
        return h.startsWith("[") && h.endsWith("]") ? h.substring(1, h.length() - 1) : h;
    }
}
