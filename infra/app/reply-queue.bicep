// Replies (Service Bus request/reply): the optional session-enabled reply queue this deployment
// creates, Data Sender for the function's identity on exactly the reply entities (that queue and
// the existing queues and topics listed), and REPLY_TO_ALLOWED built from the same lists.
@description('Service Bus namespace name.')
param namespaceName string

@description('Reply queue to create (session-enabled, duplicate detection on); empty = none.')
@maxLength(260)
param replyQueueName string = ''

@description('Existing queues in the namespace the function may reply to.')
param existingReplyQueueNames array = []

@description('Existing topics in the namespace the function may reply to.')
param existingReplyTopicNames array = []

@description('Principal id of the Function App identity.')
param functionPrincipalId string

@description('Object ids of upstream senders: Data Receiver on the created reply queue, to read their replies.')
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

@description('Give the deployer Data Receiver on the created reply queue (`cancel-handler send --wait`).')
param grantDeployerQueueAccess bool = false

var dataReceiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var dataSenderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var createReplyQueue = !empty(replyQueueName)

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: namespaceName
}

// Senders read their own replies by session id (their ReplyToSessionId), so concurrent senders
// never take each other's replies. Duplicate detection drops the repeated reply a redelivery
// after a lost settlement makes (same MessageId). Replies nobody read expire after 7 days.
resource replyQueue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = if (createReplyQueue) {
  parent: serviceBusNamespace
  name: createReplyQueue ? replyQueueName : 'unused'
  properties: {
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT10M'
    defaultMessageTimeToLive: 'P7D'
    deadLetteringOnMessageExpiration: false
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}

resource existingQueues 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' existing = [for name in existingReplyQueueNames: {
  parent: serviceBusNamespace
  name: name
}]

resource existingTopics 'Microsoft.ServiceBus/namespaces/topics@2022-10-01-preview' existing = [for name in existingReplyTopicNames: {
  parent: serviceBusNamespace
  name: name
}]

// The function sends replies: Data Sender on each reply entity, nothing namespace-wide.
resource functionSendsToReplyQueue 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (createReplyQueue) {
  name: guid(replyQueue.id, functionPrincipalId, dataSenderRoleId)
  scope: replyQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource functionSendsToQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in existingReplyQueueNames: {
  name: guid(existingQueues[i].id, functionPrincipalId, dataSenderRoleId)
  scope: existingQueues[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

resource functionSendsToTopics 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (name, i) in existingReplyTopicNames: {
  name: guid(existingTopics[i].id, functionPrincipalId, dataSenderRoleId)
  scope: existingTopics[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

// Upstream senders receive their replies from the created queue (by their own session id).
resource sendersReadReplies 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for senderId in (createReplyQueue ? senderPrincipalIds : []): if (!empty(senderId)) {
  name: guid(replyQueue.id, senderId, dataReceiverRoleId)
  scope: replyQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    principalId: senderId
    principalType: 'ServicePrincipal'
  }
}]

resource deployerReadsReplies 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (createReplyQueue && grantDeployerQueueAccess && !empty(deployerPrincipalId)) {
  name: guid(replyQueue.id, deployerPrincipalId, dataReceiverRoleId)
  scope: replyQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

@description('REPLY_TO_ALLOWED: exactly the entities the function holds Data Sender on.')
output replyToAllowed string = join(concat(createReplyQueue ? [replyQueueName] : [], existingReplyQueueNames, existingReplyTopicNames), ',')
output replyQueueName string = replyQueueName
