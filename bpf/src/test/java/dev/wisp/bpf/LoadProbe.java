package dev.wisp.bpf;

import dev.wisp.bpf.capture.Capture;
import dev.wisp.bpf.capture.CaptureConfig;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/**
 * Run as a separate process by {@link LoadFailureTest} with its capabilities dropped: tries to open
 * capture as the agent would and prints the failure's message and its line count.
 */
public final class LoadProbe {
    private LoadProbe() {}

    public static void main(String[] args) throws Exception {
        CaptureConfig config = CaptureConfig
                .of(Path.of(args[1]), new InetSocketAddress(InetAddress.getByName("10.0.0.1"), 15001), List.of())
                .withPinRoot(Path.of(args[0]));
        try (Capture capture = Capture.open(config)) {
            System.out.println("opened " + capture.enrolled());
        } catch (BpfException e) {
            System.out.println("lines=" + e.getMessage().lines().count());
            System.out.println("cause=" + e.getMessage());
        }
    }
}
