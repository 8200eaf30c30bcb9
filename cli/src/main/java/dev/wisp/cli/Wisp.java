package dev.wisp.cli;

import ch.qos.logback.classic.Logger;
import java.io.PrintWriter;
import org.slf4j.LoggerFactory;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * The {@code wisp} launcher: one binary whose subcommands run every part of the mesh. Subcommands
 * are registered in {@link #commandLine()}; each lives beside the module it drives.
 */
@Command(name = "wisp", mixinStandardHelpOptions = true, versionProvider = Wisp.Version.class, description = {
        "Wisp: a sidecarless service mesh.", "",
        "Node agents carry pod traffic over HBONE (HTTP/2 CONNECT in mutual TLS 1.3 with SPIFFE",
        "identities), eBPF steers traffic into them, WireGuard encrypts the rest, and a control",
        "plane configures it all from YAML.", ""}, footer = {"",
                "Run 'wisp COMMAND --help' for a command's options."}, subcommands = {
                        CaCommand.class}, subcommandsRepeatable = false, usageHelpAutoWidth = true)
public final class Wisp extends UsageCommand {
    @Option(names = "--log-level", scope = ScopeType.INHERIT, paramLabel = "LEVEL", description = "Log level: error, warn, info, debug, trace (default: info, or $WISP_LOG).")
    void logLevel(String level) {
        try {
            LogLevel.set(Logger.ROOT_LOGGER_NAME, level);
        } catch (IllegalArgumentException e) {
            throw new CommandLine.ParameterException(spec.commandLine(), "--log-level: " + e.getMessage());
        }
    }

    /** The width help text is laid out for (a wider terminal gets its own width). */
    static final int HELP_WIDTH = 100;

    /** The full command tree; tests drive it directly. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Wisp());
        cl.addSubcommand(new dev.wisp.cli.demo.DemoAppCommand());
        cl.addSubcommand(new WireguardCommand());
        cl.addSubcommand(new CniCommand());
        cl.addSubcommand(new ControlPlaneCommand());
        cl.addSubcommand(new ApplyCommand());
        cl.addSubcommand(new GetCommand());
        cl.addSubcommand(new DeleteCommand());
        cl.addSubcommand("node", new NodeCommand());
        cl.addSubcommand(new WaypointCommand());
        cl.addSubcommand(new dev.wisp.cli.policy.PolicyCommand());
        cl.addSubcommand(new dev.wisp.cli.route.RouteCommand());
        cl.addSubcommand(new dev.wisp.cli.cluster.ClusterCommand());
        cl.addSubcommand(new dev.wisp.cli.flows.FlowsCommand());
        cl.addSubcommand(new dev.wisp.cli.demo.DemoCommand());
        cl.setExecutionExceptionHandler(new ErrorHandler());
        // The commands' descriptions are written in lines of up to 100 columns: at picocli's default
        // of 80 each line wrapped again, leaving a word or two on a line of its own.
        cl.setUsageHelpWidth(HELP_WIDTH);
        return cl;
    }

    public static void main(String[] args) {
        String env = System.getenv("WISP_LOG");
        if (env != null) {
            try {
                LogLevel.set(Logger.ROOT_LOGGER_NAME, env);
            } catch (IllegalArgumentException e) {
                System.err.println("warning: WISP_LOG: " + e.getMessage() + "; logging at info");
            }
        }
        System.exit(commandLine().execute(args));
    }

    /** Operator errors print one clear line; only unexpected failures print a stack trace (debug). */
    static final class ErrorHandler implements CommandLine.IExecutionExceptionHandler {
        @Override
        public int handleExecutionException(Exception ex, CommandLine cl, CommandLine.ParseResult parseResult) {
            PrintWriter err = cl.getErr();
            err.println(cl.getColorScheme().errorText("error: " + message(ex)));
            LoggerFactory.getLogger(Wisp.class).debug("command failed", ex);
            return ex instanceof UserException ue ? ue.exitCode() : 1;
        }

        private static String message(Throwable t) {
            String m = t.getMessage();
            return m == null || m.isBlank() ? t.getClass().getSimpleName() : m;
        }
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Wisp.class.getPackage().getImplementationVersion();
            return new String[]{"wisp " + (v == null ? "(development build)" : v),
                    "Java " + Runtime.version() + " (" + System.getProperty("java.vm.vendor") + ")"};
        }
    }
}
