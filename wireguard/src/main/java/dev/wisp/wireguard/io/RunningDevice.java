package dev.wisp.wireguard.io;

import java.time.Duration;
import dev.wisp.base.Threads;
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
import dev.wisp.wireguard.device.OrderedPipeline;
import dev.wisp.linux.UdpBatchSocket;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The I/O shell around {@link DeviceCore}: owns the TUN device, the UDP socket and its threads.
 * {@code wg-tun} reads plaintext packets (up to {@link UdpBatchSocket#BATCH} reads while the TUN has
 * them) and {@code wg-udp} receives datagrams with {@code recvmmsg}; both only sort packets into
 * per-peer batches ({@link DeviceCore.Round}). The batches go to an {@link OrderedPipeline}: one
 * {@code wg-crypto} worker per core seals or opens them in parallel, and per peer and direction one
 * sequencer (a virtual thread) finishes them in order: sends a peer's datagrams with one
 * {@code sendmmsg}, or checks replay and allowed IPs and writes to the TUN, merging consecutive TCP
 * segments into one GSO frame ({@link Coalescer}). {@code wg-handshake} consumes handshake messages
 * (all Diffie-Hellman work happens there, off the data path); {@code wg-timers} ticks the protocol
 * timers every 50 ms.
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
    private static final int SOCKET_BUFFER = 8 << 20;
    /**
     * TCP segmentation offload on the TUN (on unless {@code -Dwisp.wireguard.offload=false}): the
     * kernel hands over 64 KiB TCP super-segments that {@link Offload} cuts up, so the sending stack
     * and the TUN reader pay per 64 KiB instead of per packet.
     */
    static final boolean OFFLOAD = !"false".equals(System.getProperty("wisp.wireguard.offload"));
    /** Marks written packets' checksums as verified: Poly1305 already authenticated them. */
    private static final byte VNET_F_DATA_VALID = 2;
    /** Replaced (under {@code this}) when the listen port changes; read by any sender. */
    private volatile UdpBatchSocket udp;
    /**
     * Crypto workers: {@code -Dwisp.wireguard.workers=N}, by default one per available core.
     */
    static final int WORKERS = Integer.getInteger("wisp.wireguard.workers",
            Runtime.getRuntime().availableProcessors());
    /**
     * Batches smaller than this ({@code -Dwisp.wireguard.inlineBelow=N}) are sealed or opened on
     * the reading thread when their peer's lane is idle: a hand-off to a worker and a sequencer
     * costs more than it saves for a few packets.
     */
    static final int INLINE_BELOW = Integer.getInteger("wisp.wireguard.inlineBelow", 16);
    private final OrderedPipeline pipeline;
    /** Native send buffers the sequencers borrow for one sendmmsg each. */
    private final java.util.concurrent.ArrayBlockingQueue<UdpBatchSocket.Batch> sendBatches;
    private final List<UdpBatchSocket.Batch> allSendBatches = new ArrayList<>();
    /** Guarded by itself: sends from the other threads (handshakes, keepalives, staged packets). */
    private final UdpBatchSocket.Batch otherSends = new UdpBatchSocket.Batch();
    private volatile Thread tunThread;
    private volatile Thread udpThread;
    /**
     * Sockets replaced by a listen-port change: the UDP thread closes them once its receive on them
     * has returned, so no descriptor is closed under a blocked call.
     */
    private final java.util.concurrent.ConcurrentLinkedQueue<UdpBatchSocket> retired = new java.util.concurrent.ConcurrentLinkedQueue<>();
    private volatile int fwmark;
    private volatile boolean running = true;
    private final List<Thread> threads = new ArrayList<>();

    private RunningDevice(String name, Tun tun, Timers timers, int mtu) throws IOException {
        this.name = name;
        this.tun = tun;
        this.core = new DeviceCore(Clock.SYSTEM, new ShellIo(), timers);
        core.setMtu(mtu);
        this.udp = bindUdp(0);
        int workers = Math.max(1, WORKERS);
        this.sendBatches = new java.util.concurrent.ArrayBlockingQueue<>(workers + 2);
        for (int i = 0; i < workers + 2; i++) {
            UdpBatchSocket.Batch b = new UdpBatchSocket.Batch();
            allSendBatches.add(b);
            sendBatches.add(b);
        }
        this.pipeline = new OrderedPipeline("wg-" + name, workers, DeviceCore.WORK_CAPACITY);
        core.usePipeline(pipeline, INLINE_BELOW);
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
                tun = Tun.open(name, OFFLOAD);
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

    private static UdpBatchSocket bindUdp(int port) throws IOException {
        try {
            return UdpBatchSocket.bind(port, SOCKET_BUFFER);
        } catch (NativeException e) {
            throw new IOException("cannot bind UDP port " + port + ": " + e.getMessage()
                    + " (is another WireGuard device or program using it?)", e);
        }
    }

    private void startThreads() {
        if (tun != null) {
            tunThread = Thread.ofPlatform().name("wg-tun-" + name).daemon().unstarted(this::tunLoop);
            threads.add(tunThread);
            tunThread.start();
        }
        udpThread = Thread.ofPlatform().name("wg-udp-" + name).daemon().unstarted(this::udpLoop);
        threads.add(udpThread);
        udpThread.start();
        threads.add(Thread.ofPlatform().name("wg-handshake-" + name).daemon().start(this::handshakeLoop));
        threads.add(Thread.ofPlatform().name("wg-timers-" + name).daemon().start(this::timerLoop));
    }

    private final class ShellIo implements Io {
        @Override
        public void sendUdp(InetSocketAddress to, byte[] buf, int off, int len) {
            synchronized (otherSends) {
                if (running) {
                    otherSends.add(to, buf, off, len);
                    udp.send(otherSends);
                }
            }
        }

        @Override
        public void sendUdp(InetSocketAddress to, byte[] buf, int[] off, int[] len, int count) {
            UdpBatchSocket.Batch b;
            try {
                b = sendBatches.take();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
            try {
                UdpBatchSocket sock = udp;
                for (int i = 0; i < count; i++) {
                    if (len[i] >= 0 && !b.add(to, buf, off[i], len[i])) {
                        sock.send(b);
                        b.add(to, buf, off[i], len[i]);
                    }
                }
                if (b.count() > 0) {
                    sock.send(b);
                }
            } finally {
                sendBatches.add(b);
            }
        }

        @Override
        public TunStream openTunStream() {
            if (tun == null || !tun.offload()) {
                return Io.super.openTunStream();
            }
            Coalescer coalescer = new Coalescer();
            Coalescer.Writer writer = RunningDevice.this::writeFrame;
            return new TunStream() {
                @Override
                public void write(byte[] buf, int off, int len) {
                    coalescer.add(buf, off, len, writer);
                }

                @Override
                public void flush() {
                    coalescer.flush(writer);
                }
            };
        }

        @Override
        public void writeTun(byte[] buf, int off, int len) {
            if (tun == null) {
                return;
            }
            if (tun.offload()) {
                // The core leaves the transport header in front of the plaintext: room for the vnet header.
                int h = off - Offload.VNET_HDR_LEN;
                java.util.Arrays.fill(buf, h, off, (byte) 0);
                buf[h] = VNET_F_DATA_VALID;
                tun.write(buf, h, len + Offload.VNET_HDR_LEN);
            } else {
                tun.write(buf, off, len);
            }
        }
    }

    private void tunLoop() {
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        DeviceCore.Round round = new DeviceCore.Round();
        boolean offload = tun.offload();
        byte[] raw = offload ? new byte[DeviceCore.SCRATCH_SIZE] : s.buf;
        int rawOff = offload ? 0 : DeviceCore.PLAINTEXT_OFFSET;
        int max = raw.length - rawOff - 48;
        Offload.Sink encrypt = (b, o, l) -> core.queueFromTun(round, b, o, l);
        try {
            while (running) {
                int n = tun.read(raw, rawOff, max, POLL_MILLIS);
                if (n < 0) {
                    return;
                }
                // Take what the TUN already holds, then send it all with few syscalls.
                for (int i = 0; n > 0; i++) {
                    if (offload) {
                        Offload.split(raw, 0, n, s.buf, DeviceCore.PLAINTEXT_OFFSET, encrypt);
                    } else {
                        core.queueFromTun(round, raw, rawOff, n);
                    }
                    if (i + 1 >= UdpBatchSocket.BATCH) {
                        break;
                    }
                    n = tun.read(raw, rawOff, max, 0);
                }
                core.submit(round);
            }
        } catch (NativeException | RuntimeException e) {
            if (running) {
                LOG.error("TUN reader of {} stopped: {}", name, e.toString());
            }
        }
    }

    private void udpLoop() {
        DeviceCore.Scratch s = new DeviceCore.Scratch();
        DeviceCore.Round round = new DeviceCore.Round();
        UdpBatchSocket.Batch batch = new UdpBatchSocket.Batch();
        try {
            while (running) {
                UdpBatchSocket sock = udp;
                try {
                    int n = sock.receive(batch);
                    closeRetired();
                    for (int i = 0; i < n; i++) {
                        int len = Math.min(batch.length(i), s.buf.length);
                        batch.copyOut(i, s.buf, 0, len);
                        core.receiveUdp(round, s.buf, len, batch.source(i));
                    }
                    core.submit(round);
                } catch (NativeException | RuntimeException e) {
                    if (running && sock == udp) {
                        LOG.warn("UDP receive on {} failed: {}", name, e.toString());
                    }
                }
            }
        } finally {
            batch.free();
        }
    }

    private void writeFrame(byte[] b, int off, int len) {
        tun.write(b, off, len);
    }

    private void closeRetired() {
        UdpBatchSocket old;
        while ((old = retired.poll()) != null) {
            try {
                old.close();
            } catch (NativeException e) {
                LOG.debug("closing a replaced UDP socket of {}: {}", name, e.toString());
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
    public void setSecondaryKey(Key privateKey) {
        core.setSecondaryKey(privateKey);
    }

    @Override
    public Key secondaryPublicKey() {
        return core.secondaryPublicKey();
    }

    @Override
    public void swapKeys() {
        core.swapKeys();
    }

    @Override
    public boolean changePeerKey(Key from, Key to) {
        return core.changePeerKey(from, to);
    }

    @Override
    public java.util.Map<Key, Key> handshakeKeys() {
        return core.handshakeKeys();
    }

    @Override
    public synchronized void setListenPort(int port) throws IOException {
        if (port < 0 || port > 65535) {
            throw new IllegalArgumentException("listen port must be 0..65535, got " + port);
        }
        if (port != 0 && port == udp.port()) {
            return;
        }
        UdpBatchSocket fresh = bindUdp(port);
        if (fwmark != 0) {
            markSocket(fresh, fwmark);
        }
        retired.add(udp);
        udp = fresh;
    }

    @Override
    public int listenPort() {
        return udp.port();
    }

    @Override
    public synchronized void setFwmark(int mark) throws IOException {
        markSocket(udp, mark);
        this.fwmark = mark;
    }

    private static void markSocket(UdpBatchSocket sock, int mark) throws IOException {
        try {
            sock.setMark(mark);
        } catch (NativeException e) {
            throw new IOException("cannot set fwmark " + mark + ": " + e.getMessage(), e);
        }
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

    /** See {@link dev.wisp.wireguard.WireGuard.Builder#underLoadThresholdForTests}. */
    public void setUnderLoadThresholdForTests(int queued) {
        core.setUnderLoadThresholdForTests(queued);
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
        for (Thread t : threads) {
            t.interrupt();
            Threads.awaitEnd(t, Duration.ofMillis(2 * POLL_MILLIS + 1000));
            if (Thread.currentThread().isInterrupted()) {
                break;
            }
        }
        // Workers first (they finish what is queued), then the lanes with the peers, then the fds.
        pipeline.close();
        core.destroy();
        closeRetired();
        try {
            udp.close();
        } catch (NativeException e) {
            LOG.debug("closing the UDP socket of {}: {}", name, e.toString());
        }
        synchronized (otherSends) {
            otherSends.free();
        }
        for (UdpBatchSocket.Batch b : allSendBatches) {
            b.free();
        }
        if (tun != null) {
            try {
                tun.close();
            } catch (NativeException e) {
                LOG.warn("closing TUN {}: {}", name, e.getMessage());
            }
        }
    }
}
