package dev.wisp.cli;

import dev.wisp.wireguard.Timers;
import dev.wisp.wireguard.WireGuard;
import dev.wisp.wireguard.WireGuardDevice;
import dev.wisp.wireguard.uapi.UapiServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code wisp wireguard [-f] IFACE}: the Java WireGuard device, used like {@code wireguard-go}. It
 * creates the TUN interface and serves the UAPI socket so that {@code wg} and {@code wg-quick}
 * configure it; without {@code -f} it starts itself again in the background and returns once the
 * interface is ready. It exits, removing the TUN and the socket, on SIGINT/SIGTERM or when the
 * interface is deleted ({@code ip link del IFACE}).
 */
@Command(name = "wireguard", mixinStandardHelpOptions = true, subcommands = WireguardRotateCommand.class, description = {
        "Run a userspace WireGuard interface (like wireguard-go); configure it with wg(8).", "",
        "Example: wisp wireguard wg0 && wg set wg0 private-key ./key listen-port 51820 && ip link set wg0 up", "",
        "'wisp wireguard rotate' rotates a node agent's key instead."})
public final class WireguardCommand implements Callable<Integer> {
    private static final Logger LOG = LoggerFactory.getLogger(WireguardCommand.class);
    /** Test-only: shortens REKEY_AFTER_TIME (and REJECT_AFTER_TIME to 1.5×) to watch rekeys. */
    static final String TEST_REKEY_ENV = "WISP_WG_TEST_REKEY_AFTER_SECONDS";
    /** Tests only: queued handshakes from which the device counts as under load (0 = always). */
    static final String TEST_UNDER_LOAD_ENV = "WISP_WG_TEST_UNDER_LOAD";

    @Option(names = {"-f", "--foreground"}, description = "Stay in the foreground (logs go to stderr).")
    boolean foreground;

    @Option(names = "--uapi-dir", paramLabel = "DIR", description = "Directory of the UAPI socket (default: ${DEFAULT-VALUE}).", defaultValue = "/var/run/wireguard")
    Path uapiDir;

    // Optional for picocli (a required one would be demanded of 'wisp wireguard rotate' too); call() asks for it.
    @Parameters(index = "0", arity = "0..1", paramLabel = "IFACE", description = "Interface name, e.g. wg0.")
    String iface;

    @Override
    public Integer call() throws Exception {
        if (iface == null) {
            throw UserException.invalid("missing the interface name (e.g. 'wisp wireguard wg0'), or 'rotate'");
        }
        if (!iface.matches("[A-Za-z0-9_.-]{1,15}")) {
            throw new UserException("interface name '" + iface + "' must be 1-15 letters, digits, '_', '.', '-'");
        }
        if (!foreground) {
            return daemonize();
        }
        Timers timers = Timers.DEFAULTS;
        String testRekey = System.getenv(TEST_REKEY_ENV);
        if (testRekey != null && !testRekey.isBlank()) {
            timers = Timers.forTestsWithRekeyAfter(Duration.ofSeconds(Long.parseLong(testRekey.trim())));
            LOG.warn("{} is set: rekey after {} s instead of 120 s (tests only)", TEST_REKEY_ENV, testRekey.trim());
        }
        WireGuard.Builder builder = WireGuard.builder(iface).timers(timers);
        String testUnderLoad = System.getenv(TEST_UNDER_LOAD_ENV);
        if (testUnderLoad != null && !testUnderLoad.isBlank()) {
            builder.underLoadThresholdForTests(Integer.parseInt(testUnderLoad.trim()));
            LOG.warn("{} is set: under load from {} queued handshakes instead of 128 (tests only)",
                    TEST_UNDER_LOAD_ENV, testUnderLoad.trim());
        }
        WireGuardDevice device;
        try {
            device = builder.start();
        } catch (IOException e) {
            throw new UserException(e.getMessage(), e);
        }
        UapiServer uapi;
        try {
            uapi = UapiServer.start(device, uapiDir);
        } catch (IOException e) {
            device.close();
            throw new UserException(e.getMessage(), e);
        }
        CountDownLatch stop = new CountDownLatch(1);
        CountDownLatch stopped = new CountDownLatch(1);
        Thread hook = new Thread(() -> {
            stop.countDown();
            try {
                stopped.await(5, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "wg-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        LOG.info("interface {} is up; UAPI on {}", device.name(), uapi.path());
        Path sysfs = Path.of("/sys/class/net", device.name());
        try {
            while (!stop.await(1, TimeUnit.SECONDS)) {
                if (!Files.exists(sysfs)) {
                    LOG.info("interface {} was deleted; shutting down", device.name());
                    break;
                }
            }
        } finally {
            uapi.close();
            device.close();
            LOG.info("interface {} removed", iface);
            stopped.countDown();
        }
        return 0;
    }

    /** Starts {@code wisp wireguard -f IFACE} detached and waits for its UAPI socket. */
    private int daemonize() throws IOException, InterruptedException {
        ProcessHandle.Info info = ProcessHandle.current().info();
        String java = info.command().orElseThrow(() -> new UserException("cannot find this JVM's executable"));
        List<String> cmd = new ArrayList<>();
        cmd.add(java);
        cmd.addAll(List.of(info.arguments().orElse(new String[0])));
        int at = cmd.lastIndexOf("wireguard");
        if (at < 0) {
            throw new UserException("cannot restart in the background; run with -f");
        }
        List<String> child = new ArrayList<>(cmd.subList(0, at + 1));
        child.add("-f");
        child.add("--uapi-dir");
        child.add(uapiDir.toString());
        child.add(iface);
        Path sock = uapiDir.resolve(iface + ".sock");
        Process p = new ProcessBuilder(child).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD)
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (System.nanoTime() < deadline) {
            if (!p.isAlive()) {
                throw new UserException("the background WireGuard process for " + iface + " exited with status "
                        + p.exitValue() + "; run with -f to see why");
            }
            if (Files.exists(sock)) {
                return 0;
            }
            p.waitFor(100, TimeUnit.MILLISECONDS);
        }
        p.destroy();
        throw new UserException("the WireGuard interface " + iface + " did not come up within 20 s; run with -f");
    }
}
