package dev.wisp.wireguard.io;

import static java.util.Objects.requireNonNull;

import dev.wisp.linux.NativeException;
import dev.wisp.linux.Tun;
import dev.wisp.wireguard.DeviceStats;
import dev.wisp.wireguard.Key;
import dev.wisp.wireguard.PeerConfig;
import dev.wisp.wireguard.PeerStatus;
import dev.wisp.wireguard.Timers;
import dev.wisp.wireguard.UnknownPeerHandler;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.device.Clock;
import dev.wisp.wireguard.device.DeviceCore;
import dev.wisp.wireguard.device.Io;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The I/O shell around {@link DeviceCore}: owns the TUN device, the UDP socket and four platform
 * threads. {@code wg-tun} reads plaintext packets and encrypts them; {@code wg-udp} receives
 * datagrams and decrypts transport data (each with its own {@link DeviceCore.Scratch}, so
 * encryption and decryption run in parallel on two cores, and each direction keeps its order);
 * {@code wg-handshake} consumes handshake messages (all Diffie-Hellman work happens there, off the
 * data path); {@code wg-timers} ticks the protocol timers every 50 ms.
 *
 * <p>Obtain through {@link dev.wisp.wireguard.WireGuard#builder}; public only for that factory.
 */
public final class RunningDevice implements WireGuardDevice {
    private static final Logger LOG = LoggerFactory.getLogger(RunningDevice.class);
    private static final int TICK_MILLIS = 50;
    private static final int POLL_MILLIS = 200;

    private final String name;
    private final DeviceCore core;
    /** Null in UDP-only mode (tests): decrypted packets are then discarded. */
    private final Tun tun;
    /** Replaced (under {@code this}) when the listen port changes; read by any sender. */
    private volatile UdpSocket udp;
    private volatile int fwmark;
    private volatile boolean running = true;
    private final List<Thread> threads = new ArrayList<>();

    private RunningDevice(String name, Tun tun, Timers timers, int mtu) throws IOException {
        this.name = name;
        this.tun = tun;
        this.core = new DeviceCore(Clock.SYSTEM, new ShellIo(), timers);
        core.setMtu(mtu);
        this.udp = new UdpSocket(0);
    }

    /**
     * Creates the TUN interface {@code name} (unless {@code withTun} is false), binds a UDP socket on
     * a free port and starts the threads.
     */
    public static RunningDevice start(String name, Timers timers, boolean withTun, int mtu) throws IOException {
        requireNonNull(name, "name");
        requireNonNull(timers, "timers");
        Tun tun = null;
        if (withTun) {
            try {
                tun = Tun.open(name);
                tun.setMtu(mtu);
            } catch (NativeException e) {
                if (tun != null) {
                    tun.close();
                }
                throw new IOException("cannot create TUN interface " + name + ": " + e.getMessage()
                        + " (needs root or CAP_NET_ADMIN and /dev/net/tun)", e);
            }
        }
        RunningDevice d;
        try {
            d = new RunningDevice(withTun ? tun.name() : name, tun, timers, mtu);
        } catch (IOException | RuntimeException e) {
            if (tun != null) {
                tun.close();
            }
            throw e;
        }
        d.startThreads();
        return d;
    }

    private void startThreads() {
        if (tun != null) {
            threads.add(Thread.ofPlatform().name("wg-tun-" + name).daemon().start(this::tunLoop));
        }
        threads.add(Thread.ofPlatform().name("wg-udp-" + name).daemon().start(this::udpLoop));
        threads.add(Thread.ofPlatform().name("wg-handshake-" + name).daemon().start(this::handshakeLoop));
        threads.add(Thread.ofPlatform().name("wg-timers-" + name).daemon().start(this::timerLoop));
    }

    private final class ShellIo implements Io {
        @Override
        public void sendUdp(InetSocketAddress to, byte[] buf, int off, int len) {
            udp.send(ByteBuffer.wrap(buf, off, len), to);
        }

        @Override
        public void writeTun(byte[] buf, int off, int len) {
            if (tun != null) {
                tun.write(buf, off, len);
            }
        }
    }

    private void tunLoop() {
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        int max = s.buf.length - DeviceCore.PLAINTEXT_OFFSET - 48;
        try {
            while (running) {
                int n = tun.read(s.buf, DeviceCore.PLAINTEXT_OFFSET, max, POLL_MILLIS);
                if (n > 0) {
                    core.encryptFromTun(s, n);
                } else if (n < 0) {
                    return;
                }
            }
        } catch (NativeException | RuntimeException e) {
            if (running) {
                LOG.error("TUN reader of {} stopped: {}", name, e.toString());
            }
        }
    }

    private void udpLoop() {
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        ByteBuffer bb = ByteBuffer.wrap(s.buf);
        while (running) {
            UdpSocket sock = udp;
            try {
                bb.clear();
                InetSocketAddress from = sock.receive(bb);
                if (from == null) {
                    continue;
                }
                core.receiveUdp(s, bb.position(), from);
            } catch (IOException | RuntimeException e) {
                if (running && sock == udp) {
                    LOG.warn("UDP receive on {} failed: {}", name, e.toString());
                }
            }
        }
    }

    private void handshakeLoop() {
        while (running) {
            try {
                core.processHandshake(POLL_MILLIS);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.warn("handshake processing on {} failed: {}", name, e.toString());
            }
        }
    }

    private void timerLoop() {
        while (running) {
            try {
                core.tick();
                Thread.sleep(TICK_MILLIS);
            } catch (InterruptedException e) {
                return;
            } catch (RuntimeException e) {
                LOG.warn("timer tick on {} failed: {}", name, e.toString());
            }
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public void setPrivateKey(Key privateKey) {
        core.setPrivateKey(privateKey);
    }

    @Override
    public Key privateKey() {
        return core.privateKey();
    }

    @Override
    public Key publicKey() {
        return core.publicKey();
    }

    @Override
    public synchronized void setListenPort(int port) throws IOException {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("listen port must be 0..65535, got " + port);
        }
        if (port != 0 && port == udp.port()) {
            return;
        }
        UdpSocket fresh = new UdpSocket(port);
        UdpSocket old = udp;
        udp = fresh;
        old.close();
    }

    @Override
    public int listenPort() {
        return udp.port();
    }

    @Override
    public void setFwmark(int mark) {
        this.fwmark = mark;
    }

    @Override
    public int fwmark() {
        return fwmark;
    }

    @Override
    public void upsertPeer(PeerConfig peer) {
        core.upsertPeer(peer);
    }

    @Override
    public boolean removePeer(Key publicKey) {
        return core.removePeer(publicKey);
    }

    @Override
    public void removeAllPeers() {
        core.removeAllPeers();
    }

    @Override
    public List<PeerStatus> peers() {
        return core.peers();
    }

    @Override
    public Key presharedKey(Key peer) {
        return core.presharedKey(peer);
    }

    @Override
    public DeviceStats stats() {
        return core.stats();
    }

    @Override
    public void setUnknownPeerHandler(UnknownPeerHandler handler) {
        core.setUnknownPeerHandler(handler);
    }

    @Override
    public void close() {
        if (!running) {
            return;
        }
        running = false;
        try {
            udp.close();
        } catch (IOException e) {
            LOG.debug("closing the UDP socket of {}: {}", name, e.toString());
        }
        for (Thread t : threads) {
            t.interrupt();
            try {
                t.join(2 * POLL_MILLIS + 1000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        if (tun != null) {
            try {
                tun.close();
            } catch (NativeException e) {
                LOG.warn("closing TUN {}: {}", name, e.getMessage());
            }
        }
        core.destroy();
    }
}
