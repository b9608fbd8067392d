// The Histogram overlay tab's view over steps: one tag's distribution against the logged
// step, per panel; for each group the median across its runs of the 5-95% and 25-75%
// quantile bands and of the median, and with `agg=runs` each run's median too.

import {PANEL_SIZE, SIZE, frame, hoverable, panelBox, scaleOf, svg, ticks, title}
  from './chart.js';

// Indices into the server's quantiles (5, 25, 50, 75, 95%).
const OUTER = [0, 4];
const INNER = [1, 3];
const MEDIAN = 2;

function points(chart, steps, values) {
  return steps.map((step, index) => (values[index] === null || values[index] === undefined
    ? null : [chart.x(step), chart.y(values[index])]));
}

function line(pointList) {
  return pointList.map((point, index) => (point === null ? ''
    : `${index && pointList[index - 1] ? 'L' : 'M'}${point[0]},${point[1]}`)).join('');
}

function area(chart, steps, low, high) {
  const kept = steps.map((step, index) => [step, low[index], high[index]])
      .filter(([, lower, upper]) => lower !== null && upper !== null);
  if (!kept.length) return '';
  const top = kept.map(([step, , upper]) => `${chart.x(step)},${chart.y(upper)}`);
  const bottom = kept.reverse().map(([step, lower]) => `${chart.x(step)},${chart.y(lower)}`);
  return `M${top.join('L')}L${bottom.join('L')}Z`;
}

export function drawSteps(container, data, colours, hover) {
  const scale = scaleOf(data);
  const several = data.panels.length > 1;
  const byRun = new Map(data.series.map((series) => [series.run, series]));
  const charts = data.panels.map((panel) => {
    const bands = panel.steps;
    const runs = data.agg === 'runs' ? panel.runs.map((run) => byRun.get(run)) : [];
    const values = [...bands.flatMap((band) => [...band.q[OUTER[0]], ...band.q[OUTER[1]]]),
                    ...runs.flatMap((series) => series.quantiles.q.map((row) => row[MEDIAN]))]
        .filter((value) => value !== null && Number.isFinite(value));
    const allSteps = bands.flatMap((band) => band.steps);
    let [low, high] = [Math.min(...values), Math.max(...values)];
    if (!values.length) [low, high] = [-1, 1];
    if (!(high > low)) [low, high] = [low - 0.5, high + 0.5];
    const stepRange = [Math.min(...allSteps), Math.max(...allSteps)];
    if (!(stepRange[1] > stepRange[0])) stepRange[1] = stepRange[0] + 1;
    const chart = frame(stepRange, [low, high], {
      className: 'steps', size: several ? PANEL_SIZE : SIZE,
      xTicks: ticks(...stepRange).map((value) => [value, String(value)]),
      yTicks: scale.ticks(low, high), xLabel: 'step',
      yLabel: scale.label ? `${data.tag} (${scale.kind})` : data.tag});
    for (const band of bands) {
      const colour = colours.get(band.group);
      const text = `${band.group}: median across ${band.runs.length} runs of the 5-95%, ` +
                   '25-75% quantiles and the median';
      const node = svg('g', {class: 'steps-band', 'data-group': band.group,
                             'data-runs': band.runs.join(' ')}, title(text));
      node.append(
          svg('path', {d: area(chart, band.steps, band.q[OUTER[0]], band.q[OUTER[1]]),
                       class: 'outer', fill: colour, stroke: colour}),
          svg('path', {d: area(chart, band.steps, band.q[INNER[0]], band.q[INNER[1]]),
                       class: 'inner', fill: colour}),
          svg('path', {d: line(points(chart, band.steps, band.q[MEDIAN])), class: 'median',
                       stroke: colour, fill: 'none'}));
      chart.root.append(hoverable(node, hover, {group: band.group}, text));
    }
    for (const series of runs) {
      const medians = series.quantiles.q.map((row) => row[MEDIAN]);
      const text = `${series.run} (${series.group}): median at each step`;
      chart.root.append(hoverable(svg('path', {
        d: line(points(chart, series.quantiles.steps, medians)), class: 'steps-run',
        'data-run': series.run, 'data-group': series.group,
        stroke: colours.get(series.group), fill: 'none'}, title(text)),
      hover, {run: series.run}, text));
    }
    return panelBox(chart.root, several ? panel.name : '', data.panel);
  });
  container.classList.toggle('panels', several);
  container.replaceChildren(...charts);
}
