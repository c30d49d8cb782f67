/**
 * What the delivery pool hands every plugin kind's factory: the plugin's name (for messages), the
 * server's data directory (for kinds that keep local files) and a logger that reaches the server's
 * log from inside a piscina worker.
 */
export interface DelivererContext {
  name: string;
  dataDir: string;
  log: (level: 'info' | 'warn' | 'error', msg: string) => void;
}
