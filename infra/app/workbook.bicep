// The operators' view in Azure Monitor: a workbook on Application Insights with the queries of
// docs/operate.md, "Telemetry" (infra/app/workbook.json; tests/test_telemetry_queries.py keeps
// both equal and checks every table, column and attribute they use against what the function
// emits).
@description('Resource id of the Application Insights the workbook queries.')
param applicationInsightsId string

@description('Azure region.')
param location string

@description('Tags for the workbook.')
param tags object = {}

@description('Name shown in Azure Monitor > Workbooks.')
param displayName string = 'cancel-handler operations'

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name is a GUID; this one is stable per Application Insights resource.
  name: guid(applicationInsightsId, 'cancel-handler-operations')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    version: 'Notebook/1.0'
    serializedData: replace(loadTextContent('workbook.json'), '__APPLICATION_INSIGHTS_ID__', applicationInsightsId)
  }
}

output workbookId string = workbook.id
