package dev.wisp.base;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class EnrollmentTest {
    /** pod labels; namespace labels (k=v, ';'-separated, '-' for none); honour Istio; enrolled. */
    @ParameterizedTest(name = "{0}")
    @CsvSource(delimiter = '|', textBlock = """
            namespace label enrolls                | -                                | wisp.dev/mesh=enabled             | false | true
            nothing enrolls nothing                | -                                | -                                 | false | false
            pod label enrolls alone                | wisp.dev/mesh=enabled            | -                                 | false | true
            pod opts out of an enrolled namespace  | wisp.dev/mesh=disabled           | wisp.dev/mesh=enabled             | false | false
            wisp none opts a pod out               | wisp.dev/mesh=none               | wisp.dev/mesh=enabled             | false | false
            wisp none opts a namespace out         | -                                | wisp.dev/mesh=none                | false | false
            wisp none on the namespace, pod enabled| wisp.dev/mesh=enabled            | wisp.dev/mesh=none                | false | true
            istio none opts a namespace out        | -                                | istio.io/dataplane-mode=none      | true  | false
            istio ambient ignored by default       | -                                | istio.io/dataplane-mode=ambient   | false | false
            istio ambient honoured when asked      | -                                | istio.io/dataplane-mode=ambient   | true  | true
            istio none opts a pod out              | istio.io/dataplane-mode=none     | istio.io/dataplane-mode=ambient   | true  | false
            istio none ignored by default          | istio.io/dataplane-mode=none     | wisp.dev/mesh=enabled             | false | true
            wisp label wins over istio on the pod  | wisp.dev/mesh=enabled;istio.io/dataplane-mode=none | -       | true  | true
            other values say nothing               | wisp.dev/mesh=yes                | -                                 | false | false
            """)
    void decides(String name, String pod, String namespace, boolean honourIstio, boolean enrolled) {
        assertThat(new Enrollment(Enrollment.DEFAULT_LABEL, honourIstio).enrolled(labels(pod), labels(namespace)))
                .isEqualTo(enrolled);
    }

    private static Map<String, String> labels(String text) {
        if (text.equals("-")) {
            return Map.of();
        }
        java.util.Map<String, String> out = new java.util.HashMap<>();
        for (String kv : text.split(";")) {
            String[] p = kv.split("=", 2);
            out.put(p[0], p[1]);
        }
        return out;
    }
}
