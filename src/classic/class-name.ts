/**
 * The name of `instance`'s class for messages, or of the nearest named class it extends: an anonymous subclass
 * (`new (class extends TCPServer { … })(…)`) named nothing, and its errors began with ": " (hostile run).
 */
export function classNameOf(instance: object): string {
  for (let c: unknown = instance.constructor; typeof c === 'function' && c !== Object; c = Object.getPrototypeOf(c)) {
    if ((c as { name?: unknown }).name) return String((c as { name: string }).name);
  }
  return 'an anonymous class';
}
