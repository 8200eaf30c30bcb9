package dev.wisp.cli.policy;

import dev.wisp.cli.InputFile;
import dev.wisp.cli.UsageCommand;
import dev.wisp.cli.UserException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code wisp policy}: offline tools for authorization policy. */
@Command(name = "policy", mixinStandardHelpOptions = true, description = "Authorization policy tools.", subcommands = {
        PolicyCommand.Check.class})
public final class PolicyCommand extends UsageCommand {

    /** Exit codes of {@code wisp policy check}. */
    public static final int ALLOW = 0;
    public static final int DENY = 1;
    public static final int INVALID = 2;

    /** {@code wisp policy check}: the L4 verdict for one connection, offline. */
    @Command(name = "check", mixinStandardHelpOptions = true, description = {
            "Evaluate the L4 authorization decision for one connection offline, with the node agent's own",
            "authorizer, over the control plane's reading of FILE. Prints the verdict and the policy that decided.",
            "", "Exit codes: 0 allow, 1 deny, 2 invalid file or arguments."})
    static final class Check implements Callable<Integer> {
        @CommandLine.Spec
        CommandLine.Model.CommandSpec spec;

        @Option(names = {"-f",
                "--file"}, required = true, paramLabel = "FILE", description = "YAML of AuthorizationPolicy (and optionally Pod, MeshConfig …) objects, as the control plane reads them.")
        Path file;

        @Option(names = "--source-principal", required = true, paramLabel = "P", description = "The client's SPIFFE ID (spiffe://cluster.local/ns/NS/sa/SA or without spiffe://).")
        String sourcePrincipal;

        @Option(names = "--source-ip", required = true, paramLabel = "IP", description = "The client's address.")
        String sourceIp;

        @Option(names = "--destination", required = true, paramLabel = "IP:PORT", description = "The destination workload's address and port.")
        String destination;

        @Option(names = "--destination-workload", paramLabel = "NS/NAME", description = "The destination pod (needed when FILE declares no pod with the destination address).")
        String destinationWorkload;

        @Option(names = "--destination-labels", paramLabel = "K=V", split = ",", description = "Labels of an assumed destination pod (for policies with selectors).")
        Map<String, String> destinationLabels = new LinkedHashMap<>();

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            int colon = destination.lastIndexOf(':');
            if (colon <= 0) {
                throw new UserException("--destination: '" + destination + "' is not IP:PORT", INVALID);
            }
            int port = port(destination.substring(colon + 1));
            PolicyCheck.Query query = new PolicyCheck.Query(sourcePrincipal, ip("--source-ip", sourceIp),
                    ip("--destination", destination.substring(0, colon).replace("[", "").replace("]", "")), port,
                    Optional.ofNullable(destinationWorkload), destinationLabels);
            String text = read(file);
            PolicyCheck.Result r;
            try {
                r = PolicyCheck.check(file.getFileName().toString(), text, query);
            } catch (PolicyCheck.InvalidFileException e) {
                throw InputFile.refused(file + " is", e.errors(), err, INVALID);
            } catch (IllegalArgumentException e) {
                throw new UserException(e.getMessage(), INVALID);
            }
            out.println((r.verdict().allowed() ? "ALLOW" : "DENY") + " " + r.verdict().reason());
            out.println(
                    "destination: " + r.destination() + (r.assumedDestination() ? " (assumed: not in the file)" : ""));
            out.println("policies in scope: " + (r.inScope().isEmpty() ? "none" : String.join(", ", r.inScope())));
            for (String dry : r.verdict().dryRun()) {
                out.println("dry-run " + dry);
            }
            out.flush();
            return r.verdict().allowed() ? ALLOW : DENY;
        }

        private static String read(Path file) {
            return InputFile.read(file, INVALID);
        }

        private static int port(String text) {
            try {
                int p = Integer.parseInt(text);
                if (p >= 1 && p <= 65535) {
                    return p;
                }
            } catch (NumberFormatException e) {
                throw new UserException("--destination: '" + text + "' is not a port (1-65535)", INVALID);
            }
            throw new UserException("--destination: '" + text + "' is not a port (1-65535)", INVALID);
        }

        private static InetAddress ip(String option, String text) {
            if (!text.matches("[0-9a-fA-F:.]+")) {
                throw new UserException(option + ": '" + text + "' is not an IP address", INVALID);
            }
            try {
                return InetAddress.ofLiteral(text);
            } catch (IllegalArgumentException e) {
                throw new UserException(option + ": '" + text + "' is not an IP address", INVALID);
            }
        }
    }
}
