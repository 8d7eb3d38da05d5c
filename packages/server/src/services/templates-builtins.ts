import { BUILTIN_NAMES, type Template, type TemplateStore } from '@corral/runtime';
import { builtinView, type TemplateView } from './templates-view.js';

/**
 * The built-ins (base, python, nodejs, go, gui) as the API shows them: `ready` when their tree
 * is in `store`, else `available` (the first sandbox builds it). Without a runtime (`store`
 * null) they are all listed `available`.
 */
export async function builtinTemplates(store: TemplateStore | null): Promise<TemplateView[]> {
  const built = await builtTrees(store);
  return (store?.builtins ?? BUILTIN_NAMES).map((name) => builtinView(name, built.get(name)));
}

/** The built-in called `name`, or null when `name` is not a built-in's. */
export async function builtinTemplate(
  store: TemplateStore | null,
  name: string,
): Promise<TemplateView | null> {
  if (!(store?.builtins ?? BUILTIN_NAMES).includes(name)) return null;
  return builtinView(name, (await builtTrees(store)).get(name));
}

/**
 * The built-ins' trees in `store`, by name. Custom templates cannot take a built-in's name, so
 * a tree named like a built-in is that built-in.
 */
async function builtTrees(store: TemplateStore | null): Promise<Map<string, Template>> {
  if (!store) return new Map();
  const trees = await store.list();
  return new Map(trees.filter((t) => store.builtins.includes(t.name)).map((t) => [t.name, t]));
}
