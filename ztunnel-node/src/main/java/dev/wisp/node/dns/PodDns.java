package dev.wisp.node.dns;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.capture.PodRef;
import dev.wisp.linux.NetworkNamespace;
import dev.wisp.node.capture.NetnsPodFollower;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.HashSet;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The DNS proxy's listener inside each captured pod: UDP and TCP on {@code 127.0.0.1:port} in the
 * pod's network namespace, where capture sends the pod's port-53 traffic (as ztunnel's in-pod DNS
 * proxy). Only the pod's own processes can reach a loopback socket of its namespace; its clients
 * are loopback and the pod's addresses (a socket the app bound to its pod address keeps that
 * source). Queries are answered by the one {@link DnsProxy}; relays leave from the agent's
 * namespace.
 *
 * <p>Threads: {@link #podAdded}, {@link #podRemoved} and {@link #close} hold this object's monitor
 * (capture calls the first two on its {@code wisp-pods} thread). Each listener's sockets are made
 * on a short-lived platform thread inside the pod's namespace ({@link NetworkNamespace#call}).
 */
public final class PodDns extends NetnsPodFollower<DnsListener> {
    private static final Logger LOG = LoggerFactory.getLogger(PodDns.class);
    private final DnsProxy proxy;
    private final int port;

    /** Listeners of {@code proxy} on {@code 127.0.0.1:port} in each pod added. */
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

    /** Opens the pod's listener; a pod without a network namespace gets none ({@link NetnsPodFollower}). */
    @Override
    protected DnsListener setUp(PodRef pod) {
        Set<InetAddress> clients = new HashSet<>(DnsProxy.LOOPBACK_CLIENTS);
        clients.addAll(pod.ips());
        InetSocketAddress at = new InetSocketAddress(InetAddress.ofLiteral("127.0.0.1"), port);
        try {
            DnsListener l = NetworkNamespace.call(pod.netns(), () -> proxy.listen(at, clients));
            LOG.debug("DNS proxy: listening on {} in pod {}", at, pod.id());
            return l;
        } catch (IOException | RuntimeException e) {
            LOG.error("DNS proxy: no listener on {} in pod {} ({}): its DNS queries go unanswered until its pod "
                    + "file changes; is the pod's loopback up, and is that port free in it?", at, pod.id(),
                    e.getMessage());
            return null;
        }
    }

    @Override
    protected void tearDown(DnsListener l) {
        l.close();
    }

    /** The pods that have a listener now. */
    public Set<String> serving() {
        return podIds();
    }
}
