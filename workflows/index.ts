// Every workflow the worker registers.
export { deliverEndpoints, deliverEvent, replaySignal, statusQuery } from './deliver-event';
