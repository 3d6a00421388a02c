// Metric alerts for the cancel pipeline, sent to one action group.
// The alerts always exist (they show as fired in Azure Monitor > Alerts); the action group, and so
// any notification, exists only when an e-mail address is given. No receivers = no noise, but
// still a visible state for anyone who looks, and adding the address later needs no other change.
@description('Name prefix for the alert rules.')
param namePrefix string

@description('Action group name.')
param actionGroupName string

@description('Tags for the alert resources.')
param tags object = {}

@description('E-mail address for alert notifications; empty = no action group, alerts only visible in the portal.')
param alertEmailAddress string = ''

@description('Resource id of the Service Bus namespace.')
param serviceBusNamespaceId string

@description('Name of the cancel queue (EntityName dimension).')
param queueName string

@description('Name of the children queue (CHILD_QUEUE_NAME; EntityName dimension); empty = none.')
param childQueueName string = ''

// A dead-lettered or stuck child request is as much a meeting not cancelled as a request.
var watchedQueues = empty(childQueueName) ? [
  queueName
] : [
  queueName
  childQueueName
]

@description('Resource id of Application Insights.')
param applicationInsightsId string

@description('Active messages on the queue above which the backlog alert fires.')
@minValue(1)
param backlogThreshold int

@description('Failed function runs in 15 minutes above which the failure alert fires.')
@minValue(0)
param functionFailureThreshold int

var notify = !empty(alertEmailAddress)

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (notify) {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'cancelhdlr'
    enabled: true
    emailReceivers: [
      {
        name: 'operators'
        emailAddress: alertEmailAddress
        useCommonAlertSchema: true
      }
    ]
  }
}

var actions = notify ? [
  {
    actionGroupId: actionGroup.id
  }
] : []

// Any dead-lettered request needs a person: the meeting was not cancelled.
resource deadLetterAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-deadletter'
  location: 'global'
  tags: tags
  properties: {
    description: 'A cancellation request was dead-lettered on ${queueName}: the meeting was not cancelled. See docs/deploy.md (dead-letter queue).'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLettered'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: watchedQueues
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: actions
  }
}

// Requests are piling up: the function is not keeping up, is stopped, or cannot reach the queue.
resource backlogAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-backlog'
  location: 'global'
  tags: tags
  properties: {
    description: 'More than ${backlogThreshold} active cancellation requests waited on ${queueName} for 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'Backlog'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'ActiveMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: watchedQueues
            }
          ]
          operator: 'GreaterThan'
          threshold: backlogThreshold
          // Minimum over the window: only a backlog that never drained in 15 minutes fires.
          timeAggregation: 'Minimum'
        }
      ]
    }
    actions: actions
  }
}

// Function runs that ended in an error (Application Insights request telemetry). Exact: host.json
// sampling is off and the function keeps every failed run's trace (TRACE_SUCCESSES_PER_SECOND
// limits plain successes only).
resource failureAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-function-failures'
  location: 'global'
  tags: tags
  properties: {
    description: 'More than ${functionFailureThreshold} failed cancel-handler runs in 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      applicationInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'FailedRuns'
          metricNamespace: 'microsoft.insights/components'
          metricName: 'requests/failed'
          operator: 'GreaterThan'
          threshold: functionFailureThreshold
          timeAggregation: 'Count'
        }
      ]
    }
    actions: actions
  }
}

output actionGroupId string = notify ? actionGroup.id : ''
