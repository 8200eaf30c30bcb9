package dev.wisp.testing;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The mesh-unaware application in a pod: it answers each connection with what it saw, so a test
 * knows which path a connection took. A request that ends in a blank line (an HTTP request, as curl
 * sends it) gets an HTTP/1.0 response whose body is {@code hello from <name>; you are <peer
 * address>}; one that ends with the client's half-close gets {@code <name> <bytes read>}, so a test
 * knows the exact bytes each way. Either way it then closes.
 *
 * <p>In this JVM: {@link #start} from a thread inside the pod's network namespace. As a child
 * process in a pod: {@link #main} with {@code name port…}; it prints {@code listening} once every
 * port is bound.
 */
public final class PodServer implements AutoCloseable {
    private final List<ServerSocket> servers;

    private PodServer(List<ServerSocket> servers, String name) {
        this.servers = servers;
        for (ServerSocket s : servers) {
            Thread.ofPlatform().daemon().name("pod-server-" + s.getLocalPort()).start(() -> serve(s, name));
        }
    }

    /** Serves {@code name} on each of {@code addresses} until {@link #close}. */
    public static PodServer start(String name, InetSocketAddress... addresses) throws IOException {
        List<ServerSocket> servers = new ArrayList<>();
        try {
            for (InetSocketAddress a : addresses) {
                ServerSocket s = new ServerSocket();
                servers.add(s);
                s.setReuseAddress(true);
                s.bind(a, 512);
            }
        } catch (IOException e) {
            for (ServerSocket s : servers) {
                s.close();
            }
            throw e;
        }
        return new PodServer(List.copyOf(servers), name);
    }

    /** {@code name port…}: serves on every port of every address until killed. */
    public static void main(String[] args) throws Exception {
        List<InetSocketAddress> ports = new ArrayList<>();
        for (int i = 1; i < args.length; i++) {
            ports.add(new InetSocketAddress(Integer.parseInt(args[i])));
        }
        start(args[0], ports.toArray(InetSocketAddress[]::new));
        System.out.println("listening");
        System.out.flush();
        Thread.currentThread().join();
    }

    private static void serve(ServerSocket server, String name) {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                Thread.ofVirtual().start(() -> answer(s, name));
            } catch (IOException e) {
                return; // closed
            }
        }
    }

    private static void answer(Socket s, String name) {
        try (s) {
            s.setSoTimeout(10_000);
            InputStream in = new BufferedInputStream(s.getInputStream());
            long n = 0;
            int last4 = 0;
            for (int b; last4 != 0x0d0a0d0a && (b = in.read()) >= 0;) {
                n++;
                last4 = (last4 << 8) | b;
            }
            OutputStream out = s.getOutputStream();
            if (last4 == 0x0d0a0d0a) {
                String body = "hello from " + name + "; you are " + s.getInetAddress().getHostAddress() + "\n";
                out.write(("HTTP/1.0 200 OK\r\nContent-Length: " + body.length() + "\r\n\r\n" + body).getBytes(
                        StandardCharsets.US_ASCII));
            } else {
                out.write((name + " " + n + "\n").getBytes(StandardCharsets.US_ASCII));
            }
            out.flush();
        } catch (IOException e) {
            // The client went away: nothing to answer.
        }
    }

    @Override
    public void close() throws IOException {
        for (ServerSocket s : servers) {
            s.close();
        }
    }
}
