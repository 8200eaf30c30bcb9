package dev.wisp.cli;

import picocli.CommandLine.Command;

/** {@code wisp delete -f FILE}: deletes the objects a YAML file names from a running control plane. */
@Command(name = "delete", mixinStandardHelpOptions = true, description = {
        "Delete the objects named by a YAML file from the running control plane. Objects written",
        "by hand in the config directory are refused (edit that file). Exit 1 if any was not found."})
public final class DeleteCommand extends WriteCommand {
    @Override
    String path() {
        return "/api/v1/delete";
    }
}
