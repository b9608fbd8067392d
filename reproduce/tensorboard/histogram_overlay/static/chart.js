// What every chart of the Histogram overlay tab shares: SVG nodes, numbers, ticks, a plot
// frame with its axes, the x scale the server chose, and the colours of groups.

const SVG = 'http://www.w3.org/2000/svg';
// matplotlib's tab10, as `reproduce compare` colours up to ten runs.
const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
               '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
export const SIZE = {width: 760, height: 320};
export const PANEL_SIZE = {width: 420, height: 260};  // one of several small multiples
const MARGIN = {left: 64, right: 16, top: 12, bottom: 56};

/** One colour per group, in the groups' order: tab10 up to ten, then evenly spaced hues. */
export function groupColours(groups) {
  const colours = groups.length <= TAB10.length ? TAB10.slice(0, groups.length)
    : groups.map((_, index) => `hsl(${Math.round((360 * index) / groups.length)}, 70%, 42%)`);
  return new Map(groups.map((group, index) => [group, colours[index]]));
}

export function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

export function title(text) {
  return svg('title', {}, text);
}

export function formatNumber(value) {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  const power = Math.round(Math.log10(magnitude));
  if ((power < -3 || power >= 5) && Math.abs(magnitude / 10 ** power - 1) < 1e-9) {
    return `${value < 0 ? '-' : ''}1e${power}`;  // a whole decade
  }
  if (magnitude < 1e-3 || magnitude >= 1e5) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

/** About `count` round tick values covering [low, high]. */
export function ticks(low, high, count = 5) {
  if (!(high > low)) return [low];
  const rough = (high - low) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((size) => size >= rough);
  const values = [];
  for (let value = Math.ceil(low / step) * step; value <= high + step * 1e-9; value += step) {
    values.push(Math.abs(value) < step * 1e-9 ? 0 : value);
  }
  return values;
}

export function logTicks(low, high) {
  const values = [];
  for (let power = Math.ceil(low); power <= Math.floor(high); power++) values.push(power);
  return (values.length ? values : [low]).map((power) => [power, `1e${power}`]);
}

/**
 * The x scale of the answer, as the server applied it: `apply(x, std)` maps a value to the
 * axis, `ticks(low, high)` gives [position, label] pairs labelled in the original values.
 */
export function scaleOf(answer) {
  const {kind, linthresh} = answer.scale;
  if (kind === 'symlog') {
    const apply = (value) => Math.sign(value) * Math.log10(1 + Math.abs(value) / linthresh);
    const invert = (value) => Math.sign(value) * linthresh * (10 ** Math.abs(value) - 1);
    return {
      kind, apply,
      label: `symlog: sign(x) log10(1 + |x| / ${formatNumber(linthresh)})`,
      // Ticks at 0 and at whole decades of x, at most three decades a side.
      ticks: (low, high) => {
        const reach = Math.max(Math.abs(invert(low)), Math.abs(invert(high)));
        const first = Math.ceil(Math.log10(linthresh));
        const last = Math.floor(Math.log10(reach));
        const every = Math.max(1, Math.ceil((last - first + 1) / 3));
        const decades = [];
        for (let power = last; power >= first; power -= every) decades.push(10 ** power);
        const values = [0, ...decades, ...decades.map((value) => -value)]
            .map((value) => [apply(value), value])
            .filter(([position]) => position >= low && position <= high)
            .sort((a, b) => a[0] - b[0]);
        return values.length >= 2 ? values.map(([position, value]) => [position,
                                                                       formatNumber(value)])
          : ticks(low, high).map((value) => [value, formatNumber(invert(value))]);
      },
    };
  }
  const plain = (low, high) => ticks(low, high).map((value) => [value, formatNumber(value)]);
  if (kind === 'std') {
    return {kind, apply: (value, std) => value / (std > 0 ? std : 1), ticks: plain,
            label: 'x / the run\'s std'};
  }
  return {kind, apply: (value) => value, ticks: plain, label: null};
}

/** A plot area with its axes: returns {root, x, y, bottom, top} mapping data to pixels. */
export function frame(xDomain, yDomain, options) {
  const {width, height} = options.size || SIZE;
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  const left = MARGIN.left;
  const right = width - MARGIN.right;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const x = (value) => left + ((value - x0) / (x1 - x0 || 1)) * (right - left);
  const y = (value) => bottom - ((value - y0) / (y1 - y0 || 1)) * (bottom - top);
  const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, width, height,
                           class: options.className});
  const axes = svg('g', {class: 'axes'});
  axes.append(svg('line', {x1: left, x2: right, y1: bottom, y2: bottom}),
              svg('line', {x1: left, x2: left, y1: top, y2: bottom}));
  for (const [value, text] of options.xTicks) {
    axes.append(svg('line', {x1: x(value), x2: x(value), y1: bottom, y2: bottom + 4}),
                svg('text', {x: x(value), y: bottom + 16, 'text-anchor': 'middle'}, text));
  }
  for (const [value, text] of options.yTicks) {
    axes.append(svg('line', {x1: left - 4, x2: left, y1: y(value), y2: y(value)}),
                svg('text', {x: left - 6, y: y(value) + 4, 'text-anchor': 'end'}, text));
  }
  axes.append(svg('text', {x: (left + right) / 2, y: height - 8, 'text-anchor': 'middle',
                           class: 'label'}, options.xLabel),
              svg('text', {x: 14, y: (top + bottom) / 2, 'text-anchor': 'middle', class: 'label',
                           transform: `rotate(-90 14 ${(top + bottom) / 2})`}, options.yLabel));
  root.append(axes);
  return {root, x, y, bottom, top};
}

/** A titled box holding one panel's chart, or the bare chart when there is one panel. */
export function panelBox(chart, name, label) {
  if (!name) return chart;
  const box = document.createElement('figure');
  box.className = 'panel';
  box.dataset.panel = name;
  const caption = document.createElement('figcaption');
  caption.textContent = `${label} = ${name}`;
  box.append(caption, chart);
  return box;
}

/** Calls `hover.enter` and `hover.leave` for `node`, which stands for `key` ({run, group}). */
export function hoverable(node, hover, key, text) {
  node.addEventListener('mouseenter', () => hover.enter(key, text));
  node.addEventListener('mouseleave', hover.leave);
  return node;
}
