/**
 * The original's readable cursor tokens: `a:<type>:<id>` (active), `r:<type>:<id>` (archived);
 * event cursors append `:<version>`. Names and ids never contain ':', so splitting is unambiguous.
 */
import { invalidInput } from '../core/index.js';

export interface AggregateCursor {
  archived: boolean;
  type: string;
  id: string;
}

export interface EventCursor extends AggregateCursor {
  version: number;
}

function tagOf(tag: string): boolean {
  if (tag === 'a' || tag === 'active') return false;
  if (tag === 'r' || tag === 'archived') return true;
  throw invalidInput(`invalid cursor: unknown tag '${tag}'`);
}

export function parseAggregateCursor(raw: string): AggregateCursor {
  const parts = raw.split(':');
  if (parts.length !== 3) throw invalidInput(`invalid cursor: expected <a|r>:<type>:<id>, got '${raw}'`);
  const [tag, type, id] = parts as [string, string, string];
  if (!type || !id) throw invalidInput('invalid cursor: missing aggregate type or id');
  return { archived: tagOf(tag), type, id };
}

export function parseEventCursor(raw: string): EventCursor {
  const parts = raw.split(':');
  if (parts.length !== 4) throw invalidInput(`invalid cursor: expected <a|r>:<type>:<id>:<version>, got '${raw}'`);
  const [tag, type, id, version] = parts as [string, string, string, string];
  if (!type || !id || !/^\d{1,15}$/.test(version)) throw invalidInput('invalid cursor: bad aggregate or version segment');
  return { archived: tagOf(tag), type, id, version: Number(version) };
}

export function aggregateCursor(archived: boolean, type: string, id: string): string {
  return `${archived ? 'r' : 'a'}:${type}:${id}`;
}

export function eventCursor(archived: boolean, type: string, id: string, version: number): string {
  return `${aggregateCursor(archived, type, id)}:${version}`;
}
