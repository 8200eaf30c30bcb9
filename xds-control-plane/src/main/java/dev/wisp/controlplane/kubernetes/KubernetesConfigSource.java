package dev.wisp.controlplane.kubernetes;

import dev.wisp.base.Enrollment;
import static java.util.Objects.requireNonNull;

import dev.wisp.controlplane.config.ConfigDecoder;
import dev.wisp.controlplane.config.ConfigError;
import dev.wisp.controlplane.config.ConfigSet;
import dev.wisp.controlplane.config.ConfigSource;
import dev.wisp.controlplane.config.DirectoryConfigSource;
import dev.wisp.controlplane.config.LoadResult;
import dev.wisp.controlplane.model.MeshModel;
import dev.wisp.controlplane.model.MeshObject;
import dev.wisp.controlplane.model.ObjectRef;
import dev.wisp.controlplane.model.Origin;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's configuration from the Kubernetes API: fabric8 informers on Namespaces,
 * Pods, Services, EndpointSlices, Nodes, Istio's {@code security.istio.io/v1} AuthorizationPolicy,
 * PeerAuthentication and RequestAuthentication, and the Gateway API's {@code gateway.networking.k8s.io/v1} Gateway, HTTPRoute
 * and GRPCRoute, and Wisp's {@code wisp.dev/v1alpha1} HTTPFault and LocalRateLimit (generic
 * resources: no fabric8 model class needed), plus the MeshConfig directory
 * (the chart's ConfigMap), all turned into the same model the directory source makes.
 *
 * <p>Threads: informer callbacks (fabric8's executor) only mark the cluster dirty; one platform
 * thread, {@code wisp-kube-reading}, reads the informers' stores 100 ms after the last change and
 * reports a reading, so readings are reported one at a time, in order. A reading whose documents
 * equal the last reported one's is not reported: a resync or the relist after a broken watch
 * delivers every object again, and that must not push anything. Refused objects get a Warning
 * Event naming the field ({@link RefusalEvents}), each refusal once; Gateway API objects get their
 * status conditions ({@link GatewayApiStatus}), written only when they change. A WireGuard key the
 * control plane accepted is written on its Node ({@link NodeKeyAnnotations}), on the same thread.
 *
 * <p>Closing stops the informers and the reading thread (waiting for a reading in flight, so
 * nothing is written to the API after it returns); the client belongs to the caller.
 */
public final class KubernetesConfigSource implements ConfigSource {
    private static final Logger log = LoggerFactory.getLogger(KubernetesConfigSource.class);
    static final long DEBOUNCE_MILLIS = 100;

    /** Istio's policy kinds, read as generic resources. */
    static final List<ResourceDefinitionContext> POLICY_KINDS = List.of(
            kind("security.istio.io", "AuthorizationPolicy", "authorizationpolicies"),
            kind("security.istio.io", "PeerAuthentication", "peerauthentications"),
            kind("security.istio.io", "RequestAuthentication", "requestauthentications"));

    static final String GATEWAY_GROUP = "gateway.networking.k8s.io";

    /** The Gateway API kinds the model reads (waypoints, GAMMA routes), read as generic resources. */
    static final List<ResourceDefinitionContext> GATEWAY_KINDS = List.of(
            kind(GATEWAY_GROUP, "Gateway", "gateways"),
            kind(GATEWAY_GROUP, "HTTPRoute", "httproutes"),
            kind(GATEWAY_GROUP, "GRPCRoute", "grpcroutes"));

    /**
     * Wisp's route filter kinds ({@code wisp.dev/v1alpha1}, the chart's CRDs), named by routes'
     * ExtensionRef filters; read as generic resources.
     */
    static final List<ResourceDefinitionContext> WISP_KINDS = List.of(
            kind("wisp.dev", "v1alpha1", "HTTPFault", "httpfaults"),
            kind("wisp.dev", "v1alpha1", "LocalRateLimit", "localratelimits"));

    /**
     * How to read the cluster.
     *
     * @param meshConfigDir a directory of YAML read beside the cluster (the MeshConfig)
     * @param resync how often informers re-deliver their whole store (0: never)
     * @param syncTimeout how long {@link #start} waits for a kind's first list before going on
     *            without it (a kind whose CRD is not installed never lists)
     */
    public record Settings(Enrollment enrollment, Path meshConfigDir, Duration resync, Duration syncTimeout) {
        public Settings {
            requireNonNull(enrollment, "enrollment");
            requireNonNull(meshConfigDir, "meshConfigDir");
            requireNonNull(resync, "resync");
            requireNonNull(syncTimeout, "syncTimeout");
        }
    }

    private final KubernetesClient client;
    private final Settings settings;
    private final DirectoryConfigSource directory;
    private final RefusalEvents events;
    private final GatewayApiStatus status;
    private final NodeKeyAnnotations keyAnnotations;
    private final List<SharedIndexInformer<?>> informers = new ArrayList<>();
    private final ScheduledExecutorService reader = Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("wisp-kube-reading").daemon().unstarted(r));
    private final AtomicBoolean scheduled = new AtomicBoolean();
    private final AtomicLong readings = new AtomicLong();
    /** Set once every informer exists: changes before that are covered by the first reading. */
    private volatile boolean started;
    private volatile Consumer<LoadResult> listener = r -> {};
    /** Owned by the reading thread: the documents of the last reported reading. */
    private SortedMap<String, String> reported;
    private String reportedDirectory;
    private SharedIndexInformer<io.fabric8.kubernetes.api.model.Namespace> namespaces;
    private volatile SharedIndexInformer<io.fabric8.kubernetes.api.model.Pod> pods;
    private SharedIndexInformer<io.fabric8.kubernetes.api.model.Service> services;
    private volatile SharedIndexInformer<io.fabric8.kubernetes.api.model.Node> nodes;
    private SharedIndexInformer<io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice> endpointSlices;
    /** The Istio, Gateway API and Wisp kinds ({@link #POLICY_KINDS}, {@link #GATEWAY_KINDS}, {@link #WISP_KINDS}). */
    private final List<SharedIndexInformer<GenericKubernetesResource>> custom = new ArrayList<>();

    public KubernetesConfigSource(KubernetesClient client, Settings settings) {
        this.client = requireNonNull(client, "client");
        this.settings = requireNonNull(settings, "settings");
        this.directory = new DirectoryConfigSource(settings.meshConfigDir());
        this.events = new RefusalEvents(client);
        this.status = new GatewayApiStatus(client, settings.enrollment().honorIstioLabels());
        this.keyAnnotations = new NodeKeyAnnotations(client, name -> {
            SharedIndexInformer<io.fabric8.kubernetes.api.model.Node> n = nodes;
            return n == null ? null : n.getStore().getByKey(name);
        });
    }

    private static ResourceDefinitionContext kind(String group, String kind, String plural) {
        return kind(group, "v1", kind, plural);
    }

    private static ResourceDefinitionContext kind(String group, String version, String kind, String plural) {
        return new ResourceDefinitionContext.Builder().withGroup(group).withVersion(version)
                .withKind(kind).withPlural(plural).withNamespaced(true).build();
    }

    @Override
    public void start(Consumer<LoadResult> listener) {
        this.listener = requireNonNull(listener, "listener");
        long resync = settings.resync().toMillis();
        namespaces = watch(client.namespaces().runnableInformer(resync), "Namespace");
        pods = watch(client.pods().inAnyNamespace().runnableInformer(resync), "Pod");
        services = watch(client.services().inAnyNamespace().runnableInformer(resync), "Service");
        nodes = watch(client.nodes().runnableInformer(resync), "Node");
        endpointSlices = watch(client.discovery().v1().endpointSlices().inAnyNamespace().runnableInformer(resync),
                "EndpointSlice");
        for (ResourceDefinitionContext kind : java.util.stream.Stream.of(POLICY_KINDS, GATEWAY_KINDS, WISP_KINDS)
                .flatMap(List::stream).toList()) {
            custom.add(watch(client.genericKubernetesResources(kind).inAnyNamespace().runnableInformer(resync),
                    kind.getKind()));
        }
        // Report nothing before every kind has listed once (or given up): a partial first reading
        // would tell reconnecting agents to drop what they hold.
        started = true;
        try {
            reader.submit(this::read).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during the first reading of the cluster", e);
        } catch (java.util.concurrent.ExecutionException e) {
            throw new IllegalStateException("the first reading of the cluster failed: " + e.getCause(), e.getCause());
        }
    }

    private <T extends HasMetadata> SharedIndexInformer<T> watch(SharedIndexInformer<T> informer, String kind) {
        informer.addEventHandler(new ResourceEventHandler<T>() {
            @Override
            public void onAdd(T obj) {
                changed();
            }

            @Override
            public void onUpdate(T oldObj, T newObj) {
                changed();
            }

            @Override
            public void onDelete(T obj, boolean deletedFinalStateUnknown) {
                changed();
            }
        });
        informers.add(informer);
        try {
            informer.start().toCompletableFuture().get(settings.syncTimeout().toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            log.warn("{}s have not listed within {}: going on without them until they do (is the CRD installed, "
                    + "and may the control plane's ServiceAccount list them?)", kind, settings.syncTimeout());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while listing " + kind + "s", e);
        } catch (java.util.concurrent.ExecutionException e) {
            log.warn("cannot list {}s: {}; going on without them until they list (is the CRD installed?)", kind,
                    e.getCause() == null ? e.getMessage() : e.getCause().getMessage());
        }
        return informer;
    }

    private void changed() {
        if (started && scheduled.compareAndSet(false, true)) {
            reader.schedule(() -> {
                scheduled.set(false);
                read();
            }, DEBOUNCE_MILLIS, TimeUnit.MILLISECONDS);
        }
    }

    /** On the reading thread: one reading of the stores, reported when it differs from the last. */
    private void read() {
        readings.incrementAndGet();
        try {
            List<GenericKubernetesResource> customObjects = custom.stream()
                    .flatMap(p -> p.getStore().list().stream()).toList();
            ClusterObjects.Reading cluster = ClusterObjects.read(
                    new ClusterObjects.Snapshot(namespaces.getStore().list(),
                            pods.getStore().list(), services.getStore().list(), nodes.getStore().list(),
                            customObjects, endpointSlices.getStore().list()),
                    settings.enrollment());
            List<GenericKubernetesResource> gatewayApi = customObjects.stream()
                    .filter(o -> o.getApiVersion() != null && o.getApiVersion().startsWith(GATEWAY_GROUP + "/"))
                    .toList();
            events.report(cluster.refusals());
            status.write(gatewayApi, cluster);
            LoadResult local = directory.reload();
            String localKey = local.valid() ? String.valueOf(local.model().objects()) : String.valueOf(local.errors());
            if (cluster.documents().equals(reported) && localKey.equals(reportedDirectory)) {
                return;
            }
            reported = cluster.documents();
            reportedDirectory = localKey;
            listener.accept(merge(cluster, local));
        } catch (RuntimeException e) {
            log.error("reading the cluster failed; the last good configuration stays live", e);
        }
    }

    private static LoadResult merge(ClusterObjects.Reading cluster, LoadResult local) {
        if (!local.valid()) {
            return local;
        }
        List<ConfigDecoder.Decoded> all = new ArrayList<>(cluster.decoded());
        MeshModel m = local.model();
        Map<ObjectRef, Origin> origins = new LinkedHashMap<>();
        List<MeshObject> objects = new ArrayList<>(m.objects().values());
        objects.forEach(o -> {
            if (m.origin(o.ref()) != null) {
                origins.put(o.ref(), m.origin(o.ref()));
            }
        });
        all.add(new ConfigDecoder.Decoded(objects, origins, List.of()));
        return ConfigSet.merge(all);
    }

    /**
     * The pod {@code namespace/name} as the informer holds it (empty before {@link #start} or when
     * absent): the node check of agents' tokens ({@link AgentTokens}).
     */
    public java.util.Optional<io.fabric8.kubernetes.api.model.Pod> pod(String namespace, String name) {
        SharedIndexInformer<io.fabric8.kubernetes.api.model.Pod> p = pods;
        return p == null
                ? java.util.Optional.empty()
                : java.util.Optional.ofNullable(p.getStore().getByKey(namespace + "/" + name));
    }

    /** How many readings of the stores were made (reported or not): tests watch resyncs with it. */
    long readings() {
        return readings.get();
    }

    /** Annotates the Node ({@link NodeKeyAnnotations}) on the reading thread, in the order keys were accepted. */
    @Override
    public void recordWireGuardKey(String node, String publicKey, String endpoint) {
        try {
            reader.execute(() -> keyAnnotations.write(node, publicKey, endpoint));
        } catch (java.util.concurrent.RejectedExecutionException e) {
            log.debug("closed: Node {} not annotated with its WireGuard key", node);
        }
    }

    /** A Node's {@code spec.podCIDRs} are the node IPAM controller's, the only word on its pods' ranges. */
    @Override
    public boolean podCidrsFromNodesOnly() {
        return true;
    }

    @Override
    public List<Change> apply(String fileName, String yaml) throws ConfigRejectedException {
        throw notHere(fileName);
    }

    @Override
    public List<Change> delete(String fileName, String yaml) throws ConfigRejectedException {
        throw notHere(fileName);
    }

    private static ConfigRejectedException notHere(String fileName) {
        return new ConfigRejectedException(List.of(new ConfigError(fileName, 1, null, null,
                "this control plane reads the Kubernetes API: apply the objects there (kubectl apply -f)")));
    }

    @Override
    public void close() {
        informers.forEach(SharedIndexInformer::close);
        reader.shutdownNow();
        try {
            // A reading in flight may be posting an Event or a status: let it end, so nothing
            // writes to the API after close returns.
            if (!reader.awaitTermination(10, TimeUnit.SECONDS)) {
                log.warn("the cluster reading did not end within 10 s of close");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        directory.close();
    }
}
