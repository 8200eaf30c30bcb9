package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.ObjectRef;
import java.util.List;
import java.util.function.Consumer;

/**
 * Where the mesh's desired state comes from: a directory of YAML in local mode; the Kubernetes API
 * later. A source reports every reading (valid or not) to its listener, and accepts writes from
 * {@code wisp apply}/{@code wisp delete}.
 */
public interface ConfigSource extends AutoCloseable {
    /** Reads the configuration now, reports it, then keeps reporting changes until closed. */
    void start(Consumer<LoadResult> listener);

    /**
     * Creates or replaces the objects of {@code yaml}; returns once the change is read back.
     *
     * @param fileName how errors name the submitted document
     * @throws ConfigRejectedException when a document is invalid or cannot be written here
     */
    List<Change> apply(String fileName, String yaml) throws ConfigRejectedException;

    /** Deletes the objects named by the documents of {@code yaml}. */
    List<Change> delete(String fileName, String yaml) throws ConfigRejectedException;

    /**
     * Records a WireGuard key and endpoint the control plane accepted from {@code node}'s agent
     * (validated by the key registry; never called for a refused claim), where the source keeps
     * such things: the Kubernetes source writes them as annotations on the node's {@code Node}
     * ({@code wisp.dev/wireguard-public-key}, {@code wisp.dev/wireguard-endpoint}); the directory
     * source keeps nothing. Must not block: called while the control plane publishes.
     */
    default void recordWireGuardKey(String node, String publicKey, String endpoint) {}

    /**
     * Whether this source's Node objects are the authority on each node's pod CIDRs, so that an
     * agent may claim only CIDRs within its own Node's, and none when its Node declares none. True
     * for Kubernetes ({@code spec.podCIDRs}, set by the node IPAM controller, never by an agent);
     * false for the directory source, where a Node may leave its CIDRs to its agent's claim.
     */
    default boolean podCidrsFromNodesOnly() {
        return false;
    }

    @Override
    void close();

    /** What happened to one object: created, configured, unchanged, deleted or not found. */
    record Change(ObjectRef ref, String outcome) {}

    /** A write refused, with every reason. */
    final class ConfigRejectedException extends Exception {
        private static final long serialVersionUID = 1L;
        private final transient List<ConfigError> errors;

        public ConfigRejectedException(List<ConfigError> errors) {
            super(String.join("\n", errors.stream().map(ConfigError::toString).toList()));
            this.errors = List.copyOf(errors);
        }

        public List<ConfigError> errors() {
            return errors;
        }
    }
}
