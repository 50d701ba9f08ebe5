/**
 * Lookups keyed by user-supplied strings on plain records (`memberState`, `banned`): only the
 * record's own entries count, so ids such as `constructor` or `__proto__` never find
 * something `Object.prototype` owns, and writing one never changes a prototype.
 */
export function ownValue<T>(record: Record<string, T> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Sets an own entry, as data even for a key like `__proto__`. */
export function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
}
