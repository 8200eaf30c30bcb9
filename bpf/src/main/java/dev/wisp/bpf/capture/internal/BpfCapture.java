package dev.wisp.bpf.capture.internal;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.BpfException;
import dev.wisp.bpf.BpfLink;
import dev.wisp.bpf.BpfMap;
import dev.wisp.bpf.BpfObject;
import dev.wisp.bpf.BpfProgram;
import dev.wisp.bpf.Codec;
import dev.wisp.bpf.RingBuffer;
import dev.wisp.bpf.capture.Capture;
import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.bpf.capture.FlowEvent;
import dev.wisp.bpf.capture.PodRef;
import dev.wisp.linux.Cgroups;
import dev.wisp.linux.Errno;
import dev.wisp.linux.Mounts;
import dev.wisp.linux.NativeException;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@link Capture} on capture.bpf.o. Pin layout under the pin root: the maps by name
 * ({@code wisp_config}, {@code wisp_orig_by_cookie}, …), {@code pods/<id>/<program>} (one link per
 * member pod and program), {@code agent/cgroup-<id>/wisp_getsockopt} (the hook on the agent's cgroup; pins for
 * another cgroup id are an earlier agent's and are removed at open).
 *
 * <p>Concurrency: enrollment, removal and close are {@code synchronized} on this object; map
 * lookups ({@link #originalDestination}) go straight to the kernel and need no lock.
 */
public final class BpfCapture implements Capture {
    private static final Logger LOG = LoggerFactory.getLogger(BpfCapture.class);
    static final String OBJECT = "/dev/wisp/bpf/capture.bpf.o";
    /** Programs attached to each member pod's cgroup. */
    public static final List<String> POD_CGROUP_PROGRAMS = List.of("wisp_connect4", "wisp_connect6", "wisp_sockops",
            "wisp_getpeername4", "wisp_getpeername6", "wisp_bind4", "wisp_bind6", "wisp_sendmsg4", "wisp_recvmsg4",
            "wisp_sendmsg6", "wisp_recvmsg6");
    /** Program attached to each member pod's network namespace. */
    public static final String POD_NETNS_PROGRAM = "wisp_sk_lookup";
    /** Program attached to the agent's cgroup. */
    public static final String AGENT_PROGRAM = "wisp_getsockopt";
    private static final Path BPFFS = Path.of("/sys/fs/bpf");
    private static final int LISTENER_INBOUND = 0;
    private static final int LISTENER_HBONE = 1;

    private final CaptureConfig config;
    private final BpfObject object; // guarded by this
    private final BpfMap<Layouts.Tuple, Layouts.OrigDst> origByTuple;
    private final BpfMap<InetAddress, Long> podIps;
    private final BpfMap<InetSocketAddress, Long> listeners;
    private final BpfMap<Layouts.Tuple, Byte> ownUpstream;
    private final BpfMap<Object, Object> events;
    private final List<Consumer<FlowEvent>> subscribers = new CopyOnWriteArrayList<>();
    private RingBuffer flowReader; // guarded by this; started by the first subscriber
    private boolean closed; // guarded by this

    private BpfCapture(CaptureConfig config, BpfObject object) {
        this.config = config;
        this.object = object;
        this.origByTuple = object.map("wisp_orig_by_tuple", Layouts.TUPLE_CODEC, Layouts.ORIG_DST_CODEC);
        this.podIps = object.map("wisp_pod_ips", Layouts.ADDRESS, Codec.u64());
        this.listeners = object.map("wisp_listeners", Layouts.ENDPOINT_CODEC, Codec.u64());
        this.ownUpstream = object.map("wisp_own_upstream", Layouts.TUPLE_CODEC, Codec.u8());
        this.events = object.map("wisp_events", nothing(), nothing());
    }

    /** See {@link Capture#open}. */
    public static Capture open(CaptureConfig config) throws BpfException {
        requireNonNull(config, "config");
        ensureBpffs(config.pinRoot());
        createDirs(config.pinRoot().resolve("pods"));
        createDirs(config.pinRoot().resolve("agent"));
        BpfObject object = BpfObject.openResource(BpfCapture.class, OBJECT, config.pinRoot());
        try {
            object.load();
            BpfCapture capture = new BpfCapture(config, object);
            capture.configure();
            capture.adoptPinnedLinks();
            return capture;
        } catch (BpfException | RuntimeException e) {
            object.close();
            throw e;
        }
    }

    private void configure() throws BpfException {
        object.map("wisp_config", Codec.u32(), Layouts.CONFIG_CODEC).put(0, Layouts.config(config));
        BpfMap<InetAddress, Byte> bypass = object.map("wisp_bypass_src", Layouts.ADDRESS, Codec.u8());
        for (InetAddress stale : bypass.keys()) {
            if (stale != null && !config.bypassSources().contains(stale)) {
                bypass.delete(stale);
            }
        }
        for (InetAddress a : config.bypassSources()) {
            bypass.put(a, (byte) 1);
        }
        // The DNS redirect is pinned: an agent killed without draining left it on, pointing the
        // pods at listeners that died with it. Off until this run opens its own (redirectDns).
        redirectDns(0);
    }

    /**
     * Points every pinned link (left by an earlier run) at this run's programs, and attaches the
     * agent hook once. A pod whose cgroup or netns went away while the agent was down is dropped
     * with its pins and addresses.
     */
    private void adoptPinnedLinks() throws BpfException {
        for (String pod : enrolled()) {
            Path dir = podDir(pod);
            try {
                for (String program : allPodPrograms()) {
                    Path pin = dir.resolve(program);
                    if (Files.exists(pin)) {
                        repoint(pin, object.program(program));
                    }
                }
            } catch (BpfException e) {
                // ENOLINK: the kernel already detached the link because its cgroup or netns died.
                LOG.warn("capture: pod {} went away while the agent was down ({}); dropping its pins", pod,
                        e.getMessage());
                detachAll(dir);
                forgetAddresses(pod);
            }
        }
        // The agent hook is pinned per agent cgroup: a restarted agent may live in a new cgroup
        // (a new container), and the hook on the old one would answer nobody.
        String mine = "cgroup-" + cgroupId(config.agentCgroup());
        for (Path dir : agentDirs()) {
            if (!dir.getFileName().toString().equals(mine)) {
                detachPinned(dir.resolve(AGENT_PROGRAM));
                deleteDir(dir);
            }
        }
        Path agentPin = config.pinRoot().resolve("agent").resolve(mine).resolve(AGENT_PROGRAM);
        if (Files.exists(agentPin)) {
            repoint(agentPin, object.program(AGENT_PROGRAM));
        } else {
            createDirs(agentPin.getParent());
            try (BpfLink link = object.program(AGENT_PROGRAM).attachCgroup(config.agentCgroup())) {
                link.pin(agentPin);
            }
        }
    }

    private List<Path> agentDirs() throws BpfException {
        try (Stream<Path> s = Files.list(config.pinRoot().resolve("agent"))) {
            return s.filter(Files::isDirectory).toList();
        } catch (IOException e) {
            throw new BpfException("listing " + config.pinRoot().resolve("agent"), Errno.EIO, e.toString(), "");
        }
    }

    private static long cgroupId(Path cgroup) throws BpfException {
        try {
            return Cgroups.id(cgroup);
        } catch (IOException e) {
            throw new BpfException("reading the cgroup id of " + cgroup, Errno.ENOENT,
                    "is it a cgroup v2 directory? " + e, "");
        }
    }

    private static void createDirs(Path dir) throws BpfException {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new BpfException("creating " + dir, Errno.EIO, e.toString(), "");
        }
    }

    private static void deleteDir(Path dir) throws BpfException {
        try {
            Files.deleteIfExists(dir);
        } catch (IOException e) {
            throw new BpfException("removing " + dir, Errno.EIO, e.toString(), "");
        }
    }

    private static void repoint(Path pin, BpfProgram program) throws BpfException {
        try (BpfLink link = BpfLink.openPinned(pin)) {
            link.update(program);
            LOG.debug("re-pointed pinned link {} at this run's {}", pin, program.name());
        }
    }

    private static List<String> allPodPrograms() {
        return Stream.concat(POD_CGROUP_PROGRAMS.stream(), Stream.of(POD_NETNS_PROGRAM)).toList();
    }

    @Override
    public synchronized void enroll(PodRef pod) throws BpfException {
        requireNonNull(pod, "pod");
        requireOpen();
        Path dir = podDir(pod.id());
        createDirs(dir);
        for (String program : POD_CGROUP_PROGRAMS) {
            attachOnce(dir.resolve(program), object.program(program), pod.cgroup(), false);
        }
        if (pod.netns() != null) {
            attachOnce(dir.resolve(POD_NETNS_PROGRAM), object.program(POD_NETNS_PROGRAM), pod.netns(), true);
        }
        long tag = podTag(pod.id());
        for (InetAddress ip : pod.ips()) {
            podIps.put(ip, tag);
        }
        LOG.info("capture: enrolled pod {} (cgroup {}, netns {}, ips {})", pod.id(), pod.cgroup(), pod.netns(),
                pod.ips());
    }

    private static void attachOnce(Path pin, BpfProgram program, Path target, boolean netns) throws BpfException {
        if (Files.exists(pin)) {
            repoint(pin, program);
            return;
        }
        try (BpfLink link = netns ? program.attachNetns(target) : program.attachCgroup(target)) {
            link.pin(pin);
        }
    }

    @Override
    public synchronized boolean remove(String podId) throws BpfException {
        requireNonNull(podId, "podId");
        requireOpen();
        Path dir = podDir(podId);
        if (!Files.isDirectory(dir)) {
            return false;
        }
        detachAll(dir);
        forgetAddresses(podId);
        LOG.info("capture: removed pod {}", podId);
        return true;
    }

    private void forgetAddresses(String podId) throws BpfException {
        long tag = podTag(podId);
        for (var e : podIps.entries().entrySet()) {
            if (e.getValue() == tag) {
                podIps.delete(e.getKey());
                listeners.delete(new InetSocketAddress(e.getKey(), LISTENER_INBOUND));
                listeners.delete(new InetSocketAddress(e.getKey(), LISTENER_HBONE));
            }
        }
    }

    private static void detachAll(Path dir) throws BpfException {
        for (String program : allPodPrograms()) {
            detachPinned(dir.resolve(program));
        }
        deleteDir(dir);
    }

    private static void detachPinned(Path pin) throws BpfException {
        if (!Files.exists(pin)) {
            return;
        }
        try (BpfLink link = BpfLink.openPinned(pin)) {
            link.detach();
        } catch (BpfException e) {
            // A link whose cgroup or netns is gone is already detached (ENOLINK); the pin is all
            // that is left of it.
            LOG.debug("detaching {}: {}", pin, e.getMessage());
        }
        try {
            Files.deleteIfExists(pin);
        } catch (IOException e) {
            throw new BpfException("unpinning " + pin, Errno.EIO, e.toString(), "");
        }
    }

    @Override
    public Set<String> enrolled() {
        Path pods = config.pinRoot().resolve("pods");
        Set<String> out = new TreeSet<>();
        try (Stream<Path> s = Files.list(pods)) {
            s.filter(Files::isDirectory).forEach(p -> out.add(p.getFileName().toString()));
        } catch (IOException e) {
            LOG.debug("no pinned pods under {}: {}", pods, e.toString());
        }
        return out;
    }

    @Override
    public Optional<InetSocketAddress> originalDestination(InetSocketAddress local, InetSocketAddress remote)
            throws BpfException {
        requireNonNull(local, "local");
        requireNonNull(remote, "remote");
        return origByTuple.lookup(new Layouts.Tuple(local, remote)).filter(Layouts.OrigDst::redirected)
                .map(Layouts.OrigDst::destination);
    }

    @Override
    public void setInboundListener(InetAddress podIp, int listenerFd) throws BpfException {
        setListener(new InetSocketAddress(requireNonNull(podIp, "podIp"), LISTENER_INBOUND), listenerFd);
    }

    @Override
    public void setHboneListener(InetAddress podIp, int listenerFd) throws BpfException {
        setListener(new InetSocketAddress(requireNonNull(podIp, "podIp"), LISTENER_HBONE), listenerFd);
    }

    @Override
    public void passOwnConnection(InetSocketAddress from, InetSocketAddress to, boolean pass) throws BpfException {
        Layouts.Tuple key = new Layouts.Tuple(requireNonNull(to, "to"), requireNonNull(from, "from"));
        if (pass) {
            ownUpstream.put(key, (byte) 1);
        } else {
            ownUpstream.delete(key);
        }
    }

    @Override
    public void redirectDns(int port) throws BpfException {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("DNS port " + port + " is outside 0-65535");
        }
        requireOpen();
        object.map("wisp_dns_port", Codec.u32(), Codec.u32()).put(0, port);
    }

    /** The key is the pod's address with the slot number in the port field, as sk_lookup builds it. */
    private void setListener(InetSocketAddress key, int fd) throws BpfException {
        if (fd < 0) {
            listeners.delete(key);
        } else {
            listeners.put(key, (long) fd);
        }
    }

    /**
     * One ring buffer reader fans out to every subscriber: two readers of one ring buffer would
     * split its records between them.
     */
    @Override
    public synchronized AutoCloseable subscribe(Consumer<FlowEvent> listener) throws BpfException {
        requireNonNull(listener, "listener");
        requireOpen();
        if (flowReader == null) {
            flowReader = RingBuffer.start(events, this::dispatch);
        }
        subscribers.add(listener);
        return () -> subscribers.remove(listener);
    }

    /** Runs on the ring buffer's thread. */
    private void dispatch(java.nio.ByteBuffer record) {
        FlowEvent event = Layouts.flowEvent(record);
        for (Consumer<FlowEvent> s : subscribers) {
            try {
                s.accept(event);
            } catch (RuntimeException e) {
                LOG.warn("flow event subscriber {} failed on {}", s, event, e);
            }
        }
    }

    @Override
    public synchronized void close() {
        if (!closed) {
            closed = true;
            if (flowReader != null) {
                flowReader.close();
            }
            object.close();
        }
    }

    @Override
    public synchronized void uninstall() throws BpfException {
        requireOpen();
        for (String pod : enrolled()) {
            detachAll(podDir(pod));
        }
        for (Path dir : agentDirs()) {
            detachPinned(dir.resolve(AGENT_PROGRAM));
            deleteDir(dir);
        }
        close();
        try (Stream<Path> s = Files.list(config.pinRoot())) {
            for (Path p : s.toList()) {
                if (p.getFileName().toString().startsWith("wisp_")) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(config.pinRoot().resolve("pods"));
            Files.deleteIfExists(config.pinRoot().resolve("agent"));
            Files.deleteIfExists(config.pinRoot());
        } catch (IOException e) {
            throw new BpfException("removing pins under " + config.pinRoot(), Errno.EIO, e.toString(), "");
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("capture is closed");
        }
    }

    private Path podDir(String id) {
        return config.pinRoot().resolve("pods").resolve(id);
    }

    /** FNV-1a of the pod id: marks the pod's addresses in wisp_pod_ips so that removal finds them. */
    static long podTag(String id) {
        long h = 0xcbf29ce484222325L;
        for (byte b : id.getBytes(StandardCharsets.UTF_8)) {
            h ^= b & 0xff;
            h *= 0x100000001b3L;
        }
        return h;
    }

    private static void ensureBpffs(Path pinRoot) throws BpfException {
        if (!pinRoot.toAbsolutePath().startsWith(BPFFS)) {
            return;
        }
        try {
            if (!Mounts.isMounted(BPFFS, "bpf")) {
                Mounts.mount("bpf", BPFFS, "bpf");
                LOG.info("mounted bpffs at {}", BPFFS);
            }
        } catch (NativeException e) {
            throw new BpfException(e.call(), e.errno(), "bpffs is needed to pin capture state", "");
        } catch (IOException e) {
            throw new BpfException("reading /proc/self/mounts", Errno.EIO, e.toString(), "");
        }
    }

    /** A placeholder codec for maps that are never read entry by entry (the ring buffer). */
    @SuppressWarnings("unchecked")
    private static <T> Codec<T> nothing() {
        return (Codec<T>) Codec.bytes(0);
    }
}
