package dev.wisp.controlplane.model;

import static java.util.Objects.requireNonNull;

import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The one in-memory model of the mesh: every valid object from the configuration source, in a
 * stable order (by reference), with where each was declared. Immutable; a new configuration
 * produces a new model.
 */
public final class MeshModel {
    private final MeshConfig mesh;
    private final Map<ObjectRef, MeshObject> objects;
    private final Map<ObjectRef, Origin> origins;

    private MeshModel(Map<ObjectRef, MeshObject> objects, Map<ObjectRef, Origin> origins) {
        this.objects = objects;
        this.origins = origins;
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

    /** Where {@code ref} was declared, or null. */
    public Origin origin(ObjectRef ref) {
        return origins.get(ref);
    }

    /** Every object of {@code type} (e.g. {@code Pod.class}), in the model's stable order. */
    public <T extends MeshObject> List<T> all(Class<T> type) {
        requireNonNull(type, "type");
        List<T> out = new ArrayList<>();
        for (MeshObject o : objects.values()) {
            if (type.isInstance(o)) {
                out.add(type.cast(o));
            }
        }
        return out;
    }
}
