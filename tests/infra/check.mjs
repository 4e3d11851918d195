#!/usr/bin/env node
// tests/infra/check.mjs — the checks of tests/infra/run that need a YAML parser, the Kubernetes
// API schemas (kubernetes-models, TypeScript) or a look inside the rendered manifests.
//
//   node check.mjs schema  RENDERED.yaml...                 API schemas, strict (unknown fields too)
//   node check.mjs policy  OVERLAY RENDERED.yaml            what issue 6 asks of the manifests
//   node check.mjs docker  RENDERED.yaml...                 Dockerfile vs repo, build tree, manifests
//   node check.mjs flags   OVERLAY RENDERED.yaml            every flag/variable accepted (--check-config)
//   node check.mjs metrics                                  dashboard, alerts and docs vs exported names
//
// Every result is one line: "PASS name", "FAIL name: why" (details indented below) or
// "SKIP name: why"; tests/infra/run counts them. Settings come from the environment (TK_*),
// set by tests/infra/run.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const ENV = process.env;
const BIN = path.resolve(ENV.TK_BIN_DIR || path.join(ROOT, 'build/bin'));
const WRAPPER_DIR = path.join(ROOT, 'infra/docker');
const IMAGE = 'tiketi-core';
const USER_ID = 10001;

// ---- output ---------------------------------------------------------------------------------
function report(status, name, why, details = []) {
    console.log(`${status} ${name}${why ? `: ${why}` : ''}`);
    for (const d of details.slice(0, 25)) console.log(`    ${d}`);
    if (details.length > 25) console.log(`    ... and ${details.length - 25} more`);
}
const pass = (name, why) => report('PASS', name, why);
const skip = (name, why) => report('SKIP', name, why);
function verdict(name, problems, okWhy) {
    if (problems.length) report('FAIL', name, `${problems.length} problem(s)`, problems);
    else pass(name, okWhy);
}

// ---- reading --------------------------------------------------------------------------------
function loadObjects(file) {
    const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    for (const d of docs) if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    return docs.map((d) => d.toJS()).filter((o) => o && typeof o === 'object');
}
const overlayOf = (file) => path.basename(file, '.yaml');
const id = (o) => `${o.kind}/${o.metadata?.name}`;
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job']);
const workloads = (objs) => objs.filter((o) => WORKLOAD_KINDS.has(o.kind));
const podSpec = (w) => w.spec?.template?.spec ?? {};
const podLabels = (w) => w.spec?.template?.metadata?.labels ?? {};
const allContainers = (w) => [...(podSpec(w).initContainers ?? []), ...(podSpec(w).containers ?? [])];
const isOurs = (c) => typeof c.image === 'string' && path.basename(c.image.split(':')[0]) === IMAGE;
const tier = (w) => podLabels(w)['tiketi.io/tier'];
const isTiketiWorkload = (w) => ['service', 'edge'].includes(tier(w));

function matchesSelector(selector, labels) {
    if (!selector) return false;
    for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
    for (const e of selector.matchExpressions ?? []) {
        const has = Object.hasOwn(labels, e.key);
        const value = labels[e.key];
        if (e.operator === 'In' && !(has && e.values.includes(value))) return false;
        if (e.operator === 'NotIn' && has && e.values.includes(value)) return false;
        if (e.operator === 'Exists' && !has) return false;
        if (e.operator === 'DoesNotExist' && has) return false;
    }
    return true;
}

// Kubernetes quantities to numbers (cores, bytes).
function quantity(q) {
    const m = String(q).match(/^([0-9.]+)([a-zA-Z]*)$/);
    if (!m) return NaN;
    const units = {
        '': 1,
        m: 1e-3,
        k: 1e3,
        M: 1e6,
        G: 1e9,
        T: 1e12,
        Ki: 1024,
        Mi: 1024 ** 2,
        Gi: 1024 ** 3,
        Ti: 1024 ** 4,
    };
    return Number(m[1]) * (units[m[2]] ?? NaN);
}

function run(cmd, args, options = {}) {
    const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 20000, ...options });
    return { code: r.status, out: r.stdout ?? '', err: r.stderr ?? '', error: r.error };
}

// ---- schema -----------------------------------------------------------------------------------
// kubernetes-models validates types, required fields, enums and formats, but lets unknown fields
// through; the TypeScript compiler's excess-property check on the same models' interfaces catches
// those (a misspelt or misplaced field that the API server would drop or refuse).
function modelPath(apiVersion) {
    return apiVersion.includes('/') ? `kubernetes-models/${apiVersion}` : `kubernetes-models/v1`;
}

async function schemaCheck(files) {
    const tsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tiketi-ts-'));
    const lineOwners = {}; // ts file -> [{from, to, name}]
    const problems = {};
    for (const file of files) {
        const overlay = overlayOf(file);
        problems[overlay] = [];
        const lines = [];
        const owners = [];
        let index = 0;
        for (const o of loadObjects(file)) {
            const name = id(o);
            let model;
            try {
                model = (await import(modelPath(o.apiVersion)))[o.kind];
            } catch {
                model = undefined;
            }
            if (!model) {
                problems[overlay].push(`${name}: no ${o.apiVersion} ${o.kind} in the Kubernetes API`);
                continue;
            }
            try {
                new model(o).validate();
            } catch (e) {
                problems[overlay].push(`${name}: ${e.message}`);
            }
            const typeName = `I${o.kind}`;
            const from = lines.length + 1;
            lines.push(`import type { ${typeName} as T${index} } from "${modelPath(o.apiVersion)}/${o.kind}";`);
            lines.push(`export const o${index}: T${index} = ${JSON.stringify(o, null, 1)};`);
            owners.push({ from, to: lines.join('\n').split('\n').length, name });
            index++;
        }
        const tsFile = path.join(tsDir, `${overlay}.ts`);
        fs.writeFileSync(tsFile, lines.join('\n') + '\n');
        lineOwners[tsFile] = owners;
    }
    fs.writeFileSync(
        path.join(tsDir, 'tsconfig.json'),
        JSON.stringify({
            compilerOptions: {
                strict: true,
                noEmit: true,
                skipLibCheck: true,
                module: 'commonjs',
                moduleResolution: 'node',
                target: 'es2020',
                typeRoots: [],
                baseUrl: HERE,
                paths: { '*': [path.join(HERE, 'node_modules/*')] },
            },
            include: ['*.ts'],
        }),
    );
    const tsc = run(process.execPath, [path.join(HERE, 'node_modules/typescript/bin/tsc'), '-p', tsDir], {
        timeout: 120000,
    });
    for (const line of tsc.out.split('\n')) {
        const m = line.match(/^(.*\.ts)\((\d+),\d+\): error (TS\d+: .*)$/);
        if (!m) continue;
        const file = path.resolve(tsDir, m[1]);
        const owner = (lineOwners[file] ?? []).find((x) => Number(m[2]) >= x.from && Number(m[2]) <= x.to);
        problems[overlayOf(file.replace(/\.ts$/, '.yaml'))]?.push(`${owner?.name ?? '?'}: ${m[3]}`);
    }
    if (tsc.code !== 0 && !/error TS/.test(tsc.out))
        for (const f of files) problems[overlayOf(f)].push(`tsc failed: ${(tsc.err || tsc.out).slice(0, 300)}`);
    for (const file of files) {
        const n = loadObjects(file).length;
        verdict(
            `schema ${overlayOf(file)}`,
            problems[overlayOf(file)],
            `${n} objects valid (kubernetes-models + strict fields)`,
        );
    }
    fs.rmSync(tsDir, { recursive: true, force: true });
}

// ---- policy ---------------------------------------------------------------------------------
// Replica ranges of the seed (issue 6); the edge's is ours. The local overlay runs 1..3 of each.
const HPA_RANGES = {
    'auth-svc': [2, 10],
    'event-svc': [2, 20],
    'queue-svc': [3, 100],
    'reservation-svc': [3, 50],
    'payment-svc': [2, 10],
    edge: [2, 20],
};
const WRAPPER_INPUTS = new Set([
    'POD_NAME',
    'POD_NAMESPACE',
    'TIKETI_SHARD_COUNT',
    'TIKETI_SHARD_SERVICE',
    'TIKETI_SHARD_PORT',
    'TIKETI_CLUSTER_DOMAIN',
]);

function wrapperCommand(c) {
    // -> {program, args, listEnv, ordinalEnv, wrapped}
    const argv = [...(c.command ?? []), ...(c.args ?? [])];
    if (path.basename(argv[0] ?? '') !== 'tiketi-shard-env')
        return { program: path.basename(argv[0] ?? ''), args: argv.slice(1), wrapped: false };
    const r = { wrapped: true, listEnv: null, ordinalEnv: null };
    let i = 1;
    for (; i < argv.length; i++) {
        if (argv[i] === '--list-env') r.listEnv = argv[++i];
        else if (argv[i] === '--ordinal-env') r.ordinalEnv = argv[++i];
        else if (argv[i] === '--') {
            i++;
            break;
        } else break;
    }
    r.program = path.basename(argv[i] ?? '');
    r.args = argv.slice(i + 1);
    return r;
}

// Each check gets the rendering (ctx) and add(problem); policyCheck reports one line per check.
const POLICY_CHECKS = {
    // security: non-root, read-only root, no capabilities, no escalation, RuntimeDefault seccomp
    security: ({ objs }, add) => {
        for (const w of workloads(objs)) {
            const s = podSpec(w);
            const sc = s.securityContext ?? {};
            if (sc.runAsNonRoot !== true) add(`${id(w)}: pod securityContext.runAsNonRoot is not true`);
            if (!sc.runAsUser || sc.runAsUser === 0) add(`${id(w)}: no non-zero runAsUser`);
            if (sc.seccompProfile?.type !== 'RuntimeDefault') add(`${id(w)}: seccompProfile is not RuntimeDefault`);
            if (s.automountServiceAccountToken !== false) add(`${id(w)}: service account token mounted`);
            if (s.enableServiceLinks !== false)
                add(`${id(w)}: enableServiceLinks not false (service variables could collide with the daemons' own)`);
            if (s.hostNetwork || s.hostPID || s.hostIPC) add(`${id(w)}: uses host namespaces`);
            for (const c of allContainers(w)) {
                const cs = c.securityContext ?? {};
                if (cs.allowPrivilegeEscalation !== false)
                    add(`${id(w)} ${c.name}: allowPrivilegeEscalation not false`);
                if (cs.readOnlyRootFilesystem !== true) add(`${id(w)} ${c.name}: root filesystem not read-only`);
                if (!(cs.capabilities?.drop ?? []).includes('ALL'))
                    add(`${id(w)} ${c.name}: capabilities not dropped (ALL)`);
                if ((cs.capabilities?.add ?? []).length) add(`${id(w)} ${c.name}: adds capabilities`);
                if (cs.privileged) add(`${id(w)} ${c.name}: privileged`);
                if (isOurs(c) && sc.runAsUser !== USER_ID)
                    add(`${id(w)}: runs the image as ${sc.runAsUser}, not its user ${USER_ID}`);
            }
        }
    },
    // resources: requests and limits for CPU and memory, requests <= limits
    resources: ({ objs }, add) => {
        for (const w of workloads(objs))
            for (const c of allContainers(w)) {
                const r = c.resources ?? {};
                for (const kind of ['cpu', 'memory']) {
                    const req = r.requests?.[kind];
                    const lim = r.limits?.[kind];
                    if (req === undefined || lim === undefined)
                        add(`${id(w)} ${c.name}: ${kind} request and limit needed`);
                    else if (!(quantity(req) <= quantity(lim)))
                        add(`${id(w)} ${c.name}: ${kind} request ${req} above limit ${lim}`);
                }
            }
    },
    // probes: startup + liveness + readiness; native gRPC on the gRPC port, HTTP for the edge
    probes: ({ objs }, add) => {
        for (const w of workloads(objs)) {
            const ours = isTiketiWorkload(w);
            for (const c of podSpec(w).containers ?? []) {
                const needed = ours
                    ? ['startupProbe', 'livenessProbe', 'readinessProbe']
                    : ['livenessProbe', 'readinessProbe'];
                for (const probe of needed) if (!c[probe]) add(`${id(w)} ${c.name}: no ${probe}`);
                if (!ours) continue;
                const grpcPort = (c.ports ?? []).find((x) => x.name === 'grpc')?.containerPort;
                for (const probe of needed) {
                    const pr = c[probe];
                    if (!pr) continue;
                    if (tier(w) === 'service') {
                        if (!pr.grpc) add(`${id(w)} ${probe}: not a native gRPC probe`);
                        else if (pr.grpc.port !== grpcPort)
                            add(`${id(w)} ${probe}: port ${pr.grpc.port} is not the grpc port ${grpcPort}`);
                    } else if (!pr.httpGet) add(`${id(w)} ${probe}: not an HTTP probe`);
                }
            }
        }
    },
    // autoscaling: one autoscaling/v2 HPA per stateless Deployment, CPU 70%, the seed's ranges
    autoscaling: ({ overlay, byKind }, add) => {
        const hpas = byKind('HorizontalPodAutoscaler');
        for (const d of byKind('Deployment').filter(isTiketiWorkload)) {
            const name = d.metadata.name;
            const h = hpas.find(
                (x) => x.spec?.scaleTargetRef?.kind === 'Deployment' && x.spec.scaleTargetRef.name === name,
            );
            if (!h) {
                add(`${name}: no HorizontalPodAutoscaler`);
                continue;
            }
            if (h.apiVersion !== 'autoscaling/v2') add(`${name}: HPA is ${h.apiVersion}`);
            const cpu = (h.spec.metrics ?? []).find((m) => m.type === 'Resource' && m.resource?.name === 'cpu');
            if (cpu?.resource?.target?.averageUtilization !== 70) add(`${name}: CPU target is not 70%`);
            const want = overlay === 'local' ? [1, 3] : HPA_RANGES[name];
            if (!want) add(`${name}: no expected replica range`);
            else if (h.spec.minReplicas !== want[0] || h.spec.maxReplicas !== want[1])
                add(`${name}: replicas ${h.spec.minReplicas}-${h.spec.maxReplicas}, expected ${want[0]}-${want[1]}`);
            if (d.spec.replicas !== undefined) add(`${name}: spec.replicas set although the HPA owns it`);
            for (const c of podSpec(d).containers)
                if (!c.resources?.requests?.cpu) add(`${name}: no CPU request to scale on`);
        }
    },
    // disruption budgets: every TIKETI workload covered, never a budget that blocks drains
    'disruption budgets': ({ byKind, tiketi }, add) => {
        for (const w of tiketi) {
            const pdbs = byKind('PodDisruptionBudget').filter((b) => matchesSelector(b.spec?.selector, podLabels(w)));
            if (pdbs.length !== 1) {
                add(`${id(w)}: ${pdbs.length} budgets select its pods`);
                continue;
            }
            const b = pdbs[0].spec;
            if (b.minAvailable !== undefined)
                add(`${id(w)}: minAvailable blocks drains at the HPA's minimum; use maxUnavailable`);
            if (b.maxUnavailable === undefined || b.maxUnavailable === 0 || b.maxUnavailable === '0%')
                add(`${id(w)}: maxUnavailable must allow at least one eviction`);
        }
    },
    // topology spread: by node and zone, selecting the workload's own pods
    'topology spread': ({ tiketi }, add) => {
        for (const w of tiketi) {
            const tsc = podSpec(w).topologySpreadConstraints ?? [];
            for (const key of ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']) {
                const t = tsc.find((x) => x.topologyKey === key);
                if (!t) add(`${id(w)}: no spread over ${key}`);
                else if (!matchesSelector(t.labelSelector, podLabels(w)))
                    add(`${id(w)}: ${key} spread does not select its own pods`);
            }
        }
    },
    // prometheus annotations: scrape, the port of the container's metrics (or http) port, /metrics
    'prometheus annotations': ({ tiketi }, add) => {
        for (const w of tiketi) {
            const a = w.spec.template.metadata?.annotations ?? {};
            const ports = (podSpec(w).containers ?? []).flatMap((c) => c.ports ?? []);
            const metricsPort = (ports.find((x) => x.name === 'metrics') ?? ports.find((x) => x.name === 'http'))
                ?.containerPort;
            if (a['prometheus.io/scrape'] !== 'true') add(`${id(w)}: prometheus.io/scrape is not "true"`);
            if (a['prometheus.io/port'] !== String(metricsPort))
                add(`${id(w)}: prometheus.io/port ${a['prometheus.io/port']} is not its metrics port ${metricsPort}`);
            if (a['prometheus.io/path'] !== '/metrics') add(`${id(w)}: prometheus.io/path is not /metrics`);
        }
    },
    // seatcored: StatefulSet, headless Service, WAL on a claim, the shard count everywhere
    'seatcored statefulset': ({ objs, find }, add) => {
        const sts = find('StatefulSet', 'seatcored');
        if (!sts) add('no StatefulSet seatcored');
        else {
            const svc = find('Service', sts.spec.serviceName);
            if (!svc || svc.spec.clusterIP !== 'None')
                add(`serviceName ${sts.spec.serviceName} is not a headless Service`);
            else if (!matchesSelector({ matchLabels: svc.spec.selector }, podLabels(sts)))
                add('the headless Service does not select the shards');
            const c = podSpec(sts).containers.find((x) => x.name === 'seatcored');
            const claim = (sts.spec.volumeClaimTemplates ?? [])[0]?.metadata?.name;
            const mount = (c?.volumeMounts ?? []).find((m) => m.name === claim);
            if (!claim || !mount) add('the WAL is not on a volumeClaimTemplate mounted in the container');
            const cm = find('ConfigMap', (c?.envFrom ?? [])[0]?.configMapRef?.name);
            const dataDir = cm?.data?.SEATCORED_DATA_DIR;
            if (!dataDir || !mount || !dataDir.startsWith(mount.mountPath + '/'))
                add(`SEATCORED_DATA_DIR ${dataDir} is not on the claim (${mount?.mountPath})`);
            const cmd = wrapperCommand(c ?? {});
            if (!cmd.wrapped || cmd.listEnv !== 'SEATCORED_SHARDS' || cmd.ordinalEnv !== 'SEATCORED_SHARD_ID')
                add('the shard id and list are not derived by tiketi-shard-env');
            const replicas = String(sts.spec.replicas);
            for (const w of workloads(objs))
                for (const ct of podSpec(w).containers ?? []) {
                    const wc = wrapperCommand(ct);
                    if (!wc.wrapped) continue;
                    const count = (ct.env ?? []).find((e) => e.name === 'TIKETI_SHARD_COUNT')?.value;
                    if (count !== replicas)
                        add(`${id(w)}: TIKETI_SHARD_COUNT ${count} but seatcored has ${replicas} replicas`);
                }
            for (const name of ['event-svc', 'queue-svc', 'reservation-svc', 'edge']) {
                const d = find('Deployment', name);
                const wc = d && wrapperCommand(podSpec(d).containers[0]);
                if (!wc?.wrapped || !wc.listEnv?.endsWith('_SEATCORED_SHARDS'))
                    add(`${name}: does not get the shard list from tiketi-shard-env`);
            }
        }
    },
    // references: ConfigMaps, Secrets, Services, ports, HPA targets, Ingress backends
    references: ({ overlay, objs, byKind, find }, add) => {
        const external = ['local', 'base'].includes(overlay) ? new Set() : runbookSecrets();
        for (const w of workloads(objs)) {
            const refs = [];
            for (const c of allContainers(w)) {
                for (const e of c.envFrom ?? [])
                    refs.push(e.configMapRef ? ['ConfigMap', e.configMapRef.name] : ['Secret', e.secretRef?.name]);
                for (const e of c.env ?? []) {
                    if (e.valueFrom?.secretKeyRef)
                        refs.push(['Secret', e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]);
                    if (e.valueFrom?.configMapKeyRef)
                        refs.push(['ConfigMap', e.valueFrom.configMapKeyRef.name, e.valueFrom.configMapKeyRef.key]);
                }
                const mounted = new Set((c.volumeMounts ?? []).map((m) => m.name));
                const volumes = new Set([
                    ...(podSpec(w).volumes ?? []).map((v) => v.name),
                    ...(w.spec.volumeClaimTemplates ?? []).map((v) => v.metadata.name),
                ]);
                for (const m of mounted)
                    if (!volumes.has(m)) add(`${id(w)} ${c.name}: mounts an undefined volume ${m}`);
            }
            for (const v of podSpec(w).volumes ?? []) {
                if (v.secret) refs.push(['Secret', v.secret.secretName]);
                if (v.configMap) refs.push(['ConfigMap', v.configMap.name]);
            }
            for (const [kind, name, key] of refs) {
                const o = find(kind, name);
                if (!o) {
                    if (kind === 'Secret' && external.has(name)) continue;
                    add(`${id(w)}: ${kind} ${name} is neither rendered nor created by the runbook`);
                } else if (key && !Object.hasOwn({ ...(o.data ?? {}), ...(o.stringData ?? {}) }, key))
                    add(`${id(w)}: ${kind} ${name} has no key ${key}`);
            }
        }
        for (const s of byKind('Service')) {
            const pods = workloads(objs).filter((w) => matchesSelector({ matchLabels: s.spec.selector }, podLabels(w)));
            if (!pods.length) {
                add(`Service ${s.metadata.name}: selects no pods`);
                continue;
            }
            for (const port of s.spec.ports ?? []) {
                const names = pods.flatMap((w) => (podSpec(w).containers ?? []).flatMap((c) => c.ports ?? []));
                const ok =
                    typeof port.targetPort === 'string'
                        ? names.some((x) => x.name === port.targetPort)
                        : names.some((x) => x.containerPort === (port.targetPort ?? port.port));
                if (!ok)
                    add(
                        `Service ${s.metadata.name}: port ${port.name} targets ${port.targetPort}, which its pods do not expose`,
                    );
            }
        }
        for (const h of byKind('HorizontalPodAutoscaler'))
            if (!find(h.spec.scaleTargetRef.kind, h.spec.scaleTargetRef.name))
                add(`HPA ${h.metadata.name}: no ${h.spec.scaleTargetRef.kind} ${h.spec.scaleTargetRef.name}`);
        for (const ing of byKind('Ingress'))
            for (const rule of ing.spec.rules ?? [])
                for (const pth of rule.http?.paths ?? []) {
                    const svc = find('Service', pth.backend.service?.name);
                    const portName = pth.backend.service?.port?.name;
                    if (
                        !svc ||
                        !(svc.spec.ports ?? []).some(
                            (x) => x.name === portName || x.port === pth.backend.service?.port?.number,
                        )
                    )
                        add(
                            `Ingress ${ing.metadata.name}: backend ${pth.backend.service?.name}:${portName} does not exist`,
                        );
                    if (svc?.metadata?.name !== 'edge')
                        add(`Ingress ${ing.metadata.name}: routes to ${svc?.metadata?.name}, not the edge`);
                }
        // addresses in ConfigMaps (host.namespace.svc.cluster.local:port) name a Service port
        for (const cm of byKind('ConfigMap'))
            for (const [k, v] of Object.entries(cm.data ?? {})) {
                for (const m of String(v).matchAll(/([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)/g)) {
                    const svc = find('Service', m[1]);
                    if (
                        !svc ||
                        svc.metadata.namespace !== m[2] ||
                        !(svc.spec.ports ?? []).some((x) => x.port === Number(m[3]))
                    )
                        add(`ConfigMap ${cm.metadata.name} ${k}: ${m[0]} is not a Service port of this rendering`);
                }
            }
    },
    // images: one TIKETI image, pinned in production overlays
    images: ({ overlay, objs }, add) => {
        for (const w of workloads(objs))
            for (const c of allContainers(w)) {
                if (!isOurs(c)) {
                    if (overlay !== 'local' || !['database'].includes(tier(w)))
                        add(`${id(w)} ${c.name}: image ${c.image} is not ${IMAGE}`);
                    continue;
                }
                const tag = c.image.split(':')[1];
                if (overlay !== 'local' && (!tag || tag === 'latest' || tag === 'dev'))
                    add(`${id(w)} ${c.name}: ${c.image} is not a release tag`);
                if (overlay === 'local' && tag !== 'dev')
                    add(`${id(w)} ${c.name}: ${c.image} is not the locally built tiketi-core:dev`);
            }
    },
    // secrets: production overlays ship none (created out of band); local values meet the daemons' bounds
    secrets: ({ overlay, byKind, find }, add) => {
        const secrets = byKind('Secret');
        if (overlay === 'local') {
            const value = (n, k) => {
                const s = find('Secret', n);
                return s?.stringData?.[k] ?? (s?.data?.[k] && Buffer.from(s.data[k], 'base64').toString());
            };
            const bounds = [
                ['tiketi-jwt', 'k1.key', 32, 512],
                ['tiketi-admission', 'admission.key', 32, 128],
            ];
            for (const [n, k, lo, hi] of bounds) {
                const v = value(n, k) ?? '';
                if (v.length < lo || v.length > hi) add(`${n}/${k}: ${v.length} bytes, the daemons need ${lo}..${hi}`);
            }
            for (const s of secrets)
                for (const v of Object.values(s.stringData ?? {}))
                    if (/placeholder|set-me/.test(v)) add(`Secret ${s.metadata.name}: still a placeholder value`);
        } else if (overlay !== 'base') {
            for (const s of secrets) add(`Secret ${s.metadata.name}: rendered (apply would overwrite the real one)`);
        }
    },
    // namespace: everything namespaced is in tiketi
    namespace: ({ objs }, add) => {
        const clusterScoped = new Set([
            'Namespace',
            'StorageClass',
            'ClusterRole',
            'ClusterRoleBinding',
            'PersistentVolume',
        ]);
        for (const o of objs)
            if (!clusterScoped.has(o.kind) && o.metadata?.namespace !== 'tiketi')
                add(`${id(o)}: namespace ${o.metadata?.namespace}`);
    },
    'network policies': ({ overlay, objs }, add) => networkPolicyCheck(overlay, objs, add),
    specifics: ({ overlay, objs, find }, add) => overlaySpecifics(overlay, objs, find, add),
};

function policyCheck(overlay, file) {
    const objs = loadObjects(file);
    const ctx = {
        overlay,
        objs,
        byKind: (k) => objs.filter((o) => o.kind === k),
        find: (k, n) => objs.find((o) => o.kind === k && o.metadata?.name === n),
        tiketi: workloads(objs).filter(isTiketiWorkload),
    };
    for (const [name, check] of Object.entries(POLICY_CHECKS)) {
        // the base alone is never deployed: its image tag and placeholder secrets are the overlays' to set
        if (overlay === 'base' && ['specifics', 'images', 'secrets'].includes(name)) continue;
        const problems = [];
        check(ctx, (problem) => problems.push(problem));
        verdict(`policy ${overlay}: ${name === 'specifics' ? `${overlay} specifics` : name}`, problems);
    }
}

function runbookSecrets() {
    // Secrets the runbook tells operators to create: `kubectl -n tiketi create secret ... NAME`.
    const text = fs.readFileSync(path.join(ROOT, 'docs/runbook.md'), 'utf8');
    return new Set([...text.matchAll(/create secret (?:generic|tls) ([a-z0-9-]+)/g)].map((m) => m[1]));
}

function overlaySpecifics(overlay, objs, find, add) {
    const has = (k, n) => Boolean(find(k, n));
    const sts = find('StatefulSet', 'seatcored');
    const claimClass = sts?.spec?.volumeClaimTemplates?.[0]?.spec?.storageClassName;
    const ing = find('Ingress', 'tiketi');
    if (overlay === 'local') {
        for (const [k, n] of [
            ['StatefulSet', 'postgres'],
            ['Deployment', 'redis'],
            ['Deployment', 'gateway-sim'],
        ])
            if (!has(k, n)) add(`no ${k} ${n}`);
        const gw = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('payment-svc-'));
        if (!/gateway-sim/.test(gw?.data?.PAYMENT_GATEWAY_URL ?? '')) add('payment-svc does not call gateway-sim');
        if (ing?.spec?.ingressClassName !== 'traefik') add('Ingress class is not traefik');
        return;
    }
    if (overlay === 'base') return;
    for (const [k, n] of [
        ['StatefulSet', 'postgres'],
        ['Deployment', 'redis'],
        ['Deployment', 'gateway-sim'],
    ])
        if (has(k, n)) add(`${k} ${n} belongs to the local overlay only`);
    if (overlay === 'k3s') {
        if (ing?.spec?.ingressClassName !== 'traefik') add('Ingress class is not traefik');
        if (claimClass !== 'local-path') add(`seatcored's claims use ${claimClass}, not local-path`);
        if (!ing?.spec?.tls?.length) add('the Ingress has no TLS');
    }
    if (overlay === 'eks') {
        const a = ing?.metadata?.annotations ?? {};
        if (ing?.spec?.ingressClassName !== 'alb') add('Ingress class is not alb');
        for (const k of [
            'alb.ingress.kubernetes.io/target-type',
            'alb.ingress.kubernetes.io/scheme',
            'alb.ingress.kubernetes.io/certificate-arn',
            'alb.ingress.kubernetes.io/healthcheck-path',
        ])
            if (!a[k]) add(`Ingress lacks ${k}`);
        const sc = find('StorageClass', claimClass);
        if (!sc || sc.parameters?.type !== 'gp3' || sc.provisioner !== 'ebs.csi.aws.com')
            add(`seatcored's claims use ${claimClass}, not a gp3 EBS StorageClass`);
        if (sc && sc.volumeBindingMode !== 'WaitForFirstConsumer')
            add('the gp3 StorageClass does not wait for the pod (zonal volumes)');
        const required = podSpec(sts ?? {}).affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
        if (!JSON.stringify(required ?? {}).includes('SPOT')) add('seatcored may land on Spot nodes');
        if (sts?.spec?.template?.metadata?.annotations?.['cluster-autoscaler.kubernetes.io/safe-to-evict'] !== 'false')
            add('seatcored is not protected from cluster-autoscaler scale-down');
        for (const d of objs.filter((o) => o.kind === 'Deployment' && isTiketiWorkload(o))) {
            const pref = podSpec(d).affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution;
            if (!JSON.stringify(pref ?? {}).includes('SPOT')) add(`${d.metadata.name}: no Spot preference`);
            if (d.spec.template.metadata?.annotations?.['cluster-autoscaler.kubernetes.io/safe-to-evict'] !== 'true')
                add(`${d.metadata.name}: not marked safe-to-evict for the cluster autoscaler`);
        }
    }
}

// A small NetworkPolicy evaluator (ingress rules, pod and namespace selectors, named and numbered
// ports, ipBlocks) and the reachability issue 6 asks for: only the edge from the ingress, services
// from the edge and each other, databases from the services.
function networkPolicyCheck(overlay, objs, add) {
    const policies = objs.filter((o) => o.kind === 'NetworkPolicy');
    const NS = 'tiketi';
    const nsLabels = (ns) => ({ 'kubernetes.io/metadata.name': ns });
    const pods = workloads(objs).map((w) => ({
        name: w.metadata.name,
        ns: NS,
        labels: podLabels(w),
        ports: (podSpec(w).containers ?? []).flatMap((c) => c.ports ?? []),
    }));
    const pod = (n) => pods.find((x) => x.name === n);
    function allowed(src, dst, portName) {
        const port = dst.ports.find((x) => x.name === portName);
        if (!port) return false;
        const selecting = policies.filter(
            (pl) =>
                pl.metadata.namespace === dst.ns &&
                (pl.spec.policyTypes ?? ['Ingress']).includes('Ingress') &&
                matchesSelector(pl.spec.podSelector ?? {}, dst.labels),
        );
        if (!selecting.length) return true;
        return selecting.some((pl) =>
            (pl.spec.ingress ?? []).some((rule) => {
                const portOk =
                    !rule.ports?.length ||
                    rule.ports.some(
                        (rp) => rp.port === undefined || rp.port === port.name || rp.port === port.containerPort,
                    );
                if (!portOk) return false;
                if (!rule.from?.length) return true;
                return rule.from.some((peer) => {
                    if (peer.ipBlock)
                        return (
                            Boolean(src.ip) &&
                            inCidr(src.ip, peer.ipBlock.cidr) &&
                            !(peer.ipBlock.except ?? []).some((e) => inCidr(src.ip, e))
                        );
                    if (!src.labels) return false;
                    const nsOk = peer.namespaceSelector
                        ? matchesSelector(peer.namespaceSelector, nsLabels(src.ns))
                        : src.ns === dst.ns;
                    const podOk = peer.podSelector ? matchesSelector(peer.podSelector, src.labels) : true;
                    return nsOk && podOk;
                });
            }),
        );
    }
    const ingressController =
        overlay === 'eks'
            ? { what: 'the ALB', ip: '10.0.37.12' }
            : { what: 'Traefik', ns: 'kube-system', labels: { 'app.kubernetes.io/name': 'traefik' } };
    const prometheus = { what: 'Prometheus', ns: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } };
    const stranger = { what: 'an unlabelled pod in tiketi', ns: NS, labels: {} };
    const otherNs = { what: 'a pod in another namespace', ns: 'default', labels: { 'tiketi.io/tier': 'service' } };
    const asSource = (p) => ({ what: p.name, ns: p.ns, labels: p.labels });
    const expect = (src, dst, port, want) => {
        if (!dst) return;
        const got = allowed(src, dst, port);
        if (got !== want)
            add(
                `${src.what} -> ${dst.name}:${port} is ${got ? 'allowed' : 'refused'}, should be ${want ? 'allowed' : 'refused'}`,
            );
    };
    const edge = pod('edge');
    const services = pods.filter((x) => x.labels['tiketi.io/tier'] === 'service');
    const databases = pods.filter((x) => x.labels['tiketi.io/tier'] === 'database');
    if (
        !policies.some(
            (pl) => Object.keys(pl.spec.podSelector ?? {}).length === 0 && (pl.spec.ingress ?? []).length === 0,
        )
    )
        add('no default-deny ingress policy');
    expect(ingressController, edge, 'http', true);
    for (const src of [stranger, otherNs]) expect(src, edge, 'http', false);
    for (const s of services) {
        expect(asSource(edge), s, 'grpc', true);
        for (const other of services) if (other !== s) expect(asSource(other), s, 'grpc', true);
        for (const src of [ingressController, stranger, otherNs, ...databases.map(asSource)])
            expect(src, s, 'grpc', false);
        expect(prometheus, s, 'metrics', true);
        expect(ingressController, s, 'metrics', false);
    }
    expect(prometheus, edge, 'http', true);
    for (const db of databases) {
        const port = db.ports[0]?.name;
        for (const s of services) expect(asSource(s), db, port, true);
        expect(asSource(edge), db, port, db.name === 'redis');
        for (const src of [ingressController, stranger, otherNs, prometheus]) expect(src, db, port, false);
    }
    const gw = pod('gateway-sim');
    if (gw) for (const p of pods) if (p !== gw) expect(asSource(p), gw, 'http', p.name === 'payment-svc');
}

function inCidr(ip, cidr) {
    const [base, bits] = cidr.split('/');
    const n = (a) => a.split('.').reduce((x, y) => x * 256 + Number(y), 0);
    const mask = bits === '0' ? 0 : 2 ** 32 - 2 ** (32 - Number(bits));
    return (n(ip) & mask) >>> 0 === (n(base) & mask) >>> 0;
}

// ---- docker -----------------------------------------------------------------------------------
function parseDockerfile(file) {
    const text = fs.readFileSync(file, 'utf8').replace(/\\\n/g, ' ');
    const stages = [];
    const args = {};
    for (const raw of text.split('\n')) {
        const line = raw.trim();
        if (!line || line.startsWith('#')) continue;
        const [instruction, ...rest] = line.split(/\s+/);
        const body = rest.join(' ').replace(/\s+#.*$/, '');
        const op = instruction.toUpperCase();
        if (op === 'ARG' && !stages.length) {
            const [k, v] = body.split('=');
            args[k] = v;
            continue;
        }
        if (op === 'FROM') {
            const m = body.match(/^(\S+)(?:\s+AS\s+(\S+))?/i);
            stages.push({ from: m[1].replace(/\$\{(\w+)\}/g, (_, k) => args[k] ?? ''), name: m[2] ?? null, ops: [] });
            continue;
        }
        stages.at(-1)?.ops.push({ op, body });
    }
    return stages;
}

function aptPackages(body) {
    const m = body.match(/apt-get install ([^&]*)/);
    return m ? m[1].split(/\s+/).filter((w) => w && !w.startsWith('-')) : [];
}

// Owners of files in the dpkg database (what `dpkg -S` answers, read from its file lists at once:
// dpkg -S itself rereads the whole database on every call). A path the database does not know is
// tried again resolved, and with /usr added or removed (merged /usr).
let dpkgIndex = null;
function dpkgOwners(files) {
    if (!dpkgIndex) {
        dpkgIndex = new Map();
        const dir = '/var/lib/dpkg/info';
        for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.list'))) {
            const pkg = f.slice(0, -5).split(':')[0];
            for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n'))
                if (line) dpkgIndex.set(line, pkg);
        }
    }
    const owners = new Map();
    for (const f of new Set(files)) {
        const real = fs.existsSync(f) ? fs.realpathSync(f) : f;
        const flip = (x) => (x.startsWith('/usr/') ? x.slice(4) : `/usr${x}`);
        const hit = [f, real, flip(f), flip(real)].find((x) => dpkgIndex.has(x));
        if (hit) owners.set(f, dpkgIndex.get(hit));
    }
    return owners;
}

// Packages present in debian:bookworm-slim without asking: Essential or Priority required, and what
// they depend on (read from this machine's dpkg database, which is Debian 12 too).
function baseImagePackages(dependsOf) {
    const r = run('dpkg-query', ['-W', '-f', '${Package}\t${Essential}\t${Priority}\n']);
    const seeds = r.out
        .split('\n')
        .filter((l) => /\tyes\t|\trequired$/.test(l))
        .map((l) => l.split('\t')[0]);
    return closure(seeds, dependsOf);
}
function dependsTable() {
    const r = run('dpkg-query', ['-W', '-f', '${Package}\t${Pre-Depends}, ${Depends}\t${Provides}\n']);
    const deps = new Map();
    const providers = new Map();
    for (const line of r.out.split('\n')) {
        const [pkg, depends = '', provides = ''] = line.split('\t');
        if (!pkg) continue;
        deps.set(
            pkg,
            depends
                .split(',')
                .map((alt) =>
                    alt
                        .split('|')
                        .map((x) => x.trim().split(/[\s:(]/)[0])
                        .filter(Boolean),
                )
                .filter((a) => a.length),
        );
        for (const pr of provides.split(',')) {
            const n = pr.trim().split(/[\s(]/)[0];
            if (n) providers.set(n, pkg);
        }
    }
    return (pkg) => (deps.get(pkg) ?? []).map((alts) => alts.map((a) => (deps.has(a) ? a : (providers.get(a) ?? a))));
}
function closure(seeds, dependsOf) {
    const seen = new Set();
    const todo = [...seeds];
    while (todo.length) {
        const p = todo.pop();
        if (seen.has(p)) continue;
        seen.add(p);
        for (const alts of dependsOf(p)) todo.push(...alts); // any alternative may be the one installed
    }
    return seen;
}

function manifestPrograms(files) {
    // program -> [where], and image paths the manifests use
    const programs = new Map();
    const imagePaths = new Set();
    for (const file of files)
        for (const w of workloads(loadObjects(file)))
            for (const c of allContainers(w)) {
                if (!isOurs(c)) continue;
                const argv = [...(c.command ?? []), ...(c.args ?? [])];
                const cmd = wrapperCommand(c);
                for (const prog of cmd.wrapped ? ['tiketi-shard-env', cmd.program] : [cmd.program]) {
                    if (!programs.has(prog)) programs.set(prog, []);
                    programs.get(prog).push(`${overlayOf(file)} ${id(w)} ${c.name}`);
                }
                for (const e of c.env ?? []) if (e.value?.startsWith('/usr/')) imagePaths.add(e.value);
                for (const a of argv) if (a.startsWith('/usr/')) imagePaths.add(a);
            }
    for (const file of files)
        for (const cm of loadObjects(file).filter((o) => o.kind === 'ConfigMap'))
            for (const v of Object.values(cm.data ?? {})) if (String(v).startsWith('/usr/')) imagePaths.add(String(v));
    return { programs, imagePaths };
}

// Every CMakeLists.txt of the source tree (not the build trees), relative to the repository.
function cmakeListsFiles(dir = ROOT) {
    const out = [];
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) {
            if (/^(\.|build|node_modules$)/.test(entry.name)) continue;
            out.push(...cmakeListsFiles(path.join(dir, entry.name)));
        } else if (entry.name === 'CMakeLists.txt') out.push(path.relative(ROOT, path.join(dir, entry.name)));
    }
    return out;
}

function dockerCheck(files) {
    const dockerfile = path.join(ROOT, 'infra/docker/Dockerfile');
    const stages = parseDockerfile(dockerfile);
    const build = stages.find((s) => s.name === 'build');
    const runtime = stages.at(-1);
    const problems = { base: [], copy: [], build: [], binaries: [], libraries: [], user: [] };
    const { programs, imagePaths } = manifestPrograms(files);

    // base images
    for (const s of stages)
        if (s.from !== 'debian:bookworm-slim') problems.base.push(`stage ${s.name ?? '(final)'} is FROM ${s.from}`);
    if (!build) problems.base.push('no stage named build');

    // COPY sources exist; build-stage sources cover every folder the CMake tree adds
    const ignore = fs
        .readFileSync(path.join(ROOT, 'infra/docker/Dockerfile.dockerignore'), 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'));
    const copies = [];
    for (const s of stages)
        for (const o of s.ops.filter((x) => x.op === 'COPY')) {
            const words = o.body.split(/\s+/);
            const from = words.find((w) => w.startsWith('--from='))?.slice(7);
            const list = words.filter((w) => !w.startsWith('--'));
            copies.push({ stage: s, from, sources: list.slice(0, -1), dest: list.at(-1) });
        }
    for (const c of copies.filter((x) => !x.from))
        for (const src of c.sources) {
            if (!fs.existsSync(path.join(ROOT, src))) problems.copy.push(`COPY ${src}: not in the repository`);
            if (ignore.some((pat) => pat === src || pat === src.split('/')[0]))
                problems.copy.push(`COPY ${src}: excluded by Dockerfile.dockerignore`);
        }
    const topCMake = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
    const buildSources = new Set(copies.filter((c) => c.stage === build && !c.from).flatMap((c) => c.sources));
    for (const m of topCMake.matchAll(/^\s*add_subdirectory\((\S+)\)/gm))
        if (!buildSources.has(m[1]))
            problems.copy.push(`the build stage does not copy ${m[1]}/ (CMakeLists.txt adds it)`);
    if (!buildSources.has('CMakeLists.txt')) problems.copy.push('the build stage does not copy CMakeLists.txt');
    const destinations = copies.filter((c) => !c.from).map((c) => c.dest.replace(/\/$/, ''));
    for (const p of imagePaths)
        if (!destinations.some((d) => p === d || p.startsWith(d + '/')))
            problems.copy.push(`the manifests use ${p}, which no COPY puts in the image`);

    // build stage packages: every pkg-config module and plain library the CMake tree links
    const buildPkgs = new Set((build?.ops ?? []).filter((o) => o.op === 'RUN').flatMap((o) => aptPackages(o.body)));
    const wants = []; // [file that must be there to build, why]
    for (const m of topCMake.matchAll(/pkg_check_modules\(\w+\s+REQUIRED\s+IMPORTED_TARGET\s+([^)]*)\)/g))
        for (const mod of m[1].split(/\s+/).filter(Boolean)) {
            const dir = run('pkg-config', ['--variable=pcfiledir', mod]).out.trim();
            if (dir) wants.push([path.join(dir, `${mod}.pc`), `pkg-config ${mod}`]);
            else problems.build.push(`pkg-config does not know ${mod} here`);
        }
    const cmakeFiles = cmakeListsFiles();
    for (const f of cmakeFiles) {
        const t = fs.readFileSync(path.join(ROOT, f), 'utf8');
        for (const m of t.matchAll(/target_link_libraries\(([^)]*)\)/g))
            for (const lib of m[1]
                .split(/\s+/)
                .filter(
                    (w) =>
                        /^[a-z][a-z0-9_]*$/.test(w) &&
                        !['m', 'dl', 'rt', 'pthread', 'seatcore'].includes(w) &&
                        !w.startsWith('tiketi'),
                )) {
                const so = run('gcc', [`-print-file-name=lib${lib}.so`]).out.trim(); // the -dev package's link
                if (so.startsWith('/')) wants.push([path.resolve(so), `-l${lib} (${f})`]);
            }
    }
    const wantOwners = dpkgOwners(wants.map(([file]) => file));
    const needed = new Map();
    for (const [file, why] of wants) {
        if (wantOwners.has(file)) needed.set(wantOwners.get(file), why);
        else problems.build.push(`${file} (${why}) belongs to no package here`);
    }
    needed.set('protobuf-c-compiler', 'protoc-c (proto/)');
    needed.set('cmake', 'the build');
    for (const [pkg, why] of needed)
        if (!buildPkgs.has(pkg)) problems.build.push(`${pkg} (${why}) is not installed in the build stage`);

    // binaries: built (cmake --target), copied to /usr/local/bin, and the ones the manifests run
    const buildRun = (build?.ops ?? [])
        .filter((o) => o.op === 'RUN')
        .map((o) => o.body)
        .join(' ');
    const targets = new Set((buildRun.match(/--target\s+([^&]*)/)?.[1] ?? '').split(/\s+/).filter(Boolean));
    const copied = new Map();
    for (const c of copies.filter((x) => x.stage === runtime))
        for (const src of c.sources) copied.set(path.basename(src), { dest: c.dest, from: c.from, src });
    const defined = new Set();
    for (const f of cmakeFiles)
        for (const m of fs.readFileSync(path.join(ROOT, f), 'utf8').matchAll(/add_executable\((\S+)/g))
            defined.add(m[1]);
    for (const [prog, where] of programs) {
        const cp = copied.get(prog);
        if (!cp || ![`/usr/local/bin`, `/usr/local/bin/${prog}`].includes(cp.dest.replace(/\/$/, '')))
            problems.binaries.push(`${prog} (run by ${where[0]}) is not copied to /usr/local/bin`);
        else if (cp.from === 'build' && !targets.has(prog))
            problems.binaries.push(`${prog} is copied but not in the build's --target list`);
        else if (!cp.from && !fs.existsSync(path.join(ROOT, cp.src)))
            problems.binaries.push(`${prog}: ${cp.src} does not exist`);
    }
    for (const [name, cp] of copied) {
        if (cp.from !== 'build') continue;
        if (!cp.src.startsWith('/src/build/bin/'))
            problems.binaries.push(`${cp.src}: not from build/bin/, where the CMake tree puts every daemon`);
        if (!targets.has(name)) problems.binaries.push(`${name} is copied but not built (--target)`);
    }
    for (const t of targets) if (!copied.has(t)) problems.binaries.push(`target ${t} is built but not copied`);
    const undefinedTargets = [...targets].filter((t) => !defined.has(t));

    // runtime libraries: ldd of every built binary the image ships -> dpkg -S -> the runtime packages
    const runtimePkgs = (runtime?.ops ?? []).filter((o) => o.op === 'RUN').flatMap((o) => aptPackages(o.body));
    const dependsOf = dependsTable();
    const have = new Set([...closure(runtimePkgs, dependsOf), ...baseImagePackages(dependsOf)]);
    const missingBinaries = [];
    const libs = []; // [binary, library path]
    for (const [name, cp] of copied) {
        if (cp.from !== 'build') continue;
        const bin = path.join(BIN, name);
        if (!fs.existsSync(bin)) {
            missingBinaries.push(name);
            continue;
        }
        const ldd = run('ldd', [bin]);
        for (const m of ldd.out.matchAll(/=>\s+(\/\S+)/g)) libs.push([name, m[1]]);
        for (const m of ldd.out.matchAll(/(\S+) => not found/g)) problems.libraries.push(`${name}: ${m[1]} not found`);
    }
    const libOwners = dpkgOwners(libs.map(([, lib]) => lib));
    for (const [name, lib] of libs) {
        const owner = libOwners.get(lib);
        if (!owner) problems.libraries.push(`${name}: ${lib} belongs to no Debian package`);
        else if (!have.has(owner))
            problems.libraries.push(`${name}: ${lib} is in ${owner}, which the runtime stage does not install`);
    }
    const checkedBinaries = new Set(libs.map(([name]) => name)).size;
    const known = new Set(run('dpkg-query', ['-W', '-f', '${Package}\\n', ...runtimePkgs]).out.split('\n'));
    for (const p of runtimePkgs)
        if (!known.has(p)) problems.libraries.push(`runtime package ${p} is unknown here (not Debian 12's name?)`);

    // user: numeric, non-root, the one the manifests run as
    const user = runtime?.ops.filter((o) => o.op === 'USER').at(-1)?.body ?? '';
    if (!/^\d+(:\d+)?$/.test(user) || user.startsWith('0'))
        problems.user.push(`USER ${user || '(none)'}: must be numeric and non-root (runAsNonRoot checks it)`);
    else if (Number(user.split(':')[0]) !== USER_ID)
        problems.user.push(`USER ${user}, the manifests run as ${USER_ID}`);

    verdict('docker: base images', problems.base, 'debian:bookworm-slim for both stages');
    verdict('docker: COPY sources', problems.copy, 'every source exists and the build stage has the whole CMake tree');
    verdict('docker: build packages', problems.build, `${needed.size} packages the CMake tree needs are installed`);
    verdict('docker: binaries', problems.binaries, `${programs.size} programs the manifests run are built and copied`);
    if (undefinedTargets.length)
        skip('docker: build targets', `not in the CMake tree yet: ${undefinedTargets.join(', ')}`);
    else pass('docker: build targets', `${targets.size} targets, all defined by add_executable`);
    if (checkedBinaries === 0) skip('docker: runtime libraries', `no binary built in ${BIN} (ldd needs them)`);
    else
        verdict(
            'docker: runtime libraries',
            problems.libraries,
            `ldd of ${checkedBinaries} binaries covered by the runtime packages`,
        );
    if (missingBinaries.length && checkedBinaries > 0)
        skip(
            'docker: runtime libraries (unbuilt)',
            `not built yet, libraries unchecked: ${missingBinaries.join(', ')}`,
        );
    verdict('docker: user', problems.user, `USER ${user}`);
}

// ---- flags ----------------------------------------------------------------------------------
// libpq's own environment (https://www.postgresql.org/docs/15/libpq-envars.html), read by every
// program that links it: the manifests may set these for the binaries that do.
const LIBPQ_ENV = new Set(['PGCONNECT_TIMEOUT', 'PGSSLMODE', 'PGSSLROOTCERT', 'PGAPPNAME', 'PGTARGETSESSIONATTRS']);

function helpOf(program) {
    const linksLibpq = /libpq\.so/.test(run('ldd', [path.join(BIN, program)]).out);
    const r = run(path.join(BIN, program), ['--help']);
    const flags = new Set(['check-config', 'help']);
    const envs = new Set();
    for (const line of r.out.split('\n')) {
        const m = line.match(/^\s+--([a-z0-9-]+)(?:\s+([A-Z][A-Z0-9_]+))?\s/);
        if (!m) continue;
        flags.add(m[1]);
        if (m[2]) envs.add(m[2]);
    }
    if (linksLibpq) for (const n of LIBPQ_ENV) envs.add(n);
    return { flags, envs, ok: r.code === 0 && flags.size > 2 };
}

function imageCopies() {
    const map = [];
    for (const s of parseDockerfile(path.join(ROOT, 'infra/docker/Dockerfile')))
        for (const o of s.ops.filter((x) => x.op === 'COPY' && !x.body.includes('--from'))) {
            const words = o.body.split(/\s+/);
            if (words.length === 2 && !words[1].endsWith('/')) map.push([words[1], path.join(ROOT, words[0])]);
        }
    return map;
}

function flagsCheck(overlay, file) {
    const objs = loadObjects(file);
    const sample = ENV.TK_SAMPLE_SECRETS ? loadObjects(ENV.TK_SAMPLE_SECRETS).filter((o) => o.kind === 'Secret') : [];
    // a Secret's data: the rendering's, else (k3s, eks: created out of band) the local overlay's values
    const secretData = (name) => {
        const s =
            objs.find((o) => o.kind === 'Secret' && o.metadata.name === name) ??
            sample.find((o) => o.metadata.name === name);
        if (!s) return undefined;
        const data = Object.fromEntries(
            Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]),
        );
        return { ...data, ...(s.stringData ?? {}) };
    };
    const configMap = (name) => objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name)?.data ?? {};
    const helps = new Map();
    for (const w of workloads(objs)) {
        const replicas = w.spec.replicas ?? 1;
        const podName =
            w.kind === 'StatefulSet' ? `${w.metadata.name}-${replicas - 1}` : `${w.metadata.name}-7c9d8-x2x4q`;
        for (const c of allContainers(w).filter(isOurs)) {
            const name = `flags ${overlay}: ${id(w)} ${c.name}`;
            const cmd = wrapperCommand(c);
            if (!fs.existsSync(path.join(BIN, cmd.program))) {
                skip(name, `${cmd.program} is not built yet (${BIN})`);
                continue;
            }
            if (!helps.has(cmd.program)) helps.set(cmd.program, helpOf(cmd.program));
            const help = helps.get(cmd.program);
            const problems = [];
            if (!help.ok) problems.push(`${cmd.program} --help did not list its settings`);
            // the environment the container gets
            const env = {};
            for (const e of c.envFrom ?? []) {
                if (e.configMapRef) Object.assign(env, configMap(e.configMapRef.name));
                if (e.secretRef) problems.push('envFrom secretRef: not checked');
            }
            for (const e of c.env ?? []) {
                if (e.value !== undefined) env[e.name] = e.value;
                else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = podName;
                else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') env[e.name] = w.metadata.namespace;
                else if (e.valueFrom?.secretKeyRef) {
                    const v = secretData(e.valueFrom.secretKeyRef.name)?.[e.valueFrom.secretKeyRef.key];
                    if (v === undefined)
                        problems.push(
                            `${e.name}: no value for Secret ${e.valueFrom.secretKeyRef.name}/${e.valueFrom.secretKeyRef.key}`,
                        );
                    else env[e.name] = v;
                } else problems.push(`${e.name}: a source this check does not know`);
            }
            for (const n of Object.keys(env))
                if (!help.envs.has(n) && !(cmd.wrapped && WRAPPER_INPUTS.has(n)))
                    problems.push(`${n} is not read by ${cmd.program} (not in its --help)`);
            for (const n of [cmd.listEnv, cmd.ordinalEnv].filter(Boolean))
                if (!help.envs.has(n)) problems.push(`tiketi-shard-env sets ${n}, which ${cmd.program} does not read`);
            for (const a of cmd.args) {
                const m = a.match(/^--([a-z0-9-]+)/);
                if (m && !help.flags.has(m[1])) problems.push(`flag --${m[1]} is not one of ${cmd.program}'s`);
            }
            // the files it gets: mounted Secrets, ConfigMaps and volumes, and the image's own files
            const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tiketi-root-'));
            const prefixes = [];
            const volumes = new Map((podSpec(w).volumes ?? []).map((v) => [v.name, v]));
            for (const m of c.volumeMounts ?? []) {
                const dir = path.join(root, m.mountPath);
                fs.mkdirSync(dir, { recursive: true });
                prefixes.push(m.mountPath);
                const v = volumes.get(m.name);
                const data = v?.secret
                    ? (secretData(v.secret.secretName) ?? {})
                    : v?.configMap
                      ? configMap(v.configMap.name)
                      : {};
                for (const [k, value] of Object.entries(data)) fs.writeFileSync(path.join(dir, k), value ?? '');
            }
            for (const [dest, src] of imageCopies()) {
                fs.mkdirSync(path.dirname(path.join(root, dest)), { recursive: true });
                fs.symlinkSync(src, path.join(root, dest));
                prefixes.push(dest);
            }
            prefixes.sort((a, b) => b.length - a.length);
            const escaped = prefixes.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
            const rewrite = (v) =>
                v.replace(new RegExp(`(?<![\\w./:-])(${escaped.join('|')})(?=/|$|[,\\s])`, 'g'), (x) => root + x);
            for (const k of Object.keys(env)) env[k] = rewrite(env[k]);
            let argv = [...(c.command ?? []), ...(c.args ?? [])].map(rewrite);
            if (cmd.program === 'tiketi-migrate') {
                if (!ENV.TK_DATABASE_URL) {
                    verdictOrSkip(
                        name,
                        problems,
                        'tiketi-migrate --check-config connects to the database: no PostgreSQL here; names checked only',
                    );
                    fs.rmSync(root, { recursive: true, force: true });
                    continue;
                }
                env.TIKETI_DATABASE_URL = ENV.TK_DATABASE_URL;
            }
            const r = run(argv[0], [...argv.slice(1), '--check-config'], {
                cwd: root,
                env: { ...env, PATH: `${WRAPPER_DIR}:${BIN}:/usr/bin:/bin`, PGCONNECT_TIMEOUT: '3' },
            });
            if (r.code !== 0)
                problems.push(
                    `--check-config exited ${r.code ?? r.error}: ${(r.err + r.out).trim().split('\n').slice(-3).join(' | ')}`,
                );
            verdict(name, problems, (r.out + r.err).trim().split('\n').at(-1));
            fs.rmSync(root, { recursive: true, force: true });
        }
    }
}
function verdictOrSkip(name, problems, why) {
    if (problems.length) verdict(name, problems);
    else skip(name, why);
}

// ---- metrics --------------------------------------------------------------------------------
const DAEMON_SOURCES = {
    seatcored: ['services/seatcored'],
    'auth-svc': ['services/auth'],
    'event-svc': ['services/event'],
    'queue-svc': ['services/queue'],
    'reservation-svc': ['services/reservation'],
    'payment-svc': ['services/payment/payment_metrics.c', 'services/payment/payment_gateway.c'],
    'tiketi-edge': ['edge'],
};
const EXTERNAL_METRICS = new Set(['up', 'kube_pod_container_status_restarts_total']); // Prometheus, kube-state-metrics

function namesFromProm(text) {
    const names = new Set();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)/gm)) {
        names.add(m[1]);
        if (m[2] === 'histogram' || m[2] === 'summary')
            for (const s of ['_bucket', '_sum', '_count']) names.add(m[1] + s);
    }
    for (const m of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]/gm)) names.add(m[1]);
    return names;
}
function namesFromSource(paths) {
    const names = new Set();
    const files = paths.flatMap((p) => {
        const full = path.join(ROOT, p);
        if (!fs.existsSync(full)) return [];
        return fs.statSync(full).isDirectory()
            ? fs
                  .readdirSync(full)
                  .filter((f) => f.endsWith('.c'))
                  .map((f) => path.join(full, f))
            : [full];
    });
    for (const f of [...files, path.join(ROOT, 'rpc/rpc_metrics.c')]) {
        const t = fs.readFileSync(f, 'utf8');
        for (const m of t.matchAll(/"(?:# (?:HELP|TYPE) )?(tiketi_[a-z0-9_]+)/g)) names.add(m[1]);
        for (const m of t.matchAll(/histogram_write_prometheus\([^,]+,\s*"(tiketi_[a-z0-9_]+)"/g))
            for (const s of ['_bucket', '_sum', '_count']) names.add(m[1] + s);
    }
    return names;
}

// Metric names in a PromQL expression: identifiers outside label matchers, grouping clauses,
// ranges and strings, that are neither functions nor keywords.
function promqlMetrics(expr) {
    let e = expr
        .replace(/"(?:[^"\\]|\\.)*"/g, '""')
        .replace(/\{[^}]*\}/g, ' ')
        .replace(/\[[^\]]*\]/g, ' ')
        .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
    const keywords = new Set([
        'and',
        'or',
        'unless',
        'by',
        'without',
        'on',
        'ignoring',
        'group_left',
        'group_right',
        'offset',
        'bool',
        'inf',
        'nan',
    ]);
    const out = new Set();
    for (const m of e.matchAll(/(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g))
        if (!keywords.has(m[1].toLowerCase())) out.add(m[1]);
    return out;
}

function metricsCheck() {
    const dir = ENV.TK_METRICS_DIR;
    const exported = new Map(); // name -> [daemon]
    const sources = [];
    for (const [daemon, src] of Object.entries(DAEMON_SOURCES)) {
        const live = dir && path.join(dir, `${daemon}.prom`);
        let names;
        if (live && fs.existsSync(live) && fs.statSync(live).size > 0) {
            names = namesFromProm(fs.readFileSync(live, 'utf8'));
            sources.push(`${daemon} live`);
        } else {
            names = namesFromSource(src);
            sources.push(`${daemon} from source`);
        }
        for (const n of names) {
            if (!exported.has(n)) exported.set(n, []);
            exported.get(n).push(daemon);
        }
    }
    pass('metrics: exported names', `${exported.size} names (${sources.join(', ')})`);

    const unknown = (names, allowExternal) =>
        [...names].filter((n) => !exported.has(n) && !(allowExternal && EXTERNAL_METRICS.has(n)));
    // dashboard
    const file = path.join(ROOT, 'infra/observability/grafana/tiketi-dashboard.json');
    let dash;
    try {
        dash = JSON.parse(fs.readFileSync(file, 'utf8'));
        pass('dashboard: JSON parses');
    } catch (e) {
        report('FAIL', 'dashboard: JSON parses', e.message);
        return;
    }
    const panels = [];
    const walk = (list) => {
        for (const p of list ?? []) {
            panels.push(p);
            walk(p.panels);
        }
    };
    walk(dash.panels);
    const exprs = panels
        .flatMap((p) => (p.targets ?? []).map((t) => [p.title, t.expr]))
        .concat(
            (dash.templating?.list ?? [])
                .filter((v) => v.type === 'query')
                .map((v) => [
                    `variable ${v.name}`,
                    (v.query?.query ?? v.query).replace(/^label_values\(([^,)]+).*$/, '$1'),
                ]),
        );
    const dashProblems = [];
    for (const [title, expr] of exprs) {
        if (!expr) {
            dashProblems.push(`${title}: a target without expr`);
            continue;
        }
        for (const n of unknown(promqlMetrics(expr), false))
            dashProblems.push(`${title}: ${n} is exported by no daemon`);
    }
    const ids = panels.map((p) => p.id);
    if (new Set(ids).size !== ids.length) dashProblems.push('panel ids are not unique');
    const wanted = {
        TPS: /tiketi_rpc_calls_total/,
        'latency percentiles': /histogram_quantile\(0\.99, .*tiketi_rpc_latency_seconds_bucket/,
        'queue depth': /tiketi_queue_joins_total/,
        'admission rate': /rate\(tiketi_queue_admissions_total/,
        'seats per event': /tiketi_seats\{/,
        'breaker state': /tiketi_payment_breaker_state/,
        WAL: /tiketi_wal_fsync_seconds_bucket/,
    };
    for (const [what, re] of Object.entries(wanted))
        if (!exprs.some(([, e]) => re.test(e ?? ''))) dashProblems.push(`no panel shows ${what}`);
    verdict(
        'dashboard: every queried metric is exported',
        dashProblems,
        `${exprs.length} queries over ${panels.length} panels`,
    );

    // alert rules
    const rules = YAML.parse(fs.readFileSync(path.join(ROOT, 'infra/observability/alerts.yml'), 'utf8'));
    const alertProblems = [];
    const alertNames = [];
    for (const g of rules.groups)
        for (const r of g.rules) {
            alertNames.push(r.alert ?? r.record);
            for (const n of unknown(promqlMetrics(r.expr), true))
                alertProblems.push(`${r.alert}: ${n} is exported by no daemon`);
        }
    verdict('alerts: every metric is exported', alertProblems, `${alertNames.length} rules`);
    const needed = [
        'TiketiHighErrorRate',
        'TiketiHighLatencyP99',
        'TiketiQueueLong',
        'TiketiQueueWaitLong',
        'TiketiPaymentBreakerOpen',
        'TiketiWalFsyncSlow',
        'TiketiHoldExpirationsSpike',
        'TiketiPodRestarts',
    ];
    verdict(
        'alerts: the ones issue 6 lists',
        needed.filter((n) => !alertNames.includes(n)).map((n) => `no ${n}`),
    );
    const obs = fs.existsSync(path.join(ROOT, 'docs/observability.md'))
        ? fs.readFileSync(path.join(ROOT, 'docs/observability.md'), 'utf8')
        : '';
    verdict(
        'alerts: each has a runbook section',
        alertNames
            .filter((n) => !obs.toLowerCase().includes(`### ${n.toLowerCase()}`))
            .map((n) => `docs/observability.md has no "### ${n}"`),
    );

    // docs/metrics.md: names documented, and nothing documented that nobody exports
    const doc = fs.readFileSync(path.join(ROOT, 'docs/metrics.md'), 'utf8');
    const documented = new Set(
        [...doc.matchAll(/\b(tiketi_[a-z0-9_]+)\b/g)].map((m) => m[1]).filter((n) => !n.endsWith('_')),
    ); // not tiketi_rpc_*
    const base = (n) => n.replace(/_(bucket|sum|count)$/, '');
    const undocumented = [...exported.keys()].filter(
        (n) => n.startsWith('tiketi_') && !documented.has(n) && !documented.has(base(n)),
    );
    verdict(
        'docs/metrics.md: every exported metric is documented',
        undocumented.map((n) => `${n} (${exported.get(n).join(', ')})`),
    );
    verdict(
        'docs/metrics.md: every documented metric is exported',
        [...documented].filter((n) => !exported.has(n)).map((n) => `${n}`),
    );
}

// ---- main -------------------------------------------------------------------------------------
const [command, ...rest] = process.argv.slice(2);
try {
    if (command === 'schema') await schemaCheck(rest);
    else if (command === 'policy') policyCheck(rest[0], rest[1]);
    else if (command === 'docker') dockerCheck(rest);
    else if (command === 'flags') flagsCheck(rest[0], rest[1]);
    else if (command === 'metrics') metricsCheck();
    else {
        console.error('usage: check.mjs schema|policy|docker|flags|metrics ...');
        process.exit(2);
    }
} catch (e) {
    report(
        'FAIL',
        `${command} ${rest[0] ?? ''}`.trim(),
        `the check itself failed: ${e.stack?.split('\n').slice(0, 3).join(' | ')}`,
    );
}
