// Every workflow the worker registers.
export { deliverEvent, replaySignal, statusQuery } from './deliver-event';
