package dev.wisp.controlplane.model;

import java.util.Map;

/** Kubernetes label-selector semantics, in one place for every consumer of the model. */
public final class Selectors {
    private Selectors() {}

    /** Every selector label present with the same value; an empty or absent selector selects nothing. */
    public static boolean selects(Map<String, String> selector, Map<String, String> labels) {
        if (selector == null || selector.isEmpty()) {
            return false;
        }
        for (var e : selector.entrySet()) {
            if (!e.getValue().equals(labels.get(e.getKey()))) {
                return false;
            }
        }
        return true;
    }
}
