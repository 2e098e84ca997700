/**
 * The key-value sample's store, in a module of its own so that the server and its test share it.
 * A singleton: every connection of the server sees the same keys.
 */
import { Injectable } from 'sockserve';

@Injectable()
export class Store {
  private readonly data = new Map<string, string>();

  get(key: string): string | undefined {
    return this.data.get(key);
  }

  set(key: string, value: string): void {
    this.data.set(key, value);
  }

  /** Removes `key`; true when it was there. */
  delete(key: string): boolean {
    return this.data.delete(key);
  }
}
