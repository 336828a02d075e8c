-- The W3C trace context (traceparent, tracestate) of the API request that recorded the event, so
-- the relay's span joins that request's trace. NULL when tracing is off or the event was made
-- inside Hookline. Lives and dies with the outbox row: a trace needs it only until the relay.
ALTER TABLE outbox ADD COLUMN trace_context jsonb;
