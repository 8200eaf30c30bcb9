package dev.wisp.controlplane;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;

/**
 * The live mesh page ({@code /ui} on the admin API): one HTML file with its script and style inline,
 * shipped in the jar (no build step, nothing fetched from elsewhere). It reads {@code /api/v1/flows?view=calls}
 * every second (one record per call) and draws the service graph and the flow table from them.
 */
final class MeshPage {
    private static final String RESOURCE = "/dev/wisp/controlplane/ui/mesh.html";
    private static final String HTML = load();

    private MeshPage() {}

    static String html() {
        return HTML;
    }

    private static String load() {
        try (InputStream in = MeshPage.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the live mesh page " + RESOURCE + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + RESOURCE, e);
        }
    }
}
