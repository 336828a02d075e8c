// Hookline consumer portal (browser). Reads the portal session from the URL fragment
// (#token=<jwt>), forgets the fragment, and calls the tenant's routes of the JSON API with the
// typed client, the token as `Authorization: Bearer`. The token is kept in memory only: nothing
// is stored, so a page that frames the portal without a token can do nothing.
// Everything from the API is put on the page as text (textContent), never as HTML.
import { createHooklineClient, HooklineApiError, ok, type HooklineClient, type paths } from '../../client';
import { exampleFromSchema } from './example';

// The shapes the API answers with, straight from the generated types.
type Json<P extends keyof paths, M extends 'get' | 'post'> = paths[P][M] extends { responses: infer R }
  ? R extends { 200: { content: { 'application/json': infer B } } } ? B : never
  : never;
type Session = Json<'/v1/portal/session', 'get'>;
type EndpointRow = Json<'/v1/tenants/{tenantId}/endpoints', 'get'>['data'][number];
type DeliveryRow = Json<'/v1/tenants/{tenantId}/deliveries', 'get'>['data'][number];

// -------------------------------------------------------------------------------------------
// The session

/**
 * The token in the fragment, read once; the fragment is then removed from the address bar and
 * history so the token is not copied along with the URL.
 */
function takeToken(): string | null {
  const token = new URLSearchParams(location.hash.slice(1)).get('token');
  if (location.hash) history.replaceState(null, '', location.pathname + location.search);
  return token;
}

function applyBranding(b: Session['branding']): void {
  if (b.title) {
    $('brand-title').textContent = b.title;
    document.title = b.title;
  }
  // The API accepts only https logos and #rrggbb colours; checked again here because the CSP
  // allows no other remote images and a colour is all --accent should ever hold.
  if (b.logoUrl && /^https:\/\//i.test(b.logoUrl)) {
    const img = $('brand-logo') as HTMLImageElement;
    img.src = b.logoUrl;
    img.hidden = false;
  }
  if (b.accentColor && /^#(?:[0-9a-f]{3}|[0-9a-f]{6})$/i.test(b.accentColor)) {
    document.documentElement.style.setProperty('--accent', b.accentColor);
  }
}

// -------------------------------------------------------------------------------------------
// Small helpers

const $ = (id: string) => document.getElementById(id) as HTMLElement;

type Child = Node | string | number | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, unknown> = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
    else if (k.startsWith('data-')) el.setAttribute(k, String(v));
    else if (k in el) (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '—');
const badge = (text: string) => h('span', { class: `badge ${text}` }, text.replace('_', ' '));

function notice(message: string, isError = false): void {
  const el = $('notice');
  el.textContent = message;
  el.className = isError ? 'error' : '';
}

function emptyRow(tbody: HTMLElement, columns: number, text: string): void {
  tbody.append(h('tr', {}, h('td', { colSpan: columns, class: 'empty' }, text)));
}

const expired = (err: HooklineApiError) => `The portal session has expired or is not valid (${err.apiMessage}).`;

/** Runs an action; the API's refusal (e.g. the URL policy's 400) is shown as the API words it. */
async function act(what: string, fn: () => Promise<unknown>): Promise<boolean> {
  try {
    await fn();
    return true;
  } catch (err) {
    if (err instanceof HooklineApiError && err.status === 401) refuse(expired(err));
    else notice(`${what} failed: ${err instanceof HooklineApiError ? err.apiMessage : (err as Error).message}`, true);
    return false;
  }
}

/** The session does not work (expired, revoked, malformed): say so and show nothing else. */
function refuse(message: string): void {
  $('portal').hidden = true;
  notice('');
  $('session-error-message').textContent = message;
  $('session-error').hidden = false;
}

// -------------------------------------------------------------------------------------------
// The portal

class Portal {
  private endpoints: EndpointRow[] = [];
  private eventTypes: { name: string; description: string; deprecated: boolean; example: unknown }[] = [];
  private editing: string | null = null; // endpoint id, or null for a new one
  private testing: string | null = null; // the endpoint the test panel sends to
  private readonly expanded = new Set<string>();

  constructor(
    private readonly api: HooklineClient,
    private readonly s: Session,
  ) {}

  private get tenant() {
    return { tenantId: this.s.tenantId };
  }

  async start(): Promise<void> {
    $('session-info').textContent = `${this.s.tenantName || this.s.tenantId}${this.s.readOnly ? ' · read-only' : ''} · until ${when(this.s.expiresAt)}`;
    // Read-only sessions get no buttons that change anything (and the API refuses them anyway).
    if (!this.s.readOnly) {
      $('new-endpoint').hidden = false;
      $('replay-all').hidden = false;
      $('new-endpoint').addEventListener('click', () => this.openEditor(null));
      $('endpoint-cancel').addEventListener('click', () => this.closeEditor());
      $('endpoint-form').addEventListener('submit', (e) => (e.preventDefault(), void this.saveEndpoint()));
      $('replay-all').addEventListener('click', () => void this.replayAll());
      $('test-cancel').addEventListener('click', () => this.closeTest());
      $('test-form').addEventListener('submit', (e) => (e.preventDefault(), void this.sendTest()));
    }
    $('refresh').addEventListener('click', () => void this.refresh());
    const loaded = await act('Loading', async () => {
      await Promise.all([this.loadEventTypes(), this.loadEndpoints()]);
      await this.loadActivity();
    });
    if (loaded) $('portal').hidden = false;
  }

  async refresh(): Promise<void> {
    await act('Refreshing', async () => {
      await this.loadEndpoints();
      await this.loadActivity();
    });
  }

  // ---- event types (the sender's catalogue, global) ----

  private async loadEventTypes(): Promise<void> {
    const page = await ok(this.api.GET('/v1/event-types', { params: { query: { limit: 250 } } }));
    this.eventTypes = page.data.map((t) => {
      const latest = t.versions.find((v) => v.version === t.latestVersion) ?? t.versions[t.versions.length - 1];
      return { name: t.name, description: t.description, deprecated: t.deprecated, example: latest ? exampleFromSchema(latest.schema) : undefined };
    });
    // webhook.test (the API's default) first, for an endpoint that subscribes to nothing yet.
    const choices = ['webhook.test', ...this.eventTypes.map((t) => t.name).filter((n) => n !== 'webhook.test')];
    $('test-type').replaceChildren(...choices.map((name) => h('option', { value: name }, name)));
    const box = $('event-types');
    box.replaceChildren();
    if (this.eventTypes.length === 0) box.append(h('p', { class: 'empty' }, 'No event types are published yet.'));
    for (const t of this.eventTypes) {
      box.append(
        h('div', { class: 'event-type', 'data-event-type': t.name },
          h('strong', { class: 'mono' }, t.name), t.deprecated ? ' (deprecated)' : '',
          h('div', {}, t.description || h('span', { class: 'muted' }, 'No description.')),
          t.example !== undefined ? h('details', {}, h('summary', {}, 'Example payload'), h('pre', {}, JSON.stringify(t.example, null, 2))) : null,
        ),
      );
    }
  }

  // ---- endpoints ----

  private async loadEndpoints(): Promise<void> {
    const page = await ok(this.api.GET('/v1/tenants/{tenantId}/endpoints', { params: { path: this.tenant, query: { limit: 250 } } }));
    this.endpoints = page.data;
    const tbody = $('endpoints').querySelector('tbody')!;
    tbody.replaceChildren();
    if (this.endpoints.length === 0) emptyRow(tbody, 5, 'No endpoints yet.');
    for (const ep of this.endpoints) {
      const buttons = this.s.readOnly
        ? []
        : [
            h('button', { type: 'button', class: 'edit', onclick: () => this.openEditor(ep.id) }, 'Edit'),
            h('button', { type: 'button', class: 'rotate', onclick: () => void this.rotate(ep.id) }, 'Rotate secret'),
            h('button', { type: 'button', class: 'test', onclick: () => this.openTest(ep.id) }, 'Send test'),
            h('button', { type: 'button', class: 'delete danger', onclick: () => void this.remove(ep) }, 'Delete'),
          ];
      tbody.append(
        h('tr', { 'data-endpoint-id': ep.id },
          h('td', { class: 'mono' }, ep.url),
          h('td', {}, ep.description),
          h('td', { class: 'mono' }, ep.eventTypes ? ep.eventTypes.join(', ') : 'all'),
          h('td', { title: ep.disabledReason ?? '' }, badge(ep.disabled ? 'disabled' : 'enabled')),
          h('td', { class: 'actions' }, buttons),
        ),
      );
    }
  }

  private openEditor(id: string | null): void {
    const ep = id ? this.endpoints.find((e) => e.id === id) : undefined;
    this.editing = ep ? ep.id : null;
    $('endpoint-editor-title').textContent = ep ? `Edit endpoint ${ep.id}` : 'Add endpoint';
    ($('ep-url') as HTMLInputElement).value = ep?.url ?? '';
    ($('ep-description') as HTMLInputElement).value = ep?.description ?? '';
    ($('ep-disabled') as HTMLInputElement).checked = ep?.disabled ?? false;
    const chosen = new Set(ep?.eventTypes ?? []);
    // The catalogue, plus any pattern the endpoint already has (e.g. a wildcard set through the API).
    const names = [...new Set([...this.eventTypes.map((t) => t.name), ...chosen])];
    $('ep-event-types').replaceChildren(
      ...names.map((name) => h('label', {}, h('input', { type: 'checkbox', value: name, checked: chosen.has(name) }), h('span', { class: 'mono' }, name))),
    );
    $('endpoint-editor').hidden = false;
    ($('ep-url') as HTMLInputElement).focus();
  }

  private closeEditor(): void {
    $('endpoint-editor').hidden = true;
    this.editing = null;
  }

  private async saveEndpoint(): Promise<void> {
    const url = ($('ep-url') as HTMLInputElement).value.trim();
    const description = ($('ep-description') as HTMLInputElement).value;
    const disabled = ($('ep-disabled') as HTMLInputElement).checked;
    const ticked = [...$('ep-event-types').querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value);
    const editing = this.editing;
    const done = await act(editing ? 'Saving the endpoint' : 'Adding the endpoint', async () => {
      if (editing) {
        await ok(this.api.PATCH('/v1/tenants/{tenantId}/endpoints/{id}', {
          params: { path: { ...this.tenant, id: editing } },
          body: { url, description, disabled, eventTypes: ticked.length ? ticked : null },
        }));
        notice(`Saved ${editing}.`);
      } else {
        const created = await ok(this.api.POST('/v1/tenants/{tenantId}/endpoints', {
          params: { path: this.tenant },
          body: { url, description, disabled, ...(ticked.length ? { eventTypes: ticked } : {}) },
        }));
        notice(`Added ${created.id}.`);
        this.showSecret(created.id, created.secret, 'Shown once: copy it into your receiver now.');
      }
    });
    if (done) {
      this.closeEditor();
      await this.refresh();
    }
  }

  private async remove(ep: EndpointRow): Promise<void> {
    if (!confirm(`Delete the endpoint ${ep.url}? It stops receiving events.`)) return;
    if (await act('Deleting the endpoint', () => this.api.DELETE('/v1/tenants/{tenantId}/endpoints/{id}', { params: { path: { ...this.tenant, id: ep.id } } }))) {
      notice(`Deleted ${ep.id}.`);
      await this.refresh();
    }
  }

  private async rotate(id: string): Promise<void> {
    await act('Rotating the secret', async () => {
      const r = await ok(this.api.POST('/v1/tenants/{tenantId}/endpoints/{id}/secret/rotate', { params: { path: { ...this.tenant, id } }, body: {} }));
      this.showSecret(id, r.secret, `The old secret keeps signing until ${when(r.oldSecretsExpireAt)}. Shown once: copy it now.`);
      notice(`Rotated the secret of ${id}.`);
    });
  }

  private showSecret(endpointId: string, secret: string, note: string): void {
    $('secret-endpoint').textContent = endpointId;
    $('secret-value').textContent = secret;
    $('secret-note').textContent = note;
    $('secret-panel').hidden = false;
  }

  // ---- test events ----

  private openTest(id: string): void {
    this.testing = id;
    $('test-endpoint').textContent = id;
    $('test-panel').hidden = false;
  }

  private closeTest(): void {
    $('test-panel').hidden = true;
    this.testing = null;
  }

  private async sendTest(): Promise<void> {
    const id = this.testing;
    if (!id) return;
    const eventType = ($('test-type') as HTMLSelectElement).value;
    const example = this.eventTypes.find((t) => t.name === eventType)?.example;
    // The route takes an object; a type whose example is not one gets the API's default ({}).
    const data = typeof example === 'object' && example !== null && !Array.isArray(example) ? (example as Record<string, unknown>) : undefined;
    const sent = await act('Sending the test event', async () => {
      const ev = await ok(this.api.POST('/v1/tenants/{tenantId}/endpoints/{id}/test', { params: { path: { ...this.tenant, id } }, body: { eventType, data } }));
      notice(`Sent test event ${ev.id} (${ev.type}) to ${id}.`);
    });
    if (sent) await this.refresh();
  }

  // ---- deliveries and dead letters ----

  private async loadActivity(): Promise<void> {
    const [deliveries, deadLetters] = await Promise.all([
      ok(this.api.GET('/v1/tenants/{tenantId}/deliveries', { params: { path: this.tenant, query: { limit: 50 } } })),
      ok(this.api.GET('/v1/tenants/{tenantId}/dead-letters', { params: { path: this.tenant, query: { limit: 50 } } })),
    ]);
    await this.renderDeliveries(deliveries.data);
    this.renderDeadLetters(deadLetters.data);
  }

  /** An endpoint as its owner knows it (description, else URL), its id on hover. */
  private endpointCell(id: string): HTMLElement {
    const ep = this.endpoints.find((e) => e.id === id);
    return h('td', { title: id, class: ep?.description ? '' : 'mono' }, ep ? ep.description || ep.url : id);
  }

  private async renderDeliveries(rows: DeliveryRow[]): Promise<void> {
    const tbody = $('deliveries').querySelector('tbody')!;
    const fragment: HTMLElement[] = [];
    for (const d of rows) {
      const key = `${d.eventId} ${d.endpointId}`;
      const open = this.expanded.has(key);
      fragment.push(
        h('tr', { 'data-event-id': d.eventId, 'data-endpoint-id': d.endpointId, 'data-status': d.status },
          h('td', {}, when(d.createdAt)),
          h('td', { class: 'mono' }, d.eventId),
          this.endpointCell(d.endpointId),
          h('td', { class: 'mono' }, d.eventType),
          h('td', {}, badge(d.status)),
          h('td', {}, d.attempts),
          h('td', {}, d.lastStatusCode ? `HTTP ${d.lastStatusCode}` : d.lastError ?? '—'),
          h('td', {}, h('button', { type: 'button', class: 'attempts', onclick: () => this.toggleAttempts(key) }, open ? 'Hide attempts' : 'Attempts')),
        ),
      );
      if (open) fragment.push(await this.attemptsRow(d.eventId, d.endpointId));
    }
    tbody.replaceChildren(...fragment);
    if (rows.length === 0) emptyRow(tbody, 8, 'No deliveries yet.');
  }

  private toggleAttempts(key: string): void {
    if (!this.expanded.delete(key)) this.expanded.add(key);
    void this.refresh();
  }

  private async attemptsRow(eventId: string, endpointId: string): Promise<HTMLElement> {
    const r = await ok(this.api.GET('/v1/tenants/{tenantId}/deliveries/{eventId}/{endpointId}/attempts', {
      params: { path: { ...this.tenant, eventId, endpointId } },
    }));
    const lines = r.data.map((a) =>
      h('tr', { 'data-attempt': a.attempt },
        h('td', {}, `#${a.attempt}`), h('td', {}, when(a.startedAt)),
        h('td', {}, a.statusCode ? `HTTP ${a.statusCode}` : '—'), h('td', {}, `${a.latencyMs} ms`),
        h('td', {}, a.outcome), h('td', { class: 'reason' }, a.error ?? ''),
      ),
    );
    return h('tr', { class: 'attempts', 'data-attempts-of': `${eventId} ${endpointId}` },
      h('td', { colSpan: 8 }, lines.length ? h('table', {}, h('tbody', {}, lines)) : h('span', { class: 'empty' }, 'No attempts yet.')),
    );
  }

  private renderDeadLetters(rows: DeliveryRow[]): void {
    const tbody = $('dead-letters').querySelector('tbody')!;
    tbody.replaceChildren();
    if (rows.length === 0) emptyRow(tbody, 7, 'No dead letters.');
    for (const d of rows) {
      tbody.append(
        h('tr', { 'data-event-id': d.eventId, 'data-endpoint-id': d.endpointId },
          h('td', {}, when(d.deadLetteredAt)),
          h('td', { class: 'mono' }, d.eventId),
          this.endpointCell(d.endpointId),
          h('td', { class: 'mono' }, d.eventType),
          h('td', {}, d.attempts),
          h('td', { class: 'reason' }, d.reason ?? d.lastError ?? ''),
          h('td', {}, this.s.readOnly ? null : h('button', { type: 'button', class: 'replay', onclick: () => void this.replayOne(d.eventId, d.endpointId) }, 'Replay')),
        ),
      );
    }
  }

  private async replayOne(eventId: string, endpointId: string): Promise<void> {
    const done = await act('Replaying', () =>
      ok(this.api.POST('/v1/tenants/{tenantId}/deliveries/{eventId}/{endpointId}/replay', { params: { path: { ...this.tenant, eventId, endpointId } } })),
    );
    if (done) notice(`Replay requested: ${eventId} → ${endpointId}`);
    await this.refresh();
  }

  /** Bulk replay answers one batch per request (issue 21): follow nextCursor to the end. */
  private async replayAll(): Promise<void> {
    let replayed = 0;
    const done = await act('Replaying', async () => {
      let cursor: string | null = null;
      do {
        // Typed loosely until the client is regenerated with the batch fields (cursor, nextCursor, remaining).
        const body = (cursor ? { cursor } : {}) as never;
        const batch = (await ok(this.api.POST('/v1/tenants/{tenantId}/dead-letters/replay', { params: { path: this.tenant }, body }))) as { replayed: number; nextCursor?: string | null; remaining?: number };
        replayed += batch.replayed;
        cursor = batch.nextCursor ?? null;
        if (cursor) notice(`Replaying: ${replayed} requested, ${batch.remaining ?? '?'} to go…`);
      } while (cursor);
    });
    if (done) notice(`Replay requested for ${replayed} dead letter(s).`);
    await this.refresh();
  }
}

async function main(): Promise<void> {
  const token = takeToken();
  if (!token) return refuse('No portal session in the link.');
  const api = createHooklineClient({ baseUrl: location.origin, token });
  // The API checks the token (signature, expiry) and says what the session is: tenant, read-only,
  // branding. Nothing is taken from the token unchecked.
  let session: Session;
  try {
    session = await ok(api.GET('/v1/portal/session'));
  } catch (err) {
    const why = err instanceof HooklineApiError ? err.apiMessage : (err as Error).message;
    return refuse(err instanceof HooklineApiError && err.status === 401 ? expired(err) : why);
  }
  applyBranding(session.branding);
  await new Portal(api, session).start();
}

void main();
