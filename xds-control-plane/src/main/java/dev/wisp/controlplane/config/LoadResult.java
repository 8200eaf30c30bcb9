package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.MeshModel;
import java.util.List;

/**
 * One reading of the configuration: a model when every document is valid, otherwise the errors
 * (and no model: the previous good model stays live).
 */
public record LoadResult(MeshModel model, List<ConfigError> errors) {
    public boolean valid() {
        return model != null;
    }
}
