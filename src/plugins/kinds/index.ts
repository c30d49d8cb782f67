/**
 * Plugin kinds by name: each lives in its own file and exports `create<Kind>Deliverer(options,
 * ctx)`. Loaded on first use, so a delivery thread loads only the kinds it delivers (pg, nats and
 * undici stay out of threads that never need them).
 */
import type { Deliverer, KindOptions, PluginKind } from '../types.js';
import type { DelivererContext } from './context.js';

type Factory = (options: KindOptions, ctx: DelivererContext) => Deliverer;

const FACTORY_NAMES: Record<PluginKind, string> = {
  http: 'createHttpDeliverer',
  tcp: 'createTcpDeliverer',
  log: 'createLogDeliverer',
  process: 'createProcessDeliverer',
  postgres: 'createPostgresDeliverer',
  nats: 'createNatsDeliverer',
  csv: 'createCsvDeliverer',
  json: 'createJsonDeliverer',
};

export async function createDeliverer(options: KindOptions, ctx: DelivererContext): Promise<Deliverer> {
  const module = (await import(`./${options.kind}.js`)) as Record<string, Factory | undefined>;
  const factory = module[FACTORY_NAMES[options.kind]];
  if (typeof factory !== 'function') throw new Error(`plugin kind '${options.kind}' is not available`);
  return factory(options, ctx);
}
