// Pages through a FHIR type history with fhir-kit-client, as an integration would: the first page
// by typeHistory (or, for an incremental sync, the history since an instant), then nextPage
// until there is none. Prints {"pages": n, "seen": [[id, versionId], ...]} on stdout.
// Usage: node history_pages.mjs <fhir-kit-client package dir> <FHIR base> <token> <type> [_since]
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [packageDir, baseUrl, bearerToken, resourceType, since] = process.argv.slice(2);
const { Client } = await import(pathToFileURL(join(packageDir, "dist", "index.js")).href);
const client = new Client({ baseUrl, bearerToken });

let bundle = since
  ? await client.request(`${resourceType}/_history?_since=${encodeURIComponent(since)}`)
  : await client.typeHistory({ resourceType });
const seen = [];
let pages = 0;
while (bundle) {
  pages += 1;
  for (const entry of bundle.entry ?? []) {
    seen.push([entry.resource.id, entry.resource.meta.versionId]);
  }
  bundle = await client.nextPage({ bundle });
}
process.stdout.write(JSON.stringify({ pages, seen }));
