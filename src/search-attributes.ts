// The custom search attributes that make deliveries findable in the Temporal Web UI.
// Pure data: workflows upsert them, the dev-server launcher registers them.
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const EventType = defineSearchAttributeKey('EventType', SearchAttributeType.KEYWORD);
export const EndpointIds = defineSearchAttributeKey('EndpointIds', SearchAttributeType.KEYWORD_LIST);
export const DeadLetteredEndpoints = defineSearchAttributeKey('DeadLetteredEndpoints', SearchAttributeType.KEYWORD_LIST);
export const DeliveryStatus = defineSearchAttributeKey('DeliveryStatus', SearchAttributeType.KEYWORD);
/** The tenant the event was published to, so the Web UI filters deliveries by customer. */
export const TenantId = defineSearchAttributeKey('TenantId', SearchAttributeType.KEYWORD);

export type DeliveryStatusValue = 'delivering' | 'delivered' | 'dead_lettered' | 'dropped';

/** name → type in the CLI's `--search-attribute name=Type` spelling. */
export const SEARCH_ATTRIBUTES: Record<string, 'Keyword' | 'KeywordList'> = {
  EventType: 'Keyword',
  EndpointIds: 'KeywordList',
  DeadLetteredEndpoints: 'KeywordList',
  DeliveryStatus: 'Keyword',
  TenantId: 'Keyword',
};
