package dev.wisp.cli;

import dev.wisp.node.NodeSettings;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The options that link a process to the control plane, as a picocli mixin: {@code --control-plane},
 * {@code --token-file}, {@code --ca-bundle} and {@code --trust-domain}, for {@code wisp node}
 * (control-plane mode) and {@code wisp waypoint}, which both connect with a node's credential. The
 * options are optional here: each command says which it needs ({@link #required}, or the agent's
 * choice between standalone and control-plane mode).
 */
public final class ControlPlaneLink {
    @Option(names = "--control-plane", paramLabel = "HOST:PORT", description = "Control-plane mode: the control plane's gRPC port (discovery and certificates over TLS).")
    String address;

    @Option(names = "--token-file", paramLabel = "FILE", description = "Control-plane mode: the node's credential (<state-dir>/node-credentials/<node>.token of the control plane); a waypoint uses the one of the node its pod runs on.")
    Path tokenFile;

    @Option(names = "--ca-bundle", paramLabel = "FILE", description = "Control-plane mode: the mesh CA's roots (<state-dir>/ca/bundle.pem of the control plane), to verify the control plane.")
    Path caBundle;

    @Option(names = "--trust-domain", paramLabel = "TD", defaultValue = NodeSettings.DEFAULT_TRUST_DOMAIN, description = "Trust domain (default: ${DEFAULT-VALUE}).")
    String trustDomain;

    /** Whether {@code --control-plane} was given. */
    boolean given() {
        return address != null;
    }

    String trustDomain() {
        return trustDomain;
    }

    /** The three options all given, with the node token as the credential (the waypoint's case). */
    NodeSettings.Source.ControlPlane required() {
        if (address == null || tokenFile == null || caBundle == null) {
            throw UserException.invalid("give --control-plane HOST:PORT, --token-file FILE and --ca-bundle FILE");
        }
        return parse(tokenFile, NodeSettings.Source.Credential.NODE_TOKEN);
    }

    /** {@code --control-plane} with {@code credential} of {@code kind} and {@code --ca-bundle}. */
    NodeSettings.Source.ControlPlane parse(Path credential, NodeSettings.Source.Credential kind) {
        try {
            return NodeSettings.Source.ControlPlane.parse(address, credential, caBundle, kind);
        } catch (IllegalArgumentException e) {
            throw new UserException("--control-plane: " + e.getMessage());
        }
    }
}
