package dev.wisp.controlplane.model;

import static java.util.Objects.requireNonNull;

import java.lang.reflect.Modifier;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The one in-memory model of the mesh: every valid object from the configuration source, in a
 * stable order (by reference), with where each was declared. Immutable; a new configuration
 * produces a new model.
 */
public final class MeshModel {
    private final MeshConfig mesh;
    private final Map<ObjectRef, MeshObject> objects;
    private final Map<ObjectRef, Origin> origins;
    /**
     * The objects of each concrete class, in the model's order: {@link #all} is called per service,
     * pod and credential check, and a scan of every object each time made translation quadratic.
     */
    private final Map<Class<?>, List<MeshObject>> byClass;

    private MeshModel(Map<ObjectRef, MeshObject> objects, Map<ObjectRef, Origin> origins) {
        this.objects = objects;
        this.origins = origins;
        Map<Class<?>, List<MeshObject>> grouped = new HashMap<>();
        for (MeshObject o : objects.values()) {
            grouped.computeIfAbsent(o.getClass(), k -> new ArrayList<>()).add(o);
        }
        grouped.replaceAll((k, v) -> Collections.unmodifiableList(v));
        this.byClass = grouped;
        this.mesh = objects.values().stream()
                .filter(MeshConfigObject.class::isInstance)
                .map(o -> ((MeshConfigObject) o).config())
                .findFirst()
                .orElse(MeshConfig.DEFAULT);
    }

    /** A model of {@code objects}; {@code origins} may lack entries (objects built in code). */
    public static MeshModel of(List<? extends MeshObject> objects, Map<ObjectRef, Origin> origins) {
        requireNonNull(objects, "objects");
        requireNonNull(origins, "origins");
        List<MeshObject> sorted = new ArrayList<>(objects);
        sorted.sort(Comparator.comparing((MeshObject o) -> o.ref().kind())
                .thenComparing(o -> o.ref().namespace())
                .thenComparing(o -> o.ref().name()));
        Map<ObjectRef, MeshObject> byRef = new LinkedHashMap<>();
        for (MeshObject o : sorted) {
            byRef.put(o.ref(), o);
        }
        return new MeshModel(Collections.unmodifiableMap(byRef), Map.copyOf(origins));
    }

    public static MeshModel empty() {
        return of(List.of(), Map.of());
    }

    public MeshConfig mesh() {
        return mesh;
    }

    public Map<ObjectRef, MeshObject> objects() {
        return objects;
    }

    /** The Node named {@code name}, if the model has one (a map lookup, for per-pod and per-call questions). */
    public Optional<NodeDef> node(String name) {
        requireNonNull(name, "name");
        return objects.get(new ObjectRef(NodeDef.KIND, "", name)) instanceof NodeDef n
                ? Optional.of(n)
                : Optional.empty();
    }

    /** Where {@code ref} was declared, or null. */
    public Origin origin(ObjectRef ref) {
        return origins.get(ref);
    }

    /**
     * Every object of {@code type} (e.g. {@code Pod.class}), in the model's stable order; unmodifiable.
     * For a final class (every model record) the list is kept, so a call costs nothing.
     */
    @SuppressWarnings("unchecked")
    public <T extends MeshObject> List<T> all(Class<T> type) {
        requireNonNull(type, "type");
        if (Modifier.isFinal(type.getModifiers())) {
            return (List<T>) byClass.getOrDefault(type, List.of());
        }
        List<T> out = new ArrayList<>();
        for (MeshObject o : objects.values()) {
            if (type.isInstance(o)) {
                out.add(type.cast(o));
            }
        }
        return Collections.unmodifiableList(out);
    }
}
