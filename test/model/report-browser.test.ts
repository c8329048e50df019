// The report in a real browser: headless Chromium loads report.html from a file, the charts are in
// its DOM, and its screenshot is a real picture with the series colours drawn on it.
// Skipped where no `chromium` is installed (Debian: apt install chromium).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { inflateSync } from "node:zlib";
import { CHARTS, writeReport } from "../../src/report/html.js";

const run = promisify(execFile);

function findChromium(): string | null {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    for (const name of ["chromium", "chromium-browser"]) {
      const p = join(dir, name);
      try {
        accessSync(p, constants.X_OK);
        return p;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** A run as the loop writes it: M1 without pairs, later models with them, a NaN written as null. */
function metrics(mode: string, goldSlope: number): string {
  const rows: Record<string, unknown>[] = [];
  for (let t = 0; t <= 4; t++) {
    const row: Record<string, unknown> = {
      iteration: t,
      model: `M${t + 1}`,
      method: "sr",
      mode,
      "eval/gold": 2.1 + goldSlope * t,
      "eval/exact": 0.05 + 0.2 * t * goldSlope,
      "eval/judge_pairwise": t === 2 ? null : 0.55 + goldSlope * 0.1 * t,
      "eval/likelihood_pairwise": 0.5 + 0.01 * t,
      "eval/length": 180 + 100 * goldSlope * t,
    };
    if (t > 0) {
      Object.assign(row, {
        "pairs/count": 400 - 100 * goldSlope * t,
        "pairs/gold_gap": 0.9 - goldSlope * 0.4 * t,
        "rewards/margins": goldSlope * t,
        "rewards/accuracies": 0.6 + 0.05 * t,
        "time/train_s": 120.5 * t,
      });
    }
    rows.push(row);
  }
  return `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`;
}

interface Png {
  width: number;
  height: number;
  colorType: number;
  rgba: (x: number, y: number) => [number, number, number];
}

/** Minimal PNG decoder (8-bit RGB/RGBA, non-interlaced — what Chromium writes). */
function decodePng(buf: Buffer): Png {
  assert.deepEqual([...buf.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  assert.equal(buf.toString("latin1", 12, 16), "IHDR", "first chunk is IHDR");
  const width = buf.readUInt32BE(16);
  const height = buf.readUInt32BE(20);
  const depth = buf[24];
  const colorType = buf[25];
  const interlace = buf[28];
  assert.equal(depth, 8, "8-bit PNG");
  assert.ok(colorType === 2 || colorType === 6, `RGB(A) PNG (colour type ${colorType})`);
  assert.equal(interlace, 0, "not interlaced");
  const idat: Buffer[] = [];
  for (let off = 8; off < buf.length; ) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString("latin1", off + 4, off + 8);
    if (type === "IDAT") idat.push(buf.subarray(off + 8, off + 8 + len));
    off += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const bpp = colorType === 6 ? 4 : 3;
  const stride = width * bpp;
  const px = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const row = y * stride;
    const prev = row - stride;
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? px[row + i - bpp] : 0;
      const b = y > 0 ? px[prev + i] : 0;
      const c = y > 0 && i >= bpp ? px[prev + i - bpp] : 0;
      let v = raw[src + i];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else assert.equal(filter, 0, `PNG row filter ${filter}`);
      px[row + i] = v & 255;
    }
  }
  return {
    width,
    height,
    colorType,
    rgba: (x, y) => [px[y * stride + x * bpp], px[y * stride + x * bpp + 1], px[y * stride + x * bpp + 2]],
  };
}

function countColour(png: Png, hex: string, tol = 24): number {
  const want = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  let n = 0;
  for (let y = 0; y < png.height; y++) {
    for (let x = 0; x < png.width; x++) {
      const p = png.rgba(x, y);
      if (Math.abs(p[0] - want[0]) <= tol && Math.abs(p[1] - want[1]) <= tol && Math.abs(p[2] - want[2]) <= tol) n++;
    }
  }
  return n;
}

test("report.html renders in headless Chromium: charts in the DOM, a real screenshot", { timeout: 180_000 }, async (t) => {
  const chromium = findChromium();
  if (!chromium) {
    t.skip("chromium not installed (apt install chromium)");
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "srlm-report-browser-"));
  try {
    const runs = [
      { name: "sr-judge", mode: "judge", slope: 0.25 },
      { name: "sr-oracle", mode: "oracle", slope: 0.4 },
    ];
    for (const r of runs) {
      const d = join(dir, r.name);
      await mkdir(d);
      await writeFile(join(d, "metrics.jsonl"), metrics(r.mode, r.slope));
      await writeFile(
        join(d, "config.resolved.yaml"),
        `preset: sandbox\nmode: ${r.mode}\nnote: "<script>document.title='pwned'</script>"\n`,
      );
      await writeFile(
        join(d, "manifest.json"),
        JSON.stringify({ srlm_version: "0.1.0", node: process.version, seed: 1, created: "2025-01-01T00:00:00Z" }),
      );
    }
    const html = join(dir, "report.html");
    await writeReport(
      runs.map((r) => join(dir, r.name)),
      html,
    );
    const url = pathToFileURL(html).href;
    const profile = join(dir, "profile");
    const common = [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--hide-scrollbars",
      "--no-first-run",
      `--user-data-dir=${profile}`,
    ];

    // 1. The DOM after load: every chart, every series, nothing injected.
    const { stdout: dom } = await run(chromium, [...common, "--dump-dom", url], { timeout: 90_000, maxBuffer: 64 << 20 });
    const metricsInDom = [...dom.matchAll(/<svg[^>]*class="chart"[^>]*data-metric="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(
      metricsInDom,
      CHARTS.map((c) => c.metric),
      "every chart is in the DOM after load, in order",
    );
    const seriesInDom = (dom.match(/<path[^>]*class="series[^"]*"/g) ?? []).length;
    // 2 runs × 7 charts, plus the dashed likelihood series of each run on the pairwise chart
    assert.equal(seriesInDom, 2 * CHARTS.length + 2, "series paths in the DOM");
    assert.ok(!/<script/i.test(dom), "no script element in the DOM: the config's <script> stayed text");
    assert.match(dom, /&lt;script&gt;document\.title='pwned'&lt;\/script&gt;/, "config shown verbatim as text");
    assert.match(dom, /<title>srlm report — sr-judge, sr-oracle<\/title>/, "document title");

    // 2. The screenshot: a PNG of the requested size, with both series colours drawn.
    const png = join(dir, "shot.png");
    await run(chromium, [...common, `--screenshot=${png}`, "--window-size=1200,2000", url], { timeout: 90_000 });
    const size = (await stat(png)).size;
    assert.ok(size > 30_000, `screenshot is non-trivial (${size} bytes)`);
    const img = decodePng(await readFile(png));
    assert.equal(img.width, 1200, `screenshot width ${img.width}`);
    assert.ok(img.height >= 1000 && img.height <= 2000, `screenshot height ${img.height}`);
    const blue = countColour(img, "#4e79a7");
    const orange = countColour(img, "#f28e2b");
    assert.ok(blue > 2000, `first series colour drawn (${blue} px)`);
    assert.ok(orange > 2000, `second series colour drawn (${orange} px)`);
    if (process.env.SRLM_KEEP_SCREENSHOT) await writeFile(process.env.SRLM_KEEP_SCREENSHOT, await readFile(png));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
