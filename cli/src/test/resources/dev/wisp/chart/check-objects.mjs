// Checks rendered Kubernetes objects against the Kubernetes API's own schema, strictly.
//   node check-objects.mjs TOOLS_DIR OBJECTS.json     (a JSON array of objects)
// Two checks, both generated from the Kubernetes OpenAPI document by their packages:
//  1. closed property sets and value types, from @kubernetes/client-node's models (every object's
//     attributeTypeMap): a field the API does not define is an error, as kubectl's strict
//     field validation makes it;
//  2. the schema's constraints (required fields, enums, formats) through kubernetes-models'
//     compiled validators (the Prometheus Operator and Gateway API kinds through their
//     @kubernetes-models packages; those kinds get this check only, not the closed-set one).
// Prints one line per problem ("#INDEX Kind/name: path: message") and exits 1 when any.
import { readFileSync, existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [tools, objectsFile] = process.argv.slice(2);
const nm = `${tools}/node_modules`;
const objects = JSON.parse(readFileSync(objectsFile, 'utf8'));
const problems = [];
const modelCache = new Map();

async function model(name) {
  if (!modelCache.has(name)) {
    const file = `${nm}/@kubernetes/client-node/dist/gen/models/${name}.js`;
    modelCache.set(name, existsSync(file) ? (await import(pathToFileURL(file)))[name] : null);
  }
  return modelCache.get(name);
}

function versionPrefix(apiVersion) {
  const version = apiVersion.includes('/') ? apiVersion.split('/')[1] : apiVersion;
  return version.charAt(0).toUpperCase() + version.slice(1);
}

async function checkType(value, type, path, report) {
  if (value === null || value === undefined) return;
  const array = /^Array<(.+)>$/.exec(type);
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (array) {
    if (!Array.isArray(value)) return report(path, `expected an array, found ${typeof value}`);
    for (let i = 0; i < value.length; i++) await checkType(value[i], array[1], `${path}[${i}]`, report);
  } else if (map) {
    if (typeof value !== 'object' || Array.isArray(value)) return report(path, 'expected a map');
    for (const [k, v] of Object.entries(value)) await checkType(v, map[1], `${path}.${k}`, report);
  } else if (type === 'string' || type === 'Date') {
    if (typeof value !== 'string') report(path, `expected a string, found ${JSON.stringify(value)}`);
  } else if (type === 'number') {
    if (typeof value !== 'number') report(path, `expected a number, found ${JSON.stringify(value)}`);
  } else if (type === 'boolean') {
    if (typeof value !== 'boolean') report(path, `expected a boolean, found ${JSON.stringify(value)}`);
  } else if (type === 'IntOrString') {
    if (typeof value !== 'string' && !Number.isInteger(value)) report(path, 'expected an integer or a string');
  } else if (type === 'any' || type === 'object') {
    // free-form in the API
  } else {
    const cls = await model(type);
    if (!cls) return report(path, `the schema has no type ${type}`);
    if (typeof value !== 'object' || Array.isArray(value)) return report(path, `expected an object (${type})`);
    const known = new Map(cls.getAttributeTypeMap().map(a => [a.baseName, a.type]));
    for (const [k, v] of Object.entries(value)) {
      const childPath = path ? `${path}.${k}` : k;
      if (!known.has(k)) report(childPath, `unknown field "${k}" (not in ${type})`);
      else await checkType(v, known.get(k), childPath, report);
    }
  }
}

function constraintModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  if (group === 'monitoring.coreos.com') return `${nm}/@kubernetes-models/prometheus-operator/${apiVersion}/${kind}.js`;
  if (group === 'gateway.networking.k8s.io') return `${nm}/@kubernetes-models/gateway-api/${apiVersion}/${kind}.js`;
  return `${nm}/kubernetes-models/${group ? group + '/' : ''}${version}/${kind}.js`;
}

for (let i = 0; i < objects.length; i++) {
  const o = objects[i];
  const name = `#${i} ${o.kind}/${o.metadata && o.metadata.name}`;
  const report = (path, message) => problems.push(`${name}: ${path || '(object)'}: ${message}`);
  if (!o.apiVersion || !o.kind) { report('', 'no apiVersion or kind'); continue; }
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  const custom = group === 'monitoring.coreos.com' || group === 'gateway.networking.k8s.io';
  if (!custom) {
    const top = versionPrefix(o.apiVersion) + o.kind;
    if (!(await model(top))) { report('', `${o.apiVersion} ${o.kind} is not a Kubernetes API kind`); continue; }
    await checkType(o, top, '', report);
  }
  const file = constraintModule(o.apiVersion, o.kind);
  if (!existsSync(file)) { report('', `no schema for ${o.apiVersion} ${o.kind}`); continue; }
  const cls = Object.values(await import(pathToFileURL(file)))[0];
  try {
    new cls(o).validate();
  } catch (e) {
    for (const line of String(e.message).split('\n')) report('', line.trim());
  }
}
for (const p of problems) console.log(p);
console.log(`checked ${objects.length} objects, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
