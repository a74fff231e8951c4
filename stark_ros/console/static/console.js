// stark_ros operator console: shows /api/frame.jpg with the targets of /api/state, sends drags to /api/init.
// Box convention everywhere: [x, y, w, h], top-left + size, pixels of the image.
'use strict';

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const stampText = (s) => s ? s[0] + '.' + String(s[1]).padStart(9, '0') : '';

let shown = null;      // the displayed frame: {seq, stamp: [sec, nanosec], width, height}
let dragging = null;   // {frame, x0, y0, x1, y1} in image pixels while the operator drags

function showMessage(success, text) {
  const el = $('message');
  el.dataset.success = String(success);
  el.textContent = text;
}

async function post(path, body) {
  try {
    const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'},
                                 body: JSON.stringify(body)});
    const answer = await r.json();
    showMessage(answer.success, answer.message || (answer.success ? 'done' : 'failed (HTTP ' + r.status + ')'));
    return answer;
  } catch (err) {
    showMessage(false, 'console unreachable: ' + err);
    return {success: false};
  }
}

// ---------------------------------------------------------------- live image
function loadImage(img, url) {
  return new Promise((resolve, reject) => { img.onload = resolve; img.onerror = reject; img.src = url; });
}

async function frameLoop() {
  const img = $('frame');
  let seq = 0;
  let url = null;
  for (;;) {
    try {
      const r = await fetch('/api/frame.jpg?after=' + seq, {cache: 'no-store'});
      if (!r.ok) { await sleep(300); continue; }
      const h = r.headers;
      const frame = {seq: +h.get('X-Frame-Seq'), stamp: [+h.get('X-Stamp-Sec'), +h.get('X-Stamp-Nanosec')],
                     width: +h.get('X-Width'), height: +h.get('X-Height')};
      const blob = await r.blob();
      seq = frame.seq;
      if (dragging) continue;          // the operator draws on a still image
      const next = URL.createObjectURL(blob);
      await loadImage(img, next);
      if (url) URL.revokeObjectURL(url);
      url = next;
      shown = frame;
      const view = $('view');
      view.dataset.seq = frame.seq;
      view.dataset.stamp = stampText(frame.stamp);
      view.dataset.width = frame.width;
      view.dataset.height = frame.height;
      $('frame-info').textContent = frame.width + ' x ' + frame.height + ' px, stamp ' + stampText(frame.stamp);
    } catch (err) {
      await sleep(500);
    }
  }
}

// ---------------------------------------------------------------- drawing a box
function imagePoint(event) {
  const rect = $('frame').getBoundingClientRect();
  const x = (event.clientX - rect.left) * shown.width / rect.width;
  const y = (event.clientY - rect.top) * shown.height / rect.height;
  return [Math.min(Math.max(x, 0), shown.width), Math.min(Math.max(y, 0), shown.height)];
}

function dragBox(d) {
  return [Math.min(d.x0, d.x1), Math.min(d.y0, d.y1), Math.abs(d.x1 - d.x0), Math.abs(d.y1 - d.y0)];
}

function placeBox(el, box, frame) {
  el.style.left = (100 * box[0] / frame.width) + '%';
  el.style.top = (100 * box[1] / frame.height) + '%';
  el.style.width = (100 * box[2] / frame.width) + '%';
  el.style.height = (100 * box[3] / frame.height) + '%';
}

function setupDrag() {
  const view = $('view');
  view.addEventListener('pointerdown', (event) => {
    if (!shown || event.button !== 0) return;
    event.preventDefault();
    view.setPointerCapture(event.pointerId);
    const [x, y] = imagePoint(event);
    dragging = {frame: shown, x0: x, y0: y, x1: x, y1: y};
    placeBox($('drag'), dragBox(dragging), shown);
    $('drag').hidden = false;
  });
  view.addEventListener('pointermove', (event) => {
    if (!dragging) return;
    [dragging.x1, dragging.y1] = imagePoint(event);
    placeBox($('drag'), dragBox(dragging), dragging.frame);
  });
  const finish = async (event) => {
    if (!dragging) return;
    [dragging.x1, dragging.y1] = imagePoint(event);
    const d = dragging;
    dragging = null;
    $('drag').hidden = true;
    const box = dragBox(d).map((v) => Math.round(v * 100) / 100);
    if (box[2] < 3 || box[3] < 3) { showMessage(false, 'box too small: drag a larger box'); return; }
    box[2] = Math.min(box[2], d.frame.width - box[0]);
    box[3] = Math.min(box[3], d.frame.height - box[1]);
    showMessage('pending', 'starting target on [' + box.join(', ') + '] of frame ' + stampText(d.frame.stamp) + ' ...');
    await post('/api/init', {box: box, stamp: {sec: d.frame.stamp[0], nanosec: d.frame.stamp[1]},
                             id: $('target-id').value});
  };
  view.addEventListener('pointerup', finish);
  view.addEventListener('pointercancel', () => { dragging = null; $('drag').hidden = true; });
}

// ---------------------------------------------------------------- targets and diagnostics
function renderTargets(targets) {
  const overlay = $('overlay');
  const body = $('targets').querySelector('tbody');
  overlay.replaceChildren();
  body.replaceChildren();
  for (const t of targets) {
    const row = document.createElement('tr');
    row.className = 'target-row';
    row.dataset.id = t.id;
    const cells = [t.id || '(default)', t.score === null ? '-' : t.score.toFixed(3), t.state,
                   t.box ? t.box.map((v) => v.toFixed(1)).join(' ') : '-'];
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      row.appendChild(td);
    }
    const td = document.createElement('td');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'reset-one';
    button.textContent = 'reset';
    button.addEventListener('click', () => post('/api/reset', {id: t.id}));
    td.appendChild(button);
    row.appendChild(td);
    body.appendChild(row);
    if (!t.box || !shown) continue;
    const el = document.createElement('div');
    el.className = 'target-box ' + t.state;
    Object.assign(el.dataset, {id: t.id, x: t.box[0], y: t.box[1], w: t.box[2], h: t.box[3],
                               score: t.score === null ? '' : t.score, state: t.state, stamp: stampText(t.stamp)});
    placeBox(el, t.box, shown);
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = (t.id || 'target') + (t.score === null ? '' : ' ' + t.score.toFixed(2)) + ' ' + t.state;
    el.appendChild(label);
    overlay.appendChild(el);
  }
}

const LEVELS = ['OK', 'WARN', 'ERROR'];

function renderDiagnostics(diag) {
  const level = $('diag-level');
  if (!diag) { level.className = 'badge'; level.textContent = 'no diagnostics'; return; }
  const stale = diag.age_sec > 3;
  level.className = 'badge' + (stale ? '' : ' level-' + diag.level);
  level.textContent = stale ? 'STALE' : (LEVELS[diag.level] || String(diag.level));
  $('diag-message').textContent = diag.message;
  const v = diag.values;
  $('diag-input').textContent = (v['input rate (Hz)'] || '-') + ' Hz';
  $('diag-processed').textContent = (v['processed rate (Hz)'] || '-') + ' Hz';
  $('diag-latency').textContent = (v['latency p95 (ms)'] || '-') + ' ms';
  $('diag-dropped').textContent = v['dropped frames (last 5 s)'] || '-';
  const body = $('diag-values').querySelector('tbody');
  body.replaceChildren();
  for (const [key, value] of Object.entries(v)) {
    const row = document.createElement('tr');
    for (const text of [key, value]) {
      const td = document.createElement('td');
      td.textContent = text;
      row.appendChild(td);
    }
    body.appendChild(row);
  }
}

async function stateLoop() {
  for (;;) {
    try {
      const r = await fetch('/api/state', {cache: 'no-store'});
      const state = await r.json();
      renderTargets(state.targets);
      renderDiagnostics(state.diagnostics);
      const s = state.services;
      const services = $('services');
      const up = s.init_target && s.reset;
      $('tracker-name').textContent = s.tracker ? 'tracker ' + s.tracker : '';
      services.className = 'badge ' + (up ? 'ok' : 'error');
      services.textContent = up ? 'tracker connected' : 'tracker services not available';
      if (state.image_error) $('frame-info').textContent = 'last image unusable: ' + state.image_error;
    } catch (err) {
      $('services').className = 'badge error';
      $('services').textContent = 'console unreachable';
    }
    await sleep(150);
  }
}

$('reset-all').addEventListener('click', () => post('/api/reset', {id: ''}));
setupDrag();
frameLoop();
stateLoop();
