// One person's per-frame P(fake) over the video's duration, as an SVG the keyboard can walk.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 120;
const PAD = { left: 34, right: 10, top: 8, bottom: 20 };

function node(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  parent.appendChild(element);
  return element;
}

/**
 * points: [{time, probability, frame, face}] in time order; onSelect(point, element) when one
 * is clicked or chosen with Enter/Space.
 */
export function renderTimeline(points, duration, threshold, label, onSelect) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute("class", "timeline");
  svg.setAttribute("role", "group");
  svg.setAttribute("aria-label", label);
  const span = Math.max(duration, ...points.map((p) => p.time), 1e-6);
  const x = (time) => PAD.left + (time / span) * (WIDTH - PAD.left - PAD.right);
  const y = (p) => PAD.top + (1 - p) * (HEIGHT - PAD.top - PAD.bottom);

  node("line", { class: "axis", x1: PAD.left, x2: PAD.left, y1: y(1), y2: y(0) }, svg);
  node("line", { class: "axis", x1: PAD.left, x2: x(span), y1: y(0), y2: y(0) }, svg);
  for (const [value, text] of [[0, "0"], [1, "1"]]) {
    node("text", { x: PAD.left - 6, y: y(value) + 4, "text-anchor": "end" }, svg).textContent = text;
  }
  node("text", { x: x(span), y: HEIGHT - 4, "text-anchor": "end" }, svg).textContent = `${span.toFixed(1)} s`;
  node("line", { class: "threshold", x1: PAD.left, x2: x(span), y1: y(threshold), y2: y(threshold) }, svg)
    .appendChild(document.createElementNS(SVG, "title")).textContent = `threshold ${threshold.toFixed(3)}`;
  node("polyline", { class: "trace", points: points.map((p) => `${x(p.time)},${y(p.probability)}`).join(" ") }, svg);

  for (const point of points) {
    const verdict = point.probability >= threshold ? "fake" : "real";
    const circle = node("circle", {
      class: `point ${verdict}`, cx: x(point.time), cy: y(point.probability), r: 6,
      tabindex: 0, role: "button",
      "aria-label": `${point.time.toFixed(2)} s, P(fake) ${point.probability.toFixed(3)} (${verdict}): show this face`,
      "data-frame": point.frame, "data-face": point.face,
    }, svg);
    const choose = () => onSelect(point, circle);
    circle.addEventListener("click", choose);
    circle.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); choose(); }
    });
  }
  return svg;
}
