// The Histogram overlay tab's views at one step: the overlay (one panel per value of the
// panel hparam; every run, or each group's median and band), its legend of groups, the
// layer view and the table. Every element drawn for a run carries `data-run` and
// `data-group`; one drawn for a group carries `data-group` and `data-runs`.

import {PANEL_SIZE, SIZE, frame, formatNumber, hoverable, logTicks, panelBox, scaleOf, svg,
        ticks, title} from './chart.js';

const LOG_Y_RATIO = 100;  // the layer view gets a log y axis when values span more than this

/** A run's buckets without those holding a non-finite number (sent as null). */
function finiteBuckets(series) {
  return series.buckets.filter((bucket) => bucket.every(Number.isFinite));
}

/**
 * A run's histogram on the x scale as density (share of its count per unit of the axis):
 * {bars: [{left, right, density}]}, or {spike: x} when every bucket has zero width.
 */
function densities(series, scale) {
  const buckets = finiteBuckets(series).map(([left, right, count]) => [
    scale.apply(left, series.std), scale.apply(right, series.std), count]);
  const total = buckets.reduce((sum, bucket) => sum + bucket[2], 0);
  if (!(total > 0)) return {bars: []};
  const varied = buckets.filter(([left, right]) => right > left);
  if (!varied.length) return {bars: [], spike: buckets.find((bucket) => bucket[2] > 0)[0]};
  return {bars: varied.map(([left, right, count]) => ({
    left, right, density: count / (right - left) / total}))};
}

/** The y axis of densities: [domain, ticks, map]; log y puts zero a decade below the least. */
function densityAxis(values, logY) {
  const positive = values.filter((value) => value > 0);
  const peak = Math.max(1e-12, ...values);
  const floor = positive.length ? Math.log10(Math.min(...positive)) - 1 : -1;
  const map = logY ? (value) => (value > 0 ? Math.log10(value) : floor) : (value) => value;
  const domain = logY ? [floor, Math.log10(peak)] : [0, peak * 1.05];
  const yTicks = logY ? logTicks(...domain)
                      : ticks(...domain).map((value) => [value, formatNumber(value)]);
  return {domain, yTicks, map};
}

function stepPath(chart, edges, heights, base) {
  let path = `M${chart.x(edges[0])},${base}`;
  heights.forEach((height, index) => {
    path += `L${chart.x(edges[index])},${height}L${chart.x(edges[index + 1])},${height}`;
  });
  return `${path}L${chart.x(edges[edges.length - 1])},${base}`;
}

export function drawOverlay(container, data, colours, logY, hover) {
  const scale = scaleOf(data);
  const several = data.panels.length > 1;
  const byRun = new Map(data.series.map((series) => [series.run, series]));
  const charts = data.panels.map((panel) => {
    const members = panel.runs.map((run) => byRun.get(run));
    const shapes = members.map((series) => densities(series, scale));
    const values = data.agg === 'bands'
      ? panel.bands.flatMap((band) => band.high)
      : shapes.flatMap((shape) => shape.bars.map((bar) => bar.density));
    const axis = densityAxis(values.filter(Number.isFinite), logY);
    const chart = frame(panel.range, axis.domain, {
      className: 'overlay', size: several ? PANEL_SIZE : SIZE,
      xTicks: scale.ticks(...panel.range), yTicks: axis.yTicks,
      xLabel: scale.label ? `${data.tag} (${scale.label})` : data.tag,
      yLabel: logY ? 'density (log)' : 'density'});
    const base = chart.y(axis.domain[0]);
    if (data.agg === 'bands') {
      for (const band of panel.bands) drawBand(chart, band, colours, axis.map, base, hover);
    } else {
      members.forEach((series, index) => {
        const shape = shapes[index];
        let path = '';  // an empty histogram: nothing to draw, but the run is listed
        if (shape.spike !== undefined) {
          path = `M${chart.x(shape.spike)},${base}V${chart.top}`;
        } else if (shape.bars.length) {
          path = stepPath(chart, [...shape.bars.map((bar) => bar.left),
                                  shape.bars[shape.bars.length - 1].right],
                          shape.bars.map((bar) => chart.y(axis.map(bar.density))), base);
        }
        const text = `${series.run} (${series.group}, step ${series.step})`;
        const colour = colours.get(series.group);
        chart.root.append(hoverable(svg('path', {
          d: path, class: 'series', 'data-run': series.run, 'data-group': series.group,
          'data-step': series.step, stroke: colour, fill: colour}, title(text)),
        hover, {run: series.run}, text));
      });
    }
    return panelBox(chart.root, several ? panel.name : '', data.panel);
  });
  container.classList.toggle('panels', several);
  container.replaceChildren(...charts);
}

function drawBand(chart, band, colours, map, base, hover) {
  const edges = band.edges;
  const colour = colours.get(band.group);
  const upper = band.high.map((value) => chart.y(map(value)));
  const lower = band.low.map((value) => chart.y(map(value)));
  let area = `M${chart.x(edges[0])},${upper[0]}`;
  upper.forEach((height, index) => {
    area += `L${chart.x(edges[index])},${height}L${chart.x(edges[index + 1])},${height}`;
  });
  for (let index = lower.length - 1; index >= 0; index--) {
    area += `L${chart.x(edges[index + 1])},${lower[index]}L${chart.x(edges[index])},${lower[index]}`;
  }
  const text = `${band.group}: median of ${band.runs.length} runs, 25-75% band`;
  const attributes = {'data-group': band.group, 'data-runs': band.runs.join(' ')};
  const group = svg('g', {class: 'band', ...attributes}, title(text));
  group.append(svg('path', {d: `${area}Z`, class: 'band-area', fill: colour}),
               svg('path', {d: stepPath(chart, edges, band.median.map((value) =>
                 chart.y(map(value))), base), class: 'series median', stroke: colour,
                            fill: 'none', ...attributes}));
  chart.root.append(hoverable(group, hover, {group: band.group}, text));
}

export function fillLegend(list, data, colours, hover) {
  const counts = new Map();
  for (const series of data.series) counts.set(series.group, (counts.get(series.group) || 0) + 1);
  list.replaceChildren(...data.groups.map((group) => {
    const item = document.createElement('li');
    item.dataset.group = group;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colours.get(group);
    const count = document.createElement('span');
    count.className = 'step';
    if (data.color === 'run') {
      const series = data.series.find((each) => each.run === group);
      item.dataset.run = group;
      count.textContent = ` step ${series.step}`;
    } else {
      count.textContent = ` ${counts.get(group)} run${counts.get(group) === 1 ? '' : 's'}`;
    }
    item.append(swatch, group, count);
    item.title = data.color === 'run' ? group : `${data.color} = ${group}`;
    return hoverable(item, hover, {group}, item.title);
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
    const {run, group, step} = data.series[index];
    const points = line.map((value, layer) => (
      value === null || !Number.isFinite(value) || (logY && !(value > 0))
        ? null : [chart.x(layer), chart.y(transform(value))]));
    // A missing layer breaks the line.
    const path = points.map((point, layer) => (
      point === null ? '' : `${layer && points[layer - 1] ? 'L' : 'M'}${point[0]},${point[1]}`))
      .join('');
    const text = `${run} (${group}, step ${step})`;
    const node = svg('g', {class: 'layer-series', 'data-run': run, 'data-group': group,
                           stroke: colours.get(group), fill: colours.get(group)}, title(text));
    node.append(svg('path', {d: path, fill: 'none'}));
    points.forEach((point, layer) => {
      if (point) {
        node.append(svg('circle', {cx: point[0], cy: point[1], r: 3},
                        title(`${run}, ${names[layer]}: ${formatNumber(line[layer])}`)));
      }
    });
    chart.root.append(hoverable(node, hover, {run}, text));
  });
  container.replaceChildren(chart.root);
}

export function fillTable(table, data, colours) {
  const symbol = data.symbol;
  const headers = ['', 'run', data.color === 'run' ? null : data.color, 'step',
                   `mean|${symbol}|`, 'std', 'norm', `norm ratio ${data.ratio_layers}`]
      .filter((text) => text !== null);
  const head = document.createElement('tr');
  for (const text of headers) {
    const cell = document.createElement('th');
    cell.textContent = text;
    head.append(cell);
  }
  const rows = data.series.map((series) => {
    const row = document.createElement('tr');
    row.dataset.run = series.run;
    row.dataset.group = series.group;
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = colours.get(series.group);
    const cells = [swatch, series.run, data.color === 'run' ? null : series.group,
                   String(series.step), series.cells.mean_abs, series.cells.std,
                   series.cells.norm, series.cells.ratio].filter((cell) => cell !== null);
    for (const content of cells) {
      const cell = document.createElement('td');
      cell.append(content);
      row.append(cell);
    }
    return row;
  });
  table.replaceChildren(head, ...rows);
}
