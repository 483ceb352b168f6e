// Validates an AsyncAPI document with @asyncapi/parser (the spec's JSON Schema plus its rules):
//   node tools/spec-check/check-asyncapi.mjs asyncapi.yaml
// Prints every diagnostic; exits 1 when there is an error or the document does not parse.
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';

const file = process.argv[2];
if (!file) {
  console.error('usage: check-asyncapi.mjs <asyncapi.yaml>');
  process.exit(2);
}
const { document, diagnostics } = await new Parser().parse(readFileSync(file, 'utf8'));
const severities = ['error', 'warning', 'info', 'hint'];
let errors = 0;
for (const d of diagnostics) {
  if (d.severity === 0) errors += 1;
  console.log(`${severities[d.severity]} ${d.code} ${JSON.stringify(d.path)} ${d.message}`);
}
if (!document || errors > 0) {
  console.error(`${file}: ${errors} error(s)`);
  process.exit(1);
}
console.log(`${file}: valid AsyncAPI ${document.version()}`);
