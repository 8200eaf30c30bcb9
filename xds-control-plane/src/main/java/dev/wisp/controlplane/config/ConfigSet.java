package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.MeshConfig;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import dev.wisp.controlplane.model.ServiceEndpoints;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Merges decoded files into one model (pure): an object defined in two files, a second
 * MeshConfig, or a Service's named targetPort that no pod it selects declares is an error; any error refuses the whole set, so that the mesh never runs a half-read
 * configuration.
 */
public final class ConfigSet {
    private ConfigSet() {}

    /** Decodes {@code files} (name → text, in a stable order) and merges them. */
    public static LoadResult load(Map<String, String> files) {
        List<ConfigDecoder.Decoded> decoded = new ArrayList<>();
        files.forEach((name, text) -> decoded.add(ConfigDecoder.decode(name, text)));
        return merge(decoded);
    }

    public static LoadResult merge(List<ConfigDecoder.Decoded> files) {
        List<ConfigError> errors = new ArrayList<>();
        List<MeshObject> objects = new ArrayList<>();
        Map<ObjectRef, Origin> origins = new LinkedHashMap<>();
        Origin meshConfig = null;
        for (ConfigDecoder.Decoded d : files) {
            errors.addAll(d.errors());
            for (MeshObject o : d.objects()) {
                Origin at = d.origins().get(o.ref());
                Origin earlier = origins.get(o.ref());
                if (earlier != null) {
                    errors.add(new ConfigError(at.file(), at.line(), o.ref(), null,
                            "defined twice (also at " + earlier + ")"));
                    continue;
                }
                if (o.ref().kind().equals(MeshConfig.KIND)) {
                    if (meshConfig != null) {
                        errors.add(new ConfigError(at.file(), at.line(), o.ref(), null,
                                "only one MeshConfig is allowed (another is at " + meshConfig + ")"));
                        continue;
                    }
                    meshConfig = at;
                }
                objects.add(o);
                origins.put(o.ref(), at);
            }
        }
        for (ServiceEndpoints.UnresolvedTarget u : ServiceEndpoints.unresolved(objects)) {
            Origin at = origins.get(u.service());
            errors.add(new ConfigError(at == null ? "" : at.file(), at == null ? 0 : at.line(), u.service(),
                    u.field(), u.message()));
        }
        if (!errors.isEmpty()) {
            return new LoadResult(null, List.copyOf(errors));
        }
        return new LoadResult(MeshModel.of(objects, origins), List.of());
    }
}
