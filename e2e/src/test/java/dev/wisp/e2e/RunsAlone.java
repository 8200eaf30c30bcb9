package dev.wisp.e2e;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.Tag;

/**
 * An e2e class that runs with no other e2e class beside it: the module's {@code e2e-serial} surefire
 * execution runs these one at a time after the others, which run {@code wisp.e2e.forks} classes at
 * once (see e2e/pom.xml). For classes that assert a time, a rate, or not one failure under load:
 * a neighbouring class's CPU would be measured with them. A class that only asserts outcomes does not
 * need it: each class has its own cluster name and address base, so classes share nothing else.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Tag("serial")
@interface RunsAlone {
}
