package dev.wisp.cli.policy;

import dev.wisp.cli.InputFile;
import dev.wisp.cli.IpAddressConverter;
import dev.wisp.cli.SocketAddressConverter;
import dev.wisp.cli.UsageCommand;
import dev.wisp.cli.UserException;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
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

    /** Exit codes of {@code wisp policy check}; input it cannot use exits {@link UserException#INVALID}. */
    public static final int ALLOW = 0;
    public static final int DENY = 1;

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

        @Option(names = "--source-ip", required = true, paramLabel = "IP", converter = IpAddressConverter.class, description = "The client's address.")
        InetAddress sourceIp;

        @Option(names = "--destination", required = true, paramLabel = "IP:PORT", converter = SocketAddressConverter.class, description = "The destination workload's address and port.")
        InetSocketAddress destination;

        @Option(names = "--destination-workload", paramLabel = "NS/NAME", description = "The destination pod (needed when FILE declares no pod with the destination address).")
        String destinationWorkload;

        @Option(names = "--destination-labels", paramLabel = "K=V", split = ",", description = "Labels of an assumed destination pod (for policies with selectors).")
        Map<String, String> destinationLabels = new LinkedHashMap<>();

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            PrintWriter err = spec.commandLine().getErr();
            if (destination.getPort() == 0) {
                throw UserException.invalid("--destination: port 0 is not a port a workload serves (1-65535)");
            }
            PolicyCheck.Query query = new PolicyCheck.Query(sourcePrincipal, sourceIp, destination.getAddress(),
                    destination.getPort(), Optional.ofNullable(destinationWorkload), destinationLabels);
            String text = InputFile.read(file);
            PolicyCheck.Result r;
            try {
                r = PolicyCheck.check(file.getFileName().toString(), text, query);
            } catch (PolicyCheck.InvalidFileException e) {
                throw InputFile.refused(file + " is", e.errors(), err);
            } catch (IllegalArgumentException e) {
                throw UserException.invalid(e.getMessage());
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
    }
}
