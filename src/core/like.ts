/**
 * SQL LIKE without backtracking (`%`/`*` any run, `_`/`?` one code point; anchored, case-
 * sensitive): the filter language's `LIKE` (filter.ts) and the token resource globs (tokens.ts, with
 * `*`/`?` only) both compile patterns here. A pattern is split on its `%` runs once; matching is then
 * linear in the text per segment, whatever the pattern (a regex of `%%%%b` backtracked
 * exponentially and froze the server).
 */
/**
 * `%`/`*` any run, `_`/`?` one character; anchored and case-sensitive. The regex form of a LIKE
 * pattern, kept as the executable definition of its meaning (tests compare `likeMatch` with it on
 * short inputs). Never evaluate it on stored data: `%%%%b` is a backtracking regex that takes
 * exponential time on a string without `b` — that froze the server (ReDoS). Evaluation uses
 * `compileLike`.
 */
export function likeToRegExp(pattern: string): RegExp {
  let source = '^';
  for (const c of pattern) {
    if (c === '%' || c === '*') source += '.*';
    else if (c === '_' || c === '?') source += '.';
    else if ('.+()|^${}[]\\'.includes(c)) source += `\\${c}`;
    else source += c;
  }
  // `u` so `_` spans a whole astral character; `s` so `%` spans line breaks inside stored text.
  return new RegExp(`${source}$`, 'su');
}

/** One character of a segment: a code point, or `null` for the one-character wildcard. */
type Segment = (string | null)[];

/** A LIKE pattern split on its runs of `%` (a run of several is one: `%%%%` ≡ `%`). */
export interface LikePattern {
  /** Must match at the start of the text. */
  prefix: Segment;
  /** Segments between `%` runs, matched left to right at their earliest place. */
  middle: Segment[];
  /** Must match at the end; `null` when the pattern has no `%`, so `prefix` is the whole text. */
  suffix: Segment | null;
  test(text: string): boolean;
}

/** LIKE's wildcards (and the original's `*`/`?` spellings); token globs pass `*` and `?` only. */
export interface Wildcards {
  many: string;
  one: string;
}
const LIKE_WILDCARDS: Wildcards = { many: '%*', one: '_?' };

export function compileLike(pattern: string, wildcards: Wildcards = LIKE_WILDCARDS): LikePattern {
  const segments: Segment[] = [[]];
  let previousStar = false;
  for (const c of pattern) {
    const star = wildcards.many.includes(c);
    if (star) {
      if (!previousStar) segments.push([]);
    } else {
      (segments[segments.length - 1] as Segment).push(wildcards.one.includes(c) ? null : c);
    }
    previousStar = star;
  }
  const prefix = segments[0] as Segment;
  const compiled: LikePattern = {
    prefix,
    middle: segments.length > 1 ? segments.slice(1, -1) : [],
    suffix: segments.length > 1 ? (segments[segments.length - 1] as Segment) : null,
    test: (text) => likeMatch(compiled, text),
  };
  return compiled;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Matches without backtracking, in O(n·m) for a text of n and a pattern of m characters: the
 * prefix and the suffix are anchored; each middle segment is taken at its earliest place after the
 * previous one. Earliest is always right for `%`-separated segments (a later place leaves less
 * room for what follows and gains nothing), so no choice is ever revisited and the positions tried
 * by different segments never overlap. Characters are code points, as with the `u` regex: text
 * without surrogates is indexed directly, other text is split into code points once (O(n)).
 */
export function likeMatch(pattern: LikePattern, text: string): boolean {
  const chars: ArrayLike<string> = SURROGATE.test(text) ? Array.from(text) : text;
  const n = chars.length;
  const { prefix, middle, suffix } = pattern;
  if (suffix === null) return prefix.length === n && segmentAt(chars, prefix, 0);
  const end = n - suffix.length;
  if (prefix.length > end || !segmentAt(chars, prefix, 0) || !segmentAt(chars, suffix, end)) return false;
  let position = prefix.length;
  for (const segment of middle) {
    const found = findSegment(chars, segment, position, end);
    if (found < 0) return false;
    position = found + segment.length;
  }
  return true;
}

function segmentAt(chars: ArrayLike<string>, segment: Segment, at: number): boolean {
  for (let k = 0; k < segment.length; k++) {
    const want = segment[k];
    if (want !== null && chars[at + k] !== want) return false;
  }
  return true;
}

/** Earliest start in [from, end − length] where `segment` matches, or −1. */
function findSegment(chars: ArrayLike<string>, segment: Segment, from: number, end: number): number {
  for (let at = from; at + segment.length <= end; at++) {
    if (segmentAt(chars, segment, at)) return at;
  }
  return -1;
}
