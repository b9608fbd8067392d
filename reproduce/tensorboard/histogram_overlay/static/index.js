// The Histogram overlay tab. TensorBoard loads this ES module into the tab's
// iframe (data/plugin_entry.html?name=histogram_overlay) and calls render().
//
// The view's state (tags regex, tag, runs regex, step, log y, layer metric, the
// hparams to colour and panel by, the x scale, runs or group bands, one step or
// all steps) lives in the URL, so a view can be shared: TensorBoard's own hash holds it
// as `#histogram_overlay&p.histogram_overlay.tag=...&p.histogram_overlay.runs=...`
// (TensorBoard's convention for plugin state in the URL), and the iframe's
// query holds the same keys when data/plugin_entry.html is opened alone.

import {groupColours} from './chart.js';
import {drawSteps} from './steps.js';
import {drawLayers, drawOverlay, fillLegend, fillTable} from './views.js';

const PLUGIN = 'histogram_overlay';
const PREFIX = `p.${PLUGIN}.`;
const KEYS = ['tags', 'tag', 'runs', 'step', 'logy', 'metric', 'color', 'panel', 'x', 'agg',
              'view'];
const METRICS = {norm: 'norm (logged scalar)', std: 'std of the histogram'};
// The choices the server takes (its answer says what `auto` became).
const SCALES = {auto: 'auto', linear: 'linear', symlog: 'symmetric log', std: 'x / run std'};
const AGGREGATES = {auto: 'auto', runs: 'every run', bands: 'group median and 25-75% band'};
const VIEWS = {step: 'at one step', steps: 'over steps'};

export async function render() {
  const stylesheet = document.createElement('link');
  stylesheet.rel = 'stylesheet';
  stylesheet.href = './static/style.css';
  document.head.appendChild(stylesheet);
  const view = new View(readState());
  document.body.appendChild(view.root);
  await view.loadTags(true);
}

/** The state from TensorBoard's hash, overridden by the iframe's own query. */
function readState() {
  const state = {};
  for (const [key, value] of parentHash().entries) {
    if (key.startsWith(PREFIX) && KEYS.includes(key.slice(PREFIX.length))) {
      state[key.slice(PREFIX.length)] = value;
    }
  }
  const own = new URLSearchParams(window.location.search);
  for (const key of KEYS) {
    if (own.has(key)) state[key] = own.get(key);
  }
  return state;
}

/** TensorBoard's hash `#tab&key=value&...` as {tab, entries}; empty outside TensorBoard. */
function parentHash() {
  try {
    if (window.parent === window) return {tab: null, entries: []};
    const parts = window.parent.location.hash.slice(1).split('&').filter(Boolean);
    const entries = [];
    let tab = null;
    for (const part of parts) {
      const [key, value] = part.split('=').map(decodeURIComponent);
      if (value === undefined) tab = key;
      else entries.push([key, value]);
    }
    return {tab, entries};
  } catch (error) {
    return {tab: null, entries: []};  // another origin: no shared URL
  }
}

function writeState(state) {
  const kept = KEYS.filter((key) => state[key] !== null && state[key] !== undefined &&
                                    state[key] !== '').map((key) => [key, String(state[key])]);
  const own = new URL(window.location.href);
  for (const key of KEYS) own.searchParams.delete(key);
  for (const [key, value] of kept) own.searchParams.set(key, value);
  window.history.replaceState(window.history.state, '', own.href);
  const {tab, entries} = parentHash();
  if (tab !== PLUGIN) return;  // only while this tab is TensorBoard's active one
  const others = entries.filter(([key]) => !key.startsWith(PREFIX));
  const parts = [tab, ...[...others, ...kept.map(([key, value]) => [PREFIX + key, value])]
      .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`)];
  const url = new URL(window.parent.location.href);
  url.hash = parts.join('&');
  window.parent.history.replaceState(window.parent.history.state, '', url.href);
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

class View {
  constructor(state) {
    this.state = {
      tags: state.tags || '',
      tag: state.tag || null,
      runs: state.runs || '',
      step: state.step === undefined || state.step === '' ? null : state.step,
      logy: state.logy === '1' ? '1' : '',
      metric: state.metric in METRICS ? state.metric : 'norm',
      color: state.color || null,  // the server's default: activation, if the runs have it
      panel: state.panel || 'none',
      x: state.x in SCALES ? state.x : 'auto',
      agg: state.agg in AGGREGATES ? state.agg : 'auto',
      view: state.view in VIEWS ? state.view : 'step',
    };
    this.request = 0;  // answers to older requests are dropped
    this.tagFilter = element('input', {id: 'tag-filter', type: 'search', spellcheck: 'false',
                                       placeholder: 'regex, e.g. ^gradients/.*/kernel$'});
    this.tagSelect = element('select', {id: 'tag'});
    this.runFilter = element('input', {id: 'run-filter', type: 'search', spellcheck: 'false',
                                       placeholder: 'regex, e.g. circles/(linear|relu)'});
    this.stepSlider = element('input', {id: 'step', type: 'range', min: '0', max: '0'});
    this.stepLabel = element('span', {id: 'step-label'});
    this.logY = element('input', {id: 'log-y', type: 'checkbox'});
    this.metricSelect = element('select', {id: 'layer-metric'});
    for (const [value, label] of Object.entries(METRICS)) {
      this.metricSelect.append(element('option', {value}, label));
    }
    this.colorSelect = element('select', {id: 'color'});
    this.panelSelect = element('select', {id: 'panel'});
    this.xSelect = this.choices('x', SCALES);
    this.aggSelect = this.choices('agg', AGGREGATES);
    this.viewSelect = this.choices('view', VIEWS);
    this.resolved = element('span', {id: 'resolved', class: 'resolved'});
    this.message = element('div', {id: 'message', role: 'status'});
    this.overlay = element('div', {id: 'overlay', class: 'chart'});
    this.legend = element('ul', {id: 'legend', class: 'legend'});
    this.layers = element('div', {id: 'layers', class: 'chart'});
    this.table = element('table', {id: 'table'});
    this.notes = element('ul', {id: 'notes'});
    this.notesSummary = element('summary', {});
    this.notesBox = element('details', {class: 'notes'}, this.notesSummary, this.notes);
    this.hover = element('div', {id: 'hover', class: 'hover'});
    this.tagFilter.value = this.state.tags;
    this.runFilter.value = this.state.runs;
    this.logY.checked = this.state.logy === '1';
    this.metricSelect.value = this.state.metric;
    this.data = null;

    this.tagFilter.addEventListener('change', () => {
      this.state.tags = this.tagFilter.value;
      this.loadTags();
    });
    this.tagSelect.addEventListener('change', () => {
      this.state.tag = this.tagSelect.value;
      this.state.step = null;  // another tag logs other steps: show its last
      this.loadData();
    });
    this.runFilter.addEventListener('change', () => {
      this.state.runs = this.runFilter.value;
      this.loadData();
    });
    this.stepSlider.addEventListener('input', () => {
      this.stepLabel.textContent = `step ${this.sliderStep()}`;
    });
    this.stepSlider.addEventListener('change', () => {
      this.state.step = String(this.sliderStep());
      this.loadData();
    });
    this.logY.addEventListener('change', () => {
      this.state.logy = this.logY.checked ? '1' : '';
      this.draw();
    });
    this.metricSelect.addEventListener('change', () => {
      this.state.metric = this.metricSelect.value;
      this.draw();
    });
    for (const [key, control] of [['color', this.colorSelect], ['panel', this.panelSelect],
                                  ['x', this.xSelect], ['agg', this.aggSelect],
                                  ['view', this.viewSelect]]) {
      control.addEventListener('change', () => {
        this.state[key] = control.value;
        this.loadData();
      });
    }

    const label = (text, control) => element('label', {}, text, control);
    this.root = element(
        'main', {},
        element('h2', {}, 'Histogram overlay: one histogram tag, many runs'),
        element('div', {class: 'controls'},
                label('tags ', this.tagFilter), label('tag ', this.tagSelect),
                label('runs ', this.runFilter)),
        element('div', {class: 'controls'},
                label('colour by ', this.colorSelect), label('panel by ', this.panelSelect),
                label('x ', this.xSelect), label('show ', this.aggSelect),
                label('view ', this.viewSelect), this.resolved),
        element('div', {class: 'controls'},
                label('', this.stepSlider), this.stepLabel,
                label(' log y ', this.logY)),
        this.message,
        element('div', {class: 'overlay-row'}, this.overlay, this.legend),
        element('h3', {}, 'Across layers, input to output ',
                label('', this.metricSelect)),
        this.layers,
        element('h3', {}, 'The numbers of reproduce compare'),
        this.table, this.notesBox, this.hover);
    document.addEventListener('mousemove', (event) => {
      this.hover.style.left = `${event.pageX + 12}px`;
      this.hover.style.top = `${event.pageY + 12}px`;
    });
  }

  choices(id, options) {
    const select = element('select', {id});
    for (const [value, text] of Object.entries(options)) {
      select.append(element('option', {value}, text));
    }
    select.value = this.state[id];
    return select;
  }

  /** The colour and panel choices: `run` or `none`, then every hparam of the runs. */
  fillHparams(data) {
    const options = (first, text) => [element('option', {value: first}, text),
                                      ...data.hparams.map((name) => element('option',
                                                                            {value: name}, name))];
    this.colorSelect.replaceChildren(...options('run', 'run (each its own)'));
    this.panelSelect.replaceChildren(...options('none', 'none'));
    this.colorSelect.value = data.color;
    this.panelSelect.value = data.panel;
    const auto = [];
    if (this.state.x === 'auto') auto.push(`x: ${data.x}`);
    if (this.state.agg === 'auto') auto.push(`show: ${data.agg === 'bands' ? 'bands' : 'runs'}`);
    this.resolved.textContent = auto.length ? `(auto: ${auto.join(', ')})` : '';
  }

  sliderStep() {
    return this.data ? this.data.steps[Number(this.stepSlider.value)] : null;
  }

  showMessage(text, isError) {
    this.message.textContent = text;
    this.message.className = isError ? 'error' : '';
    document.body.dataset.state = isError ? 'error' : 'loading';
  }

  async fetchJSON(route, params) {
    const query = new URLSearchParams(
        Object.entries(params).filter(([, value]) => value !== null && value !== ''));
    const response = await fetch(`./${route}?${query}`);
    if (!response.ok) throw new Error(await response.text());
    return response.json();
  }

  async loadTags(fromUrl = false) {
    const request = ++this.request;
    this.showMessage('loading tags...', false);
    let answer;
    try {
      answer = await this.fetchJSON('tags', {tags: this.state.tags});
    } catch (error) {
      if (request === this.request) this.fail(error.message);
      return;
    }
    if (request !== this.request) return;
    this.tagSelect.replaceChildren(
        ...answer.tags.map((tag) => element('option', {value: tag}, tag)));
    if (!answer.tags.length) {
      this.fail(`no histogram tag matches ${JSON.stringify(this.state.tags)}`);
      return;
    }
    // A tag the URL names is asked for even if the filter hides it: the server's
    // answer says what is wrong with it, if anything.
    if (!answer.tags.includes(this.state.tag) && !(fromUrl && this.state.tag)) {
      this.state.tag = answer.default;
      this.state.step = null;
    }
    this.tagSelect.value = this.state.tag;
    await this.loadData();
  }

  async loadData() {
    const request = ++this.request;
    this.showMessage('loading...', false);
    let data;
    try {
      data = await this.fetchJSON('data', {
        tag: this.state.tag, runs: this.state.runs, step: this.state.step,
        color: this.state.color, panel: this.state.panel, x: this.state.x, agg: this.state.agg,
        view: this.state.view});
    } catch (error) {
      if (request === this.request) this.fail(error.message);
      return;
    }
    if (request !== this.request) return;
    this.data = data;
    const index = data.steps.indexOf(data.step);
    this.stepSlider.max = String(data.steps.length - 1);
    this.stepSlider.value = String(index >= 0 ? index : data.steps.length - 1);
    this.stepLabel.textContent = `step ${data.step}`;
    this.fillHparams(data);
    const grouped = data.color === 'run' ? '' : `, ${data.groups.length} groups by ${data.color}`;
    this.message.textContent = `${data.series.length} runs with ${data.tag}${grouped} at step ` +
        `${data.step} (logged steps ${data.steps[0]} to ${data.steps[data.steps.length - 1]})`;
    this.message.className = '';
    this.draw();
    writeState(this.state);
    document.body.dataset.state = 'ready';
  }

  fail(text) {
    this.data = null;
    for (const node of [this.overlay, this.legend, this.layers, this.table, this.notes]) {
      node.replaceChildren();
    }
    this.notesBox.hidden = true;
    this.showMessage(text, true);
    writeState(this.state);
  }

  draw() {
    if (!this.data) return;
    const colours = groupColours(this.data.groups);
    const hover = {
      // `key`: {run} highlights what is drawn for that run, {group} all of its group.
      enter: (key, text) => {
        this.hover.textContent = text;
        this.hover.classList.add('visible');
        for (const node of document.querySelectorAll('[data-run], [data-group]')) {
          const runs = node.dataset.runs ? node.dataset.runs.split(' ') : [node.dataset.run];
          node.classList.toggle('highlight', key.run !== undefined ? runs.includes(key.run)
                                                                    : node.dataset.group === key.group);
        }
        document.body.classList.add('highlighting');
      },
      leave: () => {
        this.hover.classList.remove('visible');
        document.body.classList.remove('highlighting');
      },
    };
    if (this.data.view === 'steps') {
      drawSteps(this.overlay, this.data, colours, hover);
    } else {
      drawOverlay(this.overlay, this.data, colours, this.state.logy === '1', hover);
    }
    fillLegend(this.legend, this.data, colours, hover);
    drawLayers(this.layers, this.data, colours, this.state.metric, hover);
    fillTable(this.table, this.data, colours);
    const notes = this.data.notes;
    this.notes.replaceChildren(...notes.map((note) => element('li', {}, note)));
    this.notesSummary.textContent = `${notes.length} note${notes.length === 1 ? '' : 's'}`;
    this.notesBox.hidden = !notes.length;
  }
}
