package dev.wisp.bpf;

import static java.util.Objects.requireNonNull;

import dev.wisp.bpf.internal.LibBpf;
import dev.wisp.linux.Errno;
import dev.wisp.linux.Libc;
import dev.wisp.linux.NativeException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A BPF map seen through codecs for its keys and values. Each operation is one bpf(2) call and is
 * safe from any thread (the kernel serialises map access); iteration is weakly consistent, as the
 * kernel's {@code get_next_key} is. A map from a {@link BpfObject} belongs to that object; a map
 * from {@link #openPinned} owns its descriptor and must be closed.
 */
public final class BpfMap<K, V> implements AutoCloseable {
    /** {@code BPF_ANY}, {@code BPF_NOEXIST}, {@code BPF_EXIST}. */
    public static final long ANY = 0;
    public static final long NO_EXIST = 1;
    public static final long EXIST = 2;

    private final String name;
    private final int fd;
    private final boolean ownsFd;
    private final Codec<K> keys;
    private final Codec<V> values;

    BpfMap(String name, int fd, boolean ownsFd, Codec<K> keys, Codec<V> values) {
        this.name = name;
        this.fd = fd;
        this.ownsFd = ownsFd;
        this.keys = keys;
        this.values = values;
    }

    /** Opens a map pinned at {@code path} (e.g. by another process). */
    public static <K, V> BpfMap<K, V> openPinned(Path path, Codec<K> keys, Codec<V> values) throws BpfException {
        requireNonNull(path, "path");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            int fd = (int) LibBpf.OBJ_GET.invokeExact(err, arena.allocateFrom(path.toString()));
            if (fd < 0) {
                throw new BpfException("bpf_obj_get(" + path + ")", LibBpf.errnoOf(fd, err));
            }
            return new BpfMap<>(path.getFileName().toString(), fd, true, requireNonNull(keys, "keys"),
                    requireNonNull(values, "values"));
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_obj_get", t);
        }
    }

    public String name() {
        return name;
    }

    public int fd() {
        return fd;
    }

    /** The value stored under {@code key}, if any. */
    public Optional<V> lookup(K key) throws BpfException {
        requireNonNull(key, "key");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment k = encode(arena, keys, key);
            MemorySegment v = arena.allocate(values.size());
            int rc = (int) LibBpf.MAP_LOOKUP.invokeExact(err, fd, k, v);
            if (rc < 0) {
                int e = LibBpf.errnoOf(rc, err);
                if (e == Errno.ENOENT) {
                    return Optional.empty();
                }
                throw new BpfException("bpf_map_lookup_elem(" + name + ")", e);
            }
            return Optional.of(values.read(v));
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_map_lookup_elem", t);
        }
    }

    /** Stores {@code value} under {@code key}; {@code flags} is {@link #ANY}, {@link #NO_EXIST} or {@link #EXIST}. */
    public void update(K key, V value, long flags) throws BpfException {
        requireNonNull(key, "key");
        requireNonNull(value, "value");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            int rc = (int) LibBpf.MAP_UPDATE.invokeExact(err, fd, encode(arena, keys, key),
                    encode(arena, values, value), flags);
            if (rc < 0) {
                throw new BpfException("bpf_map_update_elem(" + name + ")", LibBpf.errnoOf(rc, err));
            }
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_map_update_elem", t);
        }
    }

    public void put(K key, V value) throws BpfException {
        update(key, value, ANY);
    }

    /** Removes {@code key}; returns whether it was there. */
    public boolean delete(K key) throws BpfException {
        requireNonNull(key, "key");
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            int rc = (int) LibBpf.MAP_DELETE.invokeExact(err, fd, encode(arena, keys, key));
            if (rc < 0) {
                int e = LibBpf.errnoOf(rc, err);
                if (e == Errno.ENOENT) {
                    return false;
                }
                throw new BpfException("bpf_map_delete_elem(" + name + ")", e);
            }
            return true;
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_map_delete_elem", t);
        }
    }

    /** All keys, by the kernel's {@code get_next_key} walk. */
    public List<K> keys() throws BpfException {
        List<K> out = new ArrayList<>();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment err = Libc.newErrnoBuffer(arena);
            MemorySegment current = MemorySegment.NULL;
            while (true) {
                MemorySegment next = arena.allocate(keys.size());
                int rc = (int) LibBpf.MAP_NEXT_KEY.invokeExact(err, fd, current, next);
                if (rc < 0) {
                    int e = LibBpf.errnoOf(rc, err);
                    if (e == Errno.ENOENT) {
                        return out;
                    }
                    throw new BpfException("bpf_map_get_next_key(" + name + ")", e);
                }
                out.add(keys.read(next));
                current = next;
            }
        } catch (BpfException e) {
            throw e;
        } catch (Throwable t) {
            throw LibBpf.unexpected("bpf_map_get_next_key", t);
        }
    }

    /** A snapshot of the entries (keys removed during the walk are left out). */
    public Map<K, V> entries() throws BpfException {
        Map<K, V> out = new LinkedHashMap<>();
        for (K k : keys()) {
            lookup(k).ifPresent(v -> out.put(k, v));
        }
        return out;
    }

    private static <T> MemorySegment encode(Arena arena, Codec<T> codec, T value) {
        MemorySegment s = arena.allocate(codec.size());
        codec.write(value, s);
        return s;
    }

    @Override
    public void close() throws NativeException {
        if (ownsFd) {
            Libc.close(fd);
        }
    }

    @Override
    public String toString() {
        return "BpfMap[" + name + ", fd " + fd + "]";
    }
}
