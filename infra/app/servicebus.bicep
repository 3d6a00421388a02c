// Service Bus namespace, the cancel queue and (optionally) the session-enabled children queue.
// Entra-only (local SAS auth off), TLS 1.2.
@description('Service Bus namespace name.')
param name string

@description('Azure region.')
param location string

@description('Tags for the namespace.')
param tags object = {}

@description('Standard is enough for this workload; Premium adds isolation, VNet support and larger messages.')
@allowed([
  'Standard'
  'Premium'
])
param skuName string = 'Standard'

@description('Messaging units when skuName is Premium (ignored for Standard).')
@allowed([
  1
  2
  4
  8
  16
])
param premiumMessagingUnits int = 1

@description('Name of the queue carrying meeting cancellation requests.')
param queueName string

@description('CHILD_QUEUE_NAME: the session-enabled queue carrying date ranges\' child requests; empty = children go to the cancel queue (no such queue).')
param childQueueName string = ''

@description('CANCEL_RETRY_BUDGET_SECONDS of the function: how long one delivery may keep retrying Graph.')
param retryBudgetSeconds int

@description('GRAPH_TIMEOUT_SECONDS of the function: the longest a single Graph call may take.')
param graphTimeoutSeconds int

// Lock duration: long enough that one whole invocation fits inside a single lock even if the
// host's automatic lock renewal (host.json maxAutoLockRenewalDuration, 5 min) never gets through:
// the retry budget, plus one Graph call that started just before the budget ran out, plus 30 s for
// the token request and settlement. With the defaults (60 s + 30 s + 30 s) this is 2 minutes.
// Not longer than needed, because the lock is also how long a message waits before redelivery when
// an instance dies mid-invocation. Service Bus allows 1 to 5 minutes.
var lockSeconds = min(300, max(60, retryBudgetSeconds + graphTimeoutSeconds + 30))
var lockDuration = 'PT${lockSeconds / 60}M${lockSeconds % 60}S'

// 10 deliveries (the Service Bus default). The function reads the same number as
// MAX_DELIVERY_COUNT: on the last delivery it dead-letters a still-failing request itself
// (DeliveriesExhausted) so that a sender waiting for a reply gets one.
var maxDeliveryCount = 10

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' = {
  name: name
  location: location
  tags: tags
  sku: skuName == 'Premium' ? {
    name: 'Premium'
    tier: 'Premium'
    capacity: premiumMessagingUnits
  } : {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    // Public endpoint: the Flex Consumption app has no VNet integration in this template and the
    // upstream senders may live outside Azure. With local auth off, every client still needs an
    // Entra token and a data role on the queue.
    publicNetworkAccess: 'Enabled'
  }

  resource queue 'queues' = {
    name: queueName
    properties: {
      lockDuration: lockDuration
      // 10 deliveries (the Service Bus default), each already retrying Graph in-process for up to
      // the retry budget: a request that still fails after that goes to the dead-letter queue
      // (reason MaxDeliveryCountExceeded) for an operator, instead of looping.
      maxDeliveryCount: maxDeliveryCount
      // A request nobody could process within 14 days is dead-lettered, not silently dropped, so
      // an operator sees it. (Dead-lettered messages themselves never expire.)
      defaultMessageTimeToLive: 'P14D'
      deadLetteringOnMessageExpiration: true
      // Upstream systems may send the same request twice (their own retries). Service Bus drops a
      // repeated MessageId within 10 minutes, silently. The function therefore gives each delayed
      // retry copy a new MessageId. Can only be set when the queue is created.
      requiresDuplicateDetection: true
      duplicateDetectionHistoryTimeWindow: 'PT10M'
      // Sessions would serialise per session id; ordering is not needed (each request stands alone).
      requiresSession: false
      enablePartitioning: false
      enableBatchedOperations: true
      maxSizeInMegabytes: 1024
    }
  }
}

// A date range's child requests: SessionId = a keyed hash of the organizer, and the function's
// session trigger runs 4 calls per session (host.json), so that Service Bus itself keeps each
// organizer within Graph's 4 concurrent requests across every instance
// (docs/performance.md, section 8.1). The same lock, delivery count, expiry and duplicate
// detection as the cancel queue: a redelivered parent re-sends the same child MessageIds.
resource childQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = if (!empty(childQueueName)) {
  parent: serviceBusNamespace
  name: empty(childQueueName) ? 'unused' : childQueueName
  properties: {
    lockDuration: lockDuration
    maxDeliveryCount: maxDeliveryCount
    defaultMessageTimeToLive: 'P14D'
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    // Sessions are the point of this queue: one receiver per session at a time.
    requiresSession: true
    enablePartitioning: false
    enableBatchedOperations: true
    maxSizeInMegabytes: 1024
  }
}

output name string = serviceBusNamespace.name
output id string = serviceBusNamespace.id
output queueName string = serviceBusNamespace::queue.name
output queueId string = serviceBusNamespace::queue.id
output childQueueName string = childQueueName
output fullyQualifiedNamespace string = '${serviceBusNamespace.name}.servicebus.windows.net'
output lockDuration string = lockDuration
output maxDeliveryCount int = maxDeliveryCount
