package dev.wisp.node.workloadapi;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.bpf.capture.PodRef;
import dev.wisp.node.capture.PodFollower;
import dev.wisp.node.identity.IdentityProvider;
import dev.wisp.node.state.WorkloadIndex;
import dev.wisp.spiffe.SpiffeId;
import dev.wisp.spiffe.TrustBundle;
import dev.wisp.spiffe.manager.CertificateManager;
import dev.wisp.spiffe.workload.WorkloadApiServer;
import io.micrometer.core.instrument.Counter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The SPIFFE Workload API for the node's pods ({@code wisp node --workload-api-dir DIR}): each
 * enrolled pod whose workload the state knows gets {@code DIR/<pod uid>/socket}, serving that
 * workload's X.509-SVID (its service account's SPIFFE ID) and the trust bundle, renewed as the
 * agent's certificate manager renews it. Callers are attested per connection ({@link PodSocket}:
 * {@code SO_PEERCRED} → {@code /proc/<pid>/cgroup} → the pod's cgroup); a process of another pod
 * gets nothing, which is counted ({@code wisp_workload_api_refused_total}) and logged (at most one
 * line a second per pod, with the number left out). The gRPC server behind each socket listens on
 * {@code DIR/.agent/<uid>.sock}, in a directory only root may enter (0700).
 *
 * <p><b>Threads.</b> Pods come and go on capture's {@code wisp-pods} thread ({@link #podAdded},
 * {@link #podRemoved}); identities change with the state, on the thread applying it
 * ({@link #stateChanged}). All three, and {@link #close}, hold this object's monitor. Each serving
 * pod has its gRPC server's event loop thread and its socket's threads ({@link PodSocket}).
 */
public final class WorkloadApi implements PodFollower, AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(WorkloadApi.class);
    private final Path dir;
    private final Path agentDir;
    private final String nodeName;
    private final WorkloadIndex index;
    private final CertificateManager certificates;
    private final Supplier<TrustBundle> bundle;
    private final Path cgroupRoot;
    private final Counter refused;
    /** Guarded by this. */
    private final Map<String, Pod> pods = new HashMap<>();
    private boolean closed;

    /** One pod: what capture knows, and what serves it while its identity is known. */
    private static final class Pod {
        final PodRef ref;
        final AtomicLong lastLine = new AtomicLong(Long.MIN_VALUE / 2);
        final AtomicLong notLogged = new AtomicLong();
        SpiffeId identity;
        WorkloadApiServer server;
        PodSocket socket;

        Pod(PodRef ref) {
            this.ref = ref;
        }
    }

    /**
     * Serves pods under {@code dir} (created when absent); {@code cgroupRoot} is the cgroup v2 mount,
     * against which pods' cgroup directories are read; refusals are counted in {@code refused}.
     */
    public static WorkloadApi create(Path dir, String nodeName, WorkloadIndex index, CertificateManager certificates,
            Supplier<TrustBundle> bundle, Path cgroupRoot, Counter refused) throws IOException {
        WorkloadApi api = new WorkloadApi(dir, nodeName, index, certificates, bundle, cgroupRoot, refused);
        Files.createDirectories(dir);
        Files.createDirectories(api.agentDir);
        Files.setPosixFilePermissions(api.agentDir, PosixFilePermissions.fromString("rwx------"));
        index.onChange(api::stateChanged);
        return api;
    }

    private WorkloadApi(Path dir, String nodeName, WorkloadIndex index, CertificateManager certificates,
            Supplier<TrustBundle> bundle, Path cgroupRoot, Counter refused) {
        this.dir = requireNonNull(dir, "dir");
        this.agentDir = dir.resolve(".agent");
        this.nodeName = requireNonNull(nodeName, "nodeName");
        this.index = requireNonNull(index, "index");
        this.certificates = requireNonNull(certificates, "certificates");
        this.bundle = requireNonNull(bundle, "bundle");
        this.cgroupRoot = requireNonNull(cgroupRoot, "cgroupRoot");
        this.refused = requireNonNull(refused, "refused");
    }

    /** Where pod {@code uid}'s socket is (whether or not it is served now). */
    public Path socketOf(String uid) {
        return dir.resolve(uid).resolve("socket");
    }

    /** A pod was enrolled (or enrolled again with changed details). */
    @Override
    public synchronized void podAdded(PodRef pod) {
        requireNonNull(pod, "pod");
        stop(pods.remove(pod.id()));
        if (!closed) {
            pods.put(pod.id(), new Pod(pod));
            reconcile(pods.get(pod.id()));
        }
    }

    /** Pod {@code uid} left the node: its socket and server go. */
    @Override
    public synchronized void podRemoved(String uid) {
        stop(pods.remove(requireNonNull(uid, "uid")));
    }

    /** The state changed: a pod's workload (hence identity) may have appeared, changed or gone. */
    public synchronized void stateChanged() {
        if (!closed) {
            pods.values().forEach(this::reconcile);
        }
    }

    /**
     * The trust bundle changed (a root rotation step): every pod's open {@code FetchX509SVID} and
     * {@code FetchX509Bundles} streams get it now, not at their next renewal.
     */
    public synchronized void bundleChanged() {
        for (Pod p : pods.values()) {
            if (p.server != null) {
                p.server.bundleChanged();
            }
        }
    }

    /** The identity pod {@code pod} is served as now, if any. */
    public synchronized Optional<SpiffeId> identityOf(String uid) {
        Pod p = pods.get(uid);
        return p == null ? Optional.empty() : Optional.ofNullable(p.identity);
    }

    /** The pod's workload: one of its addresses, on this node. */
    private Optional<SpiffeId> identityFor(PodRef pod) {
        for (var ip : pod.ips()) {
            Optional<Workload> w = index.workloadByAddress(ip).filter(x -> x.getNode().equals(nodeName));
            if (w.isPresent()) {
                return Optional.of(IdentityProvider.workloadId(w.get()));
            }
        }
        return Optional.empty();
    }

    private void reconcile(Pod p) {
        Optional<SpiffeId> want = identityFor(p.ref);
        if (want.isPresent() && want.get().equals(p.identity)) {
            return;
        }
        stopServing(p);
        if (want.isEmpty()) {
            return;
        }
        Path internal = agentDir.resolve(p.ref.id() + ".sock");
        try {
            p.server = WorkloadApiServer.start(internal, want.get(), certificates, bundle);
            String cgroup = cgroupPath(p.ref);
            p.socket = PodSocket.open(p.ref.id(), pid -> CallerAttestation.decide(pid, procCgroup(pid), cgroup),
                    socketOf(p.ref.id()), internal, a -> refused(p, a));
            p.identity = want.get();
            LOG.info("Workload API for pod {} ({}) on {}", p.ref.id(), p.identity, p.socket.socket());
        } catch (IOException | RuntimeException e) {
            stopServing(p);
            LOG.error("cannot serve the Workload API to pod {}: {} (retried at the next state change)", p.ref.id(),
                    e.getMessage());
        }
    }

    /** The pod's cgroup as {@code /proc/<pid>/cgroup} writes it: relative to the cgroup v2 root. */
    private String cgroupPath(PodRef pod) {
        Path c = pod.cgroup().toAbsolutePath().normalize();
        return c.startsWith(cgroupRoot) ? "/" + cgroupRoot.relativize(c) : c.toString();
    }

    /** The content of {@code /proc/<pid>/cgroup}, empty when the process is gone. */
    private static Optional<String> procCgroup(int pid) {
        if (pid <= 0) {
            return Optional.empty();
        }
        try {
            return Optional.of(Files.readString(Path.of("/proc/" + pid + "/cgroup")));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private void refused(Pod p, CallerAttestation a) {
        refused.increment();
        long now = System.nanoTime();
        long last = p.lastLine.get();
        if (now - last >= 1_000_000_000L && p.lastLine.compareAndSet(last, now)) {
            long more = p.notLogged.getAndSet(0);
            LOG.warn("Workload API of pod {}: caller refused: {}{}", p.ref.id(), a.reason(),
                    more == 0 ? "" : " (" + more + " more refused since the last line)");
        } else {
            p.notLogged.incrementAndGet();
        }
    }

    private static void stopServing(Pod p) {
        if (p.socket != null) {
            p.socket.close();
            p.socket = null;
        }
        if (p.server != null) {
            p.server.close();
            p.server = null;
        }
        p.identity = null;
    }

    private static void stop(Pod p) {
        if (p != null) {
            stopServing(p);
        }
    }

    /** Stops serving every pod and removes their sockets. */
    @Override
    public synchronized void close() {
        closed = true;
        pods.values().forEach(WorkloadApi::stop);
        pods.clear();
    }
}
