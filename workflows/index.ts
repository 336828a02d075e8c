// Every workflow the worker registers.
export { deliverEndpoints, deliverEvent, gateOpenSignal, replaySignal, statusQuery } from './deliver-event';
