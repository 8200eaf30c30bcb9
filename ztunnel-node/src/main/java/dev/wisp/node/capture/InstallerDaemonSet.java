package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;

/**
 * Whether the DaemonSet that runs {@code wisp cni install} still stands, asked of the API server when
 * the installer stops, so that it tells an uninstall (take the plugin out) from its pod being
 * replaced (keep it: a pod started meanwhile still waits for the agent).
 *
 * <p>What the answers mean. {@code helm uninstall} deletes the DaemonSet first (background
 * propagation: the object is gone before the garbage collector deletes its pods), then, within the
 * same second, the RoleBinding that lets the installer read it and the ServiceAccount whose token it
 * presents; so by the time the installer's container gets SIGTERM the API answers 404, 403 or 401,
 * and each of these means the release is going: {@link Verdict#GONE}. A DaemonSet being deleted in
 * the foreground still answers, with {@code metadata.deletionTimestamp} set: gone too. A 200 without
 * it is an agent pod deleted by the operator (the chart's {@code OnDelete} update) or a node shutting
 * down: {@link Verdict#STANDING}. Anything else (unreachable, 5xx, a certificate the CA does not
 * vouch for, no token) is {@link Verdict#UNKNOWN}, and the plugin stays (fail closed): a plugin
 * wrongly left makes the node's enrolled pods wait, which is visible and fixed by hand, while a
 * plugin wrongly removed lets pods start uncaptured.
 */
public final class InstallerDaemonSet {
    /** What the API said about the DaemonSet. */
    public enum Verdict {
        /** It stands: keep the plugin. */
        STANDING,
        /** Deleted, being deleted, or the release's account is gone: take the plugin out. */
        GONE,
        /** The API gave no clear answer: keep the plugin. */
        UNKNOWN
    }

    /** What was decided, and why (for the log). */
    public record Answer(Verdict verdict, String why) {}

    private final URI server;
    private final Path tokenFile;
    private final Path caFile;
    private final String namespace;
    private final String name;

    /**
     * @param server the API server, https
     * @param tokenFile the installer's service-account token
     * @param caFile the cluster's CA, the only one trusted
     */
    public InstallerDaemonSet(URI server, Path tokenFile, Path caFile, String namespace, String name) {
        this.server = requireNonNull(server, "server");
        if (!"https".equals(server.getScheme()) || server.getHost() == null) {
            throw new IllegalArgumentException("the API server must be an https:// URL (the token is sent to it)");
        }
        this.tokenFile = requireNonNull(tokenFile, "tokenFile");
        this.caFile = requireNonNull(caFile, "caFile");
        this.namespace = requireNonNull(namespace, "namespace");
        this.name = requireNonNull(name, "name");
    }

    /** {@code namespace/name}. */
    @Override
    public String toString() {
        return namespace + "/" + name;
    }

    /** Asks the API server once. */
    public Answer check() {
        String path = "/apis/apps/v1/namespaces/" + KubeApiReader.segment(namespace) + "/daemonsets/"
                + KubeApiReader.segment(name);
        try (KubeApiReader reader = new KubeApiReader(server, tokenFile, caFile)) {
            KubeApiReader.Answer a = reader.get(path);
            return switch (a.status()) {
                case 200 -> a.body().at("/metadata/deletionTimestamp").isTextual()
                        ? new Answer(Verdict.GONE, "DaemonSet " + this + " is being deleted")
                        : new Answer(Verdict.STANDING, "DaemonSet " + this + " stands (its pod is being replaced)");
                case 404 -> new Answer(Verdict.GONE, "DaemonSet " + this + " is deleted");
                case 401, 403 -> new Answer(Verdict.GONE, "the API refuses the installer's account (" + a.status()
                        + "): the release's ServiceAccount or binding is deleted");
                default -> new Answer(Verdict.UNKNOWN, "GET " + path + " answered " + a.status());
            };
        } catch (IOException e) {
            return new Answer(Verdict.UNKNOWN, "GET " + server.resolve(path) + " failed: " + e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return new Answer(Verdict.UNKNOWN, "interrupted");
        }
    }
}
