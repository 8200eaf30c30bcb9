package dev.wisp.cli;

import picocli.CommandLine.Command;

/** {@code wisp apply -f FILE}: creates or updates objects in a running control plane. */
@Command(name = "apply", mixinStandardHelpOptions = true, description = {
        "Create or update the objects of a YAML file in the running control plane (validated first;",
        "nothing changes if any document is invalid). Exit 0 on success, 1 when refused."})
public final class ApplyCommand extends WriteCommand {
    @Override
    String path() {
        return "/api/v1/apply";
    }
}
