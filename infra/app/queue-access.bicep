// Data-plane roles on the cancel queue, each scoped to the queue (not the namespace).
@description('Service Bus namespace name.')
param namespaceName string

@description('Queue name.')
param queueName string

@description('Principal id of the Function App identity.')
param functionPrincipalId string

@description('DELAYED_RETRY_MAX_COUNT: above 0 the function schedules retry copies on the same queue and needs Data Sender.')
param delayedRetryMaxCount int

@description('RANGE_MAX_EVENTS: above 0 the function fans date ranges out as child requests on the same queue and needs Data Sender.')
param rangeMaxEvents int

@description('True when date ranges send their children to this queue (no CHILD_QUEUE_NAME); false when they go to the children queue, whose roles child-queue-access.bicep grants.')
param childrenOnCancelQueue bool = true

@description('Object ids of upstream service principals or managed identities allowed to send requests.')
param senderPrincipalIds array = []

@description('Object id of the deployer (azd passes AZURE_PRINCIPAL_ID). Used only with grantDeployerQueueAccess.')
param deployerPrincipalId string = ''

@description('User for a person, ServicePrincipal for a pipeline identity.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Give the deployer Data Owner on the queue for the operator tooling (off by default).')
param grantDeployerQueueAccess bool = false

@description('Give the function identity Data Owner on the queue so that the scaler can read the queue length (target-based scaling); false = Data Receiver only, and scaling falls back to incremental.')
param scaleByQueueLength bool = true

var dataReceiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var dataSenderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var dataOwnerRoleId = '090c5cfd-751d-490a-894a-3ce6f1109419'

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: namespaceName

  resource queue 'queues' existing = {
    name: queueName
  }
}

// The trigger receives and settles (complete, abandon, dead-letter): Data Receiver is enough for
// the function's own work, and is all it holds when scaleByQueueLength is false.
resource functionReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBusNamespace::queue.id, functionPrincipalId, dataReceiverRoleId)
  scope: serviceBusNamespace::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scaling: Flex Consumption's scaler reads the queue's active message count through the Service
// Bus management API, which needs the Manage right; for an identity only Data Owner carries it.
// With Listen alone the scaler cannot read the length and falls back to incremental scaling
// ("Target-based scaling" in the Azure Functions docs; Microsoft's Flex Consumption Service Bus
// sample grants Data Owner for the same reason). Scoped to this one queue: the identity could also
// change or delete this queue and send to it, nothing else. Trade-off in docs/deploy.md.
resource functionOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scaleByQueueLength) {
  name: guid(serviceBusNamespace::queue.id, functionPrincipalId, dataOwnerRoleId)
  scope: serviceBusNamespace::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataOwnerRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Only when delayed retries are on, or date ranges send their children to this queue, does the
// function send messages here (retry copies, a range's child requests). With
// DELAYED_RETRY_MAX_COUNT = 0 and the children on their own queue (or RANGE_MAX_EVENTS = 0) it
// never sends here, so it gets no send right.
resource functionSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (delayedRetryMaxCount > 0 || (rangeMaxEvents > 0 && childrenOnCancelQueue)) {
  name: guid(serviceBusNamespace::queue.id, functionPrincipalId, dataSenderRoleId)
  scope: serviceBusNamespace::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Upstream systems that put cancellation requests on the queue (empty entries are skipped).
resource upstreamSenders 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for senderId in senderPrincipalIds: if (!empty(senderId)) {
  name: guid(serviceBusNamespace::queue.id, senderId, dataSenderRoleId)
  scope: serviceBusNamespace::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    principalId: senderId
    principalType: 'ServicePrincipal'
  }
}]

// Operator tooling (`cancel-handler send`, `cancel-handler dlq list`, resubmitting dead letters)
// peeks and receives (Listen), sends (Send) and reads the queue's message counts, which needs the
// Manage right; only Data Owner carries all three. Scoped to this one queue and off by default,
// so production environments do not give a person's account standing access to live requests;
// turn it on for development and test environments, or grant it just in time.
resource deployerOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployerQueueAccess && !empty(deployerPrincipalId)) {
  name: guid(serviceBusNamespace::queue.id, deployerPrincipalId, dataOwnerRoleId)
  scope: serviceBusNamespace::queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataOwnerRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
