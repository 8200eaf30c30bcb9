package dev.wisp.e2e;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A mesh-unaware server for pods: on each port, for every connection, reads the request until the
 * client half-closes, answers {@code "<name> <bytes read>\n"} and closes. So a test knows the exact
 * bytes each way. Prints {@code listening} once every port is bound. Arguments: name port….
 */
public final class PodServer {
    private PodServer() {}

    public static void main(String[] args) throws Exception {
        String name = args[0];
        for (int i = 1; i < args.length; i++) {
            ServerSocket server = new ServerSocket();
            server.bind(new InetSocketAddress(Integer.parseInt(args[i])), 128);
            Thread.ofPlatform().start(() -> serve(server, name));
        }
        System.out.println("listening");
        System.out.flush();
        Thread.currentThread().join();
    }

    private static void serve(ServerSocket server, String name) {
        while (true) {
            try {
                Socket s = server.accept();
                Thread.ofVirtual().start(() -> answer(s, name));
            } catch (IOException e) {
                return;
            }
        }
    }

    private static void answer(Socket s, String name) {
        try (s) {
            s.setSoTimeout(10_000);
            long n = s.getInputStream().transferTo(OutputStream.nullOutputStream());
            s.getOutputStream().write((name + " " + n + "\n").getBytes(StandardCharsets.US_ASCII));
        } catch (IOException e) {
            // The client went away: nothing to answer.
        }
    }
}
