// The official AsyncAPI parser on one document: prints every diagnostic as JSON (one object a line)
// and exits 0 only when the document parsed with zero errors (warnings are printed, not failed).
//   node tools/contracts/asyncapi-validate.mjs docs/asyncapi.yaml
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Parser, fromFile } from "@asyncapi/parser";

const file = process.argv[2];
if (!file) {
  console.error("usage: asyncapi-validate.mjs <asyncapi.yaml>");
  process.exit(2);
}
readFileSync(file); // a missing file fails here, with its name
const parser = new Parser();
const { document, diagnostics } = await fromFile(parser, resolve(file)).parse({
  source: pathToFileURL(resolve(file)).href,
});
const SEVERITY = ["error", "warning", "information", "hint"];
let errors = 0;
for (const d of diagnostics) {
  const severity = SEVERITY[d.severity] ?? String(d.severity);
  if (severity === "error") errors += 1;
  console.log(JSON.stringify({ severity, code: d.code, message: d.message, path: d.path.join("/") }));
}
console.log(JSON.stringify({ parsed: document !== undefined, errors }));
process.exit(document !== undefined && errors === 0 ? 0 : 1);
