package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import dev.wisp.api.workload.v1.Workload;
import dev.wisp.bpf.capture.PodRef;
import dev.wisp.node.state.Snapshot;
import dev.wisp.linux.NetworkNamespace;
import java.io.IOException;
import java.net.BindException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.nio.channels.DatagramChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Enrolls pods that were already running when the agent (or its CNI plugin) arrived: pods the
 * control plane serves on this node that no pod file announces, because no plugin saw their
 * sandbox start. For each, it finds on the host what the plugin would have been handed, and writes
 * the pod file the plugin would have written; the pods directory's reconciler then enrolls it.
 *
 * <p>What is a claim, and how it is checked. The control plane's list (uid and addresses per pod of
 * this node, only pods the mesh enrolls: a pod labelled {@code <label>=none} or of a namespace out of
 * the mesh is never listed) says which pods to look for, not where they are. The pod's cgroup is
 * the one the kubelet made for that uid (its layout, {@link CniPlugin#cgroupCandidates}: exactly one
 * must exist). Its network namespace is the one file of the runtime's namespace directories
 * ({@code --netns-dir}) that holds every one of the pod's addresses, tested by binding each address
 * inside it (a bind succeeds only on a local address); none, or more than one (a namespace that
 * claims another pod's address), and the pod is not enrolled, with the reason logged. A pod the list
 * does not name is never looked for, whatever the host holds.
 *
 * <p>Each uid is looked for until it is found once in a run: a pod whose file goes away afterwards
 * (the plugin's DEL as the pod is deleted) is not brought back. A file written here holds
 * {@code "discovered": true} and is removed, like any other, by the plugin's DEL.
 */
public final class PodDiscovery implements AutoCloseable {
    private static final Logger LOG = LoggerFactory.getLogger(PodDiscovery.class);
    private static final Duration ENTER_TIMEOUT = Duration.ofSeconds(10);

    /** The host's cgroup v2 root, where the kubelet lays out pods' cgroups, when none is given. */
    public static final Path DEFAULT_CGROUP_ROOT = Path.of("/sys/fs/cgroup");
    /** Where container runtimes pin pods' network namespaces, when no directory is given. */
    public static final List<Path> DEFAULT_NETNS_DIRS = List.of(Path.of("/var/run/netns"), Path.of("/run/netns"));

    /** {@code node}'s pods as the control plane lists them in {@code state}: what discovery looks for. */
    public static List<Candidate> candidates(Snapshot state, String node) {
        List<Candidate> out = new ArrayList<>();
        for (Workload w : state.workloads()) {
            if (w.getNode().equals(node)) {
                List<InetAddress> ips = new ArrayList<>();
                for (var a : w.getAddressesList()) {
                    try {
                        ips.add(InetAddress.getByAddress(a.toByteArray()));
                    } catch (java.net.UnknownHostException e) {
                        // not 4 or 16 bytes: the pod is refused for having no address
                    }
                }
                out.add(new Candidate(w.getUid(), ips));
            }
        }
        return out;
    }

    /** A pod the control plane says runs on this node, with the addresses it says the pod has. */
    public record Candidate(String uid, List<InetAddress> ips) {
        public Candidate {
            requireNonNull(uid, "uid");
            ips = List.copyOf(ips);
        }
    }

    /**
     * @param podsDir the agent's pods directory
     * @param cgroupRoot the host's cgroup v2 root, under which the kubelet lays out pods' cgroups
     * @param netnsDirs where the container runtime pins pods' network namespaces
     */
    public record Settings(Path podsDir, Path cgroupRoot, List<Path> netnsDirs) {
        public Settings {
            requireNonNull(podsDir, "podsDir");
            requireNonNull(cgroupRoot, "cgroupRoot");
            netnsDirs = List.copyOf(netnsDirs);
        }
    }

    /** Which of {@code ips} are local addresses inside {@code netns}. */
    interface Addresses {
        Set<InetAddress> held(Path netns, Collection<InetAddress> ips) throws IOException;
    }

    private final Settings settings;
    private final Addresses addresses;
    private final ExecutorService passes = Executors.newSingleThreadExecutor(r -> Thread.ofPlatform().name(
            "wisp-pod-discovery").daemon().unstarted(r));
    private final AtomicBoolean pending = new AtomicBoolean();
    private volatile Supplier<Collection<Candidate>> pods;
    /** Uids found (or announced by a pod file) in this run: never looked for again. */
    private final Set<String> seen = new HashSet<>();
    /** Uids whose last refusal was logged, with it: logged again only when the reason changes. */
    private final Map<String, String> refused = new TreeMap<>();

    public PodDiscovery(Settings settings) {
        this(settings, PodDiscovery::bindable);
    }

    PodDiscovery(Settings settings, Addresses addresses) {
        this.settings = requireNonNull(settings, "settings");
        this.addresses = requireNonNull(addresses, "addresses");
    }

    /**
     * Follows the control plane's list: a pass now and after every {@link #changed()}, on a thread of
     * its own (passes asked for while one runs collapse into one more).
     */
    public void start(Supplier<Collection<Candidate>> pods) {
        requireNonNull(pods, "pods");
        this.pods = pods;
        changed();
    }

    /** The control plane's list may have changed: runs a pass soon. */
    public void changed() {
        if (pods != null && pending.compareAndSet(false, true)) {
            try {
                passes.execute(() -> {
                    pending.set(false);
                    try {
                        discover(pods.get());
                    } catch (RuntimeException e) {
                        LOG.error("pod discovery pass failed", e);
                    }
                });
            } catch (RejectedExecutionException e) {
                // closed
            }
        }
    }

    @Override
    public void close() {
        passes.shutdownNow();
    }

    /**
     * One pass over this node's pods as the control plane lists them: writes the pod file of each
     * one found that has none.
     *
     * @return the uids whose pod file was written
     */
    public synchronized List<String> discover(Collection<Candidate> pods) {
        List<Candidate> wanted = new ArrayList<>();
        for (Candidate c : pods) {
            if (seen.contains(c.uid())) {
                continue;
            }
            if (Files.exists(settings.podsDir().resolve(c.uid() + PodFile.SUFFIX))) {
                seen.add(c.uid()); // announced by the plugin
                continue;
            }
            if (!CniPlugin.UID.matcher(c.uid()).matches()) {
                refuse(c, "its uid is not a Kubernetes pod's");
            } else if (c.ips().isEmpty()) {
                refuse(c, "the control plane lists no address for it");
            } else {
                wanted.add(c);
            }
        }
        if (wanted.isEmpty()) {
            return List.of();
        }
        Map<String, List<Path>> holders = holders(wanted);
        List<String> written = new ArrayList<>();
        for (Candidate c : wanted) {
            List<Path> cgroups = CniPlugin.cgroupCandidates(settings.cgroupRoot(), c.uid());
            List<Path> netns = holders.getOrDefault(c.uid(), List.of());
            if (cgroups.size() != 1) {
                refuse(c, (cgroups.isEmpty() ? "no" : "more than one") + " cgroup of it in the kubelet's layout under "
                        + settings.cgroupRoot() + (cgroups.isEmpty() ? "" : ": " + cgroups));
            } else if (netns.size() != 1) {
                refuse(c, netns.isEmpty()
                        ? "no network namespace in " + settings.netnsDirs() + " holds " + c.ips()
                        : "more than one network namespace holds " + c.ips() + ": " + netns);
            } else {
                try {
                    PodFile.write(settings.podsDir(), new PodRef(c.uid(), cgroups.getFirst(), netns.getFirst(), c
                            .ips()), true);
                    seen.add(c.uid());
                    refused.remove(c.uid());
                    written.add(c.uid());
                    LOG.info("found running pod {} (cgroup {}, netns {}, ips {}) that no CNI call announced: "
                            + "enrolling it", c.uid(), cgroups.getFirst(), netns.getFirst(), c.ips());
                } catch (IOException e) {
                    refuse(c, "writing its pod file failed: " + e.getMessage());
                }
            }
        }
        return written;
    }

    private void refuse(Candidate c, String why) {
        if (!why.equals(refused.put(c.uid(), why))) {
            LOG.warn("not enrolling pod {} of this node found without a CNI call: {}", c.uid(), why);
        }
    }

    /** Uid → the namespace files holding all its addresses, each namespace entered once. */
    private Map<String, List<Path>> holders(List<Candidate> wanted) {
        Set<InetAddress> all = new HashSet<>();
        wanted.forEach(c -> all.addAll(c.ips()));
        Map<String, List<Path>> out = new TreeMap<>();
        for (Path netns : namespaces()) {
            Set<InetAddress> held;
            try {
                held = addresses.held(netns, all);
            } catch (IOException e) {
                LOG.debug("cannot look into {}: {}", netns, e.getMessage());
                continue;
            }
            for (Candidate c : wanted) {
                if (held.containsAll(c.ips())) {
                    out.computeIfAbsent(c.uid(), u -> new ArrayList<>()).add(netns);
                }
            }
        }
        return out;
    }

    /**
     * The namespace files of the directories, each namespace once: {@code /var/run} is usually a link
     * to {@code /run}, and one namespace may be pinned under two names (same device and inode).
     */
    private List<Path> namespaces() {
        Map<String, Path> byIdentity = new TreeMap<>();
        for (Path dir : settings.netnsDirs().stream().map(PodDiscovery::real).distinct().sorted().toList()) {
            try (DirectoryStream<Path> files = Files.newDirectoryStream(dir)) {
                for (Path f : files) {
                    if (!f.getFileName().toString().startsWith(".") && Files.isRegularFile(f)) {
                        byIdentity.putIfAbsent(Files.getAttribute(f, "unix:dev") + ":" + Files.getAttribute(f,
                                "unix:ino"), f);
                    }
                }
            } catch (IOException e) {
                LOG.debug("cannot list {}: {}", dir, e.getMessage());
            }
        }
        return byIdentity.values().stream().sorted().toList();
    }

    private static Path real(Path dir) {
        try {
            return dir.toRealPath();
        } catch (IOException e) {
            return dir; // absent on this node: listing it fails quietly
        }
    }

    /** Enters {@code netns} and binds each address: only an address of the namespace can be bound. */
    static Set<InetAddress> bindable(Path netns, Collection<InetAddress> ips) throws IOException {
        return NetworkNamespace.call(netns, () -> {
            Set<InetAddress> held = new HashSet<>();
            for (InetAddress ip : ips) {
                try (DatagramChannel ch = DatagramChannel.open(ip.getAddress().length == 4
                        ? StandardProtocolFamily.INET
                        : StandardProtocolFamily.INET6)) {
                    ch.bind(new InetSocketAddress(ip, 0));
                    held.add(ip);
                } catch (BindException e) {
                    // not an address of this namespace
                }
            }
            return held;
        }, ENTER_TIMEOUT);
    }
}
