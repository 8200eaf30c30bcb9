package dev.wisp.bpf.capture;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * The application in pod B: reads a request (up to a blank line, or end of stream) and answers an
 * HTTP/1.0 response whose body names the peer it saw, then closes. Create it from a thread inside
 * pod B's network namespace.
 */
final class PodServer implements AutoCloseable {
    private final ServerSocket server;

    PodServer(InetSocketAddress address) throws IOException {
        server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(address);
        Thread.ofPlatform().daemon().name("pod-server").start(this::serve);
    }

    private void serve() {
        while (!server.isClosed()) {
            try (Socket s = server.accept()) {
                InputStream in = s.getInputStream();
                int last4 = 0;
                while (last4 != 0x0d0a0d0a) {
                    int b = in.read();
                    if (b < 0) {
                        break;
                    }
                    last4 = (last4 << 8) | b;
                }
                String body = "hello from B; you are " + s.getInetAddress().getHostAddress() + "\n";
                String response = "HTTP/1.0 200 OK\r\nContent-Length: " + body.length() + "\r\n\r\n" + body;
                OutputStream out = s.getOutputStream();
                out.write(response.getBytes(StandardCharsets.US_ASCII));
                out.flush();
            } catch (IOException e) {
                if (server.isClosed()) {
                    return;
                }
            }
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
    }
}
