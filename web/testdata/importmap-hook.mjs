// The resolve hook importmap.mjs registers: a bare specifier resolves by
// the page's import map (an exact key, or the longest key ending in "/"
// that prefixes it, as in the HTML standard); any other bare specifier
// but Node's own modules is an error, so nothing comes from node_modules.
import { builtinModules } from "node:module";

let imports = {};
export function initialize(data) { imports = data.imports; }

export async function resolve(specifier, context, next) {
  const bare = !/^(\.{0,2}\/|[a-z][a-z0-9+.-]*:)/i.test(specifier);
  if (!bare || builtinModules.includes(specifier)) return next(specifier, context);
  if (Object.hasOwn(imports, specifier)) return next(imports[specifier], context);
  const key = Object.keys(imports).filter((k) => k.endsWith("/") && specifier.startsWith(k))
    .sort((a, b) => b.length - a.length)[0];
  if (key === undefined) throw new Error(`${specifier} (from ${context.parentURL}) is not in index.html's import map`);
  return next(new URL(specifier.slice(key.length), imports[key]).href, context);
}
