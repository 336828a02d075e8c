-- The live SQL functions: the current text of every function Hookline calls, in one place.
-- src/db/migrate.ts applies this file after the migrations on every start (CREATE OR REPLACE,
-- under the migrations' advisory lock), so editing a function here is the whole change: no
-- migration repeats it. Migrations keep only what CREATE OR REPLACE cannot do (tables, types,
-- a DROP when a signature changes), and their old function bodies are history, never read.
--
-- Owners (test/db-owners.test.ts holds the map): the gate_* functions are src/db/gate.ts's; they
-- are the only writers of endpoint_gates and gate_waiters (migration 011 made both tables and
-- the gate_decision type, 017 added its start_ms). endpoint_* functions are src/db/endpoints.ts's.

-- One attempt asks to go. p_now_ms is the database clock: every worker shares it.
-- A lease lasts the endpoint's response timeout (or p_default_timeout_ms) plus p_margin_ms.
-- Why the rate limit hands out start times: migration 017's header.
CREATE OR REPLACE FUNCTION gate_acquire(
  p_endpoint text, p_lease text, p_default_timeout_ms bigint, p_margin_ms bigint, p_slot_ms bigint,
  p_ticket bigint, p_default_max_in_flight integer, p_probe_ms bigint, p_probe_max_ms bigint,
  p_workflow text, p_start_ms bigint DEFAULT NULL
) RETURNS gate_decision LANGUAGE plpgsql AS $$
DECLARE
  p_lease_ms bigint;
  v_ticket   bigint;
  behind   bigint;
  now_ms   bigint := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  g        endpoint_gates%ROWTYPE;
  lim      jsonb;
  dis      boolean;
  max_in   integer;
  rate     double precision;
  step_ms  bigint;
  live     jsonb;
  tat_ms   bigint;
  win      bigint[];
  d        gate_decision;
  start_ms bigint := now_ms;
  -- Rate limit: a reserved slot's holder comes back lead_ms before it and is given a start up to
  -- ahead_max_ms away, which its worker waits for in-process (to the millisecond; no lease held
  -- meanwhile). A timer that fires late by less than the lead loses nothing. Both are at most 10
  -- and 20 slots of the schedule, so an endpoint has at most ~20 workers' activities waiting so.
  lead_ms      bigint;
  ahead_max_ms bigint;
BEGIN
  SELECT limits, disabled INTO lim, dis FROM endpoints WHERE id = p_endpoint;
  IF NOT FOUND OR dis THEN
    RETURN ROW(false, 'disabled', 0, NULL, NULL, NULL)::gate_decision;
  END IF;
  INSERT INTO endpoint_gates (endpoint_id) VALUES (p_endpoint) ON CONFLICT DO NOTHING;
  SELECT * INTO g FROM endpoint_gates WHERE endpoint_id = p_endpoint FOR UPDATE;

  SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) INTO live
    FROM jsonb_each(g.leases) WHERE value::bigint > now_ms;
  -- A slot a release held for this waiter is its own now (see gate_release).
  IF p_ticket IS NOT NULL THEN
    live := live - ('w' || p_ticket);
  END IF;
  max_in := coalesce((lim->>'maxInFlight')::integer, p_default_max_in_flight);
  p_lease_ms := coalesce((lim->>'responseTimeoutMs')::bigint, p_default_timeout_ms) + p_margin_ms;
  rate := (lim->>'rateLimit')::double precision;

  IF g.pause_until IS NOT NULL AND g.pause_until > clock_timestamp() THEN
    UPDATE endpoint_gates SET leases = live WHERE endpoint_id = p_endpoint;
    RETURN ROW(false, 'paused', (extract(epoch FROM g.pause_until) * 1000)::bigint - now_ms, p_slot_ms, p_ticket, NULL)::gate_decision;
  END IF;

  -- Open circuit: one probe per interval; everyone else waits for the probe's time, then comes
  -- back in ticket order, one drain step apart (the rate limit's spacing, or 10 ms).
  IF g.circuit <> 'closed' THEN
    v_ticket := coalesce(p_ticket, g.tickets + 1);
    behind := greatest(0, v_ticket - g.open_ticket - 1)
      * greatest(10, coalesce(ceil(1000 / nullif((lim->>'rateLimit')::double precision, 0)), 10))::bigint;
    IF g.circuit = 'half_open' AND g.probe_lease IS NOT NULL AND live ? g.probe_lease THEN
      -- The probe is in flight: come back when it must have ended, or at the next probe time.
      UPDATE endpoint_gates SET leases = live, tickets = greatest(tickets, v_ticket) WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'circuit_open', greatest(250, least((live->>g.probe_lease)::bigint,
        (extract(epoch FROM g.next_probe_at) * 1000)::bigint) - now_ms) + behind, NULL, v_ticket, NULL)::gate_decision;
    END IF;
    IF g.next_probe_at > clock_timestamp() THEN
      UPDATE endpoint_gates SET leases = live, tickets = greatest(tickets, v_ticket) WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'circuit_open', (extract(epoch FROM g.next_probe_at) * 1000)::bigint - now_ms + behind, NULL, v_ticket, NULL)::gate_decision;
    END IF;
  END IF;

  -- Rate limit, first: every arrival reserves the next slot of the schedule, in arrival order,
  -- and sleeps until a little before it (no one polls). Only then does the in-flight cap count:
  -- a burst of arrivals queues on the schedule, not on the in-flight hand-off.
  IF rate IS NOT NULL AND p_start_ms IS NULL THEN
    step_ms := greatest(1, ceil(1000 / rate))::bigint;
    lead_ms := least(500, 10 * step_ms);
    ahead_max_ms := least(2000, 20 * step_ms);
    tat_ms := coalesce((extract(epoch FROM g.tat) * 1000)::bigint, 0);
    IF p_slot_ms IS NULL THEN
      p_slot_ms := greatest(tat_ms, now_ms);
      g.tat := to_timestamp((p_slot_ms + step_ms) / 1000.0);
    END IF;
    IF p_slot_ms - lead_ms > now_ms THEN
      UPDATE endpoint_gates SET leases = live, tat = g.tat WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'rate_limit', p_slot_ms - lead_ms - now_ms, p_slot_ms, p_ticket, NULL)::gate_decision;
    END IF;
  END IF;

  IF (SELECT count(*) FROM jsonb_object_keys(live)) >= max_in THEN
    -- Queue up: the next release wakes the first waiter. Its own timer is the fallback for a
    -- lost wake-up: when the oldest lease expires (a slot frees then even if nobody releases).
    -- Polling instead (waking every waiter on a guess) swamped the workers with a few hundred
    -- waiters at a hanging receiver: measured in the bench's isolation phase.
    v_ticket := coalesce(p_ticket, g.tickets + 1);
    UPDATE endpoint_gates SET leases = live, tat = g.tat, tickets = greatest(tickets, v_ticket) WHERE endpoint_id = p_endpoint;
    IF p_workflow IS NOT NULL THEN
      INSERT INTO gate_waiters (endpoint_id, ticket, workflow_id) VALUES (p_endpoint, v_ticket, p_workflow)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN ROW(false, 'in_flight',
      greatest(50, (SELECT min(value::bigint) FROM jsonb_each(live)) - now_ms), p_slot_ms, v_ticket, NULL)::gate_decision;
  END IF;

  -- p_start_ms: the caller's scheduled start has come; only the lease was left to take.
  IF rate IS NOT NULL AND p_start_ms IS NULL THEN
    -- Within lead_ms of its slot, or late: it takes the next start free in the schedule of
    -- admissions, at least step_ms after the last one and never more than the limit in any
    -- second (non-integer rates), however late its timer fired.
    win := ARRAY(SELECT x FROM unnest(g.recent) x WHERE x > now_ms - greatest(1000, step_ms) ORDER BY x);
    start_ms := greatest(now_ms, coalesce(win[cardinality(win)] + step_ms, now_ms));
    IF cardinality(win) >= greatest(1, floor(rate)) THEN
      start_ms := greatest(start_ms, win[cardinality(win) - greatest(1, floor(rate))::integer + 1] + 1000);
    END IF;
    IF start_ms - now_ms > ahead_max_ms THEN
      -- The schedule is further ahead than a worker should hold a request: come back before it,
      -- keeping the slot.
      UPDATE endpoint_gates SET leases = live, tat = g.tat WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'rate_limit', start_ms - lead_ms - now_ms, p_slot_ms, p_ticket, NULL)::gate_decision;
    END IF;
    win := win || start_ms;
    IF start_ms > now_ms THEN
      -- A moment away: the start is this caller's (in the schedule now); the lease waits for it.
      UPDATE endpoint_gates SET leases = live, tat = g.tat, recent = win WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'rate_limit', start_ms - now_ms, p_slot_ms, p_ticket, start_ms)::gate_decision;
    END IF;
  END IF;

  -- Admitted. From an open circuit, this request is the probe.
  IF p_ticket IS NOT NULL THEN
    DELETE FROM gate_waiters WHERE endpoint_id = p_endpoint AND gate_waiters.ticket = p_ticket;
  END IF;
  UPDATE endpoint_gates SET
    leases = live || jsonb_build_object(p_lease, now_ms + p_lease_ms),
    tat = g.tat,
    recent = CASE WHEN rate IS NULL THEN '{}' WHEN p_start_ms IS NOT NULL THEN g.recent ELSE win END,
    circuit = CASE WHEN g.circuit = 'closed' THEN 'closed' ELSE 'half_open' END,
    probe_lease = CASE WHEN g.circuit = 'closed' THEN NULL ELSE p_lease END,
    -- The probe's time is also the next probe's: if it fails, the interval has doubled. Every
    -- waiter anchors on this one instant, so their tickets keep them in order.
    probe_interval_ms = CASE WHEN g.circuit = 'closed' THEN g.probe_interval_ms
      ELSE least(p_probe_max_ms, greatest(p_probe_ms, g.probe_interval_ms * 2)) END,
    next_probe_at = CASE WHEN g.circuit = 'closed' THEN g.next_probe_at
      ELSE clock_timestamp() + make_interval(secs => least(p_probe_max_ms, greatest(p_probe_ms, g.probe_interval_ms * 2)) / 1000.0) END
  WHERE endpoint_id = p_endpoint;
  RETURN ROW(true, NULL, 0, NULL, NULL, NULL)::gate_decision;
END $$;

-- The attempt's outcome: frees its lease and moves the circuit. Returns the transition an
-- operator hears about ('opened', 'recovered', 'disabled') or NULL, and the workflow of the
-- first in-flight waiter, now woken (the caller signals it), or NULL.
-- p_outcome: 'success' (2xx), 'failure' (timeout, connection error, 5xx, 408), 'neutral' (the
-- receiver answered but refused: other 4xx, 429).
CREATE OR REPLACE FUNCTION gate_release(
  p_endpoint text, p_lease text, p_outcome text, p_retry_after_ms bigint,
  p_threshold integer, p_probe_ms bigint, p_probe_max_ms bigint, p_disable_after_ms bigint,
  OUT transition text, OUT wake text
) LANGUAGE plpgsql AS $$
DECLARE
  g          endpoint_gates%ROWTYPE;
  probe      boolean;
  v_first    bigint;
BEGIN
  SELECT * INTO g FROM endpoint_gates WHERE endpoint_id = p_endpoint FOR UPDATE;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  g.leases := g.leases - p_lease;
  probe := g.circuit = 'half_open' AND g.probe_lease = p_lease;
  IF p_retry_after_ms > 0 THEN
    g.pause_until := greatest(coalesce(g.pause_until, clock_timestamp()), clock_timestamp() + make_interval(secs => p_retry_after_ms / 1000.0));
  END IF;
  IF p_outcome = 'success' THEN
    g.last_success_at := clock_timestamp();
    g.failing_since := NULL;
  ELSE
    g.failing_since := coalesce(g.failing_since, clock_timestamp());
  END IF;

  IF p_outcome = 'failure' THEN
    g.consecutive_failures := g.consecutive_failures + 1;
    IF probe THEN
      -- The probe failed: stay open; the next probe time (its interval doubled) was set when it went.
      g.circuit := 'open';
      g.probe_lease := NULL;
    ELSIF g.circuit = 'closed' AND p_threshold > 0 AND g.consecutive_failures >= p_threshold THEN
      g.circuit := 'open';
      g.circuit_since := clock_timestamp();
      g.probe_interval_ms := p_probe_ms;
      g.next_probe_at := clock_timestamp() + make_interval(secs => p_probe_ms / 1000.0);
      g.open_ticket := g.tickets;
      transition := 'opened';
    END IF;
  ELSIF p_outcome = 'success' OR probe THEN
    -- A 2xx, or a probe the receiver answered at all: it is back.
    g.consecutive_failures := 0;
    IF g.circuit <> 'closed' THEN
      g.circuit := 'closed';
      g.circuit_since := clock_timestamp();
      g.probe_lease := NULL;
      g.next_probe_at := NULL;
      g.probe_interval_ms := 0;
      transition := 'recovered';
    END IF;
  END IF;

  UPDATE endpoint_gates SET leases = g.leases, pause_until = g.pause_until, circuit = g.circuit,
    circuit_since = g.circuit_since, consecutive_failures = g.consecutive_failures,
    next_probe_at = g.next_probe_at, probe_interval_ms = g.probe_interval_ms, probe_lease = g.probe_lease,
    failing_since = g.failing_since, last_success_at = g.last_success_at, open_ticket = g.open_ticket
  WHERE endpoint_id = p_endpoint;

  IF p_outcome <> 'success' AND p_disable_after_ms > 0
     AND g.failing_since <= clock_timestamp() - make_interval(secs => p_disable_after_ms / 1000.0) THEN
    IF endpoint_auto_disable(p_endpoint, g.failing_since) THEN
      transition := 'disabled';
    END IF;
  END IF;

  -- The freed slot goes to the first waiter, unless the endpoint is not admitting anyway. It is
  -- held for that waiter for a few seconds (a lease named after its ticket), so a new arrival
  -- cannot take it first and a long queue is served in order rather than starved.
  IF g.circuit = 'closed' AND (g.pause_until IS NULL OR g.pause_until <= clock_timestamp()) AND coalesce(transition, '') <> 'disabled' THEN
    SELECT min(w.ticket) INTO v_first FROM gate_waiters w WHERE w.endpoint_id = p_endpoint;
    IF v_first IS NOT NULL THEN
      DELETE FROM gate_waiters w WHERE w.endpoint_id = p_endpoint AND w.ticket = v_first RETURNING w.workflow_id INTO wake;
      UPDATE endpoint_gates SET leases = leases || jsonb_build_object('w' || v_first,
        (extract(epoch FROM clock_timestamp()) * 1000)::bigint + 5000)
      WHERE endpoint_id = p_endpoint;
    END IF;
  END IF;
END $$;

-- An operator re-enabled the endpoint: its failure streak starts again from nothing, so the
-- next failure does not disable it at once.
CREATE OR REPLACE FUNCTION gate_reset(p_endpoint text) RETURNS void LANGUAGE sql AS $$
  UPDATE endpoint_gates SET circuit = 'closed', circuit_since = clock_timestamp(), consecutive_failures = 0,
    next_probe_at = NULL, probe_interval_ms = 0, probe_lease = NULL, failing_since = NULL, pause_until = NULL
  WHERE endpoint_id = p_endpoint;
$$;

-- The workflow stopped waiting for this endpoint (its delivery dead-lettered): its place in the
-- in-flight queue goes, so no release hands a slot to it.
CREATE OR REPLACE FUNCTION gate_forget(p_endpoint text, p_workflow text) RETURNS void LANGUAGE sql AS $$
  DELETE FROM gate_waiters WHERE endpoint_id = p_endpoint AND workflow_id = p_workflow;
$$;

-- An attempt that ended before it could be recorded (a throw while signing or posting): its lease
-- goes, and nothing else moves (neutral to the endpoint's health; no waiter is handed the slot).
CREATE OR REPLACE FUNCTION gate_drop_lease(p_endpoint text, p_lease text) RETURNS void LANGUAGE sql AS $$
  UPDATE endpoint_gates SET leases = leases - p_lease WHERE endpoint_id = p_endpoint;
$$;

-- The endpoint's own functions (src/db/endpoints.ts owns the endpoints table).

-- Failing with no 2xx for too long (gate_release decides, in the statement that counts the
-- failure): disabled, with the reason an operator reads. True when this call disabled it, NULL
-- when it was disabled already.
CREATE OR REPLACE FUNCTION endpoint_auto_disable(p_endpoint text, p_failing_since timestamptz) RETURNS boolean LANGUAGE sql AS $$
  UPDATE endpoints SET disabled = true, updated_at = now(),
    disabled_reason = format('auto-disabled: failing since %s with no successful delivery',
      to_char(p_failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
  WHERE id = p_endpoint AND NOT disabled
  RETURNING true;
$$;
