// Gives Node the browser page's import map, for tests that import modules
// of web/static which depend on vendored packages by bare specifier (the
// noble libraries import "@noble/hashes/..."). Node has no import maps; this
// registers a resolve hook (importmap-hook.mjs) fed with the map read out
// of web/static/index.html itself, so Node resolves exactly as the page
// does, to the vendored files and never to a node_modules folder.
// Use: node --import ./testdata/importmap.mjs SCRIPT (from web/).
import { readFileSync } from "node:fs";
import { register } from "node:module";

const page = new URL("../static/index.html", import.meta.url);
const m = /<script type="importmap">([\s\S]*?)<\/script>/.exec(readFileSync(page, "utf8"));
if (!m) throw new Error(`no import map in ${page.pathname}`);
// Addresses are relative to the page, as a browser resolves them.
const imports = Object.fromEntries(Object.entries(JSON.parse(m[1]).imports)
  .map(([k, v]) => [k, new URL(v, page).href]));
register("./importmap-hook.mjs", import.meta.url, { data: { imports } });
