// `snapshot inspect <log> --html`: the timeline page, rendered by a real
// headless Chromium (Debian's chromium package; .ci/run installs it).
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { spawn } from 'node:child_process';
import { fixture, snapshot, tempDir, type Run } from './helpers.js';

const work = tempDir('html');
const out = path.join(work, 'snapshot');
const page = path.join(work, 'shop.html');

const chromium = (args: string[]): Promise<Run> =>
  new Promise((resolve, reject) => {
    const child = spawn('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', `--user-data-dir=${path.join(work, 'profile')}`, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    child.on('error', error => reject(new Error(`chromium could not be started (apt-get install chromium): ${error.message}`)));
    child.on('close', code => resolve({ code, stdout, stderr }));
  });

/** Decode an 8-bit RGB or RGBA PNG (no interlace) into its pixels. */
const decodePng = (png: Buffer): { width: number; height: number; channels: number; pixels: Buffer } => {
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (offset < png.length) {
    const length = png.readUInt32BE(offset);
    const type = png.toString('latin1', offset + 4, offset + 8);
    const data = png.subarray(offset + 8, offset + 8 + length);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      if (data[8] !== 8 || data[12] !== 0) throw new Error('only 8-bit, non-interlaced PNGs');
      channels = ({ 2: 3, 6: 4 } as Record<number, number>)[data[9]] ?? 0;
      if (!channels) throw new Error(`PNG colour type ${data[9]}`);
    }
    if (type === 'IDAT') idat.push(data);
    offset += 12 + length;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const pixels = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[y * stride + i - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= channels ? pixels[(y - 1) * stride + i - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const predictor = [0, a, b, (a + b) >> 1, paeth][filter];
      pixels[y * stride + i] = (line[i] + predictor) & 0xff;
    }
  }
  return { width, height, channels, pixels };
};

let events: number;
t.before(async () => {
  const built = await snapshot(['build', 'build.mjs', '--out', out, '--quiet'], { cwd: fixture('timeline') });
  if (built.code !== 0) throw new Error(built.stderr);
  events = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).services.shop.events;
});

t.test('the page is written, self-contained, with every entry and the marked one', async t => {
  const run = await snapshot(['inspect', path.join(out, 'shop', 'replay.log'), '--html', page, '--mark', '3']);
  t.equal(run.code, 0, run.stderr);
  const html = fs.readFileSync(page, 'utf8');
  t.match(html, /Content-Security-Policy" content="default-src 'none'/);
  t.notMatch(html, /<script|src=|href=/i, 'no script and nothing loaded from elsewhere');
  t.match(html, /console\.log\(&quot;&lt;script&gt;alert\(\\&quot;ordered tea\\&quot;\)&lt;\/script&gt;&quot;\)/, 'text from the log is escaped');
  const refused = await snapshot(['inspect', out, '--html', page]);
  t.equal(refused.code, 2);
  t.match(refused.stderr, /USAGE: --html draws one replay log/);
});

t.test('headless Chromium renders it: every entry is drawn, and the screenshot is not blank', async t => {
  const url = `file://${page}`;
  const dom = await chromium(['--dump-dom', url]);
  t.equal(dom.code, 0, 'chromium loaded the page');
  t.equal(dom.stdout.match(/<rect class="entry"/g)?.length, events, 'one mark per entry');
  t.equal(dom.stdout.match(/<script/g), null, 'the log text did not become a script');
  for (const lane of ['deliveries', 'clock', 'randomness', 'timers', 'console', 'other services', 'answers']) t.match(dom.stdout, `>${lane}</text>`);
  t.match(dom.stdout, /class="mark"/);
  t.match(dom.stdout, /Marked: event #3: /);

  const png = path.join(work, 'shot.png');
  const shot = await chromium(['--window-size=1200,700', `--screenshot=${png}`, url]);
  t.equal(shot.code, 0, 'chromium took a screenshot');
  const { width, height, channels, pixels } = decodePng(fs.readFileSync(png));
  t.same([width, height], [1200, 700]);
  const colours = new Set<number>();
  let inked = 0;
  for (let i = 0; i < pixels.length; i += channels) {
    colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    if (pixels[i] < 200 || pixels[i + 1] < 200 || pixels[i + 2] < 200) inked += 1;
  }
  t.ok(colours.size > 20, `many colours (${colours.size})`);
  t.ok(inked / (width * height) > 0.01, `ink on more than 1% of the page (${((100 * inked) / (width * height)).toFixed(1)}%)`);
  // The marked entry is drawn in pure red.
  let red = 0;
  for (let i = 0; i < pixels.length; i += channels) if (pixels[i] === 255 && pixels[i + 1] === 0 && pixels[i + 2] === 0) red += 1;
  t.ok(red > 20, `the mark is visible (${red} red pixels)`);
});
