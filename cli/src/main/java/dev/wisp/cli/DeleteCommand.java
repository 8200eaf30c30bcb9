package dev.wisp.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code wisp delete -f FILE}: deletes the objects a YAML file names from a running control plane. */
@Command(name = "delete", mixinStandardHelpOptions = true, description = {
        "Delete the objects named by a YAML file from the running control plane. Objects written",
        "by hand in the config directory are refused (edit that file). Exit 1 if any was not found."})
public final class DeleteCommand implements Callable<Integer> {
    @Option(names = {"-f",
            "--filename"}, required = true, paramLabel = "FILE", description = "YAML file ('-' for stdin).")
    String file;

    @Option(names = "--server", paramLabel = "URL", defaultValue = AdminClient.DEFAULT, description = "Control plane admin API (default: ${DEFAULT-VALUE}).")
    String server;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        return ApplyCommand.Writes.run(spec, server, file, "/api/v1/delete");
    }
}
