/** Hard limits at the edge (DESIGN §3). Keys in LMDB must stay below 1978 bytes: these keep them there. */
export const PAYLOAD_BYTES_MAX = 256 * 1024;
export const METADATA_BYTES_MAX = 64 * 1024;
export const NOTE_CHARS_MAX = 128;
export const NAME_CHARS_MAX = 64;
export const AGGREGATE_ID_CHARS_MAX = 128;
export const TENANT_CHARS_MAX = 64;
export const IDEMPOTENCY_KEY_CHARS_MAX = 128;
export const BATCH_EVENTS_MAX = 1000;
export const PATCH_OPS_MAX = 1000;
export const SELECT_FIELDS_MAX = 100;

/**
 * Configurable write limits (`[limits]` in config.toml). Depth and node count bound every JSON value
 * a write carries (payload, metadata, each patch value), checked at the edge; state and event bytes
 * are checked by the shard worker, which is the only place that sees the resulting state.
 */
export interface WriteLimits {
  jsonDepthMax: number;
  jsonNodesMax: number;
  stateBytesMax: number;
  eventBytesMax: number;
}

export const JSON_DEPTH_MAX_DEFAULT = 64;
/**
 * Above this a value no longer survives a structured clone between threads (measured: 3,000 levels
 * pass, 5,000 overflow the stack), so the config refuses anything higher.
 */
export const JSON_DEPTH_MAX_CEILING = 1000;
export const JSON_NODES_MAX_DEFAULT = 100_000;
export const STATE_BYTES_MAX_DEFAULT = 4 * 1024 * 1024;
/** Room for a full payload (256 KiB) plus full metadata (64 KiB) and the record's own fields. */
export const EVENT_BYTES_MAX_DEFAULT = 512 * 1024;

export const DEFAULT_WRITE_LIMITS: WriteLimits = {
  jsonDepthMax: JSON_DEPTH_MAX_DEFAULT,
  jsonNodesMax: JSON_NODES_MAX_DEFAULT,
  stateBytesMax: STATE_BYTES_MAX_DEFAULT,
  eventBytesMax: EVENT_BYTES_MAX_DEFAULT,
};

/** The `[limits]` config section as the edge and the workers use it. */
export function writeLimitsFrom(section: { json_depth_max: number; json_nodes_max: number; state_bytes_max: number; event_bytes_max: number }): WriteLimits {
  return {
    jsonDepthMax: section.json_depth_max,
    jsonNodesMax: section.json_nodes_max,
    stateBytesMax: section.state_bytes_max,
    eventBytesMax: section.event_bytes_max,
  };
}

export interface JsonIssue {
  path: (string | number)[];
  message: string;
}

/** Shared between the walks of one field (a patch's op values count against one node budget). */
export interface NodeBudget {
  nodes: number;
}

/** UTF-8 bytes of a value's JSON text. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

interface Frame {
  value: object;
  depth: number;
  parent: Frame | undefined;
  key: string | number;
}

function pathOf(frame: Frame | undefined, last?: string | number): (string | number)[] {
  const path: (string | number)[] = last === undefined ? [] : [last];
  for (let f = frame; f && f.parent; f = f.parent) path.push(f.key);
  return path.reverse();
}

const RFC = 'I-JSON (RFC 7493)';

/** `String.prototype.isWellFormed` (V8 native, Node 20; not in the ES2022 lib types): no lone surrogate. */
export function isWellFormed(text: string): boolean {
  return (text as unknown as { isWellFormed(): boolean }).isWellFormed();
}

/** Why a scalar is not I-JSON, or undefined when it is fine. */
function scalarProblem(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? undefined : `string is not well-formed Unicode (it holds a lone surrogate); ${RFC} requires well-formed text`;
    case 'number':
      if (!Number.isFinite(value)) return `number is not finite (it overflows a double, like 1e309); ${RFC} allows only finite numbers`;
      // Every double beyond 2^53 is an integer, and most of them cannot be told from their
      // neighbours: refuse rather than store a silently rounded value.
      if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
        return `number ${value} is beyond ±(2^53−1) and cannot be kept exactly; send it as a string (${RFC} §2.2)`;
      }
      return undefined;
    case 'boolean':
      return undefined;
    default:
      return value === null ? undefined : 'not a JSON value';
  }
}

/**
 * One iterative pass over a JSON value that checks nesting depth, node count and I-JSON (well-formed
 * strings and keys, finite numbers, integers within ±(2^53−1)); returns the first problem with its
 * path. Iterative so that no input can overflow the stack; it stops at the first problem, so a
 * hostile value costs at most `nodesMax` steps. Cost on the hot path: one visit per value and key.
 * Depth counts containers: `{}` is 1, `{"a":[]}` is 2, a scalar is 0.
 */
export function checkJsonValue(root: unknown, limits: Pick<WriteLimits, 'jsonDepthMax' | 'jsonNodesMax'>, budget: NodeBudget = { nodes: 0 }): JsonIssue | undefined {
  const tooDeep = `nesting depth exceeds json_depth_max (${limits.jsonDepthMax})`;
  const tooMany = `holds more than json_nodes_max (${limits.jsonNodesMax}) values`;
  if (++budget.nodes > limits.jsonNodesMax) return { path: [], message: tooMany };
  if (root === null || typeof root !== 'object') {
    const problem = scalarProblem(root);
    return problem ? { path: [], message: problem } : undefined;
  }
  if (limits.jsonDepthMax < 1) return { path: [], message: tooDeep };
  const stack: Frame[] = [{ value: root, depth: 1, parent: undefined, key: '' }];
  // The child check is inlined for both container kinds: this loop is the per-write cost.
  const visit = (frame: Frame, key: string | number, child: unknown): JsonIssue | undefined => {
    if (++budget.nodes > limits.jsonNodesMax) return { path: pathOf(frame), message: tooMany };
    if (child !== null && typeof child === 'object') {
      if (frame.depth + 1 > limits.jsonDepthMax) return { path: pathOf(frame, key), message: tooDeep };
      stack.push({ value: child, depth: frame.depth + 1, parent: frame, key });
      return undefined;
    }
    const problem = scalarProblem(child);
    return problem ? { path: pathOf(frame, key), message: problem } : undefined;
  };
  while (stack.length > 0) {
    const frame = stack.pop() as Frame;
    if (Array.isArray(frame.value)) {
      const list = frame.value as unknown[];
      for (let i = 0; i < list.length; i++) {
        const issue = visit(frame, i, list[i]);
        if (issue) return issue;
      }
    } else {
      const object = frame.value as Record<string, unknown>;
      for (const key of Object.keys(object)) {
        if (!isWellFormed(key)) return { path: pathOf(frame), message: `an object key is not well-formed Unicode (it holds a lone surrogate); ${RFC} requires well-formed text` };
        const issue = visit(frame, key, object[key]);
        if (issue) return issue;
      }
    }
  }
  return undefined;
}

/** Nesting depth of a JSON value (as `checkJsonValue` counts it), iteratively; stops once past `stopAbove`. */
export function jsonDepth(root: unknown, stopAbove = Infinity): number {
  if (root === null || typeof root !== 'object') return 0;
  let deepest = 1;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop() as [unknown, number];
    if (depth > deepest) deepest = depth;
    if (deepest > stopAbove) return deepest;
    for (const child of Array.isArray(value) ? value : Object.values(value as object)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return deepest;
}
