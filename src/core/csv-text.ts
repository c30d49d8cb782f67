/**
 * CSV text shared by every CSV writer (exports, the csv read-model plugin, CLI listings):
 * RFC 4180 cells and the injective state-key → column naming.
 */

/** Prefix of an escaped column name: a reserved name, an empty key or a key that starts with it. */
export const CSV_COLUMN_ESCAPE = 'field:';

/**
 * RFC 4180 cell. Quoted when it holds a quote, comma or line break, and also when it holds any
 * other control character (NUL, tab, DEL, the C1 controls such as NEL U+0085) or a Unicode line
 * or paragraph separator: readers differ on those unquoted (some split lines there), not quoted.
 */
export function csvCell(text: string): string {
  // eslint-disable-next-line no-control-regex
  return /[",\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Key → column name, injective: a key that is reserved, empty, or starts with the escape is
 * written with the escape before it (so every escaped name starts with it and no plain one does).
 */
export function csvColumnName(reserved: ReadonlySet<string>, key: string): string {
  return key === '' || reserved.has(key) || key.startsWith(CSV_COLUMN_ESCAPE) ? CSV_COLUMN_ESCAPE + key : key;
}

/** Column name → key (the inverse of csvColumnName). */
export function csvColumnKey(column: string): string {
  return column.startsWith(CSV_COLUMN_ESCAPE) ? column.slice(CSV_COLUMN_ESCAPE.length) : column;
}
