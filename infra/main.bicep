// cancel-handler: everything `azd up` provisions. Subscription scope: creates the resource group,
// then one module per concern (identity, storage, monitoring, Service Bus, queue roles, Function
// App, alerts, and the optional tenant-wide Graph grant). See docs/deploy.md.
targetScope = 'subscription'

// ---------------------------------------------------------------------------------------------
// Environment (filled by azd from main.parameters.json)
// ---------------------------------------------------------------------------------------------
@minLength(1)
@maxLength(64)
@description('azd environment name; part of the resource group name and of the unique resource token.')
param environmentName string

@minLength(1)
@description('Azure region for all resources (must offer Flex Consumption).')
param location string

@description('Resource group name; empty = rg-<environmentName>.')
param resourceGroupName string = ''

// ---------------------------------------------------------------------------------------------
// Service Bus
// ---------------------------------------------------------------------------------------------
@description('Service Bus tier: Standard (default) or Premium.')
@allowed([
  'Standard'
  'Premium'
])
param serviceBusSku string = 'Standard'

@description('Premium messaging units (only with serviceBusSku = Premium).')
@allowed([
  1
  2
  4
  8
  16
])
param serviceBusPremiumMessagingUnits int = 1

@description('Queue carrying the cancellation requests (CANCEL_QUEUE_NAME).')
@minLength(1)
@maxLength(260)
param queueName string = 'meeting-cancellations'

@description('CHILD_QUEUE_NAME: session-enabled queue for date ranges\' child requests (one organizer held to Graph\'s 4 concurrent requests by Service Bus sessions, docs/performance.md section 7); empty = children on the cancel queue.')
@maxLength(260)
param childQueueName string = 'meeting-cancellations-children'

@description('Replies: a session-enabled reply queue to create for senders that want outcome replies (REPLY_TO_ALLOWED); empty = none.')
@maxLength(260)
param replyQueueName string = ''

@description('Replies: existing queues in the namespace the function may reply to (Data Sender on each), comma-separated. A string for the same reason as senderPrincipalIds.')
param existingReplyQueueNames string = ''

@description('Replies: existing topics in the namespace the function may reply to (Data Sender on each), comma-separated. A string for the same reason as senderPrincipalIds.')
param existingReplyTopicNames string = ''

@description('Object ids of upstream service principals / managed identities that may send requests (Data Sender on the queue), comma-separated. A string on purpose: azd releases before February 2026 pass an array parameter through as text, which Azure rejects.')
param senderPrincipalIds string = ''

@description('Object id of the deployer; azd passes AZURE_PRINCIPAL_ID. Used only when grantDeployerQueueAccess is true.')
param deployerPrincipalId string = ''

@description('Type of deployerPrincipalId: User for a person, ServicePrincipal for a pipeline.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param deployerPrincipalType string = 'User'

@description('Give the deployer Azure Service Bus Data Owner on the queue (operator tooling: send, peek, DLQ resubmit, counts). Off by default.')
param grantDeployerQueueAccess bool = false

@description('Give the function identity Azure Service Bus Data Owner on the queue so that Flex Consumption scales on the queue length (target-based). false = Data Receiver only (least privilege); scaling then falls back to incremental. See docs/deploy.md.')
param serviceBusScaleByQueueLength bool = true

// ---------------------------------------------------------------------------------------------
// Function App (Flex Consumption)
// ---------------------------------------------------------------------------------------------
@description('Flex Consumption: most instances to scale out to (40 is the lowest allowed). Graph limits each mailbox to 4 concurrent requests per app, so more instances rarely help.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Flex Consumption: memory per instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Tunables of the function; defaults equal those in cancel_handler/settings.py.
@description('GRAPH_BASE_URL: Microsoft Graph root for the tenant\'s cloud.')
param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'

@description('GRAPH_TIMEOUT_SECONDS: timeout of one Graph call.')
@minValue(1)
@maxValue(120)
param graphTimeoutSeconds int = 30

@description('CANCEL_RETRY_BUDGET_SECONDS: how long one delivery keeps retrying Graph in-process. Also sets the queue lock duration.')
@minValue(0)
@maxValue(240)
param retryBudgetSeconds int = 60

@description('TRACE_SUCCESSES_PER_SECOND: plain successes\' traces kept a second per instance (`all` keeps every one). Failures, retries and dead-letters are always kept; metrics count everything.')
param traceSuccessesPerSecond string = '5'

@description('GRAPH_MAILBOX_CONCURRENCY: concurrent Graph calls per mailbox per instance (Graph allows 4 per app per mailbox).')
@minValue(1)
@maxValue(64)
param mailboxConcurrency int = 4

@description('DELAYED_RETRY_MAX_COUNT: scheduled retry copies per request after in-process retries; above 0 the identity also gets Data Sender on the queue.')
@minValue(0)
@maxValue(100)
param delayedRetryMaxCount int = 0

@description('RANGE_MAX_DAYS: the longest date range one request may name, in days of 24 hours.')
@minValue(1)
@maxValue(1825)
param rangeMaxDays int = 366

@description('RANGE_MAX_EVENTS: the most meetings one date-range request may cancel; 0 turns date ranges off. Above 0 the identity also gets Data Sender on the queue (it sends one child request per meeting).')
@minValue(0)
@maxValue(800)
param rangeMaxEvents int = 500

// ---------------------------------------------------------------------------------------------
// Mailbox access
// ---------------------------------------------------------------------------------------------
@description('scoped (recommended): no Entra grant; an Exchange admin limits the identity to the organizers\' mailboxes with infra/exchange/. tenantWide: grant Graph Calendars.ReadWrite on all mailboxes through the Microsoft Graph Bicep extension (needs a privileged Entra role at deploy time). Never both.')
@allowed([
  'scoped'
  'tenantWide'
])
param mailboxAccessMode string = 'scoped'

// ---------------------------------------------------------------------------------------------
// Monitoring and alerts
// ---------------------------------------------------------------------------------------------
@description('E-mail address for alerts; empty = alerts exist but notify nobody.')
param alertEmailAddress string = ''

@description('Active messages on the queue (for 15 minutes) above which the backlog alert fires.')
@minValue(1)
param backlogAlertThreshold int = 100

@description('Failed function runs in 15 minutes above which the failure alert fires.')
@minValue(0)
param functionFailureAlertThreshold int = 0

@description('Log Analytics retention in days.')
@minValue(30)
@maxValue(730)
param logRetentionInDays int = 30

// ---------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------
var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
// Service name in azure.yaml: azd deploys the code to the resource tagged with it.
var serviceName = 'cancel-handler'
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
// CANCEL_SENDER_PRINCIPAL_IDS split into object ids: commas separate and spaces are dropped; the
// text of a JSON array ('["id1","id2"]', the format documented before) gives the same list, since
// object ids never contain brackets, quotes or spaces. Empty entries (a trailing comma) are
// skipped by the loop in app/queue-access.bicep. (No lambdas: checkov's parser cannot read them.)
var senderPrincipalIdText = replace(replace(replace(replace(senderPrincipalIds, '[', ''), ']', ''), '"', ''), ' ', '')
var senderPrincipalIdList = empty(senderPrincipalIdText) ? [] : split(senderPrincipalIdText, ',')
// The same cleaning for the reply entity lists (entity names hold no '[', ']', '"' or ' ').
var existingReplyQueueText = replace(replace(replace(replace(existingReplyQueueNames, '[', ''), ']', ''), '"', ''), ' ', '')
var existingReplyQueueList = empty(existingReplyQueueText) ? [] : split(existingReplyQueueText, ',')
var existingReplyTopicText = replace(replace(replace(replace(existingReplyTopicNames, '[', ''), ']', ''), '"', ''), ' ', '')
var existingReplyTopicList = empty(existingReplyTopicText) ? [] : split(existingReplyTopicText, ',')

resource rg 'Microsoft.Resources/resourceGroups@2022-09-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './core/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    functionPrincipalId: identity.outputs.principalId
  }
}

module monitoring './core/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    retentionInDays: logRetentionInDays
    functionPrincipalId: identity.outputs.principalId
  }
}

module serviceBus './app/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: '${abbrs.serviceBusNamespaces}${resourceToken}'
    location: location
    tags: tags
    skuName: serviceBusSku
    premiumMessagingUnits: serviceBusPremiumMessagingUnits
    queueName: queueName
    childQueueName: rangeMaxEvents > 0 ? childQueueName : ''
    retryBudgetSeconds: retryBudgetSeconds
    graphTimeoutSeconds: graphTimeoutSeconds
  }
}

module queueAccess './app/queue-access.bicep' = {
  name: 'queue-access'
  scope: rg
  params: {
    namespaceName: serviceBus.outputs.name
    queueName: serviceBus.outputs.queueName
    functionPrincipalId: identity.outputs.principalId
    delayedRetryMaxCount: delayedRetryMaxCount
    rangeMaxEvents: rangeMaxEvents
    senderPrincipalIds: senderPrincipalIdList
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    grantDeployerQueueAccess: grantDeployerQueueAccess
    scaleByQueueLength: serviceBusScaleByQueueLength
    childrenOnCancelQueue: empty(serviceBus.outputs.childQueueName)
  }
}

module childQueueAccess './app/child-queue-access.bicep' = if (rangeMaxEvents > 0 && !empty(childQueueName)) {
  name: 'child-queue-access'
  scope: rg
  params: {
    namespaceName: serviceBus.outputs.name
    childQueueName: serviceBus.outputs.childQueueName
    functionPrincipalId: identity.outputs.principalId
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    grantDeployerQueueAccess: grantDeployerQueueAccess
    scaleByQueueLength: serviceBusScaleByQueueLength
  }
}

module replies './app/reply-queue.bicep' = {
  name: 'reply-queue'
  scope: rg
  params: {
    namespaceName: serviceBus.outputs.name
    replyQueueName: replyQueueName
    existingReplyQueueNames: existingReplyQueueList
    existingReplyTopicNames: existingReplyTopicList
    functionPrincipalId: identity.outputs.principalId
    senderPrincipalIds: senderPrincipalIdList
    deployerPrincipalId: deployerPrincipalId
    deployerPrincipalType: deployerPrincipalType
    grantDeployerQueueAccess: grantDeployerQueueAccess
  }
}

module functionApp './app/function.bicep' = {
  name: 'function'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    serviceName: serviceName
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: deploymentContainerName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    queueName: serviceBus.outputs.queueName
    childQueueName: serviceBus.outputs.childQueueName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    graphBaseUrl: graphBaseUrl
    graphTimeoutSeconds: graphTimeoutSeconds
    retryBudgetSeconds: retryBudgetSeconds
    mailboxConcurrency: mailboxConcurrency
    delayedRetryMaxCount: delayedRetryMaxCount
    rangeMaxDays: rangeMaxDays
    rangeMaxEvents: rangeMaxEvents
    replyToAllowed: replies.outputs.replyToAllowed
    maxDeliveryCount: serviceBus.outputs.maxDeliveryCount
    traceSuccessesPerSecond: traceSuccessesPerSecond
  }
  // The host starts as soon as the app exists: let its identity hold its roles first.
  dependsOn: [
    queueAccess
    childQueueAccess
  ]
}

// The operators' view of the telemetry (docs/operate.md, "Telemetry").
module workbook './app/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    location: location
    tags: tags
  }
}

module alerts './app/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    namePrefix: '${abbrs.insightsMetricAlerts}${resourceToken}'
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    tags: tags
    alertEmailAddress: alertEmailAddress
    serviceBusNamespaceId: serviceBus.outputs.id
    queueName: serviceBus.outputs.queueName
    childQueueName: serviceBus.outputs.childQueueName
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    backlogThreshold: backlogAlertThreshold
    functionFailureThreshold: functionFailureAlertThreshold
  }
}

// Only in tenantWide mode. In scoped mode no Entra grant is made at all (see infra/exchange/).
module graphAppRole './app/graph-app-role.bicep' = if (mailboxAccessMode == 'tenantWide') {
  name: 'graph-app-role'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
  }
}

// Outputs become azd environment values (`azd env get-values`), used by docs/deploy.md and
// the infra/exchange scripts.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output SERVICE_BUS_QUEUE_NAME string = serviceBus.outputs.queueName
output SERVICE_BUS_CHILD_QUEUE_NAME string = serviceBus.outputs.childQueueName
output SERVICE_BUS_QUEUE_LOCK_DURATION string = serviceBus.outputs.lockDuration
output SERVICE_BUS_REPLY_QUEUE_NAME string = replies.outputs.replyQueueName
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
output MAILBOX_ACCESS_MODE string = mailboxAccessMode
