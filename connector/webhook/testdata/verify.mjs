// verify.mjs checks one webhook request with the real npm standardwebhooks
// library, so the Go signer is tested against an independent implementation.
//
// Usage: node verify.mjs <node_modules dir> < request.json
// where request.json is {"secret": "...", "headers": {...}, "body": "<base64>"};
// the body travels as base64 so the verifier sees the exact bytes sent.
// Exit 0 and "ok standardwebhooks@<version>" on stdout when verify passes;
// exit 1 with the library's message on stderr when it does not.
import { createRequire } from "node:module";
import { join } from "node:path";

const modules = process.argv[2];
if (!modules) {
  console.error("usage: node verify.mjs <node_modules dir> < request.json");
  process.exit(2);
}
// standardwebhooks is CommonJS and lives outside this script's tree, so
// resolve it from the given node_modules rather than by ESM lookup.
const require = createRequire(join(modules, "noop.js"));
const { Webhook } = require("standardwebhooks");
const { version } = require("standardwebhooks/package.json");

let input = "";
for await (const chunk of process.stdin) input += chunk;
const req = JSON.parse(input);

try {
  const wh = new Webhook(req.secret);
  wh.verify(Buffer.from(req.body, "base64"), req.headers);
} catch (err) {
  console.error(`${err.name}: ${err.message}`);
  process.exit(1);
}
console.log(`ok standardwebhooks@${version}`);
