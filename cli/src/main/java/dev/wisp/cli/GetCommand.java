package dev.wisp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code wisp get KIND [NAME]}: lists objects of the live model as a table. */
@Command(name = "get", mixinStandardHelpOptions = true, description = {
        "List objects of the running control plane's live model: pods, services, nodes,",
        "authorizationpolicies (ap), peerauthentications (pa), meshconfigs. Policy warnings",
        "(e.g. fields only a waypoint could enforce) are printed to stderr."})
public final class GetCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "KIND")
    String kind;

    @Parameters(index = "1", arity = "0..1", paramLabel = "NAME")
    String name;

    @Option(names = {"-n", "--namespace"}, paramLabel = "NS", description = "Only this namespace (default: all).")
    String namespace;

    @Mixin
    AdminServerOption server;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        Map<String, String> query = new LinkedHashMap<>();
        query.put("kind", kind);
        if (name != null) {
            query.put("name", name);
        }
        if (namespace != null) {
            query.put("namespace", namespace);
        }
        AdminClient.Reply r = new AdminClient(server.server).get("/api/v1/objects", query);
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        if (r.status() != 200) {
            String prefix = r.status() == 404 ? "Error from server (NotFound): " : "error: ";
            r.body().path("errors").forEach(e -> err.println(prefix + e.asText()));
            err.flush();
            return 1;
        }
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[]{"NAMESPACE", "NAME", "SOURCE", "WARNINGS"});
        for (JsonNode item : r.body().path("items")) {
            JsonNode warnings = item.path("warnings");
            rows.add(new String[]{item.path("namespace").asText().isEmpty() ? "-" : item.path("namespace").asText(),
                    item.path("name").asText(), item.path("source").asText(), Integer.toString(warnings.size())});
            String ref = item.path("kind").asText() + " " + (item.path("namespace").asText().isEmpty()
                    ? ""
                    : item.path("namespace").asText() + "/") + item.path("name").asText();
            warnings.forEach(w -> err.println("Warning: " + ref + ": " + w.asText()));
        }
        if (rows.size() == 1) {
            err.println("No resources found");
        } else {
            int[] width = new int[4];
            for (String[] row : rows) {
                for (int i = 0; i < 4; i++) {
                    width[i] = Math.max(width[i], row[i].length());
                }
            }
            for (String[] row : rows) {
                StringBuilder sb = new StringBuilder();
                for (int i = 0; i < 4; i++) {
                    sb.append(i == 3 ? row[i] : String.format("%-" + (width[i] + 3) + "s", row[i]));
                }
                out.println(sb.toString().stripTrailing());
            }
        }
        out.flush();
        err.flush();
        return 0;
    }
}
