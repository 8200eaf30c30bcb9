package dev.wisp.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code wisp ca rotate STEP}: a root rotation step on the running control plane ({@code POST
 * /api/v1/ca/rotate?step=STEP} on its admin API), or its state ({@code status}). Prints the phase
 * after the step and the step that comes next; a step out of order exits 1 with the control plane's
 * reason.
 */
@Command(name = "rotate", mixinStandardHelpOptions = true, usageHelpAutoWidth = true, description = {
        "Rotate the mesh's root on the running control plane, one step at a time:", "",
        "  add     a new root joins the trust bundle (pushed at once to agents, waypoints",
        "          and pods' Workload API streams); the old root still signs",
        "  switch  the new root signs; certificates of the old root stay trusted",
        "  retire  the old root leaves the bundle: wait one workload certificate",
        "          lifetime after 'switch' first, so that every certificate was renewed",
        "  status  the phase and the next step", "",
        "A step out of order is refused. The phase is kept in the CA directory, so a",
        "restarted control plane resumes where it was.", ""}, footer = {"", "Example:",
                "  wisp ca rotate add && wisp ca rotate switch", "  sleep 120; wisp ca rotate retire"})
public final class CaRotateCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Mixin
    AdminServerOption server;

    @Parameters(index = "0", paramLabel = "STEP", description = "add, switch, retire or status.")
    String step;

    @Override
    public Integer call() {
        AdminClient client = new AdminClient(server.server);
        AdminClient.Reply r = switch (step) {
            case "status" -> client.get("/api/v1/ca/rotation", Map.of());
            case "add", "switch", "retire" -> client.post("/api/v1/ca/rotate", Map.of("step", step), "");
            default -> throw UserException.invalid("STEP: '" + step + "' is not add, switch, retire or status");
        };
        if (r.status() != 200) {
            JsonNode errors = r.body().path("errors");
            throw new UserException("ca rotate " + step + ": "
                    + (errors.isArray() && !errors.isEmpty() ? errors.get(0).asText() : "HTTP " + r.status()));
        }
        JsonNode b = r.body();
        PrintWriter out = spec.commandLine().getOut();
        out.printf("phase %s: %s%n", b.path("phase").asText(), b.path("description").asText());
        for (JsonNode root : b.path("trustedRoots")) {
            out.printf("  trusted root %s  %s  until %s%n", root.path("serial").asText(), root.path("subject").asText(),
                    root.path("notAfter").asText());
        }
        out.printf("bundle watchers (agents and waypoints told at once): %d%n", b.path("bundleWatchers").asInt());
        out.printf("next step: %s%n", b.path("next").asText());
        out.flush();
        return 0;
    }
}
