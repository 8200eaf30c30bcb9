package dev.wisp.controlplane.config;

import java.time.Duration;
import dev.wisp.base.Threads;
import static java.util.Objects.requireNonNull;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Local mode's configuration: every {@code *.yaml}/{@code *.yml} file of one directory (not
 * recursive, hidden files ignored). A watcher thread re-reads the directory 100 ms after the last
 * change it sees (a debounce, so that an editor's several writes make one reading).
 *
 * <p>{@code wisp apply} writes each object to its own file named
 * {@code wisp-applied.<kind>.<namespace>.<name>.yaml}; objects the operator wrote in other files
 * are theirs: apply and delete refuse to change them (the error names the file to edit).
 */
public final class DirectoryConfigSource implements ConfigSource {
    private static final Logger log = LoggerFactory.getLogger(DirectoryConfigSource.class);
    /** Larger files are refused: configuration is text an operator writes, not bulk data. */
    public static final long MAX_FILE_BYTES = 8L << 20;
    static final String MANAGED_PREFIX = "wisp-applied.";
    private static final long DEBOUNCE_MILLIS = 100;
    private static final YAMLMapper YAML = YAMLMapper.builder()
            .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
            .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
            .build();

    private final Path dir;
    /** Serializes readings and writes, so that listeners see them in order. */
    private final ReentrantLock lock = new ReentrantLock();
    /** Guarded by {@link #lock}: where each object of the last valid reading was declared. */
    private MeshModel lastGood = MeshModel.empty();
    /** Guarded by {@link #lock}: each file's last text and its decoding, so unchanged files are not re-parsed. */
    private final Map<String, Cached> decoded = new java.util.HashMap<>();
    /** Written once in start, then read by close. */
    private volatile WatchService watch;
    private volatile Thread watcher;
    private volatile Consumer<LoadResult> listener = r -> {};

    public DirectoryConfigSource(Path dir) {
        this.dir = requireNonNull(dir, "dir");
    }

    @Override
    public void start(Consumer<LoadResult> listener) {
        this.listener = requireNonNull(listener, "listener");
        if (!Files.isDirectory(dir)) {
            throw new IllegalArgumentException("config directory " + dir + " does not exist or is not a directory");
        }
        try {
            watch = dir.getFileSystem().newWatchService();
            dir.register(watch, StandardWatchEventKinds.ENTRY_CREATE, StandardWatchEventKinds.ENTRY_MODIFY,
                    StandardWatchEventKinds.ENTRY_DELETE);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot watch " + dir + ": " + e.getMessage(), e);
        }
        reload();
        Thread t = Thread.ofPlatform().name("wisp-config-watch").daemon().unstarted(this::watchLoop);
        watcher = t;
        t.start();
    }

    private record Cached(String text, ConfigDecoder.Decoded decoded) {}

    /** Reads the directory now and reports the result. */
    public LoadResult reload() {
        lock.lock();
        try {
            Map<String, String> files = readFiles();
            decoded.keySet().retainAll(files.keySet());
            List<ConfigDecoder.Decoded> all = new ArrayList<>();
            files.forEach((name, text) -> {
                Cached c = decoded.get(name);
                if (c == null || !c.text().equals(text)) {
                    c = new Cached(text, ConfigDecoder.decode(name, text));
                    decoded.put(name, c);
                }
                all.add(c.decoded());
            });
            LoadResult r = ConfigSet.merge(all);
            if (r.valid()) {
                lastGood = r.model();
            }
            listener.accept(r);
            return r;
        } finally {
            lock.unlock();
        }
    }

    private void watchLoop() {
        try {
            while (true) {
                WatchKey key = watch.take();
                key.pollEvents();
                key.reset();
                // Debounce: keep absorbing events until the directory is quiet for a moment.
                WatchKey more;
                while ((more = watch.poll(DEBOUNCE_MILLIS, TimeUnit.MILLISECONDS)) != null) {
                    more.pollEvents();
                    more.reset();
                }
                reload();
            }
        } catch (ClosedWatchServiceException | InterruptedException e) {
            log.debug("config watcher for {} stopped", dir);
        } catch (RuntimeException e) {
            log.error("config watcher for {} failed; configuration changes are no longer read", dir, e);
        }
    }

    private Map<String, String> readFiles() {
        Map<String, String> files = new TreeMap<>();
        try (Stream<Path> s = Files.list(dir)) {
            for (Path p : s.sorted().toList()) {
                String name = p.getFileName().toString();
                if (name.startsWith(".") || !(name.endsWith(".yaml") || name.endsWith(".yml"))
                        || !Files.isRegularFile(p)) {
                    continue;
                }
                try {
                    if (Files.size(p) > MAX_FILE_BYTES) {
                        files.put(name, "");
                        log.warn("{}: larger than {} bytes; ignored", name, MAX_FILE_BYTES);
                        continue;
                    }
                    files.put(name, Files.readString(p, StandardCharsets.UTF_8));
                } catch (IOException e) {
                    // Deleted between list and read (an editor's rename): the next event re-reads.
                    log.debug("{}: {}", name, e.toString());
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list config directory " + dir + ": " + e.getMessage(), e);
        }
        return files;
    }

    @Override
    public List<Change> apply(String fileName, String yaml) throws ConfigRejectedException {
        requireNonNull(fileName, "fileName");
        requireNonNull(yaml, "yaml");
        Submission sub = submission(fileName, yaml);
        lock.lock();
        try {
            refuseForeign(sub, "edit that file");
            List<Change> changes = new ArrayList<>();
            Map<Path, byte[]> previous = new TreeMap<>();
            for (int i = 0; i < sub.objects.size(); i++) {
                ObjectRef ref = sub.objects.get(i).ref();
                Path file = dir.resolve(managedName(ref));
                byte[] content = sub.documents.get(i).getBytes(StandardCharsets.UTF_8);
                byte[] old = Files.exists(file) ? Files.readAllBytes(file) : null;
                previous.put(file, old);
                if (old != null && java.util.Arrays.equals(old, content)) {
                    changes.add(new Change(ref, "unchanged"));
                    continue;
                }
                write(file, content);
                changes.add(new Change(ref, old == null ? "created" : "configured"));
            }
            LoadResult r = reload();
            if (!r.valid()) {
                // The objects were valid alone but not together with the rest: undo.
                for (var e : previous.entrySet()) {
                    if (e.getValue() == null) {
                        Files.deleteIfExists(e.getKey());
                    } else {
                        write(e.getKey(), e.getValue());
                    }
                }
                reload();
                throw new ConfigRejectedException(r.errors());
            }
            return changes;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write to config directory " + dir + ": " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public List<Change> delete(String fileName, String yaml) throws ConfigRejectedException {
        Submission sub = submission(fileName, yaml);
        lock.lock();
        try {
            refuseForeign(sub, "delete it from that file");
            List<Change> changes = new ArrayList<>();
            for (MeshObject o : sub.objects) {
                boolean existed = Files.deleteIfExists(dir.resolve(managedName(o.ref())));
                changes.add(new Change(o.ref(), existed ? "deleted" : "not found"));
            }
            reload();
            return changes;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot delete from config directory " + dir + ": " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    private record Submission(List<MeshObject> objects, List<ConfigError> origins, List<String> documents) {}

    private static Submission submission(String fileName, String yaml) throws ConfigRejectedException {
        ConfigDecoder.Decoded d = ConfigDecoder.decode(fileName, yaml);
        if (!d.errors().isEmpty()) {
            throw new ConfigRejectedException(d.errors());
        }
        List<YNode> docs;
        try {
            docs = YamlDocuments.parse(yaml);
        } catch (YamlDocuments.SyntaxException e) {
            throw new IllegalStateException("decoded YAML failed to parse again", e);
        }
        List<String> texts = new ArrayList<>();
        for (YNode doc : docs) {
            try {
                texts.add(YAML.writeValueAsString(YamlDocuments.plain(doc)));
            } catch (JsonProcessingException e) {
                throw new UncheckedIOException(e);
            }
        }
        List<ConfigError> at = new ArrayList<>();
        for (MeshObject o : d.objects()) {
            Origin origin = d.origins().get(o.ref());
            at.add(new ConfigError(origin.file(), origin.line(), o.ref(), null, ""));
        }
        return new Submission(d.objects(), at, texts);
    }

    /** Objects declared in the operator's own files are not ours to change. */
    private void refuseForeign(Submission sub, String what) throws ConfigRejectedException {
        List<ConfigError> errors = new ArrayList<>();
        for (int i = 0; i < sub.objects.size(); i++) {
            ObjectRef ref = sub.objects.get(i).ref();
            Origin existing = lastGood.origin(ref);
            if (existing != null && !existing.file().startsWith(MANAGED_PREFIX)) {
                ConfigError at = sub.origins.get(i);
                errors.add(new ConfigError(at.file(), at.line(), ref, null,
                        "declared in " + existing + " of the config directory; " + what));
            }
        }
        if (!errors.isEmpty()) {
            throw new ConfigRejectedException(errors);
        }
    }

    static String managedName(ObjectRef ref) {
        String ns = ref.namespace().isEmpty() ? "_" : ref.namespace();
        return MANAGED_PREFIX + ref.kind().toLowerCase(java.util.Locale.ROOT) + "." + ns + "." + ref.name() + ".yaml";
    }

    private static void write(Path file, byte[] content) throws IOException {
        Path tmp = file.resolveSibling("." + file.getFileName() + ".tmp");
        Files.write(tmp, content);
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    @Override
    public void close() {
        WatchService w = watch;
        if (w != null) {
            try {
                w.close();
            } catch (IOException e) {
                log.debug("closing the watch service of {}: {}", dir, e.toString());
            }
        }
        Thread t = watcher;
        if (t != null) {
            Threads.awaitEnd(t, Duration.ofSeconds(2));
        }
    }
}
