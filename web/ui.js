// Small DOM helpers shared by the demo pages. Everything is built with
// createElement and textContent: no HTML strings anywhere.

/** el('div', { class: 'x', onclick }, 'text', child) */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Append a line to a log element, keeping at most `max` lines. */
export function logLine(box, text, cls, max = 200) {
  box.append(el('div', { class: cls }, `${new Date().toLocaleTimeString()}  ${text}`));
  while (box.childElementCount > max) box.firstElementChild.remove();
  box.scrollTop = box.scrollHeight;
}

/** A rolling line chart on a <canvas>: push(value) once per tick. */
export class Sparkline {
  constructor(canvas, { points = 60, color = '#2563eb', label = '' } = {}) {
    this.canvas = canvas;
    this.values = [];
    this.points = points;
    this.color = color;
    this.label = label;
  }

  push(v) {
    this.values.push(v);
    if (this.values.length > this.points) this.values.shift();
    // What is drawn, readable by tests and tools: the newest and largest value.
    this.canvas.dataset.last = String(v);
    this.canvas.dataset.max = String(Math.max(...this.values));
    this.draw();
  }

  draw() {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = (c.width = c.clientWidth * dpr);
    const h = (c.height = c.clientHeight * dpr);
    const g = c.getContext('2d');
    g.clearRect(0, 0, w, h);
    const max = Math.max(1, ...this.values);
    g.strokeStyle = this.color;
    g.lineWidth = 2 * dpr;
    // The newest value sits at the right edge and history scrolls left, so a
    // chart is readable from its first second.
    const n = this.values.length;
    const xy = (v, i) => [w - ((n - 1 - i) / (this.points - 1)) * (w - 4 * dpr) - 2 * dpr,
      h - (v / max) * (h - 16 * dpr) - 2 * dpr];
    g.beginPath();
    this.values.forEach((v, i) => { const [x, y] = xy(v, i); if (i) g.lineTo(x, y); else g.moveTo(x, y); });
    g.stroke();
    if (n) {
      const [x, y] = xy(this.values[n - 1], n - 1);
      g.fillStyle = this.color;
      g.beginPath();
      g.arc(x, y, 2.5 * dpr, 0, 2 * Math.PI);
      g.fill();
    }
    g.fillStyle = '#5b6470';
    g.font = `${11 * dpr}px system-ui`;
    const last = this.values.at(-1) ?? 0;
    g.fillText(`${this.label} ${Number.isInteger(last) ? last : last.toFixed(1)} (max ${Number.isInteger(max) ? max : max.toFixed(1)})`, 4 * dpr, 12 * dpr);
  }
}

/** The median of a list of numbers (0 for none); sorts the list in place. */
export function median(values) {
  values.sort((a, b) => a - b);
  return values.length ? values[values.length >> 1] : 0;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}
