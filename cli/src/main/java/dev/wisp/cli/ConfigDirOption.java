package dev.wisp.cli;

import java.nio.file.Path;
import picocli.CommandLine.Option;

/** {@code --config-dir}: the YAML directory the control plane watches ({@code wisp control-plane}, {@code wisp cluster up}). */
public final class ConfigDirOption {
    @Option(names = "--config-dir", required = true, paramLabel = "DIR", description = "The YAML directory the control plane watches (Pod, Service, Node, MeshConfig, AuthorizationPolicy, PeerAuthentication); changes apply within a second.")
    Path dir;

    public Path dir() {
        return dir;
    }
}
