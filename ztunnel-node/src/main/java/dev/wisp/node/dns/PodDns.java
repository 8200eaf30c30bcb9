package dev.wisp.node.dns;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.capture.PodRef;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.node.capture.NetnsPodFollower;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.event.Level;

/**
 * The DNS proxy's listeners inside each captured pod: UDP and TCP on {@code 127.0.0.1:port} and
 * {@code [::1]:port} in the pod's network namespace, where capture sends the pod's port-53 traffic
 * (as ztunnel's in-pod DNS proxy): to an IPv4 server (also through a dual-stack socket) the first,
 * to an IPv6 server the second. Only the pod's own processes can reach a loopback socket of its
 * namespace; its clients are loopback and the pod's addresses (a socket the app bound to its pod
 * address keeps that source). Queries are answered by the one {@link DnsProxy}; relays leave from
 * the agent's namespace. A pod whose namespace has no IPv6 loopback gets the IPv4 listener alone
 * (it has no IPv6 server to ask either).
 *
 * <p>Threads: {@link #podAdded}, {@link #podRemoved} and {@link #close} hold this object's monitor
 * (capture calls the first two on its {@code wisp-pods} thread). Each listener's sockets are made
 * on a short-lived platform thread inside the pod's namespace ({@link NetworkNamespace#call}).
 */
public final class PodDns extends NetnsPodFollower<List<DnsListener>> {
    private static final Logger LOG = LoggerFactory.getLogger(PodDns.class);
    private final DnsProxy proxy;
    private final int port;

    /** The loopback addresses of each pod's listeners. */
    static final List<InetAddress> LOOPBACKS = List.of(InetAddress.ofLiteral("127.0.0.1"),
            InetAddress.ofLiteral("::1"));

    /** Listeners of {@code proxy} on {@code 127.0.0.1:port} and {@code [::1]:port} in each pod added. */
    public PodDns(DnsProxy proxy, int port) {
        this.proxy = requireNonNull(proxy, "proxy");
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException("the pods' DNS port " + port + " is outside 1-65535");
        }
        this.port = port;
    }

    /** The port of the listener in each pod (what capture redirects port 53 to). */
    public int port() {
        return port;
    }

    /**
     * Opens the pod's listeners; a pod without a network namespace gets none ({@link NetnsPodFollower}),
     * nor does one whose IPv4 listener cannot be bound.
     */
    @Override
    protected List<DnsListener> setUp(PodRef pod) {
        Set<InetAddress> clients = new HashSet<>(DnsProxy.LOOPBACK_CLIENTS);
        clients.addAll(pod.ips());
        List<DnsListener> open = new ArrayList<>();
        for (InetAddress loopback : LOOPBACKS) {
            InetSocketAddress at = new InetSocketAddress(loopback, port);
            try {
                open.add(NetworkNamespace.call(pod.netns(), () -> proxy.listen(at, clients)));
                LOG.debug("DNS proxy: listening on {} in pod {}", at, pod.id());
            } catch (IOException | RuntimeException e) {
                boolean v4 = loopback instanceof Inet4Address;
                LOG.atLevel(v4 ? Level.ERROR : Level.WARN).log("DNS proxy: no listener on {} in pod {} ({}): its "
                        + "DNS queries {} go unanswered until its pod file changes; is the pod's loopback up, and is "
                        + "that port free in it?", at, pod.id(), e.getMessage(), v4 ? "over IPv4" : "to IPv6 servers");
                if (v4) {
                    tearDown(open);
                    return null;
                }
            }
        }
        return open;
    }

    @Override
    protected void tearDown(List<DnsListener> listeners) {
        listeners.forEach(DnsListener::close);
    }

    /** The pods that have a listener now. */
    public Set<String> serving() {
        return podIds();
    }
}
