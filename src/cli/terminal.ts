/**
 * What the terminal allows: colours and width. Off a terminal (a pipe, a file, a test) output stays
 * plain and rows stay whole, whatever the program would print on a screen.
 */

type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow';
const SGR: Record<Style, [number, number]> = { bold: [1, 22], dim: [2, 22], red: [31, 39], green: [32, 39], yellow: [33, 39] };

/**
 * Colours: never with NO_COLOR set to anything but '' (no-color.org); else with FORCE_COLOR (any
 * value but '0' or 'false', as Node reads it: CI logs, tests); else only on a terminal that has them.
 */
export function colourOn(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  const force = process.env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return stream.isTTY === true && typeof stream.hasColors === 'function' && stream.hasColors();
}

export function paint(text: string, style: Style, stream: NodeJS.WriteStream = process.stdout): string {
  if (!colourOn(stream)) return text;
  const [on, off] = SGR[style];
  return `\u001b[${on}m${text}\u001b[${off}m`;
}

/**
 * The width a table must fit: $COLUMNS when it is a positive integer (psql reads it the same way;
 * tests set it), else the terminal's width, else none: a pipe or a file gets whole rows.
 */
export function terminalWidth(stream: NodeJS.WriteStream = process.stdout): number | undefined {
  const env = process.env.COLUMNS;
  if (env !== undefined && /^\d+$/.test(env) && Number(env) > 0) return Number(env);
  return stream.isTTY && stream.columns > 0 ? stream.columns : undefined;
}

/** Characters a terminal shows for `text` (ANSI sequences take none; wide characters are rare here). */
export function displayWidth(text: string): number {
  // eslint-disable-next-line no-control-regex
  return [...text.replace(/\u001b\[[0-9;]*m/g, '')].length;
}
