package dev.wisp.e2e;

import java.util.List;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * The leftovers check of the JVMs where {@link SuiteEndLeftoversE2eTest} did not run: the forks that
 * run classes side by side, and a run filtered with {@code -Dtest}. When the launcher session ends
 * (after every test class of the fork) the {@link SharedMeshes} go down and the same check runs here
 * for the clusters this JVM built;
 * leftovers are printed and the JVM halts with status 1, which fails the build (surefire reports the
 * fork as crashed). Registered in {@code META-INF/services}.
 */
public final class SuiteEndLeftovers implements LauncherSessionListener {
    @Override
    public void launcherSessionClosed(LauncherSession session) {
        if (SuiteEndLeftoversE2eTest.ran || !isRoot()) {
            return;
        }
        try {
            SharedMeshes.closeAll();
        } catch (Exception e) {
            System.err.println("e2e suite end: taking the shared meshes down failed: " + e);
            e.printStackTrace();
        }
        List<String> left = SuiteEndLeftoversE2eTest.leftovers();
        if (!left.isEmpty()) {
            System.err.println("e2e suite end: left on the machine by clusters of this suite: " + left);
            System.err.flush();
            Runtime.getRuntime().halt(1);
        }
    }

    private static boolean isRoot() {
        return "root".equals(System.getProperty("user.name"));
    }
}
