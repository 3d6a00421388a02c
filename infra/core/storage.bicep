// Storage account for the Functions host (AzureWebJobsStorage) and the Flex Consumption
// deployment package. Reached only through the managed identity: shared keys are off.
@description('Storage account name (3-24 lowercase letters and digits).')
param name string

@description('Azure region.')
param location string

@description('Tags for the storage account.')
param tags object = {}

@description('Blob container that holds the deployment package (Flex Consumption).')
param deploymentContainerName string

@description('Principal id of the Function App identity (gets Storage Blob Data Owner and Storage Table Data Contributor).')
param functionPrincipalId string

// The host's data roles with an identity-based AzureWebJobsStorage ("Connecting to host storage
// with an identity" in the Azure Functions docs; reasons in docs/deploy.md):
// - Storage Blob Data Owner: the host's locks, keys and coordination blobs (it creates its own
//   containers), and the Flex Consumption deployment package.
// - Storage Table Data Contributor: the host persists its diagnostic events in a table; without
//   the role it logs 403 errors and stops recording them (azure-functions-host #10995, #10996).
// No queue or file role: those serve the blob trigger, Durable Functions and file shares, which
// this app does not use (the Service Bus trigger needs nothing here).
var storageBlobDataOwnerRoleId = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributorRoleId = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_206: LRS is enough: the account holds only host state and the deployment package, both recreated by `azd deploy`; no business data lives here.
  // checkov:skip=CKV_AZURE_35: the Flex Consumption app runs without virtual network integration in this template, so a default-deny firewall would lock the host out; access is identity-only (no shared keys).
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public endpoint needed without VNet integration; every request must carry an Entra token because shared keys are off.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }

  resource blobServices 'blobServices' = {
    name: 'default'
    properties: {
      deleteRetentionPolicy: {
        enabled: true
        days: 7
      }
    }

    resource deploymentContainer 'containers' = {
      name: deploymentContainerName
      properties: {
        publicAccess: 'None'
      }
    }
  }
}

resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, storageBlobDataOwnerRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwnerRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, functionPrincipalId, storageTableDataContributorRoleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributorRoleId)
    principalId: functionPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output name string = storage.name
output id string = storage.id
output blobEndpoint string = storage.properties.primaryEndpoints.blob
