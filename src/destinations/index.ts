// Broker destinations (issue #27): what a non-HTTP endpoint's `type` and `config` mean, and how
// the deliver activity publishes to one. HTTP delivery stays in activities/http.ts.
export * from './config';
export { DestinationPool, destinationKey, type PoolOptions } from './pool';
export { policyResolver, type HostResolver } from './address';
export { signedBrokerMessage, type SignInput } from './message';
export type { BrokerMessage, Destination, PublishFailure, PublishResult } from './types';
