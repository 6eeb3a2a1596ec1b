// The analysts' studio in the browser: the BPMN modeler with Qorgau's properties panel, the
// DMN modeler, and the forms editor's live preview. One bundle, started from data-*
// attributes of the page (the Content Security Policy allows no inline script).
import BpmnModeler from 'bpmn-js/lib/Modeler';
import DmnModeler from 'dmn-js/lib/Modeler';
import {
  BpmnPropertiesPanelModule,
  BpmnPropertiesProviderModule,
} from 'bpmn-js-properties-panel';

import QorgauPropertiesProvider from './QorgauPropertiesProvider.jsx';
import spiffModdle from './qorgau-moddle.json';

import 'bpmn-js/dist/assets/diagram-js.css';
import 'bpmn-js/dist/assets/bpmn-js.css';
import 'bpmn-js/dist/assets/bpmn-font/css/bpmn.css';
import '@bpmn-io/properties-panel/dist/assets/properties-panel.css';
import 'dmn-js/dist/assets/diagram-js.css';
import 'dmn-js/dist/assets/dmn-js-shared.css';
import 'dmn-js/dist/assets/dmn-js-drd.css';
import 'dmn-js/dist/assets/dmn-js-decision-table.css';
import 'dmn-js/dist/assets/dmn-js-decision-table-controls.css';
import 'dmn-js/dist/assets/dmn-js-literal-expression.css';
import 'dmn-js/dist/assets/dmn-font/css/dmn.css';
import './studio.css';

const QorgauModule = {
  __init__: ['qorgauPropertiesProvider'],
  qorgauPropertiesProvider: ['type', QorgauPropertiesProvider],
};

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute('content') : '';
}

async function postJson(url, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken() },
    body: JSON.stringify(body),
  });
  let data = {};
  try {
    data = await response.json();
  } catch (e) {
    data = {};
  }
  return { ok: response.ok, status: response.status, data };
}

function say(root, text, kind) {
  const status = root.querySelector('[data-role="status"]');
  if (status) {
    status.textContent = text;
    status.className = `studio-status studio-status-${kind || 'info'}`;
  }
}

// --- BPMN ----------------------------------------------------------------------------

function showProblems(root, modeler, problems) {
  const canvas = modeler.get('canvas');
  const overlays = modeler.get('overlays');
  const registry = modeler.get('elementRegistry');
  overlays.remove({ type: 'qorgau-problem' });
  registry.getAll().forEach((el) => canvas.removeMarker(el.id, 'qorgau-problem'));
  const list = root.querySelector('[data-role="problems"]');
  list.replaceChildren();
  const counts = {};
  problems.forEach((problem) => {
    const item = document.createElement('li');
    const where = problem.element_id ? `[${problem.element_id}] ` : '';
    item.textContent = `${problem.file}${problem.line ? ':' + problem.line : ''} ${where}${problem.message}`;
    item.dataset.elementId = problem.element_id || '';
    const element = problem.element_id && registry.get(problem.element_id);
    if (element) {
      item.classList.add('on-diagram');
      canvas.addMarker(element.id, 'qorgau-problem');
      counts[element.id] = (counts[element.id] || 0) + 1;
      item.addEventListener('click', () => {
        modeler.get('selection').select(element);
      });
    }
    list.appendChild(item);
  });
  Object.entries(counts).forEach(([id, count]) => {
    const badge = document.createElement('div');
    badge.className = 'qorgau-problem-badge';
    badge.dataset.elementId = id;
    badge.textContent = String(count);
    badge.title = problems.filter((p) => p.element_id === id).map((p) => p.message).join('\n');
    overlays.add(id, 'qorgau-problem', { position: { top: -10, right: 10 }, html: badge });
  });
  root.dataset.problems = String(problems.length);
}

async function startBpmn(root) {
  const modeler = new BpmnModeler({
    container: root.querySelector('[data-role="canvas"]'),
    propertiesPanel: { parent: root.querySelector('[data-role="properties"]') },
    additionalModules: [BpmnPropertiesPanelModule, BpmnPropertiesProviderModule, QorgauModule],
    moddleExtensions: { spiffworkflow: spiffModdle },
  });
  window.qorgauModeler = modeler; // for the browser tests and the curious analyst
  let revision = Number(root.dataset.revision);
  const content = await (await fetch(root.dataset.contentUrl, { credentials: 'same-origin' })).json();
  revision = content.revision;
  try {
    const result = await modeler.importXML(content.bpmn_xml);
    if (result.warnings && result.warnings.length) {
      say(root, `Imported with ${result.warnings.length} warning(s)`, 'warn');
    }
  } catch (err) {
    say(root, `The diagram could not be opened: ${err.message}`, 'error');
  }
  modeler.get('canvas').zoom('fit-viewport');
  showProblems(root, modeler, content.lacks || []);

  async function save() {
    const { xml } = await modeler.saveXML({ format: true });
    const answer = await postJson(root.dataset.saveUrl, { bpmn_xml: xml, revision });
    if (!answer.ok) {
      const message = (answer.data.error && answer.data.error.message) || `HTTP ${answer.status}`;
      say(root, `Not saved: ${message}`, 'error');
      if (answer.data.problems) showProblems(root, modeler, answer.data.problems);
      return null;
    }
    revision = answer.data.revision;
    return answer.data;
  }

  root.querySelector('[data-action="save"]').addEventListener('click', async () => {
    const saved = await save();
    if (saved) {
      showProblems(root, modeler, saved.lacks);
      say(root, saved.lacks.length ? `Saved; ${saved.lacks.length} problem(s) left` : 'Saved', 'info');
    }
  });
  root.querySelector('[data-action="validate"]').addEventListener('click', async () => {
    const saved = await save();
    if (!saved) return;
    const answer = await postJson(root.dataset.validateUrl, {});
    const problems = answer.data.problems || [];
    showProblems(root, modeler, problems);
    say(root, problems.length ? `${problems.length} problem(s)` : 'Valid: ready to deploy',
      problems.length ? 'error' : 'ok');
  });
  const deployForm = root.querySelector('form[data-role="deploy"]');
  deployForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    const saved = await save();
    if (saved) deployForm.submit();
  });
  root.dataset.ready = 'true';
}

// --- DMN -----------------------------------------------------------------------------

async function startDmn(root) {
  const modeler = new DmnModeler({
    container: root.querySelector('[data-role="canvas"]'),
  });
  window.qorgauDmnModeler = modeler;
  const content = await (await fetch(root.dataset.contentUrl, { credentials: 'same-origin' })).json();
  await modeler.importXML(content.dmn_xml);
  root.querySelector('[data-action="save"]').addEventListener('click', async () => {
    const { xml } = await modeler.saveXML({ format: true });
    const answer = await postJson(root.dataset.saveUrl, { dmn_xml: xml });
    if (answer.ok) {
      say(root, answer.data.lacks.length ? `Saved; ${answer.data.lacks.length} problem(s)` : 'Saved', 'info');
    } else {
      say(root, `Not saved: ${(answer.data.error && answer.data.error.message) || answer.status}`, 'error');
    }
  });
  root.dataset.ready = 'true';
}

// --- forms: live preview ---------------------------------------------------------------

function startFormEditor(root) {
  const text = root.querySelector('textarea[name="schema"]');
  const preview = root.querySelector('[data-role="preview"]');
  let timer = null;
  async function refresh() {
    const answer = await postJson(root.dataset.previewUrl, { schema: text.value });
    // The server renders the preview with the inbox's own field templates (escaped HTML).
    preview.innerHTML = answer.data.html || '';
  }
  text.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 300);
  });
}

function boot() {
  document.querySelectorAll('[data-studio="bpmn"]').forEach((root) => {
    startBpmn(root).catch((err) => say(root, String(err), 'error'));
  });
  document.querySelectorAll('[data-studio="dmn"]').forEach((root) => {
    startDmn(root).catch((err) => say(root, String(err), 'error'));
  });
  document.querySelectorAll('[data-studio="form"]').forEach(startFormEditor);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', boot);
} else {
  boot();
}
