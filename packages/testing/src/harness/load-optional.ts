/**
 * Loads the optional peer dependency `name` (pg, testcontainers). The CommonJS build requires it
 * through its `module`, which works where `import()` does not: Jest's default mode refuses a
 * dynamic import without --experimental-vm-modules. The ESM build, which has no `module`, imports
 * it. (A bare `require` would not do: bundlers replace it with a shim in ESM output.) A specifier
 * in a variable keeps bundlers and tsc from requiring the dependency.
 */
export async function loadOptional<T>(name: string): Promise<T> {
  if (typeof module === 'object' && typeof module?.require === 'function') {
    return module.require(name) as T;
  }
  return (await import(name)) as T;
}
