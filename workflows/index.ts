// Every workflow the worker registers.
export { adoptSignal, deliverEndpoints, deliverEvent, gateOpenSignal, replaySignal, statusQuery } from './deliver-event';
