-- Endpoint isolation (src/db/gate.ts): per-endpoint limits and the gate every attempt passes.
--
-- endpoints.limits holds what the API accepts: {maxInFlight, rateLimit, connectTimeoutMs,
-- responseTimeoutMs}; absent keys take the defaults the worker passes in.
--
-- endpoint_gates is one row per endpoint, the shared state of all workers: in-flight leases
-- that expire on their own (a killed worker's lease frees itself), the rate limit's schedule
-- (GCRA theoretical arrival time) and its last second of admissions, a Retry-After pause, the
-- circuit breaker and the failure streak auto-disable reads. It is written only by the two
-- functions below, each one statement under the row's lock, so any number of workers in any
-- number of processes see one consistent gate.
ALTER TABLE endpoints ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'::jsonb;

CREATE TABLE endpoint_gates (
  endpoint_id          text PRIMARY KEY REFERENCES endpoints(id) ON DELETE CASCADE,
  -- lease id -> expires at (epoch ms): one per request in flight.
  leases               jsonb NOT NULL DEFAULT '{}'::jsonb,
  -- Rate limit: the next free slot (GCRA), and admissions of the last second (epoch ms), which
  -- cap any one-second window at the limit whatever the timers' lateness.
  tat                  timestamptz,
  recent               bigint[] NOT NULL DEFAULT '{}',
  -- A 429/503 with Retry-After pauses the whole endpoint until then.
  pause_until          timestamptz,
  circuit              text NOT NULL DEFAULT 'closed' CHECK (circuit IN ('closed', 'open', 'half_open')),
  circuit_since        timestamptz,
  consecutive_failures integer NOT NULL DEFAULT 0,
  -- Open: when the next probe may go, and the interval after that one (doubles per failed probe).
  next_probe_at        timestamptz,
  probe_interval_ms    bigint NOT NULL DEFAULT 0,
  probe_lease          text,
  -- A delivery refused by the in-flight cap or an open circuit takes a numbered ticket, kept
  -- until it goes: its place in the endpoint's queue (gate_waiters; an open circuit's waiters
  -- come back in ticket order). open_ticket: the counter when the circuit opened.
  tickets              bigint NOT NULL DEFAULT 0,
  open_ticket          bigint NOT NULL DEFAULT 0,
  -- Auto-disable: the first failure since the last 2xx.
  failing_since        timestamptz,
  last_success_at      timestamptz
);

-- Deliveries waiting for an in-flight slot, by ticket: a release hands its slot to the first
-- (signals its workflow), so a queue at a hanging endpoint sleeps until a slot frees instead of
-- polling. An entry whose workflow stopped waiting is popped like any other and its wake-up lost;
-- the waiters' own timers (the earliest lease's expiry) cover that.
CREATE TABLE gate_waiters (
  endpoint_id text NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
  ticket      bigint NOT NULL,
  workflow_id text NOT NULL,
  PRIMARY KEY (endpoint_id, ticket)
);

CREATE TYPE gate_decision AS (
  admitted   boolean,
  -- Refused: why (in_flight, rate_limit, paused, circuit_open, disabled) and for how long.
  reason     text,
  wait_ms    bigint,
  -- Rate limit: the slot reserved for this caller (epoch ms); passed back, it is honoured.
  slot_ms    bigint,
  -- Open circuit: this caller's place in the queue; passed back, it is kept.
  ticket     bigint
);

-- One attempt asks to go. p_now_ms is the database clock: every worker shares it.
-- A lease lasts the endpoint's response timeout (or p_default_timeout_ms) plus p_margin_ms.
CREATE FUNCTION gate_acquire(
  p_endpoint text, p_lease text, p_default_timeout_ms bigint, p_margin_ms bigint, p_slot_ms bigint,
  p_ticket bigint, p_default_max_in_flight integer, p_probe_ms bigint, p_probe_max_ms bigint,
  p_workflow text
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
BEGIN
  SELECT limits, disabled INTO lim, dis FROM endpoints WHERE id = p_endpoint;
  IF NOT FOUND OR dis THEN
    RETURN ROW(false, 'disabled', 0, NULL, NULL)::gate_decision;
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
    RETURN ROW(false, 'paused', (extract(epoch FROM g.pause_until) * 1000)::bigint - now_ms, p_slot_ms, p_ticket)::gate_decision;
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
        (extract(epoch FROM g.next_probe_at) * 1000)::bigint) - now_ms) + behind, NULL, v_ticket)::gate_decision;
    END IF;
    IF g.next_probe_at > clock_timestamp() THEN
      UPDATE endpoint_gates SET leases = live, tickets = greatest(tickets, v_ticket) WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'circuit_open', (extract(epoch FROM g.next_probe_at) * 1000)::bigint - now_ms + behind, NULL, v_ticket)::gate_decision;
    END IF;
  END IF;

  IF (SELECT count(*) FROM jsonb_object_keys(live)) >= max_in THEN
    -- Queue up: the next release wakes the first waiter. Its own timer is the fallback for a
    -- lost wake-up: when the oldest lease expires (a slot frees then even if nobody releases).
    -- Polling instead (waking every waiter on a guess) swamped the workers with a few hundred
    -- waiters at a hanging receiver: measured in the bench's isolation phase.
    v_ticket := coalesce(p_ticket, g.tickets + 1);
    UPDATE endpoint_gates SET leases = live, tickets = greatest(tickets, v_ticket) WHERE endpoint_id = p_endpoint;
    IF p_workflow IS NOT NULL THEN
      INSERT INTO gate_waiters (endpoint_id, ticket, workflow_id) VALUES (p_endpoint, v_ticket, p_workflow)
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN ROW(false, 'in_flight',
      greatest(50, (SELECT min(value::bigint) FROM jsonb_each(live)) - now_ms), p_slot_ms, v_ticket)::gate_decision;
  END IF;

  win := ARRAY(SELECT x FROM unnest(g.recent) x WHERE x > now_ms - 1000 ORDER BY x);
  IF rate IS NOT NULL THEN
    step_ms := greatest(1, ceil(1000 / rate))::bigint;
    tat_ms := coalesce((extract(epoch FROM g.tat) * 1000)::bigint, 0);
    IF p_slot_ms IS NOT NULL AND p_slot_ms > now_ms THEN
      -- Woken early (clock skew): the slot stays this caller's.
      UPDATE endpoint_gates SET leases = live WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'rate_limit', p_slot_ms - now_ms, p_slot_ms, p_ticket)::gate_decision;
    ELSIF p_slot_ms IS NULL AND tat_ms > now_ms THEN
      -- Reserve the next slot: the caller sleeps until it, in arrival order, and no one polls.
      UPDATE endpoint_gates SET leases = live, tat = to_timestamp((tat_ms + step_ms) / 1000.0)
        WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'rate_limit', tat_ms - now_ms, tat_ms, p_ticket)::gate_decision;
    END IF;
    -- The hard cap: never more than the limit in any second, however late timers fire.
    IF cardinality(win) >= greatest(1, floor(rate)) THEN
      UPDATE endpoint_gates SET leases = live WHERE endpoint_id = p_endpoint;
      RETURN ROW(false, 'rate_limit', win[cardinality(win) - greatest(1, floor(rate))::integer + 1] + 1000 - now_ms,
        p_slot_ms, p_ticket)::gate_decision;
    END IF;
    IF p_slot_ms IS NULL THEN
      g.tat := to_timestamp((greatest(tat_ms, now_ms) + step_ms) / 1000.0);
    END IF;
  END IF;

  -- Admitted. From an open circuit, this request is the probe.
  IF p_ticket IS NOT NULL THEN
    DELETE FROM gate_waiters WHERE endpoint_id = p_endpoint AND gate_waiters.ticket = p_ticket;
  END IF;
  UPDATE endpoint_gates SET
    leases = live || jsonb_build_object(p_lease, now_ms + p_lease_ms),
    tat = g.tat,
    recent = CASE WHEN rate IS NULL THEN '{}' ELSE win || now_ms END,
    circuit = CASE WHEN g.circuit = 'closed' THEN 'closed' ELSE 'half_open' END,
    probe_lease = CASE WHEN g.circuit = 'closed' THEN NULL ELSE p_lease END,
    -- The probe's time is also the next probe's: if it fails, the interval has doubled. Every
    -- waiter anchors on this one instant, so their tickets keep them in order.
    probe_interval_ms = CASE WHEN g.circuit = 'closed' THEN g.probe_interval_ms
      ELSE least(p_probe_max_ms, greatest(p_probe_ms, g.probe_interval_ms * 2)) END,
    next_probe_at = CASE WHEN g.circuit = 'closed' THEN g.next_probe_at
      ELSE clock_timestamp() + make_interval(secs => least(p_probe_max_ms, greatest(p_probe_ms, g.probe_interval_ms * 2)) / 1000.0) END
  WHERE endpoint_id = p_endpoint;
  RETURN ROW(true, NULL, 0, NULL, NULL)::gate_decision;
END $$;

-- The attempt's outcome: frees its lease and moves the circuit. Returns the transition an
-- operator hears about ('opened', 'recovered', 'disabled') or NULL, and the workflow of the
-- first in-flight waiter, now woken (the caller signals it), or NULL.
-- p_outcome: 'success' (2xx), 'failure' (timeout, connection error, 5xx, 408), 'neutral' (the
-- receiver answered but refused: other 4xx, 429).
CREATE FUNCTION gate_release(
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
    UPDATE endpoints SET disabled = true, updated_at = now(),
      disabled_reason = format('auto-disabled: failing since %s with no successful delivery',
        to_char(g.failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
    WHERE id = p_endpoint AND NOT disabled;
    IF FOUND THEN
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
CREATE FUNCTION gate_reset(p_endpoint text) RETURNS void LANGUAGE sql AS $$
  UPDATE endpoint_gates SET circuit = 'closed', circuit_since = clock_timestamp(), consecutive_failures = 0,
    next_probe_at = NULL, probe_interval_ms = 0, probe_lease = NULL, failing_since = NULL, pause_until = NULL
  WHERE endpoint_id = p_endpoint;
$$;
