package dev.wisp.e2e;

import java.util.EnumMap;
import java.util.Map;
import java.util.Optional;
import org.junit.platform.engine.TestExecutionResult;
import org.junit.platform.engine.support.descriptor.ClassSource;
import org.junit.platform.launcher.TestExecutionListener;
import org.junit.platform.launcher.TestIdentifier;
import org.junit.platform.launcher.TestPlan;

/**
 * Registered in {@code META-INF/services}: counts the classes of the test plan on each of the
 * {@link SharedMeshes} ({@link SharedMeshes.OnSharedMesh}) and takes a mesh down when its last class
 * has finished, so that it is not up beside the classes after it. Surefire runs a fork's classes as
 * one plan; with a plan of one class (several forks) a mesh goes down after each class, shared by
 * none.
 */
public final class SharedMeshLifetime implements TestExecutionListener {
    @Override
    public void testPlanExecutionStarted(TestPlan plan) {
        Map<SharedMeshes.Kind, Integer> users = new EnumMap<>(SharedMeshes.Kind.class);
        for (TestIdentifier root : plan.getRoots()) {
            for (TestIdentifier id : plan.getDescendants(root)) {
                kindOf(id).ifPresent(k -> users.merge(k, 1, Integer::sum));
            }
        }
        SharedMeshes.planned(users);
    }

    @Override
    public void executionFinished(TestIdentifier id, TestExecutionResult result) {
        kindOf(id).ifPresent(k -> {
            try {
                SharedMeshes.finished(k);
            } catch (Exception e) {
                // The run's leftover check (SuiteEndLeftovers) fails the run if it left anything.
                System.err.println("taking shared mesh " + k + " down failed: " + e);
                e.printStackTrace();
            }
        });
    }

    private static Optional<SharedMeshes.Kind> kindOf(TestIdentifier id) {
        if (id.getSource().orElse(null) instanceof ClassSource c) {
            try {
                return Optional.ofNullable(c.getJavaClass().getAnnotation(SharedMeshes.OnSharedMesh.class)).map(
                        SharedMeshes.OnSharedMesh::value);
            } catch (RuntimeException e) {
                return Optional.empty();
            }
        }
        return Optional.empty();
    }
}
