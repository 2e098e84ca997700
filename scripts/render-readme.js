#!/usr/bin/env node
// Renders README.md (or the page given as second argument) to one HTML file with GitHub-like styles, so
// that it can be looked at in a headless browser (docs/README.md, "Building the docs"). markdown-it comes
// with TypeDoc, a devDependency. Usage: node scripts/render-readme.js <out.html> [page.md]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const MarkdownIt = require('markdown-it');

const [out, page = 'README.md'] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/render-readme.js <out.html> [page.md]');
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const source = path.resolve(root, page);
const html = new MarkdownIt({ html: true, linkify: true }).render(fs.readFileSync(source, 'utf8'));
// Relative links and images resolve against the page's own folder, as on GitHub.
const base = `file://${path.dirname(source)}/`;
const css = `
body { font: 16px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; max-width: 980px;
       margin: 0 auto; padding: 32px 45px; }
h1, h2 { border-bottom: 1px solid #d1d9e0; padding-bottom: .3em; } h1 { font-size: 2em; } h2 { font-size: 1.5em; }
code { font: 85% ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: .2em .4em; border-radius: 6px; }
pre { background: #f6f8fa; padding: 16px; border-radius: 6px; overflow: auto; line-height: 1.45; }
pre code { background: none; padding: 0; font-size: 85%; }
table { border-collapse: collapse; display: block; overflow: auto; } th, td { border: 1px solid #d1d9e0; padding: 6px 13px; }
tr:nth-child(2n) { background: #f6f8fa; } a { color: #0969da; text-decoration: none; } img { max-width: 100%; }`;
fs.writeFileSync(out, `<!doctype html><html><head><meta charset="utf-8"><base href="${base}"><title>${page}</title>` +
  `<style>${css}</style></head><body>${html}</body></html>\n`);
console.log(`${page} → ${out}`);
