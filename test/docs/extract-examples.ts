/** Finds the ```ts blocks of a markdown page, for the docs' compile check. */

export interface Example {
  /** Path of the page, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the block's first code line in the page. */
  readonly line: number;
  readonly code: string;
  /** Fenced ```ts no-compile, or preceded by a `<!-- no-compile -->` line: a fragment, not checked. */
  readonly skip: boolean;
}

const OPEN = /^(\s*)```(ts|typescript)(?:\s+(.*))?$/;
const ANY_OPEN = /^\s*(```+|~~~+)/;
const NO_COMPILE_COMMENT = /^\s*<!--\s*no-compile\s*-->\s*$/;

export function extractExamples(file: string, markdown: string): Example[] {
  const lines = markdown.split(/\r?\n/);
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = OPEN.exec(lines[i]);
    if (!open) {
      const other = ANY_OPEN.exec(lines[i]);
      if (other) i = closingLine(lines, i, other[1]);       // skip other languages' blocks whole
      continue;
    }
    const end = closingLine(lines, i, '```');
    const info = (open[3] ?? '').split(/\s+/);
    const previous = lines.slice(0, i).reverse().find((l) => l.trim() !== '') ?? '';
    examples.push({
      file,
      line: i + 2,
      code: lines.slice(i + 1, end).join('\n'),
      skip: info.includes('no-compile') || NO_COMPILE_COMMENT.test(previous),
    });
    i = end;
  }
  return examples;
}

function closingLine(lines: string[], open: number, fence: string): number {
  const indent = /^\s*/.exec(lines[open])![0];
  for (let j = open + 1; j < lines.length; j++) {
    if (lines[j].startsWith(indent + fence) && lines[j].trim() === lines[j].trim().replace(/[^`~]/g, '') ) return j;
  }
  throw new Error(`unclosed code fence opened at line ${open + 1}`);
}
