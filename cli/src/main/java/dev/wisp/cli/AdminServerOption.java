package dev.wisp.cli;

import picocli.CommandLine.Option;

/** The {@code --server} option of the commands that talk to a running control plane. */
final class AdminServerOption {
    @Option(names = "--server", paramLabel = "URL", defaultValue = AdminClient.DEFAULT, description = "Control plane admin API (default: ${DEFAULT-VALUE}).")
    String server;
}
