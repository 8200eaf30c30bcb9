package dev.wisp.bpf.capture;

import dev.wisp.bpf.BpfException;
import dev.wisp.bpf.capture.internal.BpfCapture;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.Optional;
import java.util.Set;
import java.util.function.Consumer;

/**
 * eBPF capture of member pods' TCP traffic for the node agent.
 *
 * <p>Outbound: a member pod's TCP connects are redirected to the agent's outbound listener; the
 * agent asks {@link #originalDestination} (or {@code getsockopt(SO_ORIGINAL_DST)} on the accepted
 * socket) where they were going; the application's {@code getpeername} still shows that original
 * destination. Inbound: connections to a member pod's addresses arriving in its network namespace
 * are steered to the agent's inbound (15006) listener, HBONE (15008) to the HBONE listener, once
 * the agent hands their descriptors to {@link #setInboundListener}/{@link #setHboneListener}.
 * Those listeners must live in the pod's network namespace (as in ztunnel's in-pod mode): the
 * kernel's sk_lookup hook cannot hand a connection to a socket of another namespace.
 * Member pods cannot bind the mesh ports (TCP or UDP). DNS goes to the agent's in-pod DNS listener once
 * {@link #redirectDns} names its port. Flow events stream to {@link #subscribe}rs.
 *
 * <p>State lives pinned under the config's pin root: maps by name, and one link per (pod, program).
 * {@link #open} after an agent restart finds the pinned links and swaps in its freshly loaded
 * programs ({@code BPF_LINK_UPDATE}): exactly one set of programs stays attached, no pod is ever
 * without capture, and nothing leaks. {@link #close} leaves capture running (pods stay protected
 * while the agent restarts); {@link #uninstall} removes everything.
 *
 * <p>Thread-safe: enrollment is serialised; lookups may run on any thread.
 */
public interface Capture extends AutoCloseable {

    /** Loads the programs, reuses pinned state and re-adopts the pods enrolled by an earlier run. */
    static Capture open(CaptureConfig config) throws BpfException {
        return BpfCapture.open(config);
    }

    /** Starts capturing {@code pod}. Idempotent: enrolling an enrolled pod re-points it at this run's programs. */
    void enroll(PodRef pod) throws BpfException;

    /** Stops capturing the pod: its connections go direct again. Returns whether it was enrolled. */
    boolean remove(String podId) throws BpfException;

    /** Ids of the enrolled pods (from the pins, so it includes pods enrolled by an earlier run). */
    Set<String> enrolled();

    /**
     * Where a redirected connection was going, keyed by the agent's accepted socket: {@code local}
     * is its local address (the outbound listener), {@code remote} the pod's end.
     */
    Optional<InetSocketAddress> originalDestination(InetSocketAddress local, InetSocketAddress remote)
            throws BpfException;

    /**
     * Registers the agent's inbound plaintext (15006) listening socket in the network namespace of
     * the pod that owns {@code podIp}; -1 clears it. The kernel drops the entry when the socket
     * closes, so a restarted agent registers its new sockets.
     */
    void setInboundListener(InetAddress podIp, int listenerFd) throws BpfException;

    /** Registers the agent's HBONE (15008) listening socket for {@code podIp}; -1 clears it. */
    void setHboneListener(InetAddress podIp, int listenerFd) throws BpfException;

    /**
     * Lets the agent's own connection from {@code from} (a client's address, bound with
     * {@code IP_TRANSPARENT} inside the pod's network namespace) to {@code to} (a member pod's
     * address and application port) reach the application instead of being steered to the agent's
     * inbound listener again; {@code pass = false} forgets it (once connected: only its SYN is
     * looked up). Nothing else tells that connection apart from a client's: the kernel reports it as
     * arriving on the device that holds the pod's address, as a connection from outside does.
     */
    void passOwnConnection(InetSocketAddress from, InetSocketAddress to, boolean pass) throws BpfException;

    /**
     * Sends member pods' DNS (UDP and TCP to port 53 of an IPv4 address, connected or an unconnected
     * {@code sendto()}) to {@code 127.0.0.1:port} inside the pod, where the agent keeps a DNS
     * listener in each pod's network namespace; answers read as coming from the server addressed.
     * 0 turns it off (pods' DNS goes where it was sent). The setting is pinned: it outlives this
     * handle, so an agent that stops serving DNS sets 0 first, and {@link #open} sets 0 (an agent
     * killed without draining left it on, pointing at listeners gone with it) until the new agent
     * has its listeners and calls this.
     */
    void redirectDns(int port) throws BpfException;

    /**
     * Delivers flow events to {@code listener} until the returned handle is closed. All subscribers
     * share one reader thread ({@code wisp-ringbuf-wisp_events}): keep listeners quick. A throwing
     * listener is logged and neither stops the stream nor affects other listeners.
     */
    AutoCloseable subscribe(Consumer<FlowEvent> listener) throws BpfException;

    /** Releases this process's handles; pinned capture keeps working. */
    @Override
    void close();

    /** Detaches every program, removes every pin and closes. */
    void uninstall() throws BpfException;
}
