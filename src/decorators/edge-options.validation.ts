/**
 * The rules for the production-edge options shared by `@TcpServer` and `@UnixStreamServer`: `tls`,
 * `proxyProtocol` and `limits` ([production](../../docs/production.md)). The same rules check `bootstrap()`'s transport overrides.
 */
import { edgeOptionTexts as texts } from '../errors/edge.messages';
import { configurationMessages as messages } from '../errors/configuration.messages';
import { TrustedPeers } from '../transports/trusted-peers';
import { boolean, checkOptions, DecorationSite, fail, integerFrom, OptionRule, positiveInteger } from './options.validation';

const plainObject = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);
const positiveNumber = (value: unknown): boolean => typeof value === 'number' && Number.isFinite(value) && value > 0;

const limitRules: readonly OptionRule[] = [
  { name: 'maxConnections', text: texts.maxConnections, valid: positiveInteger },
  { name: 'maxConnectionsPerClient', text: texts.maxConnectionsPerClient, valid: positiveInteger },
  { name: 'maxLineLength', text: texts.maxLineLength, valid: integerFrom(1) },
  { name: 'lineTimeout', text: texts.lineTimeout, valid: positiveNumber },
];

const proxyRules: readonly OptionRule[] = [
  {
    name: 'trusted',
    text: texts.trusted,
    valid: (v) => Array.isArray(v) && v.every((e) => typeof e === 'string'),
    more: (site, value) => {
      try {
        new TrustedPeers(value as string[]);
      } catch (err) {
        fail(messages.badOption(site.decorator, site.cls, 'proxyProtocol.trusted', value, { ...texts.trusted, requirement: `${texts.trusted.requirement}: ${(err as Error).message}` }));
      }
    },
  },
  { name: 'required', text: texts.required, valid: boolean },
];

/** Checks the keys and values of a nested options object against `rules`, naming them `outer.key`. */
function nested(outer: string, rules: readonly OptionRule[]) {
  return (site: DecorationSite, value: unknown): void => {
    const given = value as Record<string, unknown>;
    const known = rules.map((r) => r.name);
    for (const key of Object.keys(given)) {
      if (!known.includes(key)) fail(messages.unknownOption(site.decorator, site.cls, `${outer}.${key}`, known.map((k) => `${outer}.${k}`)));
    }
    for (const rule of rules) {
      const v = given[rule.name];
      if (v === undefined) continue;
      if (!rule.valid(v)) fail(messages.badOption(site.decorator, site.cls, `${outer}.${rule.name}`, v, rule.text));
      rule.more?.(site, v);
    }
  };
}

export const edgeRules: readonly OptionRule[] = [
  { name: 'tls', text: texts.tls, valid: plainObject },
  {
    name: 'proxyProtocol',
    text: texts.proxyProtocol,
    valid: (v) => typeof v === 'boolean' || plainObject(v),
    more: (site, value) => {
      if (typeof value !== 'boolean') nested('proxyProtocol', proxyRules)(site, value);
    },
  },
  { name: 'limits', text: texts.limits, valid: plainObject, more: nested('limits', limitRules) },
];

/**
 * The classic stream servers' constructor check (`new TCPServer(address, Handler, { tls, proxyProtocol, limits })`):
 * the same rules as the decorators, so a bad value (`proxyProtocol: 'yes'`, `limits: { maxConnections: -1 }`)
 * is a ConfigurationError thrown by the constructor, as Python's constructors raise on bad arguments,
 * rather than taken for "on" or ignored. Undefined options are left out, as the decorators leave them.
 * Messages read `new TCPServer() on EchoHandler: proxyProtocol "yes" is not …`.
 */
export function checkEdgeOptions(server: string, handler: string, options: { tls?: unknown; proxyProtocol?: unknown; limits?: unknown }): void {
  // Only the edge options are checked (the constructor's other options have their own checks); the object
  // built here is never anything but an object, so checkOptions' help for a non-object is never shown.
  const { tls, proxyProtocol, limits } = options;
  checkOptions({ decorator: `new ${server}()`, cls: handler || 'its handler' }, { tls, proxyProtocol, limits }, edgeRules, { expected: '', example: '' });
}

/**
 * On a Unix stream socket every peer is the same client (no address tells them apart) unless a PROXY header
 * names it: there `limits.maxConnectionsPerClient` without `proxyProtocol` capped the whole server, a
 * ConfigurationError now (hostile run).
 */
export function checkUnixPerClient(site: DecorationSite, options: { proxyProtocol?: unknown; limits?: { maxConnectionsPerClient?: unknown } }): void {
  if (options.limits?.maxConnectionsPerClient !== undefined && !options.proxyProtocol) {
    fail(messages.badOption(site.decorator, site.cls, 'limits.maxConnectionsPerClient', options.limits.maxConnectionsPerClient, texts.unixPerClient));
  }
}
