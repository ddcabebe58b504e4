// Annotations drawn over a video: shapes in normalized video coordinates (0..1 of the
// frame), mapped onto the part of the <video> element the picture really occupies
// (object-fit: contain leaves bars when the aspect ratios differ). Used by the
// customer's page (draw what the expert sent) and the expert console (draw and send).

const LASER_MS = 1500;

export class Overlay {
  constructor(video, canvas) {
    this.video = video;
    this.canvas = canvas;
    this.shapes = new Map();
    this.lasers = [];
    this.draft = null;
    this.onRendered = null;
    const redraw = () => this.render();
    new ResizeObserver(redraw).observe(video);
    video.addEventListener("loadedmetadata", redraw);
    video.addEventListener("resize", redraw);
  }

  /// The rectangle (in canvas pixels) the video picture occupies.
  frame() {
    const cw = this.canvas.clientWidth;
    const ch = this.canvas.clientHeight;
    const vw = this.video.videoWidth || cw;
    const vh = this.video.videoHeight || ch;
    const scale = Math.min(cw / vw, ch / vh);
    const w = vw * scale;
    const h = vh * scale;
    return { x: (cw - w) / 2, y: (ch - h) / 2, w, h };
  }

  /// Normalized point -> canvas pixels, and back.
  toPx([nx, ny]) {
    const f = this.frame();
    return [f.x + nx * f.w, f.y + ny * f.h];
  }

  toNorm(px, py) {
    const f = this.frame();
    const clamp = (v) => Math.min(1, Math.max(0, v));
    return [clamp((px - f.x) / f.w), clamp((py - f.y) / f.h)];
  }

  /// Draws the kept shapes onto another canvas covering a whole frame of w x h pixels
  /// (a snapshot at the video's own resolution).
  paintAt(g, w, h) {
    const saved = this.frame;
    this.frame = () => ({ x: 0, y: 0, w, h });
    try {
      for (const s of this.shapes.values()) this.draw(g, s);
    } finally {
      this.frame = saved;
    }
  }

  set(shape) {
    if (shape.kind === "laser") {
      this.lasers.push({ shape, until: performance.now() + LASER_MS });
      setTimeout(() => this.render(), LASER_MS + 20);
    } else {
      this.shapes.set(shape.id, shape);
    }
    this.render(shape);
  }

  remove(id) {
    this.shapes.delete(id);
    this.render();
  }

  /// `annotation_moved`: the server tracked an anchored shape to a new place on the
  /// moving picture (its points as drawn, mapped), or lost it (`tracking: "lost"`:
  /// drawn faded). Unknown ids (removed meanwhile) are ignored.
  move(id, points, tracking) {
    const s = this.shapes.get(id);
    if (!s || !Array.isArray(points) || points.length !== s.points.length) return;
    this.shapes.set(id, { ...s, points, tracking });
    this.render();
  }

  clear() {
    this.shapes.clear();
    this.render();
  }

  /// Redraws everything; `fresh` is the shape that caused it (reported once painted).
  render(fresh) {
    const c = this.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = c.clientWidth;
    const h = c.clientHeight;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
      c.width = Math.round(w * dpr);
      c.height = Math.round(h * dpr);
    }
    const g = c.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const now = performance.now();
    this.lasers = this.lasers.filter((l) => l.until > now);
    for (const s of this.shapes.values()) this.draw(g, s);
    for (const l of this.lasers) this.draw(g, l.shape);
    if (this.draft) this.draw(g, this.draft);
    if (fresh && this.onRendered) requestAnimationFrame(() => this.onRendered(fresh));
  }

  draw(g, s) {
    const color = s.color || "#ff3b30";
    const lost = s.tracking === "lost";
    g.save();
    g.globalAlpha = lost ? 0.25 : 1;
    g.strokeStyle = color;
    g.fillStyle = color;
    g.lineWidth = 4;
    g.lineCap = "round";
    g.lineJoin = "round";
    const p = s.points.map((pt) => this.toPx(pt));
    switch (s.kind) {
      case "arrow": {
        const [[x0, y0], [x1, y1]] = p;
        g.beginPath();
        g.moveTo(x0, y0);
        g.lineTo(x1, y1);
        g.stroke();
        const a = Math.atan2(y1 - y0, x1 - x0);
        const head = 16;
        g.beginPath();
        g.moveTo(x1, y1);
        g.lineTo(x1 - head * Math.cos(a - 0.45), y1 - head * Math.sin(a - 0.45));
        g.lineTo(x1 - head * Math.cos(a + 0.45), y1 - head * Math.sin(a + 0.45));
        g.closePath();
        g.fill();
        break;
      }
      case "circle": {
        const [[cx, cy], [rx, ry]] = p;
        g.beginPath();
        g.arc(cx, cy, Math.hypot(rx - cx, ry - cy), 0, 2 * Math.PI);
        g.stroke();
        break;
      }
      case "rect": {
        const [[x0, y0], [x1, y1]] = p;
        g.strokeRect(Math.min(x0, x1), Math.min(y0, y1), Math.abs(x1 - x0), Math.abs(y1 - y0));
        break;
      }
      case "freehand": {
        g.beginPath();
        p.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y)));
        g.stroke();
        break;
      }
      case "text": {
        const [[x, y]] = p;
        g.font = "600 18px system-ui, sans-serif";
        const m = g.measureText(s.text);
        g.fillStyle = "rgba(0,0,0,.6)";
        g.fillRect(x - 4, y - 20, m.width + 8, 26);
        g.fillStyle = color;
        g.fillText(s.text, x, y);
        break;
      }
      case "laser": {
        const [[x, y]] = p;
        g.beginPath();
        g.arc(x, y, 8, 0, 2 * Math.PI);
        g.fill();
        break;
      }
    }
    g.restore();
  }
}

/// Lets the expert draw on the overlay with the mouse, a pen or a finger; `send` gets
/// each finished shape (and laser positions while moving).
export function drawingTool(overlay, send) {
  const c = overlay.canvas;
  let tool = "arrow";
  let color = "#ff3b30";
  let n = 0;
  let start = null;
  let points = [];
  let lastLaser = 0;
  const id = () => `a${Date.now().toString(36)}${(n++).toString(36)}`;
  const at = (e) => {
    const r = c.getBoundingClientRect();
    return overlay.toNorm(e.clientX - r.left, e.clientY - r.top);
  };
  const round = ([x, y]) => [Math.round(x * 10000) / 10000, Math.round(y * 10000) / 10000];
  const shape = (kind, pts, extra = {}) => ({ id: id(), kind, points: pts.map(round), color, frame_ts: Math.round(overlay.video.currentTime * 1000), frozen: overlay.video.paused, sent_at: Date.now(), ...extra });

  c.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    c.setPointerCapture(e.pointerId);
    start = at(e);
    points = [start];
    if (tool === "text") {
      const text = prompt("Text");
      if (text && text.trim()) send(shape("text", [start], { text: text.trim().slice(0, 200) }));
      start = null;
    }
  });
  c.addEventListener("pointermove", (e) => {
    if (!start) return;
    const p = at(e);
    if (tool === "laser") {
      if (performance.now() - lastLaser > 50) {
        lastLaser = performance.now();
        send(shape("laser", [p]));
      }
      return;
    }
    if (tool === "freehand") {
      const last = points[points.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) > 0.004 && points.length < 512) points.push(p);
      overlay.draft = { kind: "freehand", points, color };
    } else {
      overlay.draft = { kind: tool, points: [start, p], color };
    }
    overlay.render();
  });
  c.addEventListener("pointerup", (e) => {
    if (!start) return;
    const end = at(e);
    overlay.draft = null;
    if (tool === "freehand" && points.length >= 2) send(shape("freehand", points));
    else if (["arrow", "circle", "rect"].includes(tool) && Math.hypot(end[0] - start[0], end[1] - start[1]) > 0.01) send(shape(tool, [start, end]));
    start = null;
    overlay.render();
  });
  return {
    setTool: (t) => (tool = t),
    setColor: (col) => (color = col),
  };
}
