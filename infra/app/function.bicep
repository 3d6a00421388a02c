// The Function App on the Flex Consumption plan (FC1), running as the user-assigned identity.
// Its app settings are exactly the names in cancel_handler/settings.py (CODE_SETTINGS and
// HOST_SETTINGS) plus the Application Insights platform settings; tests/test_infra_settings.py
// fails when the two drift apart. Flex Consumption sets the runtime and the package location
// from functionAppConfig: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and
// WEBSITE_RUN_FROM_PACKAGE must not be set here.
@description('Function App name.')
param name string

@description('Flex Consumption plan name.')
param planName string

@description('Azure region.')
param location string

@description('Tags for the plan.')
param tags object = {}

@description('azd service name in azure.yaml; azd finds the app to deploy by this tag.')
param serviceName string

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Storage account for the host and the deployment package.')
param storageAccountName string

@description('Blob endpoint of that storage account.')
param storageBlobEndpoint string

@description('Blob container holding the deployment package.')
param deploymentContainerName string

@description('Application Insights connection string (not a secret: ingestion needs an Entra token).')
param applicationInsightsConnectionString string

@description('Python version of the Flex Consumption runtime.')
@allowed([
  '3.13'
])
param pythonVersion string = '3.13'

@description('Flex Consumption: most instances the app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('Flex Consumption: memory per instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

// Settings the function reads (cancel_handler.settings.CODE_SETTINGS).
@description('CANCEL_QUEUE_NAME')
param queueName string

@description('CHILD_QUEUE_NAME: the session-enabled queue of date ranges\' child requests; empty = none (children on the cancel queue, no session trigger).')
param childQueueName string = ''

@description('ServiceBusConnection__fullyQualifiedNamespace')
param serviceBusFullyQualifiedNamespace string

@description('GRAPH_BASE_URL')
param graphBaseUrl string

@description('GRAPH_TIMEOUT_SECONDS')
param graphTimeoutSeconds int

@description('CANCEL_RETRY_BUDGET_SECONDS')
param retryBudgetSeconds int

@description('GRAPH_MAILBOX_CONCURRENCY')
param mailboxConcurrency int

@description('DELAYED_RETRY_MAX_COUNT')
param delayedRetryMaxCount int

@description('RANGE_MAX_DAYS')
param rangeMaxDays int

@description('RANGE_MAX_EVENTS')
param rangeMaxEvents int

@description('REPLY_TO_ALLOWED: comma-separated entities the function may reply to (empty = replies off).')
param replyToAllowed string = ''

@description('MAX_DELIVERY_COUNT: the cancel queue\'s maxDeliveryCount (last-delivery rule).')
param maxDeliveryCount int

@description('TRACE_SUCCESSES_PER_SECOND: plain successes\' traces kept a second per instance, or `all`.')
param traceSuccessesPerSecond string = '5'

@description('Key of the mailbox hash in telemetry (a pseudonym, never the UPN); by default derived from this deployment.')
param telemetryHashKey string = uniqueString(subscription().id, resourceGroup().id, name, 'mailbox-hash')

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy on Flex Consumption is limited to some regions; losing a zone only delays cancellations, which wait in Service Bus until an instance runs again.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_17: the app has no HTTP trigger (Service Bus only), so there is nothing for client certificates to protect.
  // checkov:skip=CKV_AZURE_18: no HTTP trigger, so the HTTP version serves no traffic; left at the Flex Consumption default.
  // checkov:skip=CKV_AZURE_67: same as CKV_AZURE_18 (function app variant of the HTTP version check).
  // checkov:skip=CKV_AZURE_213: health check pings an HTTP path; a Service Bus-only app has none, and Flex Consumption replaces failed instances itself.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero per queue length; a failed instance only delays messages, which stay locked in Service Bus and are redelivered.
  // checkov:skip=CKV_AZURE_222: `azd deploy` publishes the package through the app's public deployment endpoint; there are no HTTP triggers to expose, and VNet integration is out of scope for this template.
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // --- read by the function code (CODE_SETTINGS) ---
        {
          name: 'CANCEL_QUEUE_NAME'
          value: queueName
        }
        {
          name: 'CHILD_QUEUE_NAME'
          value: childQueueName
        }
        {
          // The key of the organizer hash in child SessionIds: stable for this app, so an
          // organizer's children keep their sessions across deployments.
          name: 'CHILD_SESSION_KEY'
          value: uniqueString(resourceGroup().id, name, 'child-sessions')
        }
        {
          name: 'GRAPH_BASE_URL'
          value: graphBaseUrl
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'GRAPH_TIMEOUT_SECONDS'
          value: string(graphTimeoutSeconds)
        }
        {
          name: 'CANCEL_RETRY_BUDGET_SECONDS'
          value: string(retryBudgetSeconds)
        }
        {
          name: 'GRAPH_MAILBOX_CONCURRENCY'
          value: string(mailboxConcurrency)
        }
        {
          name: 'DELAYED_RETRY_MAX_COUNT'
          value: string(delayedRetryMaxCount)
        }
        {
          name: 'RANGE_MAX_DAYS'
          value: string(rangeMaxDays)
        }
        {
          name: 'RANGE_MAX_EVENTS'
          value: string(rangeMaxEvents)
        }
        {
          name: 'REPLY_TO_ALLOWED'
          value: replyToAllowed
        }
        {
          name: 'MAX_DELIVERY_COUNT'
          value: string(maxDeliveryCount)
        }
        {
          // Key of the mailbox hash in telemetry (cancel.mailbox.hash): stable for this app, not
          // derivable from a UPN alone.
          name: 'TELEMETRY_HASH_KEY'
          value: telemetryHashKey
        }
        {
          // Failures, retries and dead-letters keep their whole trace; plain successes are kept
          // at Azure Monitor's rate-limited share, counted in full by itemCount and the metrics.
          name: 'TRACE_SUCCESSES_PER_SECOND'
          value: traceSuccessesPerSecond
        }
        {
          name: 'ServiceBusConnection__fullyQualifiedNamespace'
          value: serviceBusFullyQualifiedNamespace
        }
        // --- read by the Functions host (HOST_SETTINGS) ---
        {
          name: 'ServiceBusConnection__credential'
          value: 'managedidentity'
        }
        {
          name: 'ServiceBusConnection__clientId'
          value: identityClientId
        }
        {
          name: 'AzureWebJobsStorage__accountName'
          value: storageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          // Keeps the worker's own grpcio/protobuf apart from the Service Bus extension's.
          name: 'PYTHON_ISOLATE_WORKER_DEPENDENCIES'
          value: '1'
        }
        // --- read by the Python worker and its Azure Monitor distro (TELEMETRY_SETTINGS) ---
        {
          // The library worker calls configure_azure_monitor() itself and declares
          // WorkerOpenTelemetryEnabled, so the host stops forwarding the worker's logs: each log
          // reaches Application Insights once (azure-functions-runtime 1.3.0,
          // handle_event.worker_init_request; docs/operate.md, "Telemetry").
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        {
          // Every span is kept: a head sampler cannot know a message will fail, and a
          // parent-based one would follow a sender that does not sample.
          name: 'OTEL_TRACES_SAMPLER'
          value: 'always_on'
        }
        {
          // Azure Monitor's metric exporter sends no exemplars: offering each metric point to
          // the SDK's exemplar reservoirs would cost CPU for nothing.
          name: 'OTEL_METRICS_EXEMPLAR_FILTER'
          value: 'always_off'
        }
        {
          // The distro's HTTP instrumentations would record Graph URLs, which hold the UPN; the
          // function records Graph calls itself, by route template.
          name: 'OTEL_PYTHON_DISABLED_INSTRUMENTATIONS'
          value: 'httpx,httpx2,requests,urllib,urllib3'
        }
        // --- platform settings (allow-listed in tests/test_infra_settings.py) ---
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          // Application Insights has local auth off: telemetry is sent with the identity's token.
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
      ]
    }
  }
}

output name string = functionApp.name
output id string = functionApp.id
output planName string = plan.name
