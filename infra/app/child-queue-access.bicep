// Data-plane roles on the session-enabled children queue, each scoped to that queue. Upstream
// senders get nothing here: they send to the cancel queue only, and never set a SessionId.
@description('Service Bus namespace name.')
param namespaceName string

@description('Children queue name (CHILD_QUEUE_NAME).')
param childQueueName string

@description('Principal id of the Function App identity.')
param functionPrincipalId string

@description('Object id of the deployer (azd passes AZURE_PRINCIPAL_ID). Used only with grantDeployerQueueAccess.')
param deployerPrincipalId string = ''

@description('User for a person, ServicePrincipal for a pipeline identity.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Give the deployer Data Owner on the children queue for the operator tooling (dead-letter queue; off by default).')
param grantDeployerQueueAccess bool = false

@description('Give the function identity Data Owner on the children queue so that the scaler can read its length (target-based scaling); false = Data Receiver and Data Sender only.')
param scaleByQueueLength bool = true

var dataReceiverRoleId = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var dataSenderRoleId = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'
var dataOwnerRoleId = '090c5cfd-751d-490a-894a-3ce6f1109419'

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: namespaceName

  resource childQueue 'queues' existing = {
    name: childQueueName
  }
}

// The session trigger accepts sessions, receives and settles: Data Receiver.
resource functionReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBusNamespace::childQueue.id, functionPrincipalId, dataReceiverRoleId)
  scope: serviceBusNamespace::childQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataReceiverRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// The fan-out sends the child requests here (and a child's delayed-retry copy comes back here,
// in its session): Data Sender.
resource functionSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(serviceBusNamespace::childQueue.id, functionPrincipalId, dataSenderRoleId)
  scope: serviceBusNamespace::childQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataSenderRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Target-based scaling reads the queue length through the management API (Manage right: Data
// Owner), as for the cancel queue (see queue-access.bicep).
resource functionOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (scaleByQueueLength) {
  name: guid(serviceBusNamespace::childQueue.id, functionPrincipalId, dataOwnerRoleId)
  scope: serviceBusNamespace::childQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataOwnerRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Operator tooling for this queue's dead letters, as for the cancel queue; off by default.
resource deployerOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (grantDeployerQueueAccess && !empty(deployerPrincipalId)) {
  name: guid(serviceBusNamespace::childQueue.id, deployerPrincipalId, dataOwnerRoleId)
  scope: serviceBusNamespace::childQueue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', dataOwnerRoleId)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}
