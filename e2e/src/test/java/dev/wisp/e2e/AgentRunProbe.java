package dev.wisp.e2e;

import dev.wisp.bpf.capture.Capture;
import dev.wisp.bpf.capture.CaptureConfig;
import dev.wisp.bpf.capture.PodRef;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;

/**
 * One "agent run" as a separate process, for the restart test: opens capture over the given pins,
 * enrolls one pod, prints what it saw enrolled at start, and exits without uninstalling (as an agent
 * that is stopped or crashes would). Arguments: pinRoot agentCgroup outboundIp outboundPort podId
 * podCgroup podNetns podIp.
 */
public final class AgentRunProbe {
    private AgentRunProbe() {}

    public static void main(String[] a) throws Exception {
        CaptureConfig config = new CaptureConfig(Path.of(a[0]), Path.of(a[1]),
                new InetSocketAddress(InetAddress.getByName(a[2]), Integer.parseInt(a[3])), null, 15006, 15008,
                CaptureConfig.MESH_PORTS, List.of());
        try (Capture capture = Capture.open(config)) {
            System.out.println("enrolled-at-start=" + capture.enrolled());
            capture.enroll(new PodRef(a[4], Path.of(a[5]), Path.of(a[6]), List.of(InetAddress.getByName(a[7]))));
            System.out.println("enrolled-at-exit=" + capture.enrolled());
        }
    }
}
