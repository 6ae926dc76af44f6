// SPDX-License-Identifier: Apache-2.0
// report.js: renders the audit report from the JSON in #report-data (the schema is in
// docs/report.md). Plain DOM and SVG, no library; every section is drawn once at load,
// the token view again when the window, the layer or the colouring changes.
(function () {
  'use strict';
  const R = JSON.parse(document.getElementById('report-data').textContent);
  const $ = (sel, root) => (root || document).querySelector(sel);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x)) ? '–' : (typeof x === 'number' ? x.toFixed(d === undefined ? 3 : d) : esc(x));
  const big = (x) => (x === null || x === undefined) ? '–' : Number(x).toLocaleString('en');
  const PALETTE = ['#a6cee3', '#b2df8a', '#fdbf6f', '#cab2d6', '#fb9a99', '#ffff99', '#8dd3c7', '#bebada', '#80b1d3',
    '#fccde5', '#d9d9d9', '#ccebc5', '#ffed6f', '#e5c494', '#b3e2cd', '#f4cae4'];
  const colourOf = (slot) => PALETTE[slot % PALETTE.length];
  const shown = (t) => t.replace(/\n/g, '\u21b5\n').replace(/\t/g, '\u21e5');
  // In tables and lists a space or a line break must stay visible.
  const cell = (t) => t.replace(/ /g, '\u2423').replace(/\n/g, '\u21b5').replace(/\t/g, '\u21e5');
  const body = (id) => $('#' + id + ' .body');

  function table(head, rows, numeric) {
    const h = head ? '<tr>' + head.map((x) => '<th>' + esc(x) + '</th>').join('') + '</tr>' : '';
    const r = rows.map((row) => '<tr>' + row.map((c, i) => '<td' + (numeric && numeric[i] ? ' class="num"' : '') + '>' + c + '</td>').join('') + '</tr>').join('');
    return '<table>' + h + r + '</table>';
  }

  // A line chart as SVG: series [{name, x: [], y: [], colour}], markers [{x, colour, label}].
  function lineChart(o) {
    const W = o.width || 440, H = o.height || 210, L = 52, B = 34, T = 22, Rm = 10;
    const xs = [].concat(...o.series.map((s) => s.x)), intX = xs.every(Number.isInteger), ys = [].concat(...o.series.map((s) => s.y)).filter((v) => Number.isFinite(v));
    if (!xs.length || !ys.length) return '<div class="chart muted" style="padding:8px">' + esc(o.title) + ': no data</div>';
    let x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
    if (o.yMin !== undefined) y0 = Math.min(y0, o.yMin);
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y1 = y0 + 1; y0 = y0 - 1; }
    const px = (x) => L + (x - x0) / (x1 - x0) * (W - L - Rm), py = (y) => H - B - (y - y0) / (y1 - y0) * (H - B - T);
    let s = '<svg class="chart" width="' + W + '" height="' + H + '" role="img" aria-label="' + esc(o.title) + '">';
    s += '<text x="' + L + '" y="14" font-weight="600">' + esc(o.title) + '</text>';
    for (let i = 0; i <= 4; ++i) {
      const y = y0 + (y1 - y0) * i / 4, Y = py(y);
      s += '<line x1="' + L + '" x2="' + (W - Rm) + '" y1="' + Y + '" y2="' + Y + '" stroke="#eee"/>';
      s += '<text x="' + (L - 4) + '" y="' + (Y + 4) + '" text-anchor="end">' + (Math.abs(y) >= 1000 ? y.toExponential(1) : y.toPrecision(3)) + '</text>';
      const x = x0 + (x1 - x0) * i / 4;
      s += '<text x="' + px(x) + '" y="' + (H - B + 14) + '" text-anchor="middle">' + (intX ? Math.round(x) : Number.isInteger(x) ? x : x.toPrecision(3)) + '</text>';
    }
    s += '<text x="' + ((L + W) / 2) + '" y="' + (H - 4) + '" text-anchor="middle">' + esc(o.xlabel || '') + '</text>';
    for (const m of (o.markers || [])) {
      const X = px(m.x);
      s += '<line class="marker" x1="' + X + '" x2="' + X + '" y1="' + T + '" y2="' + (H - B) + '" stroke="' + m.colour + '" stroke-dasharray="3,2"><title>' + esc(m.label) + '</title></line>';
    }
    o.series.forEach((sr, k) => {
      const pts = sr.x.map((x, i) => Number.isFinite(sr.y[i]) ? px(x).toFixed(1) + ',' + py(sr.y[i]).toFixed(1) : null).filter((p) => p);
      const c = sr.colour || ['#0969da', '#d9480f', '#1a7f37', '#8250df'][k % 4];
      s += '<polyline fill="none" stroke="' + c + '" stroke-width="1.6" points="' + pts.join(' ') + '"/>';
      if (sr.x.length <= 30) pts.forEach((p) => { const [a, b] = p.split(','); s += '<circle cx="' + a + '" cy="' + b + '" r="2.2" fill="' + c + '"/>'; });
      if (o.series.length > 1) s += '<text x="' + (W - Rm - 4) + '" y="' + (T + 12 + 12 * k) + '" text-anchor="end" fill="' + c + '">' + esc(sr.name) + '</text>';
    });
    return s + '</svg>';
  }

  function histogram(title, h, extra) {
    const W = 440, H = 190, L = 44, B = 30, T = 22, n = h.counts.length, max = Math.max(1, ...h.counts);
    const bw = (W - L - 10) / n;
    let s = '<svg class="chart" width="' + W + '" height="' + H + '" role="img" aria-label="' + esc(title) + '">';
    s += '<text x="' + L + '" y="14" font-weight="600">' + esc(title) + '</text>';
    h.counts.forEach((c, i) => {
      const bh = c / max * (H - B - T);
      s += '<rect x="' + (L + i * bw + 1) + '" y="' + (H - B - bh) + '" width="' + (bw - 2) + '" height="' + bh + '" fill="#4c8bf5"><title>[' + h.edges[i].toFixed(2) + ', ' + h.edges[i + 1].toFixed(2) + '): ' + c + '</title></rect>';
    });
    s += '<text x="' + (L - 4) + '" y="' + (T + 8) + '" text-anchor="end">' + max + '</text><text x="' + (L - 4) + '" y="' + (H - B) + '" text-anchor="end">0</text>';
    [0, 0.5, 1].forEach((f) => { s += '<text x="' + (L + f * n * bw) + '" y="' + (H - B + 14) + '" text-anchor="middle">' + (h.edges[0] + f * (h.edges[n] - h.edges[0])).toFixed(1) + '</text>'; });
    if (extra) s += '<text x="' + L + '" y="' + (H - 4) + '">' + esc(extra) + '</text>';
    return s + '</svg>';
  }

  // ---- header and model card
  const card = R.card, ck = card.checkpoint;
  $('#subtitle').textContent = 'checkpoint ' + ck.dir + ', step ' + ck.step + (ck.llm !== 'main' ? ', LLM ' + ck.llm : '') +
    ' · ' + R.evaluation.windows + ' windows (' + R.evaluation.windows_from + ') at dial ' + fmt(R.evaluation.dial, 2) +
    ' · localist ' + card.software.version + ' (commit ' + card.software.commit + ')';

  function renderCard() {
    const p = card.parameters, a = card.anchors, m = card.model;
    let s = table(null, [
      ['checkpoint', '<code>' + esc(ck.dir) + '</code> (format ' + ck.format_version + ')'],
      ['step · tokens seen', big(ck.step) + ' · ' + big(ck.tokens_seen)],
      ['tokenizer · vocabulary', esc(ck.tokenizer) + ' · ' + big(ck.vocabulary)],
      ['model', 'd_model ' + m.d_model + ', ' + m.n_layers + ' layers, context ' + m.context + ', ' + m.heads_per_block + ' head(s) of ' + m.head_dim + ' per block, k_max ' + m.k_max + ', τ ' + m.tau + ', γ ' + m.gamma + ', ρ ' + m.rho],
      ['parameters', big(p.active) + ' active (' + big(p.shared) + ' shared + ' + big(p.per_block) + ' per block × ' + card.blocks.length + ' blocks); ' + big(p.allocated) + ' allocated for ' + m.k_max + ' slots'],
      ['anchors', esc(a.kind) + ' code in R^' + a.dim + ', coherence μ = ' + fmt(a.coherence) + ' (Welch bound ' + fmt(a.welch_bound) + ')'],
      ['software', 'localist ' + esc(card.software.version) + ', commit <code>' + esc(card.software.commit) + '</code>'],
      ['method', card.method.map((x) => esc(x.author) + ', “' + esc(x.title) + '”, arXiv ' + esc(x.arxiv)).join('<br>')],
    ]);
    s += '<h3>Blocks</h3>' + table(['block', 'origin', 'step', 'domain', 'gain (bits)', 'z·SE', 'cost (bits)', 'J before → after'],
      card.blocks.map((b) => {
        const d = b.decision || {};
        return ['<span class="swatch" style="background:' + colourOf(b.slot) + '"></span>' + b.slot, esc(b.origin), b.step === undefined ? '–' : b.step,
          esc(b.domain || '–'), d.gain_bits === undefined ? '–' : big(Math.round(d.gain_bits)),
          d.se_bits === undefined ? '–' : big(Math.round(d.z * d.se_bits)), d.cost_bits === undefined ? '–' : big(Math.round(d.cost_bits)),
          d.j_before === undefined ? '–' : big(Math.round(d.j_before)) + ' → ' + big(Math.round(d.j_after))];
      }), [false, false, true, false, true, true, true, true]);
    if (card.pool) {
      s += '<h3>Pool of LLMs</h3>' + table(['LLM', 'parent', 'branched at', 'domains', 'parameters', 'active blocks'],
        card.pool.llms.map((l) => [esc(l.name), esc(l.parent || '–'), l.branch_step === undefined ? '–' : l.branch_step,
          esc((l.domains || []).join(', ') || '(the rest)'), big(l.parameters), l.active_blocks]));
    }
    s += '<h3>Training curves</h3>';
    const cv = R.curves;
    if (!cv.found) {
      s += '<p class="muted">No metrics.jsonl beside the checkpoint (looked for <code>' + esc(cv.path) + '</code>).</p>';
    } else {
      const markers = cv.events.filter((e) => e.event !== 'eval').map((e) => ({x: e.step,
        colour: e.event === 'pool_recruitment' ? '#8250df' : (e.accepted ? '#1a7f37' : '#bbb'),
        label: (e.event === 'pool_recruitment' ? 'spawn ' : 'recruitment ') + (e.accepted ? 'accepted' : 'rejected') + ' at step ' + e.step}));
      const names = Object.keys(cv.llms);
      const chart = (key, title) => lineChart({title: title, xlabel: 'step', markers: markers,
        series: names.map((n) => ({name: n, x: cv.llms[n].step, y: cv.llms[n][key]}))});
      s += '<div class="charts" id="training-curves">' + chart('loss', 'loss') + chart('bits_per_token', 'bits per token') +
        chart('dial', 'dial λ (mean over layers)') + chart('active_blocks', 'active blocks') +
        (names.some((n) => (cv.llms[n].mfu || []).some((v) => v !== null)) ? chart('mfu', 'MFU (model FLOPs / peak)') : '') + '</div>' +
        '<p class="muted">Dashed lines: recruitment accepted (green) or rejected (grey), specialist spawned (purple).</p>';
      const parts = ['data', 'forward', 'backward', 'sync', 'optimizer', 'boundary', 'rounds', 'eval', 'checkpoint', 'other'];
      const timed = names.filter((n) => cv.llms[n].time_ms && cv.llms[n].time_ms.steps);
      if (timed.length) {
        s += '<h3>Where the time went</h3><p class="muted">Mean milliseconds per logged step after the first, on the rank that leads each LLM (metrics.jsonl <code>time_ms</code>).</p>' +
          table(['LLM', 'step'].concat(parts), timed.map((n) => [esc(n), fmt(cv.llms[n].time_ms.step, 1)].concat(
            parts.map((p) => fmt(cv.llms[n].time_ms[p] || 0, 1) + ' (' + fmt(100 * (cv.llms[n].time_ms[p] || 0) / cv.llms[n].time_ms.step, 0) + '%)'))),
          [false].concat(parts.map(() => true), [true]));
      }
    }
    s += '<h3>Checkpoint files</h3>' + table(['file', 'bytes', 'SHA-256', 'checked'], card.files.map((f) =>
      ['<code>' + esc(f.name) + '</code>', big(f.bytes), '<code>' + esc(f.sha256) + '</code>', f.verified ? '<span class="ok">verified</span>' : '<span class="bad">not verified</span>']), [false, true, false, false]);
    s += '<details><summary>Run config (as stored in the checkpoint)</summary><pre>' + esc(card.config_yaml) + '</pre></details>';
    body('card').innerHTML = s;
  }

  // ---- the dial
  function renderDial() {
    const sw = R.sweep;
    let s = '<p>Held-out metrics of LLM <b>' + esc(R.evaluation.llm) + '</b> on the report\'s windows at each value of the dial λ (bits everywhere).</p>';
    s += table(['λ', 'H_attn (bits)', 'own fidelity', 'rule fidelity', 'perplexity', 'bits/token', 'routing MI', 'ε ≤ bound', 'H ≤ bound', 'Δ ≥ bound'],
      sw.map((m) => [fmt(m.dial, 2), fmt(m.attn_entropy_bits), fmt(m.own_fidelity_mass), m.rule_pairs ? fmt(m.rule_fidelity_mass) : '–',
        fmt(m.perplexity), fmt(m.bits_per_token), fmt(m.mutual_info_bits), holds(m.bound_epsilon_holds), holds(m.bound_entropy_holds), holds(m.bound_delta_holds)]),
      [true, true, true, true, true, true, true, true, true, true]);
    const x = sw.map((m) => m.dial);
    s += '<div class="charts" id="dial-plots">' +
      lineChart({title: 'attention entropy (bits)', xlabel: 'λ', series: [{name: 'H_attn', x: x, y: sw.map((m) => m.attn_entropy_bits)}]}) +
      lineChart({title: 'pointer fidelity (mass)', xlabel: 'λ', series: [{name: 'own block', x: x, y: sw.map((m) => m.own_fidelity_mass)}].concat(
        sw.some((m) => m.rule_pairs) ? [{name: 'rules', x: x, y: sw.map((m) => m.rule_pairs ? m.rule_fidelity_mass : NaN)}] : [])}) +
      lineChart({title: 'perplexity', xlabel: 'λ', series: [{name: 'ppl', x: x, y: sw.map((m) => m.perplexity)}]}) + '</div>';
    s += renderLayers(sw, x);
    body('dial').innerHTML = s;
  }
  // Per layer (progressive locality gives each layer its own λ_ℓ): the report's pass at the
  // trained dial, then each layer's entropy and fidelity across the sweep.
  function renderLayers(sw, x) {
    const e = R.evaluation, L = e.attn_entropy_per_layer.length;
    let s = '<h3>By layer</h3><p>At the trained dial (λ_ℓ per layer, from the checkpoint\'s schedule and profile): each layer\'s attention entropy and own-block pointer fidelity.</p>';
    s += table(['layer', 'λ_ℓ', 'H_attn (bits)', 'own fidelity'], e.attn_entropy_per_layer.map((h, l) =>
      [String(l), fmt(e.dial_per_layer[l], 3), fmt(h), fmt(e.own_fidelity_per_layer[l])]), [true, true, true, true]);
    const layers = [...Array(L).keys()];
    s += '<div class="charts" id="layer-plots">' +
      lineChart({title: 'attention entropy by layer (bits)', xlabel: 'λ', series: layers.map((l) => ({name: 'layer ' + l, x: x, y: sw.map((m) => m.attn_entropy_per_layer_bits[l])}))}) +
      lineChart({title: 'own-block fidelity by layer', xlabel: 'λ', series: layers.map((l) => ({name: 'layer ' + l, x: x, y: sw.map((m) => m.own_fidelity_per_layer[l])}))}) + '</div>';
    return s;
  }
  const holds = (f) => f === undefined ? '–' : '<span class="' + (f >= 1 ? 'ok' : 'bad') + '">' + (100 * f).toFixed(f >= 1 ? 0 : 2) + '%</span>';

  // ---- blocks
  function renderBlocks() {
    let s = '<p>Each active block of <b>' + esc(R.evaluation.llm) + '</b> at λ = ' + fmt(R.evaluation.dial, 2) + ': its share of the tokens per layer (hard routing), the tokens routed to it most, and the contexts it is surest of (click one to open it in the token view).</p>';
    for (const b of R.blocks) {
      s += '<div class="block-card" data-slot="' + b.slot + '"><h3><span class="swatch" style="background:' + colourOf(b.slot) + '"></span>block ' + b.slot + ' <span class="muted">(' + esc(b.origin || '') + (b.domain ? ', recruited for ' + esc(b.domain) + ' at step ' + b.step : '') + ')</span></h3>';
      s += '<p>anchor <code>[' + b.anchor.map((v) => v.toFixed(2)).join(', ') + ']</code>, coherence with the other active anchors ' + fmt(b.coherence) + '</p>';
      s += table(['layer', 'share', 'tokens routed here most (count)', 'surest contexts (π)'], b.layers.map((l, i) => [i, fmt(l.share),
        l.tokens.map((t) => '<code>' + esc(cell(t.text)) + '</code>&nbsp;' + t.count).join(' '),
        l.contexts.map((c) => '<a class="jump" data-w="' + c.window + '" data-i="' + c.position + '" data-l="' + i + '">…' + esc(cell(c.before)) + '<b>' + esc(cell(c.token)) + '</b></a> (' + fmt(c.pi, 2) + ')').join('<br>')]), [true, true, false, false]);
      s += '</div>';
    }
    body('blocks').innerHTML = s;
  }

  // ---- token view
  const TV = R.token_view;
  let cur = {w: 0, l: TV.layers - 1, colour: 'block', sel: -1};
  function renderTokenShell() {
    const wopts = TV.windows.map((w, i) => '<option value="' + i + '">window ' + w.index + (w.domain ? ' (' + esc(w.domain) + ')' : '') + (R.pool_routing ? ' · ' + esc(w.llm) : '') + '</option>').join('');
    const lopts = Array.from({length: TV.layers}, (_, l) => '<option value="' + l + '">' + l + '</option>').join('');
    body('tokens').innerHTML = '<div class="controls"><label>window <select id="tv-window">' + wopts + '</select></label>' +
      '<label>layer <select id="tv-layer">' + lopts + '</select></label>' +
      '<label>colour by <select id="tv-colour"><option value="block">block</option><option value="bits">bits of the next token</option></select></label>' +
      '<span id="tv-legend"></span></div><div id="token-text"></div><div id="token-detail" class="muted">Click a token: its routing π, its gate, the rules that fired and the earlier tokens each head attends to most.</div>';
    $('#tv-layer').value = String(cur.l);
    $('#tv-window').addEventListener('change', (e) => { cur.w = +e.target.value; cur.sel = -1; renderTokens(); });
    $('#tv-layer').addEventListener('change', (e) => { cur.l = +e.target.value; renderTokens(); });
    $('#tv-colour').addEventListener('change', (e) => { cur.colour = e.target.value; renderTokens(); });
    $('#token-text').addEventListener('click', (e) => { const t = e.target.closest('.tok'); if (t) selectToken(+t.dataset.i); });
  }
  function renderTokens() {
    const w = TV.windows[cur.w];
    if (!w) { $('#token-text').textContent = 'no windows'; return; }
    const ly = w.layers[cur.l];
    const maxBits = Math.max(1, ...w.bits);
    $('#token-text').innerHTML = w.tokens.map((t, i) => {
      const bg = cur.colour === 'block' ? colourOf(ly.block[i]) : 'rgba(207,34,46,' + (w.bits[i] / maxBits).toFixed(3) + ')';
      const fired = w.rules[i] && w.rules[i].length ? ' fired' : '';
      return '<span class="tok' + fired + '" data-i="' + i + '" title="position ' + i + ', block ' + ly.block[i] + ', ' + w.bits[i].toFixed(2) + ' bits" style="background:' + bg + '">' + esc(shown(t)) + '</span>';
    }).join('');
    $('#tv-legend').innerHTML = cur.colour === 'block' ? TV.active_slots.map((s) => '<span class="swatch" style="background:' + colourOf(s) + '"></span>block ' + s).join(' ') : 'darker: more bits';
    if (cur.sel >= 0) selectToken(cur.sel);
  }
  function selectToken(i) {
    const w = TV.windows[cur.w], ly = w.layers[cur.l];
    cur.sel = i;
    document.querySelectorAll('#token-text .tok.selected, #token-text .tok.attended').forEach((e) => e.classList.remove('selected', 'attended'));
    const spans = document.querySelectorAll('#token-text .tok');
    spans[i].classList.add('selected');
    const top = ly.top[i];
    for (const [, j] of top) if (j !== i) spans[j].classList.add('attended');
    const slotName = (k) => 'block ' + TV.active_slots[k];
    let s = '<b>position ' + i + '</b> <code>' + esc(cell(w.tokens[i])) + '</code> · block ' + ly.block[i] + ' · next token ' + fmt(w.bits[i], 2) + ' bits · layer ' + cur.l + (w.llm ? ' · LLM ' + esc(w.llm) : '');
    s += table(['', ...TV.active_slots.map((x) => 'block ' + x)], [
      ['π', ...ly.pi[i].map((p) => '<span class="bar" style="width:' + Math.round(40 * p) + 'px"></span> ' + fmt(p))],
      ['gate', ...ly.gate[i].map((g) => fmt(g))]]);
    const fired = (w.rules[i] || []).map((r) => esc(TV.rule_names[r] || ('rule ' + r)));
    s += '<p>rules fired: ' + (fired.length ? fired.join(', ') : 'none') + (ly.rule_mass[i] !== null && ly.rule_mass[i] !== undefined ? ' · mass on the rule targets (mean over heads) ' + fmt(ly.rule_mass[i]) : '') + '</p>';
    s += table(['head (block)', 'attended earlier position', 'token', 'weight'], top.map(([h, j, a]) => [h + ' (' + slotName(TV.head_blocks[h]) + ')', j,
      '<code>' + esc(cell(w.tokens[j])) + '</code>', '<span class="attn-target" data-j="' + j + '">' + fmt(a) + '</span>']), [false, true, false, true]);
    const d = $('#token-detail');
    d.classList.remove('muted');
    d.innerHTML = s;
  }
  function jump(w, i, l) {
    const k = TV.windows.findIndex((x) => x.index === w);
    if (k < 0) return;
    cur.w = k;
    if (l !== undefined && !Number.isNaN(l)) cur.l = l;
    $('#tv-window').value = String(k);
    $('#tv-layer').value = String(cur.l);
    cur.sel = i;
    renderTokens();
    $('#tokens').scrollIntoView();
  }
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a.jump');
    if (!a) return;
    e.preventDefault();
    jump(+a.dataset.w, +a.dataset.i, a.dataset.l === undefined ? undefined : +a.dataset.l);
  });

  // ---- rules
  function renderRules() {
    const rr = R.rules;
    if (!rr.rules.length) { body('rules').innerHTML = '<p class="muted">No rules were applied (pass --rules FILE; blocks recruited for a domain add route rules when the text has that domain).</p>'; return; }
    let s = '<p>' + (rr.file ? 'Rules file <code>' + esc(rr.file) + '</code>. ' : '') + 'Pointer fidelity over the (layer, head, query) triples a rule fired for: the attention mass on its targets, and how often the most attended key is one (top-1); ε = 1 − mass, the off-target mass.</p>';
    s += table(['rule', 'kind', 'firings', 'fidelity (mass)', 'fidelity (top-1)', 'ε mean', 'ε max', 'queries below ' + rr.fidelity_threshold],
      rr.rules.map((r) => [esc(r.name), esc(r.kind), big(r.firings), fmt(r.fidelity_mass), fmt(r.fidelity_top1), fmt(r.epsilon_mean), fmt(r.epsilon_max),
        r.kind === 'point' ? big(r.low_fidelity_count) : '–']), [false, false, true, true, true, true, true, true]);
    for (const r of rr.rules) {
      if (r.kind !== 'point' || !r.low_fidelity.length) continue;
      s += '<h3>' + esc(r.name) + ': queries below fidelity ' + rr.fidelity_threshold + '</h3><p>' + r.low_fidelity.map((q) =>
        '<a class="jump low-fidelity" data-w="' + q.window + '" data-i="' + q.position + '">window ' + q.window + ' position ' + q.position + '</a> (' + fmt(q.mass) + ')').join(', ') + '</p>';
    }
    body('rules').innerHTML = s;
  }

  // ---- bounds
  function renderBounds() {
    const b = R.bounds;
    let s = '<p>The M8 checks on the ' + big(b.queries) + ' (sequence, head, query) triples with both on- and off-target keys, at λ = ' + fmt(R.evaluation.dial, 2) + '. A check that fails anywhere is a bug.</p>';
    s += table(['check', 'holds on'], [['ε ≤ (|O|/|A|)·exp(−Δ)', holds(b.epsilon_holds)], ['H(α) ≤ h2(ε) + (1−ε)·log2|A| + ε·log2|O|', holds(b.entropy_holds)],
      ['Δ ≥ λγ − 2·S_max', holds(b.delta_holds)]]);
    s += '<p>S_max = ' + fmt(b.s_max) + ', median λ* = ' + fmt(b.lambda_star_median) + ' (fidelity ≥ 1 − ε0 = ' + fmt(1 - b.epsilon0, 2) + ' guaranteed once λ ≥ λ*).</p>';
    s += '<div class="charts">' + histogram('ε (off-target mass)', b.epsilon_histogram) +
      histogram('λ* in [0, 1]', b.lambda_star_histogram, big(b.lambda_star_below) + ' below 0, ' + big(b.lambda_star_above) + ' above 1') + '</div>';
    body('bounds').innerHTML = s;
  }

  // ---- recruitment and pool log
  function renderTimeline() {
    const ev = [];
    for (const e of (R.curves.events || [])) if (e.event !== 'eval') ev.push(e);
    if (!R.curves.found) for (const d of card.recruitment_log) ev.push(Object.assign({event: 'recruitment'}, d));
    if (!R.curves.found && card.pool) for (const d of card.pool.log) ev.push(Object.assign({event: 'pool_recruitment'}, d));
    ev.sort((a, b) => a.step - b.step);
    if (!ev.length) { body('timeline').innerHTML = '<p class="muted">No recruitment round or spawn trial in this run.</p>'; return; }
    const last = Math.max(ck.step, ...ev.map((e) => e.step)), W = 900, H = 54;
    let s = '<svg class="chart" width="' + W + '" height="' + H + '" id="timeline-axis"><line x1="20" x2="' + (W - 20) + '" y1="30" y2="30" stroke="#999"/>';
    ev.forEach((e) => { const x = 20 + (W - 40) * e.step / Math.max(1, last);
      s += '<circle cx="' + x + '" cy="30" r="5" fill="' + (e.event === 'pool_recruitment' ? '#8250df' : e.accepted ? '#1a7f37' : '#bbb') + '"><title>step ' + e.step + '</title></circle>'; });
    s += '<text x="20" y="50">0</text><text x="' + (W - 20) + '" y="50" text-anchor="end">step ' + last + '</text></svg>';
    s += table(['step', 'LLM', 'what', 'candidate / domain', 'decision', 'gain − z·SE − cost (bits)'], ev.map((e) => {
      const margin = (e.gain_bits !== undefined) ? e.gain_bits - (e.z || 0) * (e.se_bits || 0) - (e.cost_bits || 0) : undefined;
      return [e.step, esc(e.llm || e.parent || 'main'), e.event === 'pool_recruitment' ? 'specialist trial' : 'block trial',
        esc(e.candidate || e.domain || (e.candidates && e.candidates.length === undefined ? '' : '') || '–'),
        e.accepted ? '<span class="ok">accepted</span>' + (e.name ? ' (' + esc(e.name) + ')' : '') : (e.accepted === false ? 'rejected' : esc(e.decision || '–')),
        margin === undefined ? '–' : big(Math.round(margin))];
    }), [true, false, false, false, false, true]);
    body('timeline').innerHTML = s;
  }

  // ---- pool
  function renderPool() {
    if (!R.pool_routing) { body('pool').innerHTML = '<p class="muted">One LLM: no pool routing.</p>'; return; }
    const p = R.pool_routing;
    let s = '<p>' + esc(p.rule) + '</p>';
    s += table(['window', 'domain', 'served by', 'why', ...p.llms.map((l) => 'bits of ' + l + ' (first ' + p.prefix + ' tokens)')],
      p.windows.map((w) => ['<a class="jump" data-w="' + w.window + '" data-i="0">' + w.window + '</a>', esc(w.domain || '–'), '<b>' + esc(w.llm) + '</b>', esc(w.reason),
        ...w.prefix_bits.map((b, k) => (w.llm === p.llms[k] ? '<b>' : '') + fmt(b, 1) + (w.llm === p.llms[k] ? '</b>' : ''))]), [true, false, false, false].concat(p.llms.map(() => true)));
    body('pool').innerHTML = s;
  }

  renderCard();
  renderDial();
  renderBlocks();
  renderTokenShell();
  renderTokens();
  renderRules();
  renderBounds();
  renderTimeline();
  renderPool();
  document.body.dataset.rendered = 'yes';
})();
