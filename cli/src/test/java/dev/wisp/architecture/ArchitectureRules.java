package dev.wisp.architecture;

import static java.util.Map.entry;

import dev.wisp.architecture.ClassGraph.WispClass;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * ARCHITECTURE.md's dependency arrows as rules over a {@link ClassGraph}. Pure: a test hands it the real class
 * path or a few classes it generated, and reads the violations back as sentences naming both classes.
 *
 * <p>
 * Four kinds of rule: (1) a module's main code uses only the modules the module map allows; (2) a package named
 * {@code internal} is used only inside its own module; (3) no package is split over two modules (one package,
 * one owner, as a {@code module-info.java} would demand); (4) the pure cores do not reach the shells around them
 * (the control plane's model, config and translation; WireGuard's protocol core; the agent's state index and
 * authorizer; the SPIFFE value types). Rules are at module and package level, never naming a class, so moving
 * classes inside a package keeps them true.
 */
final class ArchitectureRules {

    /**
     * The module map: the modules each module's main code may use. Libraries use no agent, the agents use the
     * libraries and not each other, only the launcher uses the agents; test-support is for tests only, so no
     * main code uses it; {@code base} uses none of ours, so every module may use it. {@code ztunnel-node} uses {@code wireguard} to run
     * the node's device in the mesh. {@code l7-waypoint} uses {@code ztunnel-node}: the waypoint is an HBONE server
     * and client built on the agent's own classes (one HBONE implementation), never the reverse.
     */
    static final Map<String, Set<String>> MODULE_DEPENDENCIES = Map.ofEntries(
            entry("base", Set.of()),
            entry("linux-native", Set.of("base")),
            entry("api", Set.of("base")),
            entry("spiffe", Set.of("base")),
            entry("wireguard", Set.of("base", "linux-native")),
            entry("bpf", Set.of("base", "linux-native")),
            entry("ztunnel-node", Set.of("base", "api", "spiffe", "bpf", "wireguard", "linux-native")),
            entry("xds-control-plane", Set.of("base", "api", "spiffe")),
            entry("l7-waypoint", Set.of("base", "api", "spiffe", "ztunnel-node")),
            entry("test-support", Set.of("base", "linux-native")),
            entry("local-mesh", Set.of("base", "linux-native")),
            entry("cli", Set.of("base", "api", "spiffe", "wireguard", "bpf", "linux-native", "ztunnel-node",
                    "xds-control-plane", "l7-waypoint", "local-mesh")));

    /**
     * A package-level arrow that must not exist. Packages are written as {@code a.b} (that package only) or
     * {@code a.b..} (it and its subpackages).
     */
    record ForbiddenUse(List<String> from, List<String> to, String why) {}

    static final List<ForbiddenUse> FORBIDDEN_USES = List.of(
            new ForbiddenUse(List.of("dev.wisp.controlplane.model.."),
                    List.of("dev.wisp.controlplane", "dev.wisp.controlplane.config..", "dev.wisp.controlplane.route..",
                            "dev.wisp.controlplane.translate..", "dev.wisp.controlplane.xds..",
                            "dev.wisp.controlplane.ca.."),
                    "the model is the control plane's bottom layer: every source produces it, every consumer reads it"),
            new ForbiddenUse(List.of("dev.wisp.controlplane.config.."),
                    List.of("dev.wisp.controlplane", "dev.wisp.controlplane.translate..",
                            "dev.wisp.controlplane.xds..", "dev.wisp.controlplane.ca.."),
                    "config sources produce the model and know nothing of what is served from it"),
            new ForbiddenUse(List.of("dev.wisp.controlplane.translate.."),
                    List.of("dev.wisp.controlplane", "dev.wisp.controlplane.config..",
                            "dev.wisp.controlplane.xds..", "dev.wisp.controlplane.ca.."),
                    "translation is a pure function of the model"),
            new ForbiddenUse(List.of("dev.wisp.controlplane.route.."),
                    List.of("dev.wisp.controlplane", "dev.wisp.controlplane.config..",
                            "dev.wisp.controlplane.translate..", "dev.wisp.controlplane.xds..",
                            "dev.wisp.controlplane.ca.."),
                    "the route engine is a pure function of the model and one request"),
            new ForbiddenUse(List.of("dev.wisp.waypoint.route.."),
                    List.of("dev.wisp.waypoint", "dev.wisp.waypoint.proxy..", "dev.wisp.waypoint.xds..",
                            "dev.wisp.node.."),
                    "the waypoint's route selection is a pure function of Envoy's route protos and one request"),
            new ForbiddenUse(
                    List.of("dev.wisp.wireguard.crypto..", "dev.wisp.wireguard.noise..",
                            "dev.wisp.wireguard.routing..", "dev.wisp.wireguard.device.."),
                    List.of("dev.wisp.linux..", "dev.wisp.wireguard.io..", "dev.wisp.wireguard.uapi..",
                            "dev.wisp.wireguard.netlink.."),
                    "WireGuard's protocol core has no I/O: sockets, TUN and threads live in wireguard.io, the kernel "
                            + "driver's netlink sockets in wireguard.netlink"),
            new ForbiddenUse(List.of("dev.wisp.wireguard.crypto.."),
                    List.of("dev.wisp.wireguard", "dev.wisp.wireguard.noise..", "dev.wisp.wireguard.routing..",
                            "dev.wisp.wireguard.device.."),
                    "the primitives know no protocol"),
            new ForbiddenUse(List.of("dev.wisp.node.state..", "dev.wisp.node.rbac.."),
                    List.of("dev.wisp.node", "dev.wisp.node.proxy..", "dev.wisp.node.admin..",
                            "dev.wisp.node.capture..", "dev.wisp.node.controlplane..", "dev.wisp.node.telemetry..",
                            "dev.wisp.node.xds.."),
                    "the state index and the authorizer are pure cores the proxy, xds client and admin use"),
            new ForbiddenUse(List.of("dev.wisp.spiffe"),
                    List.of("dev.wisp.spiffe.ca..", "dev.wisp.spiffe.tls..", "dev.wisp.spiffe.manager..",
                            "dev.wisp.spiffe.workload.."),
                    "SPIFFE values are used by the CA, TLS and the manager, not the other way round"));

    private ArchitectureRules() {}

    /** Every violation in the graph, sorted, one sentence each; empty when the code keeps the architecture. */
    static List<String> violations(ClassGraph graph) {
        Set<String> out = new TreeSet<>();
        Map<String, String> packageOwner = new HashMap<>();
        for (WispClass c : graph.classes().values()) {
            if (!MODULE_DEPENDENCIES.containsKey(c.module())) {
                out.add("module " + c.module() + " (" + c.name() + ") is not in the module map: add it to"
                        + " ARCHITECTURE.md and ArchitectureRules.MODULE_DEPENDENCIES");
            }
            String owner = packageOwner.putIfAbsent(c.packageName(), c.module());
            if (owner != null && !owner.equals(c.module())) {
                out.add("package " + c.packageName() + " is split over modules " + owner + " and " + c.module()
                        + " (" + c.name() + "): one package, one module");
            }
            for (String ref : c.references()) {
                WispClass target = graph.get(ref);
                if (target != null) {
                    check(c, target, out);
                }
            }
        }
        return new ArrayList<>(out);
    }

    private static void check(WispClass from, WispClass to, Set<String> out) {
        boolean sameModule = from.module().equals(to.module());
        Set<String> allowed = MODULE_DEPENDENCIES.getOrDefault(from.module(), Set.of());
        if (!sameModule && !allowed.contains(to.module())) {
            out.add(from.module() + " -> " + to.module() + ": " + from.name() + " uses " + to.name()
                    + "; the module map allows " + from.module() + " -> " + new TreeSet<>(allowed));
        }
        if (!sameModule && isInternal(to.packageName())) {
            out.add(from.name() + " (" + from.module() + ") uses " + to.name() + ", internal to " + to.module());
        }
        for (ForbiddenUse rule : FORBIDDEN_USES) {
            if (matchesAny(rule.from(), from.packageName()) && matchesAny(rule.to(), to.packageName())) {
                out.add(from.name() + " uses " + to.name() + ": " + rule.why());
            }
        }
    }

    private static boolean isInternal(String pkg) {
        return pkg.endsWith(".internal") || pkg.contains(".internal.");
    }

    private static boolean matchesAny(List<String> patterns, String pkg) {
        for (String p : patterns) {
            boolean matches = p.endsWith("..")
                    ? pkg.equals(p.substring(0, p.length() - 2)) || pkg.startsWith(p.substring(0, p.length() - 1))
                    : pkg.equals(p);
            if (matches) {
                return true;
            }
        }
        return false;
    }
}
