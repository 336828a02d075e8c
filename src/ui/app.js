// Hookline operator console: plain browser JavaScript over the JSON API, no framework, no build.
// Everything from the API is put on the page as text (textContent), never as HTML.
'use strict';

(() => {
  const KEY_STORAGE = 'hookline.apiKey';
  const REFRESH_MS = 5000;
  const PAGE = 50;
  const STATS_WINDOW = '24h';

  const $ = (id) => document.getElementById(id);
  let config = { temporalUiUrl: null, namespace: 'default', authRequired: false, version: '' };
  let endpoints = [];
  let endpointsCursor = null;
  let dlCursor = null;
  let dvCursor = null;
  let refreshing = false;
  let authBlocked = false;
  const expanded = new Set(); // deliveries whose attempts are shown, as "eventId endpointId"

  // -------------------------------------------------------------------------------------------
  // Small helpers

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k.startsWith('data-')) el.setAttribute(k, v);
      else if (k in el) el[k] = v;
      else el.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
  const pct = (r) => (r === null || r === undefined ? '—' : `${(r * 100).toFixed(r >= 0.999 || r === 0 ? 0 : 1)} %`);
  const ms = (v) => (v === null || v === undefined ? '—' : `${Math.round(v)}`);

  /** Host and path only: a query string may carry a token. */
  function shortUrl(url) {
    try {
      const u = new URL(url);
      return u.host + u.pathname;
    } catch {
      return url;
    }
  }

  function workflowLink(eventId) {
    if (!config.temporalUiUrl) return h('span', { class: 'mono' }, eventId);
    const href = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.namespace)}/workflows/${encodeURIComponent(eventId)}`;
    return h('a', { class: 'mono', href, target: '_blank', rel: 'noopener noreferrer', title: 'open the workflow in the Temporal Web UI' }, eventId);
  }

  function badge(text, kind) {
    return h('span', { class: `badge ${kind || text}` }, text.replace('_', ' '));
  }

  function notice(message, isError) {
    const el = $('notice');
    el.textContent = message || '';
    el.className = isError ? 'error' : '';
  }

  function emptyRow(tbody, columns, text) {
    tbody.append(h('tr', {}, h('td', { colSpan: columns, class: 'empty' }, text)));
  }

  // -------------------------------------------------------------------------------------------
  // The API

  class AuthError extends Error {}

  async function api(method, path, body) {
    const headers = {};
    const key = sessionStorage.getItem(KEY_STORAGE);
    if (key) headers.authorization = `Bearer ${key}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (res.status === 401) {
      showAuth(key ? 'That API key was refused.' : 'This Hookline needs its API key.');
      throw new AuthError('unauthorized');
    }
    const json = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${path.split('?')[0]}: ${res.status} ${(json && json.message) || res.statusText}`);
    return json;
  }

  function showAuth(message) {
    authBlocked = true;
    $('auth').hidden = false;
    $('auth-message').textContent = `${message} It stays in this tab (sessionStorage).`;
    $('api-key').focus();
  }

  // -------------------------------------------------------------------------------------------
  // Endpoints and their health

  function health(ep, s) {
    if (ep.disabled) return 'disabled';
    if (!s) return 'unknown';
    if (s.attempts.total === 0 && s.consecutiveFailures === 0) return 'idle';
    if (s.consecutiveFailures >= 5 || (s.successRate !== null && s.successRate < 0.5)) return 'failing';
    if (s.consecutiveFailures > 0 || (s.successRate !== null && s.successRate < 0.95)) return 'degraded';
    return 'healthy';
  }

  async function loadEndpoints(append) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (append && endpointsCursor) q.set('cursor', endpointsCursor);
    const page = await api('GET', `/v1/endpoints?${q}`);
    endpointsCursor = page.nextCursor;
    endpoints = append ? endpoints.concat(page.data) : page.data;
    const stats = await Promise.all(
      page.data.map((ep) => api('GET', `/v1/endpoints/${encodeURIComponent(ep.id)}/stats?window=${STATS_WINDOW}`).catch(() => null)),
    );
    // The circuit breaker's state is on the endpoint itself (GET /v1/endpoints/:id → health).
    const circuits = await Promise.all(
      page.data.map((ep) => api('GET', `/v1/endpoints/${encodeURIComponent(ep.id)}`).then((e) => e.health || null).catch(() => null)),
    );
    const tbody = $('endpoints').tBodies[0];
    if (!append) tbody.replaceChildren();
    page.data.forEach((ep, i) => tbody.append(endpointRow(ep, stats[i], circuits[i])));
    if (endpoints.length === 0) emptyRow(tbody, 8, 'No endpoints yet: POST /v1/endpoints to add one.');
    $('endpoints-more').hidden = !endpointsCursor;
    fillEndpointSelect($('dl-endpoint'));
    fillEndpointSelect($('dv-endpoint'));
  }

  /** The circuit breaker and Retry-After pause, when they hold deliveries back. */
  function circuitNote(c) {
    if (!c) return null;
    const parts = [];
    if (c.state === 'open') parts.push(`circuit open since ${when(c.since)}; next probe ${when(c.nextProbeAt)}`);
    if (c.state === 'half_open') parts.push('circuit half-open: probe in flight');
    if (c.pausedUntil) parts.push(`paused (Retry-After) until ${when(c.pausedUntil)}`);
    if (c.pausedReason === 'listener_offline') parts.push('paused: hookline listen is disconnected');
    if (c.inFlight > 0) parts.push(`${c.inFlight} in flight`);
    return parts.length > 0 ? h('div', { class: 'muted circuit' }, parts.join(' · ')) : null;
  }

  function endpointRow(ep, s, circuit) {
    const state = !ep.disabled && circuit && circuit.state !== 'closed' ? 'failing' : health(ep, s);
    const last = s && s.lastFailures[0];
    return h('tr', { 'data-endpoint-id': ep.id },
      h('td', {},
        h('a', { href: '#', class: 'mono', title: 'show its dead letters', onclick: (e) => { e.preventDefault(); showDeadLettersOf(ep.id); } }, ep.id),
        ep.description ? h('div', { class: 'muted' }, ep.description) : null),
      h('td', { class: 'mono', title: shortUrl(ep.url) }, shortUrl(ep.url)),
      h('td', {}, badge(state), circuit && circuit.state !== 'closed' ? badge(`circuit ${circuit.state}`, 'failing') : null,
        circuitNote(circuit), ep.disabledReason ? h('div', { class: 'muted' }, ep.disabledReason) : null),
      h('td', { class: 'num' }, s ? pct(s.successRate) : '—', s ? h('div', { class: 'muted' }, `${s.attempts.succeeded}/${s.attempts.total} attempts`) : null),
      h('td', { class: 'num' }, s ? `${ms(s.latencyMs.p50)} / ${ms(s.latencyMs.p95)} / ${ms(s.latencyMs.p99)} ms` : '—'),
      h('td', { class: 'num' }, s ? String(s.consecutiveFailures) : '—'),
      h('td', { class: 'num' }, s ? String(s.deliveries.deadLettered) : '—'),
      h('td', { class: 'reason' }, last ? `${when(last.startedAt)}: ${last.error || `HTTP ${last.statusCode}`}` : '—'),
    );
  }

  function fillEndpointSelect(select) {
    const current = select.value;
    select.replaceChildren(h('option', { value: '' }, 'all'), ...endpoints.map((ep) => h('option', { value: ep.id }, ep.description ? `${ep.id} (${ep.description})` : ep.id)));
    if (current && !endpoints.some((ep) => ep.id === current)) select.append(h('option', { value: current }, current));
    select.value = current;
  }

  function showDeadLettersOf(endpointId) {
    $('dl-endpoint').value = endpointId;
    loadDeadLetters(false).catch(report);
    $('dead-letters').scrollIntoView({ behavior: 'smooth' });
  }

  // -------------------------------------------------------------------------------------------
  // Dead letters

  function deadLetterFilter() {
    const f = {};
    if ($('dl-endpoint').value) f.endpointId = $('dl-endpoint').value;
    if ($('dl-type').value.trim()) f.eventType = $('dl-type').value.trim();
    if ($('dl-since').value) f.since = new Date($('dl-since').value).toISOString();
    return f;
  }

  async function loadDeadLetters(append) {
    const q = new URLSearchParams({ ...deadLetterFilter(), limit: String(PAGE) });
    if (append && dlCursor) q.set('cursor', dlCursor);
    const page = await api('GET', `/v1/dead-letters?${q}`);
    dlCursor = page.nextCursor;
    const tbody = $('dead-letters').tBodies[0];
    if (!append) tbody.replaceChildren();
    for (const d of page.data) tbody.append(deadLetterRow(d));
    if (!append && page.data.length === 0) emptyRow(tbody, 7, 'No dead letters match.');
    $('dl-more').hidden = !dlCursor;
  }

  function deadLetterRow(d) {
    return h('tr', { 'data-event-id': d.eventId, 'data-endpoint-id': d.endpointId },
      h('td', { class: 'num' }, when(d.deadLetteredAt)),
      h('td', {}, workflowLink(d.eventId)),
      h('td', { class: 'mono' }, d.endpointId),
      h('td', {}, d.eventType),
      h('td', { class: 'num' }, String(d.attempts)),
      h('td', { class: 'reason' }, d.reason || d.lastError || '—'),
      h('td', {}, h('button', { type: 'button', class: 'replay', onclick: (e) => replayOne(d, e.currentTarget) }, 'Replay')),
    );
  }

  async function replayOne(d, button) {
    button.disabled = true;
    button.textContent = 'Replaying…';
    try {
      await api('POST', `/v1/deliveries/${encodeURIComponent(d.eventId)}/${encodeURIComponent(d.endpointId)}/replay`);
      notice(`Replay requested: ${d.eventId} → ${d.endpointId}`);
      await refreshAll();
    } catch (err) {
      button.disabled = false;
      button.textContent = 'Replay';
      report(err);
    }
  }

  async function replayAll() {
    const f = deadLetterFilter();
    const scope = Object.keys(f).length ? Object.entries(f).map(([k, v]) => `${k}=${v}`).join(', ') : 'every dead letter';
    if (!window.confirm(`Replay all matching dead letters (${scope})?`)) return;
    try {
      // One bounded batch per request: follow nextCursor until the last batch.
      let replayed = 0;
      let cursor;
      do {
        const r = await api('POST', '/v1/dead-letters/replay', cursor ? { ...f, cursor } : f);
        replayed += r.replayed;
        cursor = r.nextCursor;
        if (cursor) notice(`Replaying: ${replayed} requested, ${r.remaining} to go…`);
      } while (cursor);
      notice(`Replay requested for ${replayed} dead letter(s)`);
      await refreshAll();
    } catch (err) {
      report(err);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Recent deliveries

  async function loadDeliveries(append) {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if ($('dv-status').value) q.set('status', $('dv-status').value);
    if ($('dv-endpoint').value) q.set('endpointId', $('dv-endpoint').value);
    if (append && dvCursor) q.set('cursor', dvCursor);
    const page = await api('GET', `/v1/deliveries?${q}`);
    dvCursor = page.nextCursor;
    const tbody = $('deliveries').tBodies[0];
    if (!append) tbody.replaceChildren();
    for (const d of page.data) {
      const row = deliveryRow(d);
      tbody.append(row);
      if (expanded.has(`${d.eventId} ${d.endpointId}`)) showAttempts(d, row).catch(report);
    }
    if (!append && page.data.length === 0) emptyRow(tbody, 8, 'No deliveries match.');
    $('dv-more').hidden = !dvCursor;
  }

  function deliveryRow(d) {
    const last = d.lastError || (d.lastStatusCode !== null ? `HTTP ${d.lastStatusCode}` : '—');
    const row = h('tr', { 'data-event-id': d.eventId, 'data-endpoint-id': d.endpointId, 'data-status': d.status },
      h('td', { class: 'num' }, when(d.createdAt)),
      h('td', {}, workflowLink(d.eventId)),
      h('td', { class: 'mono' }, d.endpointId),
      h('td', {}, d.eventType),
      h('td', { class: 'status' }, badge(d.status)),
      h('td', { class: 'num' }, String(d.attempts)),
      h('td', { class: 'reason' }, d.reason && d.status !== 'delivered' ? `${last} (${d.reason})` : last),
      h('td', {}, h('button', { type: 'button', onclick: () => toggleAttempts(d, row) }, 'Attempts')),
    );
    return row;
  }

  function toggleAttempts(d, row) {
    const key = `${d.eventId} ${d.endpointId}`;
    const next = row.nextElementSibling;
    if (next && next.classList.contains('attempts')) {
      next.remove();
      expanded.delete(key);
      return;
    }
    expanded.add(key);
    showAttempts(d, row).catch(report);
  }

  async function showAttempts(d, row) {
    const { data } = await api('GET', `/v1/deliveries/${encodeURIComponent(d.eventId)}/${encodeURIComponent(d.endpointId)}/attempts`);
    const next = row.nextElementSibling;
    if (next && next.classList.contains('attempts')) next.remove();
    const list = data.length === 0
      ? h('span', { class: 'empty' }, 'no attempts yet')
      : h('table', {}, h('tbody', {}, data.map((a) => h('tr', {},
          h('td', { class: 'num' }, `#${a.attempt}`),
          h('td', { class: 'num' }, when(a.startedAt)),
          h('td', {}, badge(a.outcome, a.outcome === 'retrying' ? 'delivering' : a.outcome === 'failed' ? 'dead_lettered' : 'delivered')),
          h('td', { class: 'num' }, a.statusCode === null ? '—' : String(a.statusCode)),
          h('td', { class: 'num' }, `${a.latencyMs} ms`),
          h('td', { class: 'reason' }, a.error || ''),
        ))));
    row.after(h('tr', { class: 'attempts' }, h('td', { colSpan: 8 }, list)));
  }

  // -------------------------------------------------------------------------------------------
  // Wiring

  function report(err) {
    if (err instanceof AuthError) return;
    notice(err && err.message ? err.message : String(err), true);
  }

  async function refreshAll() {
    if (refreshing || authBlocked) return;
    refreshing = true;
    try {
      await loadEndpoints(false);
      await Promise.all([loadDeadLetters(false), loadDeliveries(false)]);
      if ($('notice').className === 'error') notice('');
    } catch (err) {
      report(err);
    } finally {
      refreshing = false;
    }
  }

  async function start() {
    try {
      const res = await fetch('/ui/config.json');
      config = await res.json();
    } catch {
      /* keep the defaults; links to Temporal are then plain text */
    }
    $('version').textContent = config.version ? `v${config.version}` : '';
    const temporal = $('temporal-link');
    if (config.temporalUiUrl) temporal.href = `${config.temporalUiUrl}/namespaces/${encodeURIComponent(config.namespace)}/workflows`;
    else temporal.hidden = true;

    $('auth-form').addEventListener('submit', (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY_STORAGE, $('api-key').value.trim());
      $('api-key').value = '';
      $('auth').hidden = true;
      authBlocked = false;
      refreshAll();
    });
    $('forget-key').addEventListener('click', () => {
      sessionStorage.removeItem(KEY_STORAGE);
      showAuth('Key forgotten.');
    });
    $('refresh').addEventListener('click', () => refreshAll());
    $('dl-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      loadDeadLetters(false).catch(report);
    });
    $('dl-replay-all').addEventListener('click', replayAll);
    $('dl-more').addEventListener('click', () => loadDeadLetters(true).catch(report));
    $('dv-filter').addEventListener('submit', (e) => {
      e.preventDefault();
      loadDeliveries(false).catch(report);
    });
    $('dv-more').addEventListener('click', () => loadDeliveries(true).catch(report));
    $('endpoints-more').addEventListener('click', () => loadEndpoints(true).catch(report));

    setInterval(() => {
      // Reloads the first page of each list (untick auto-refresh to page through older ones).
      if (!$('auto-refresh').checked || document.hidden) return;
      refreshAll();
    }, REFRESH_MS);

    if (config.authRequired && !sessionStorage.getItem(KEY_STORAGE)) showAuth('This Hookline needs its API key.');
    else refreshAll();
  }

  start();
})();
