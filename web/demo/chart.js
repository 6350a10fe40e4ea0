// The page's bar charts: an inline SVG of viewBox 0 0 400 120, bars scaled to the largest value, a tooltip per bar
// and a label line at the top. Drawn with DOM calls only (no chart library, no HTML strings).

const NS = 'http://www.w3.org/2000/svg';

/**
 * Replace the contents of `svg` with one bar per value, from the left, each `400 / slots` wide.
 * @param {SVGSVGElement} svg
 * @param {number[]} values
 * @param {{colour: (i: number) => string, tip: (i: number) => string, label: string, slots?: number}} how
 */
export function drawBars(svg, values, { colour, tip, label, slots = values.length }) {
  const top = Math.max(...values, 1e-9);
  const w = 400 / Math.max(slots, values.length, 1);
  const gap = w > 4 ? 1 : 0;
  const bars = values.map((v, i) => {
    const h = (v / top) * 100;
    const bar = document.createElementNS(NS, 'rect');
    bar.setAttribute('x', String(i * w + gap));
    bar.setAttribute('y', String(115 - h));
    bar.setAttribute('width', String(Math.max(w - 2 * gap, 0.5)));
    bar.setAttribute('height', String(h));
    bar.setAttribute('fill', colour(i));
    const title = document.createElementNS(NS, 'title');
    title.textContent = tip(i);
    bar.append(title);
    return bar;
  });
  const text = document.createElementNS(NS, 'text');
  text.setAttribute('x', '4');
  text.setAttribute('y', '12');
  text.setAttribute('font-size', '11');
  text.textContent = label;
  svg.replaceChildren(...bars, text);
}
