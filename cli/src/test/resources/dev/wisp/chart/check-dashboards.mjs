// Checks Grafana dashboard JSON against Grafana's own dashboard schema: the TypeScript types that
// @grafana/schema generates from the schema (Dashboard, and each panel type's Options), compiled
// strictly by the TypeScript compiler. Each dashboard becomes an object literal typed as Dashboard,
// so an unknown field anywhere (excess property check), a wrong type or an enum value the schema
// does not know is a compile error. Usage: node check-dashboards.mjs TOOLS_DIR OUT_DIR FILE...
// Prints one line per problem ("file:line:col message") and exits 1 when there is any.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [tools, out, ...files] = process.argv.slice(2);
const require = createRequire(path.join(tools, 'package.json'));
const ts = require('typescript');
const schema = path.dirname(require.resolve('@grafana/schema/package.json'));
const types = (p) => JSON.stringify(path.join(schema, 'dist/types/raw', p, 'types.gen'));
// Panel types whose options the schema defines; a panel of another type is refused (add it here).
const panelOptions = { timeseries: 'TimeSeries', stat: 'Stat', table: 'Table', nodeGraph: 'NodeGraph' };

// JSON carries enum members as their values: accept a string enum's values, not only its members.
const prelude = `
import type { Dashboard } from ${types('dashboard/x')};
import type { Options as TimeSeries } from ${types('composable/timeseries/panelcfg/x')};
import type { Options as Stat } from ${types('composable/stat/panelcfg/x')};
import type { Options as Table } from ${types('composable/table/panelcfg/x')};
import type { Options as NodeGraph } from ${types('composable/nodegraph/panelcfg/x')};
type Json<T> = T extends string ? \`\${T}\` : T extends ReadonlyArray<infer U> ? Array<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> } : T;
`;

fs.mkdirSync(out, { recursive: true });
const sources = [];
const problems = [];
for (const file of files) {
  const text = fs.readFileSync(file, 'utf8');
  let dashboard;
  try {
    dashboard = JSON.parse(text);
  } catch (e) {
    problems.push(`${file}: not JSON: ${e.message}`);
    continue;
  }
  let body = `${prelude}\nexport const dashboard: Json<Dashboard> = ${JSON.stringify(dashboard, null, 1)};\n`;
  (dashboard.panels ?? []).forEach((p, i) => {
    const type = panelOptions[p.type];
    if (type === undefined) {
      problems.push(`${file}: panel ${p.id} "${p.title}": type "${p.type}" is not one this check knows`);
    } else {
      body += `export const options${i}: Json<${type}> = ${JSON.stringify(p.options ?? {}, null, 1)};\n`;
    }
  });
  const source = path.join(out, path.basename(file).replace(/\.json$/, '.ts'));
  fs.writeFileSync(source, body);
  sources.push([source, file]);
}
const program = ts.createProgram(sources.map(([s]) => s), {
  strict: true, noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, types: [],
});
for (const d of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(d.messageText, ' ');
  if (d.file) {
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    const json = sources.find(([s]) => path.resolve(s) === path.resolve(d.file.fileName));
    problems.push(`${json ? json[1] : d.file.fileName} (${d.file.fileName}:${line + 1}:${character + 1}) ${message}`);
  } else {
    problems.push(message);
  }
}
problems.forEach((p) => console.log(p));
console.log(`checked ${files.length} dashboards against @grafana/schema, ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
