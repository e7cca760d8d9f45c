// A small time-series plot on <canvas>: one line, a shaded area, three grid lines, the
// current value and the scale. No dependencies.
//
//   import { plot } from '/assets/lib/plot.js';
//   plot(canvas, [[tMs, value], ...], { label: 'Bitrate', unit: 'kbps', color: '#3d8bfd' });
//
// `value` may be null (a gap). The x axis ends at the newest point and spans the data, at
// least a minute and at most `windowMs`.

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (Math.abs(v) >= 100) return String(Math.round(v));
  if (Math.abs(v) >= 10) return v.toFixed(1).replace(/\.0$/, '');
  return v.toFixed(2).replace(/\.?0+$/, '') || '0';
}

export function plot(canvas, points, { label = '', unit = '', color = '#3d8bfd', windowMs = 300000, min = 1 } = {}) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 240;
  const h = canvas.clientHeight || 90;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const style = getComputedStyle(canvas);
  const dim = style.getPropertyValue('--plot-dim').trim() || '#9aa7b6';
  const grid = style.getPropertyValue('--plot-grid').trim() || 'rgba(255,255,255,.08)';

  const top = 20;
  const bottom = h - 4;
  const left = 2;
  const right = w - 2;
  const vals = points.map((p) => p[1]).filter((v) => v !== null && v !== undefined);
  const max = niceMax(Math.max(min, ...vals));
  // the window grows with the data, from one minute up to windowMs
  const t1 = points.length ? points[points.length - 1][0] : Date.now();
  const span = points.length ? t1 - points[0][0] : 0;
  const win = Math.min(windowMs, Math.max(60000, span));
  const t0 = t1 - win;
  const x = (t) => left + ((t - t0) / win) * (right - left);
  const y = (v) => bottom - (v / max) * (bottom - top);

  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  for (let i = 0; i <= 2; i++) {
    const gy = Math.round(top + (i * (bottom - top)) / 2) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, gy);
    ctx.lineTo(right, gy);
    ctx.stroke();
  }

  // the line, broken at gaps, and the area under it
  let path = new Path2D();
  let area = new Path2D();
  let open = false;
  let firstX = 0;
  let lastX = 0;
  for (const [t, v] of points) {
    if (t < t0) continue;
    if (v === null || v === undefined) {
      if (open) area.lineTo(lastX, bottom), area.lineTo(firstX, bottom), area.closePath();
      open = false;
      continue;
    }
    const px = x(t);
    const py = y(Math.min(v, max));
    if (!open) {
      path.moveTo(px, py);
      area.moveTo(px, bottom);
      area.lineTo(px, py);
      firstX = px;
      open = true;
    } else {
      path.lineTo(px, py);
      area.lineTo(px, py);
    }
    lastX = px;
  }
  if (open) area.lineTo(lastX, bottom), area.lineTo(firstX, bottom), area.closePath();
  ctx.globalAlpha = 0.18;
  ctx.fillStyle = color;
  ctx.fill(area);
  ctx.globalAlpha = 1;
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.lineJoin = 'round';
  ctx.stroke(path);

  const last = points.length ? points[points.length - 1][1] : null;
  ctx.font = '600 12px system-ui, sans-serif';
  ctx.fillStyle = color;
  ctx.textBaseline = 'top';
  const current = `${fmt(last)}${unit ? ' ' + unit : ''}`;
  ctx.fillText(`${label} ${current}`, left + 2, 3);
  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = dim;
  // the scale sits on the top grid line, right-aligned, under the title
  ctx.textAlign = 'right';
  ctx.fillText(fmt(max), right - 3, top + 2);
  ctx.textAlign = 'left';
  canvas.setAttribute('aria-label', `${label}: ${current}`);
  canvas.dataset.points = String(points.length);
  canvas.dataset.last = last === null || last === undefined ? '' : String(last);
}
