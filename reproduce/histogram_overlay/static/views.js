// SVG drawing of the Histogram overlay tab: the overlay, its legend, the layer
// view and the table. Every element drawn for a run carries `data-run`.

const SVG = 'http://www.w3.org/2000/svg';
// matplotlib's tab10, as `reproduce compare` colours up to ten runs.
const TAB10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
               '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const WIDTH = 760;
const HEIGHT = 320;
const MARGIN = {left: 64, right: 16, top: 12, bottom: 56};
const LOG_Y_RATIO = 100;  // the layer view gets a log y axis when values span more than this

export function runColours(count) {
  if (count <= TAB10.length) return TAB10.slice(0, count);
  return Array.from({length: count}, (_, index) =>
    `hsl(${Math.round((360 * index) / count)}, 70%, 42%)`);
}

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

function title(text) {
  return svg('title', {}, text);
}

function formatNumber(value) {
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  if (magnitude < 1e-3 || magnitude >= 1e5) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

/** About `count` round tick values covering [low, high]. */
function ticks(low, high, count = 5) {
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

/** A plot area with its axes: returns {root, x, y} with x, y mapping data to pixels. */
function frame(xDomain, yDomain, options) {
  const [x0, x1] = xDomain;
  const [y0, y1] = yDomain;
  const left = MARGIN.left;
  const right = WIDTH - MARGIN.right;
  const top = MARGIN.top;
  const bottom = HEIGHT - MARGIN.bottom;
  const x = (value) => left + ((value - x0) / (x1 - x0 || 1)) * (right - left);
  const y = (value) => bottom - ((value - y0) / (y1 - y0 || 1)) * (bottom - top);
  const root = svg('svg', {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: WIDTH, height: HEIGHT,
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
  axes.append(svg('text', {x: (left + right) / 2, y: HEIGHT - 8, 'text-anchor': 'middle',
                           class: 'label'}, options.xLabel),
              svg('text', {x: 14, y: (top + bottom) / 2, 'text-anchor': 'middle', class: 'label',
                           transform: `rotate(-90 14 ${(top + bottom) / 2})`}, options.yLabel));
  root.append(axes);
  return {root, x, y, bottom, top};
}

/**
 * A run's histogram as density (count per unit of x, over the run's total
 * count): [{left, right, density}], or {spike: value} when every bucket has
 * zero width (constant data).
 */
function densities(buckets) {
  const total = buckets.reduce((sum, bucket) => sum + bucket[2], 0);
  if (!(total > 0)) return {bars: []};
  const varied = buckets.filter(([left, right]) => right > left);
  if (!varied.length) return {bars: [], spike: buckets.find((bucket) => bucket[2] > 0)[0]};
  return {bars: varied.map(([left, right, count]) => ({
    left, right, density: count / (right - left) / total}))};
}

function logTicks(low, high) {
  const values = [];
  for (let power = Math.ceil(low); power <= Math.floor(high); power++) values.push(power);
  return (values.length ? values : [low]).map((power) => [power, `1e${power}`]);
}

/** A run's buckets without those holding a non-finite number (sent as null). */
function finiteBuckets(series) {
  return series.buckets.filter((bucket) => bucket.every(Number.isFinite));
}

export function drawOverlay(container, data, colours, logY, hover) {
  const shapes = data.series.map((series) => densities(finiteBuckets(series)));
  const filled = data.series.flatMap(
      (series) => finiteBuckets(series).filter((bucket) => bucket[2] > 0));
  let xLow = Math.min(...filled.map((bucket) => bucket[0]));
  let xHigh = Math.max(...filled.map((bucket) => bucket[1]));
  if (!filled.length) [xLow, xHigh] = [-1, 1];
  if (!(xHigh > xLow)) [xLow, xHigh] = [xLow - 0.5, xHigh + 0.5];
  const values = shapes.flatMap((shape) => shape.bars.map((bar) => bar.density));
  const positive = values.filter((value) => value > 0);
  const peak = Math.max(1e-12, ...values);
  // Log y: zero density sits at the floor, a decade below the smallest density.
  const floor = positive.length ? Math.log10(Math.min(...positive)) - 1 : -1;
  const transform = logY ? (value) => (value > 0 ? Math.log10(value) : floor) : (value) => value;
  const yDomain = logY ? [floor, Math.log10(peak)] : [0, peak * 1.05];
  const yTicks = logY ? logTicks(...yDomain)
                      : ticks(...yDomain).map((value) => [value, formatNumber(value)]);
  const chart = frame([xLow, xHigh], yDomain, {
    className: 'overlay', xTicks: ticks(xLow, xHigh).map((value) => [value, formatNumber(value)]),
    yTicks, xLabel: data.tag, yLabel: logY ? 'density (log)' : 'density'});
  const base = chart.y(yDomain[0]);
  data.series.forEach((series, index) => {
    const shape = shapes[index];
    let path;
    if (shape.spike !== undefined) {
      path = `M${chart.x(shape.spike)},${base}V${chart.top}`;
    } else if (shape.bars.length) {
      path = `M${chart.x(shape.bars[0].left)},${base}` + shape.bars.map((bar) => {
        const height = chart.y(transform(bar.density));
        return `L${chart.x(bar.left)},${height}L${chart.x(bar.right)},${height}`;
      }).join('') + `L${chart.x(shape.bars[shape.bars.length - 1].right)},${base}`;
    } else {
      path = '';  // an empty histogram: nothing to draw, but the run is listed
    }
    const text = `${series.run} (step ${series.step})`;
    const node = svg('path', {d: path, class: 'series', 'data-run': series.run,
                              'data-step': series.step, stroke: colours[index],
                              fill: colours[index]}, title(text));
    node.addEventListener('mouseenter', () => hover.enter(series.run, text));
    node.addEventListener('mouseleave', hover.leave);
    chart.root.append(node);
  });
  container.replaceChildren(chart.root);
}

export function fillLegend(list, data, colours, hover) {
  list.replaceChildren(...data.series.map((series, index) => {
    const text = `${series.run} (step ${series.step})`;
    const item = document.createElement('li');
    item.dataset.run = series.run;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colours[index];
    const step = document.createElement('span');
    step.className = 'step';
    step.textContent = ` step ${series.step}`;
    item.append(swatch, series.run, step);
    item.title = text;
    item.addEventListener('mouseenter', () => hover.enter(series.run, text));
    item.addEventListener('mouseleave', hover.leave);
    return item;
  }));
}

export function drawLayers(container, data, colours, metric, hover) {
  const names = data.layer_names;
  const lines = data.series.map((series) => series.layers[metric]);
  const values = lines.flat().filter((value) => value !== null && Number.isFinite(value));
  if (!values.length) {
    const note = document.createElement('p');
    note.textContent = metric === 'norm'
      ? 'No norm scalars are logged for these layers: choose the std.'
      : 'No values for these layers.';
    container.replaceChildren(note);
    return;
  }
  const positive = values.filter((value) => value > 0);
  const logY = positive.length === values.length &&
      Math.max(...values) > LOG_Y_RATIO * Math.min(...values);
  const transform = logY ? Math.log10 : (value) => value;
  // Log y spans whole decades, so each end has a tick.
  const yDomain = logY ? [Math.floor(Math.log10(Math.min(...values))),
                          Math.ceil(Math.log10(Math.max(...values)))]
                       : [Math.min(0, ...values), Math.max(...values) * 1.05];
  const yTicks = logY ? logTicks(...yDomain)
                      : ticks(...yDomain).map((value) => [value, formatNumber(value)]);
  const chart = frame([-0.5, names.length - 0.5], yDomain, {
    className: 'layers', xTicks: names.map((name, index) => [index, name]), yTicks,
    xLabel: `layers of ${data.tag}`, yLabel: metric === 'norm' ? 'norm' : 'std'});
  lines.forEach((line, index) => {
    const run = data.series[index].run;
    const points = line.map((value, layer) => (
      value === null || !Number.isFinite(value) || (logY && !(value > 0))
        ? null : [chart.x(layer), chart.y(transform(value))]));
    // A missing layer breaks the line.
    const path = points.map((point, layer) => (
      point === null ? '' : `${layer && points[layer - 1] ? 'L' : 'M'}${point[0]},${point[1]}`))
      .join('');
    const text = `${run} (step ${data.series[index].step})`;
    const group = svg('g', {class: 'layer-series', 'data-run': run, stroke: colours[index],
                            fill: colours[index]}, title(text));
    group.append(svg('path', {d: path, fill: 'none'}));
    points.forEach((point, layer) => {
      if (point) {
        group.append(svg('circle', {cx: point[0], cy: point[1], r: 3},
                         title(`${run}, ${names[layer]}: ${formatNumber(line[layer])}`)));
      }
    });
    group.addEventListener('mouseenter', () => hover.enter(run, text));
    group.addEventListener('mouseleave', hover.leave);
    chart.root.append(group);
  });
  container.replaceChildren(chart.root);
}

export function fillTable(table, data, colours) {
  const symbol = data.symbol;
  const headers = ['', 'run', 'step', `mean|${symbol}|`, 'std', 'norm',
                   `norm ratio ${data.ratio_layers}`];
  const head = document.createElement('tr');
  for (const text of headers) {
    const cell = document.createElement('th');
    cell.textContent = text;
    head.append(cell);
  }
  const rows = data.series.map((series, index) => {
    const row = document.createElement('tr');
    row.dataset.run = series.run;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colours[index];
    const cells = [swatch, series.run, String(series.step), series.cells.mean_abs,
                   series.cells.std, series.cells.norm, series.cells.ratio];
    for (const content of cells) {
      const cell = document.createElement('td');
      cell.append(content);
      row.append(cell);
    }
    return row;
  });
  table.replaceChildren(head, ...rows);
}
