package dev.wisp.cli;

import dev.wisp.node.capture.CniPlugin;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

/**
 * {@code wisp cni}: Wisp's chained CNI plugin ({@link CniPlugin}), run by the container runtime with
 * the CNI environment and the network configuration on stdin; the result, version or error JSON goes
 * to stdout and the exit status is the CNI error code (0 on success).
 */
@Command(name = "cni", mixinStandardHelpOptions = true, subcommands = CniInstallCommand.class, description = {
        "The CNI plugin that enrolls pods with the node agent before they start (chained after the primary "
                + "plugin; the runtime runs it with CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_ARGS "
                + "and the network configuration on stdin).",
        "ADD writes <uid>.json into the agent's pods directory and fails unless the agent confirms the pod is "
                + "captured (<uid>.enrolled) in time; DEL removes it.",
        "'wisp cni install' puts the plugin on a node (the chart's install-cni container runs it)."})
public final class CniCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        CniPlugin.Outcome outcome = CniPlugin.run(System.getenv(), System.in);
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        if (!outcome.stdout().isEmpty()) {
            out.println(outcome.stdout());
        }
        return outcome.exit();
    }
}
