/**
 * `sockserve/testing`: handler classes served in memory, for tests ([testing](../docs/testing.md)). `TestServer.create()`
 * runs the real lifecycle, DI, framers and errors in the test's own thread with nothing bound; its
 * connections take bytes in whatever chunks the test picks.
 *
 * @module sockserve/testing
 */
/// <reference types="node" preserve="true" />
export { TestServer } from './testing/test-server';
export type { TestClientAddress, TestServerOptions } from './testing/test-server';
export type { HandlerClass } from './metadata/definition';
export { TestConnection } from './testing/test-connection';
