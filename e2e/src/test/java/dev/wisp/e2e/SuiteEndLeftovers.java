package dev.wisp.e2e;

import java.util.List;
import org.junit.platform.launcher.LauncherSession;
import org.junit.platform.launcher.LauncherSessionListener;

/**
 * The backstop of {@link SuiteEndLeftoversE2eTest}: when the launcher session ends (after every test
 * class of the fork) and that test did not run, e.g. in a run filtered with {@code -Dtest}, the same
 * check runs here; leftovers are printed and the JVM halts with status 1, which fails the build
 * (surefire reports the fork as crashed). Registered in {@code META-INF/services}.
 */
public final class SuiteEndLeftovers implements LauncherSessionListener {
    @Override
    public void launcherSessionClosed(LauncherSession session) {
        if (SuiteEndLeftoversE2eTest.ran || !isRoot()) {
            return;
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
