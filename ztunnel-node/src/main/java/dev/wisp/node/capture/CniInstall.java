package dev.wisp.node.capture;

import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs {@link CniPlugin} on a node ({@code wisp cni install}), as istio-cni's install container
 * does: copies the plugin's launcher into the host's CNI bin directory as {@code wisp-cni} and chains
 * {@code {"type": "wisp-cni", …}} at the end of the node's primary CNI configuration (the file the
 * runtime uses: the first {@code .conf}/{@code .conflist}/{@code .json} by name), so the primary
 * plugin stays first and hands its {@code prevResult} on. A single-plugin {@code .conf} becomes a
 * {@code .conflist} of the same name with the plugin, then Wisp (the {@code .conf} is removed).
 *
 * <p>Idempotent: a configuration that already holds the same entry is not written; a different
 * Wisp entry is replaced in place. Every write is atomic (a dot-file {@code .NAME.tmp}, which the
 * runtime ignores, flushed and renamed over the target) and keeps the target's permissions. A file
 * that is not a CNI configuration (not JSON, no {@code plugins} or {@code type}, a version the plugin
 * does not speak) is an error naming it, and is left untouched. {@link #watch} re-inserts Wisp
 * whenever the primary plugin rewrites its configuration; {@link #uninstall} takes it out again.
 * With an own conflist directory it writes Wisp alone there instead (see {@link #writeOwnConflist}).
 */
public final class CniInstall {
    public static final String PLUGIN_TYPE = "wisp-cni";
    /** The directory beside the configurations holding what the plugin reads (API token and CA). */
    public static final String STATE_DIR = "wisp-cni.d";

    private static final Logger log = LoggerFactory.getLogger(CniInstall.class);
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    private static final Set<PosixFilePermission> EXECUTABLE = PosixFilePermissions.fromString("rwxr-xr-x");
    private static final Set<PosixFilePermission> PRIVATE = PosixFilePermissions.fromString("rw-------");
    private static final Set<PosixFilePermission> PRIVATE_DIR = PosixFilePermissions.fromString("rwx------");

    /** A CNI configuration Wisp cannot chain into (the file is left as it was). */
    public static final class ConfigException extends Exception {
        private static final long serialVersionUID = 1L;

        ConfigException(Path file, String why) {
            super(file + ": " + why);
        }
    }

    /** What one {@link #install} pass did. */
    public enum Outcome {
        /** Wisp was chained in (or its entry changed). */
        WRITTEN,
        /** The configuration already held this entry: nothing written. */
        UNCHANGED,
        /** No CNI configuration on the node yet (the primary plugin has not written one). */
        NO_PRIMARY
    }

    /**
     * The API credentials the plugin uses to read pods' labels: copied from the install container's
     * service-account files into {@code <confDir>/wisp-cni.d/} (token 0600, CA 0644, directory 0700).
     */
    public record Credentials(Path tokenSource, Path caSource) {
        public Credentials {
            requireNonNull(tokenSource, "tokenSource");
            requireNonNull(caSource, "caSource");
        }
    }

    /**
     * @param binDir the host's CNI bin directory
     * @param confDir the host's CNI configuration directory
     * @param launcher the file copied to {@code binDir/wisp-cni} (mode 0755)
     * @param plugin Wisp's entry of the chain (its {@code type} is set to {@code wisp-cni}); when
     *     {@code credentials} are given, its {@code kubernetes} object gets {@code tokenFile} and
     *     {@code caFile} pointing at the copies
     * @param credentials null: the plugin reads no labels (every pod outside {@code excludeNamespaces}
     *     is enrolled)
     */
    public record Settings(Path binDir, Path confDir, Path launcher, ObjectNode plugin, Credentials credentials,
            Path ownConflistDir) {
        public Settings {
            requireNonNull(binDir, "binDir");
            requireNonNull(confDir, "confDir");
            requireNonNull(launcher, "launcher");
            requireNonNull(plugin, "plugin");
            if (ownConflistDir != null && ownConflistDir.toAbsolutePath().normalize().equals(confDir.toAbsolutePath()
                    .normalize())) {
                // There the runtime would take it for the node's network when it sorts first (no pod
                // would get an interface) and never call it otherwise.
                throw new IllegalArgumentException("the own conflist cannot go into the runtime's configuration "
                        + "directory " + confDir + ": name the directory Multus reads its networks from");
            }
        }

        /** Chained into the primary configuration (no own conflist). */
        public Settings(Path binDir, Path confDir, Path launcher, ObjectNode plugin, Credentials credentials) {
            this(binDir, confDir, launcher, plugin, credentials, null);
        }
    }

    /** The name of the own conflist's file and network (a Multus NetworkAttachmentDefinition names it). */
    public static final String OWN_CONFLIST = PLUGIN_TYPE + ".conflist";

    private final Settings s;
    private final ObjectNode entry;

    public CniInstall(Settings settings) {
        this.s = requireNonNull(settings, "settings");
        ObjectNode e = settings.plugin().deepCopy();
        e.put("type", PLUGIN_TYPE);
        if (settings.credentials() != null) {
            ObjectNode kube = e.get("kubernetes") instanceof ObjectNode k ? k : e.putObject("kubernetes");
            kube.put("tokenFile", stateDir().resolve("token").toString());
            kube.put("caFile", stateDir().resolve("ca.crt").toString());
        }
        if (settings.ownConflistDir() != null) {
            e.put("chained", false);
        }
        this.entry = e;
    }

    /** Wisp's entry as it is chained (for tests and the log). */
    public ObjectNode entry() {
        return entry.deepCopy();
    }

    private Path stateDir() {
        return s.confDir().resolve(STATE_DIR);
    }

    /** One pass: the launcher, the credentials, then the primary configuration. */
    public Outcome install() throws IOException, ConfigException {
        if (!Files.isRegularFile(s.launcher())) {
            // Chaining a plugin the runtime cannot run would fail every pod of the node.
            throw new NoSuchFileException(s.launcher().toString(), null, "the plugin's launcher is missing, so "
                    + "nothing is chained");
        }
        copyIfChanged(s.launcher(), s.binDir(), PLUGIN_TYPE, EXECUTABLE);
        if (s.credentials() != null) {
            Files.createDirectories(stateDir());
            Files.setPosixFilePermissions(stateDir(), PRIVATE_DIR);
            copyIfChanged(s.credentials().tokenSource(), stateDir(), "token", PRIVATE);
            copyIfChanged(s.credentials().caSource(), stateDir(), "ca.crt", PodFile.READABLE);
        }
        if (s.ownConflistDir() != null) {
            return writeOwnConflist();
        }
        Path primary = primary();
        if (primary == null) {
            return Outcome.NO_PRIMARY;
        }
        ObjectNode conf = read(primary);
        boolean single = !conf.has("plugins");
        ObjectNode list = single ? asList(conf) : conf;
        if (!chain(list) && !single) {
            return Outcome.UNCHANGED;
        }
        String name = primary.getFileName().toString();
        String target = single ? name.substring(0, name.lastIndexOf('.')) + ".conflist" : name;
        PodFile.writeAtomically(s.confDir(), target, JSON.writeValueAsBytes(list),
                Files.getPosixFilePermissions(primary));
        if (single) {
            Files.deleteIfExists(primary);
        }
        log.info("chained {} into {}", PLUGIN_TYPE, s.confDir().resolve(target));
        return Outcome.WRITTEN;
    }

    /**
     * Istio's {@code chained: false}: Wisp alone in {@code <ownConflistDir>/wisp-cni.conflist}
     * (network {@code wisp-cni}), for Multus to run as an additional network after the pod's
     * primary one; the runtime's own configuration is not touched.
     */
    private Outcome writeOwnConflist() throws IOException {
        ObjectNode list = JSON.createObjectNode().put("cniVersion", "1.0.0").put("name", PLUGIN_TYPE);
        list.putArray("plugins").add(entry.deepCopy());
        byte[] bytes = JSON.writeValueAsBytes(list);
        Path target = s.ownConflistDir().resolve(OWN_CONFLIST);
        if (Files.isRegularFile(target) && java.util.Arrays.equals(Files.readAllBytes(target), bytes)) {
            return Outcome.UNCHANGED;
        }
        Files.createDirectories(s.ownConflistDir());
        PodFile.writeAtomically(s.ownConflistDir(), OWN_CONFLIST, bytes, PodFile.READABLE);
        log.info("wrote {}'s own conflist {}", PLUGIN_TYPE, target);
        return Outcome.WRITTEN;
    }

    /** Takes Wisp out of every configuration of the directory, and removes the launcher and credentials. */
    public void uninstall() throws IOException {
        if (s.ownConflistDir() != null) {
            Files.deleteIfExists(s.ownConflistDir().resolve(OWN_CONFLIST));
        }
        for (Path file : configurations()) {
            ObjectNode conf;
            try {
                conf = read(file);
            } catch (ConfigException e) {
                continue; // not ours to repair
            }
            if (conf.path("plugins").isArray()) {
                ArrayNode plugins = (ArrayNode) conf.get("plugins");
                ArrayNode kept = JSON.createArrayNode();
                plugins.forEach(p -> {
                    if (!PLUGIN_TYPE.equals(p.path("type").asText())) {
                        kept.add(p);
                    }
                });
                if (kept.size() != plugins.size()) {
                    conf.set("plugins", kept);
                    PodFile.writeAtomically(s.confDir(), file.getFileName().toString(), JSON.writeValueAsBytes(conf),
                            Files
                                    .getPosixFilePermissions(file));
                    log.info("took {} out of {}", PLUGIN_TYPE, file);
                }
            }
        }
        Files.deleteIfExists(s.binDir().resolve(PLUGIN_TYPE));
        Files.deleteIfExists(stateDir().resolve("token"));
        Files.deleteIfExists(stateDir().resolve("ca.crt"));
        Files.deleteIfExists(stateDir());
    }

    /**
     * What the installer does with the plugin when it stops. {@code always}: take it out (the
     * behaviour before the plugin outlived its installer). Otherwise it stays chained (a pod started
     * while the agent's pod is replaced waits for the new agent), unless {@code owner} says the
     * installer's DaemonSet is gone (an uninstall). A null {@code owner} (no API access) keeps it.
     *
     * @return whether the plugin was taken out
     */
    public boolean onExit(boolean always, InstallerDaemonSet owner) throws IOException {
        if (always) {
            uninstall();
            return true;
        }
        if (owner == null) {
            log.info("{} stays chained in {} (remove it with `wisp cni install --uninstall`)", PLUGIN_TYPE,
                    s.confDir());
            return false;
        }
        InstallerDaemonSet.Answer a = owner.check();
        if (a.verdict() == InstallerDaemonSet.Verdict.GONE) {
            log.info("{}: taking {} out of {}", a.why(), PLUGIN_TYPE, s.confDir());
            uninstall();
            return true;
        }
        if (a.verdict() == InstallerDaemonSet.Verdict.STANDING) {
            log.info("{}: {} stays chained, pods wait for the next agent", a.why(), PLUGIN_TYPE);
        } else {
            log.error("cannot tell whether DaemonSet {} is deleted ({}): {} stays chained (fail closed); if the mesh "
                    + "was uninstalled, run `wisp cni install --uninstall --cni-bin-dir={} --cni-conf-dir={}` on this node",
                    owner, a.why(), PLUGIN_TYPE, s.binDir(), s.confDir());
        }
        return false;
    }

    /**
     * Installs, then again on every change of the configuration directory and at least every
     * {@code recheck} (which also refreshes the rotated token), until the thread is interrupted. A
     * configuration Wisp cannot chain into is logged and left alone until it changes; an I/O error
     * (the launcher missing, a directory not writable) ends the watch with that exception.
     */
    public void watch(Duration recheck) throws IOException, InterruptedException {
        try (WatchService watcher = FileSystems.getDefault().newWatchService()) {
            Path watched = s.ownConflistDir() != null ? Files.createDirectories(s.ownConflistDir()) : s.confDir();
            watched.register(watcher, java.nio.file.StandardWatchEventKinds.ENTRY_CREATE,
                    java.nio.file.StandardWatchEventKinds.ENTRY_MODIFY,
                    java.nio.file.StandardWatchEventKinds.ENTRY_DELETE);
            while (true) {
                try {
                    Outcome o = install();
                    if (o == Outcome.NO_PRIMARY) {
                        log.info("no CNI configuration in {} yet: waiting for the primary plugin's", s.confDir());
                    }
                } catch (ConfigException e) {
                    log.error("cannot chain {}: {} (left untouched)", PLUGIN_TYPE, e.getMessage());
                }
                WatchKey key;
                try {
                    key = watcher.poll(recheck.toMillis(), TimeUnit.MILLISECONDS);
                } catch (ClosedWatchServiceException e) {
                    return;
                }
                if (key != null) {
                    key.pollEvents();
                    key.reset();
                }
            }
        }
    }

    /** The configuration the runtime uses: the first by name of the directory's configuration files. */
    Path primary() throws IOException {
        List<Path> all = configurations();
        return all.isEmpty() ? null : all.getFirst();
    }

    private List<Path> configurations() throws IOException {
        try (Stream<Path> files = Files.list(s.confDir())) {
            return files.filter(f -> {
                String n = f.getFileName().toString();
                return !n.startsWith(".") && Files.isRegularFile(f) && (n.endsWith(".conf") || n.endsWith(
                        ".conflist") || n.endsWith(".json"));
            }).sorted().toList();
        } catch (NoSuchFileException e) {
            return List.of();
        }
    }

    private static ObjectNode read(Path file) throws IOException, ConfigException {
        byte[] bytes = Files.readAllBytes(file);
        JsonNode conf;
        try {
            conf = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new ConfigException(file, "not JSON: " + e.getOriginalMessage());
        }
        if (conf == null || !conf.isObject()) {
            throw new ConfigException(file, "not a JSON object");
        }
        if (conf.has("plugins")
                ? !conf.get("plugins").isArray() || conf.get("plugins").isEmpty()
                : !conf.path(
                        "type").isTextual()) {
            throw new ConfigException(file, "neither a conflist (a non-empty 'plugins' array) nor a plugin ('type')");
        }
        String version = conf.path("cniVersion").asText("");
        if (!CniPlugin.SUPPORTED_VERSIONS.contains(version)) {
            throw new ConfigException(file, "cniVersion '" + version + "' is not one wisp-cni speaks "
                    + CniPlugin.SUPPORTED_VERSIONS);
        }
        return (ObjectNode) conf;
    }

    /** A single plugin's configuration as a one-plugin conflist of the same name and version. */
    private static ObjectNode asList(ObjectNode conf) {
        ObjectNode plugin = conf.deepCopy();
        plugin.remove(List.of("cniVersion", "name"));
        ObjectNode list = JSON.createObjectNode();
        list.put("cniVersion", conf.get("cniVersion").asText());
        list.put("name", conf.path("name").asText(PLUGIN_TYPE));
        list.putArray("plugins").add(plugin);
        return list;
    }

    /** Puts Wisp's entry into {@code list}: in place of an earlier one, else last. True if it changed. */
    private boolean chain(ObjectNode list) {
        ArrayNode plugins = (ArrayNode) list.get("plugins");
        List<Integer> ours = new ArrayList<>();
        for (int i = 0; i < plugins.size(); i++) {
            if (PLUGIN_TYPE.equals(plugins.get(i).path("type").asText())) {
                ours.add(i);
            }
        }
        if (ours.size() == 1 && ours.getFirst() > 0 && plugins.get(ours.getFirst()).equals(entry)) {
            return false;
        }
        for (int i = ours.size() - 1; i >= 0; i--) {
            plugins.remove(ours.get(i));
        }
        plugins.add(entry.deepCopy());
        return true;
    }

    private static void copyIfChanged(Path source, Path dir, String name, Set<PosixFilePermission> mode)
            throws IOException {
        Path target = dir.resolve(name);
        if (Files.isRegularFile(target) && Files.mismatch(source, target) == -1 && Files.getPosixFilePermissions(
                target).equals(mode)) {
            return;
        }
        PodFile.writeAtomically(dir, name, Files.readAllBytes(source), mode);
    }
}
