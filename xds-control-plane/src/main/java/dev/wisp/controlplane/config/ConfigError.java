package dev.wisp.controlplane.config;

import dev.wisp.controlplane.model.ObjectRef;

/**
 * One refused piece of configuration, naming the file, line, object and field, e.g.
 * {@code policies.yaml:14 AuthorizationPolicy default/deny-all: spec.action: 'DENYY' is not one of
 * ALLOW, DENY, AUDIT, CUSTOM}.
 *
 * @param object the object, or null when the document has no usable kind/name yet
 * @param field dotted path of the field, or null when the whole document is at fault
 */
public record ConfigError(String file, int line, ObjectRef object, String field, String message) {
    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder(file).append(':').append(line);
        if (object != null) {
            sb.append(' ').append(object);
        }
        sb.append(": ");
        if (field != null) {
            sb.append(field).append(": ");
        }
        return sb.append(message).toString();
    }
}
