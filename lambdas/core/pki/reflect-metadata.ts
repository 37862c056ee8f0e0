/**
 * The smallest Reflect metadata API that tsyringe (used inside @peculiar/x509) checks for and
 * calls: defineMetadata, getOwnMetadata and getMetadata. It installs itself only when no polyfill
 * (reflect-metadata, core-js, @abraham/reflection) is loaded, so adding one of those later wins.
 * Imported for its side effect by ./x509.ts before @peculiar/x509.
 */
type Target = object;
type MetadataApi = {
  defineMetadata: (key: unknown, value: unknown, target: Target) => void;
  getOwnMetadata: (key: unknown, target: Target) => unknown;
  getMetadata: (key: unknown, target: Target) => unknown;
};

const reflect = Reflect as unknown as Partial<MetadataApi>;

if (typeof reflect.getMetadata !== "function") {
  const store = new WeakMap<Target, Map<unknown, unknown>>();
  reflect.defineMetadata = (key, value, target) => {
    let entries = store.get(target);
    if (!entries) {
      entries = new Map();
      store.set(target, entries);
    }
    entries.set(key, value);
  };
  reflect.getOwnMetadata = (key, target) => store.get(target)?.get(key);
  reflect.getMetadata = (key, target) => {
    for (let current: Target | null = target; current; current = Object.getPrototypeOf(current)) {
      const entries = store.get(current);
      if (entries?.has(key)) return entries.get(key);
    }
    return undefined;
  };
}
