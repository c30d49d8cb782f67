/**
 * comlink's node adapter ships as UMD whose typings do not match its runtime default export; this
 * wraps it once so both sides of the control channel use the same, typed endpoint.
 */
import type { MessagePort, Worker } from 'node:worker_threads';
import type * as Comlink from 'comlink';
import * as nodeAdapter from 'comlink/dist/umd/node-adapter.js';

type NodeEndpointFactory = (port: unknown) => Comlink.Endpoint;
const factory = (nodeAdapter as unknown as { default: NodeEndpointFactory }).default;

export function controlEndpoint(port: MessagePort | Worker): Comlink.Endpoint {
  return factory(port);
}
