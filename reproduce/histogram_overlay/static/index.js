// The Histogram overlay tab. TensorBoard loads this ES module into the tab's
// iframe (data/plugin_entry.html?name=histogram_overlay) and calls render().
//
// The view's state (tags regex, tag, runs regex, step, log y, layer metric)
// lives in the URL, so a view can be shared: TensorBoard's own hash holds it
// as `#histogram_overlay&p.histogram_overlay.tag=...&p.histogram_overlay.runs=...`
// (TensorBoard's convention for plugin state in the URL), and the iframe's
// query holds the same keys when data/plugin_entry.html is opened alone.

import {drawLayers, drawOverlay, fillLegend, fillTable, runColours} from './views.js';

const PLUGIN = 'histogram_overlay';
const PREFIX = `p.${PLUGIN}.`;
const KEYS = ['tags', 'tag', 'runs', 'step', 'logy', 'metric'];
const METRICS = {norm: 'norm (logged scalar)', std: 'std of the histogram'};

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

    const label = (text, control) => element('label', {}, text, control);
    this.root = element(
        'main', {},
        element('h2', {}, 'Histogram overlay: one histogram tag, many runs'),
        element('div', {class: 'controls'},
                label('tags ', this.tagFilter), label('tag ', this.tagSelect),
                label('runs ', this.runFilter)),
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
      data = await this.fetchJSON(
          'data', {tag: this.state.tag, runs: this.state.runs, step: this.state.step});
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
    this.message.textContent = `${data.series.length} runs with ${data.tag} at step ` +
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
    const colours = runColours(this.data.series.length);
    const hover = {
      enter: (run, text) => {
        this.hover.textContent = text;
        this.hover.classList.add('visible');
        for (const node of document.querySelectorAll('[data-run]')) {
          node.classList.toggle('highlight', node.dataset.run === run);
        }
        document.body.classList.add('highlighting');
      },
      leave: () => {
        this.hover.classList.remove('visible');
        document.body.classList.remove('highlighting');
      },
    };
    drawOverlay(this.overlay, this.data, colours, this.state.logy === '1', hover);
    fillLegend(this.legend, this.data, colours, hover);
    drawLayers(this.layers, this.data, colours, this.state.metric, hover);
    fillTable(this.table, this.data, colours);
    const notes = this.data.notes;
    this.notes.replaceChildren(...notes.map((note) => element('li', {}, note)));
    this.notesSummary.textContent = `${notes.length} note${notes.length === 1 ? '' : 's'}`;
    this.notesBox.hidden = !notes.length;
  }
}
