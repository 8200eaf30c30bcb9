package dev.wisp.cli;

import dev.wisp.api.workload.v1.Authorization;
import dev.wisp.api.workload.v1.Resource;
import dev.wisp.api.workload.v1.Workload;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.model.Cidr;
import dev.wisp.controlplane.model.Pod;
import dev.wisp.controlplane.translate.Translation;
import dev.wisp.controlplane.translate.Translator;
import dev.wisp.controlplane.translate.TypeUrls;
import dev.wisp.node.rbac.Authorizer;
import dev.wisp.node.rbac.ConnectionAttributes;
import dev.wisp.node.rbac.Verdict;
import java.io.IOException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code wisp policy}: offline tools for AuthorizationPolicy. */
@Command(name = "policy", mixinStandardHelpOptions = true, description = "Work with authorization policies offline.", subcommands = PolicyCommand.Check.class)
public final class PolicyCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        spec.commandLine().usage(spec.commandLine().getOut());
        return 0;
    }

    /**
     * {@code wisp policy check}: the L4 verdict for one connection, computed as the node agent
     * computes it: the control plane's translation (Istio policy → L4, scope) then the agent's
     * {@link Authorizer}.
     */
    @Command(name = "check", mixinStandardHelpOptions = true, description = {
            "Evaluate the L4 decision for one connection against the policies of a YAML file, with the",
            "same code the node agent runs. Prints the verdict and the policy that decided it.",
            "Exit 0 when allowed, 3 when denied, 1 when the file is invalid."})
    static final class Check implements Callable<Integer> {
        static final int DENIED = 3;

        @Option(names = {"-f",
                "--filename"}, required = true, paramLabel = "POLICIES.yaml", description = "Policies (and optionally the destination's Pod, for selector policies).")
        Path file;

        @Option(names = "--source-principal", paramLabel = "P", description = "Client SPIFFE ID (spiffe:// optional); omit for a plaintext client.")
        String principal;

        @Option(names = "--source-ip", required = true, paramLabel = "IP")
        String sourceIp;

        @Option(names = "--destination", required = true, paramLabel = "IP:PORT")
        String destination;

        @Option(names = "--destination-workload", paramLabel = "NS/NAME", description = "The destination pod: decides which namespace and selector policies are in scope (default: every policy of the file).")
        String workload;

        @Spec
        CommandSpec spec;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            String text;
            try {
                text = Files.readString(file);
            } catch (IOException e) {
                throw new UserException("cannot read " + file + ": " + e.getMessage());
            }
            LoadResult r = ConfigSet.load(Map.of(file.getFileName().toString(), text));
            if (!r.valid()) {
                r.errors().stream().map(ConfigError::toString).forEach(e -> err.println("error: " + e));
                err.flush();
                return 1;
            }
            InetAddress src = ip("--source-ip", sourceIp);
            int colon = destination.lastIndexOf(':');
            if (colon <= 0) {
                throw new UserException("--destination: '" + destination + "' is not IP:PORT", 2);
            }
            InetAddress dst = ip("--destination", destination.substring(0, colon).replace("[", "").replace("]", ""));
            int port;
            try {
                port = Integer.parseInt(destination.substring(colon + 1));
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 1 || port > 65535) {
                throw new UserException("--destination: '" + destination + "' has no valid port", 2);
            }
            Translation t = Translator.translate(r.model(), null);
            List<Authorization> policies = inScope(r, t, err);
            t.warnings().forEach((ref, ws) -> ws.forEach(w -> err.println("Warning: " + ref + ": " + w)));
            Verdict v = Authorizer.authorize(new ConnectionAttributes(src, Optional.ofNullable(principal), dst, port),
                    policies);
            out.println((v.allowed() ? "ALLOW: " : "DENY: ") + v.reason());
            v.dryRun().forEach(d -> out.println("dry-run " + d));
            out.flush();
            err.flush();
            return v.allowed() ? 0 : DENIED;
        }

        private List<Authorization> inScope(LoadResult r, Translation t, PrintWriter err) {
            Map<String, Resource> all = t.resources(TypeUrls.AUTHORIZATION);
            List<Authorization> out = new ArrayList<>();
            if (workload == null) {
                all.values().forEach(res -> out.add(res.getAuthorization()));
                return out;
            }
            String[] parts = workload.split("/", -1);
            if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
                throw new UserException("--destination-workload: '" + workload + "' is not NS/NAME", 2);
            }
            Workload w = r.model().pods().stream()
                    .filter(p -> p.ref().namespace().equals(parts[0]) && p.ref().name().equals(parts[1]))
                    .map(Pod::uid)
                    .map(uid -> t.resources(TypeUrls.WORKLOAD).get(uid).getWorkload())
                    .findFirst()
                    .orElse(null);
            if (w == null) {
                err.println("note: " + file.getFileName() + " has no Pod " + workload
                        + ": selector policies are not evaluated (add the Pod with its labels)");
            }
            for (Resource res : all.values()) {
                Authorization a = res.getAuthorization();
                boolean applies = switch (a.getScope()) {
                    case GLOBAL -> true;
                    case NAMESPACE -> a.getNamespace().equals(parts[0]);
                    case WORKLOAD_SELECTOR -> w != null && w.getAuthorizationPoliciesList().contains(res.getName());
                    case UNRECOGNIZED -> false;
                };
                if (applies) {
                    out.add(a);
                }
            }
            return out;
        }

        private static InetAddress ip(String option, String text) {
            try {
                return Cidr.Addresses.parseLiteral(text);
            } catch (IllegalArgumentException e) {
                throw new UserException(option + ": " + e.getMessage(), 2);
            }
        }
    }
}
