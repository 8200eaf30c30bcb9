package dev.wisp.e2e;

import java.io.IOException;

/**
 * Prints {@link RunSlot#cluster} of its first argument in a JVM of its own, for {@link RunSlotTest};
 * with a second argument {@code hold}, keeps its slot until its standard input ends.
 */
public final class RunSlotProbe {
    private RunSlotProbe() {}

    public static void main(String[] args) throws IOException {
        System.out.println(RunSlot.cluster(args[0]));
        System.out.flush();
        if (args.length > 1 && args[1].equals("hold")) {
            System.in.readAllBytes();
        }
    }
}
