package dev.wisp.node.capture;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;

/**
 * The JSON objects the capture side reads from others (a pod file, the network configuration on the
 * CNI plugin's stdin, the Kubernetes API's answers): at most a bound of bytes, parsed whole, and
 * refused with a sentence that names what was read when it is too large, not JSON (bytes in no
 * Unicode encoding included) or not an object. Stateless and thread-safe.
 */
final class BoundedJson {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Makes the caller's exception from a refusal's sentence and its cause (null when there is none). */
    @FunctionalInterface
    interface Refusal<E extends Exception> {
        E of(String message, Throwable cause);
    }

    private BoundedJson() {}

    /**
     * {@code bytes} as a JSON object, or {@code refusal}'s exception saying why not; {@code what} names
     * them for the sentence (e.g. {@code "pod file /run/wisp/pods/a.json"}).
     */
    static <E extends Exception> JsonNode object(byte[] bytes, int max, String what, Refusal<E> refusal) throws E {
        if (bytes.length > max) {
            throw refusal.of(what + " is larger than " + max + " bytes", null);
        }
        JsonNode n;
        try {
            n = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            // Found by PodFileFuzzTest: Jackson's own message names no file; the operator needs it.
            throw refusal.of(what + " is not JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            // Also found by it: bytes that are no Unicode encoding fail before JSON parsing starts.
            throw refusal.of(what + " is not JSON: " + e.getMessage(), e);
        }
        if (n == null || !n.isObject()) {
            throw refusal.of(what + " is not a JSON object", null);
        }
        return n;
    }
}
